"""RAVDESS: clips and labels from the file names (``MM-VV-EE-II-SS-RR-AA``), no label file.

Layout (Zenodo archive names used by public download scripts and loaders):
``Video_Speech_Actor_NN/Actor_NN/*.mp4`` and ``Audio_Speech_Actors_01-24/Actor_NN/*.wav``; the
fields are modality (01 AV / 02 video-only / 03 audio-only), vocal channel (01 speech / 02 song),
emotion 01..08, intensity, statement, repetition, actor. RAVDESS is an out-of-distribution test set
in R1-Omni, so its clips go to split "test" by default.

Presentations and human ratings
    One recording (channel, emotion, intensity, statement, repetition, actor: the name without its
    modality field) exists in up to three files, its presentations (:data:`PRESENTATION_OF`): ``both``
    (01 full-AV), ``face`` (02 video-only), ``voice`` (03 audio-only). Every clip records the ones
    found under the root in ``meta["presentations"]``. RAVDESS's validity ratings are published per
    file (each file rated by 10 raters); given a CSV of them (``ratings=``), a clip gets the same
    ``human_rates`` / ``human_dominant`` / ``human_source`` meta as CREMA-D's votes give (see
    :func:`omnibench.data.indexers.common.human_meta`), ``face`` read from its video-only file's row,
    ``voice`` from the audio-only one, ``both`` from the full-AV one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from omnibench.data.indexers.common import (
    AUDIO_EXTS,
    PRESENTATIONS,
    VIDEO_EXTS,
    DatasetLayoutError,
    IndexContext,
    LabelCodeError,
    check_root,
    code_key,
    codes,
    human_meta,
    label_from_code,
    no_fold,
    nothing_found,
    read_rows,
)
from omnibench.data.manifest import Clip

_RAVDESS_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_RAVDESS_MODES = {"av": "01", "video+wav": "02", "audio": "03"}
_RAVDESS_CHANNELS = {"speech": ("01",), "song": ("02",), "all": ("01", "02")}

#: Modality field of the file name -> the presentation it is (the keys of ``meta["human_rates"]``).
PRESENTATION_OF = {"01": "both", "02": "face", "03": "voice"}
_MODALITY_OF = {p: m for m, p in PRESENTATION_OF.items()}
#: Accepted header names (case-insensitive) of a ratings CSV: the file-name column and the
#: proportion-correct column (a proportion in [0, 1]: the share of raters who chose the intended emotion).
RATING_FILE_COLUMNS = ("filename", "file_name", "file name", "file", "stimulus")
RATING_VALUE_COLUMNS = ("proportion_correct", "proportion correct", "prop_correct", "proportioncorrect",
                        "accuracy")


def read_ratings(path) -> dict[tuple[str, str], float]:
    """Read a per-file RAVDESS ratings CSV: ``{(modality, rest of the name): proportion correct}``.

    The header must name a file-name column (one of :data:`RATING_FILE_COLUMNS`, e.g. ``Filename``)
    and a proportion-correct column (one of :data:`RATING_VALUE_COLUMNS`, e.g. ``proportion_correct``);
    other columns are ignored. File names are RAVDESS names with or without extension or folder
    (``01-01-03-02-01-01-12.mp4``, ``03-01-03-02-01-01-12``). A malformed file raises
    :class:`DatasetLayoutError` naming the file and line: a missing column, a row with another number
    of fields than the header, a name that is not ``MM-VV-EE-II-SS-RR-AA``, a value that is not a
    number in [0, 1] (percentages: divide by 100), or the same file twice.
    """
    path = Path(path)
    rows = read_rows(path)
    if not rows:
        raise DatasetLayoutError(f"{path}: empty ratings file; expected a header with a file-name column "
                                 f"{list(RATING_FILE_COLUMNS)} and a proportion-correct column "
                                 f"{list(RATING_VALUE_COLUMNS)}")
    head_line, header = rows[0]
    low = [h.lower() for h in header]
    found = {}
    for what, names in (("file-name", RATING_FILE_COLUMNS), ("proportion-correct", RATING_VALUE_COLUMNS)):
        idx = next((low.index(n) for n in names if n in low), None)
        if idx is None:
            raise DatasetLayoutError(
                f"{path}:{head_line}: no {what} column (any of {list(names)}, case-insensitive) in the "
                f"header {header}; rename the column"
            )
        found[what] = idx
    out: dict[tuple[str, str], float] = {}
    first: dict[tuple[str, str], int] = {}
    for line, cells in rows[1:]:
        if len(cells) != len(header):
            raise DatasetLayoutError(
                f"{path}:{line}: {len(cells)} fields, the header has {len(header)}; fix the row"
            )
        name = cells[found["file-name"]].replace("\\", "/").rsplit("/", 1)[-1]
        stem = os.path.splitext(name)[0] if not _RAVDESS_NAME.match(name) else name
        if not _RAVDESS_NAME.match(stem) or stem[:2] not in PRESENTATION_OF:
            raise DatasetLayoutError(
                f"{path}:{line}: {cells[found['file-name']]!r} is not a RAVDESS file name "
                f"(MM-VV-EE-II-SS-RR-AA, modality 01/02/03)"
            )
        text = cells[found["proportion-correct"]]
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not 0.0 <= value <= 1.0:  # also NaN
            raise DatasetLayoutError(
                f"{path}:{line}: proportion correct must be a number in [0, 1], got {text!r} "
                f"(a percentage? divide by 100)"
            )
        key = (stem[:2], stem[3:])
        if key in first:
            raise DatasetLayoutError(f"{path}:{line}: {stem} rated twice (first on line {first[key]}); keep one")
        first[key] = line
        out[key] = value
    return out


def index_ravdess(
    root,
    fold: int | None = None,
    *,
    pair: str = "av",
    channel: str = "speech",
    split: str = "test",
    ratings=None,
    ctx: IndexContext,
) -> list[Clip]:
    """RAVDESS clips from their file names (``MM-VV-EE-II-SS-RR-AA``); split "test" (OOD) by default.

    Args:
        pair: ``"av"`` the audio-visual files (modality 01, own audio track); ``"video+wav"`` the
            video-only files (02) each paired with the audio-only wav (03) of the same recording as a
            separate audio file; ``"audio"`` the wav files alone (no video).
        channel: ``"speech"`` (default, as in R1-Omni), ``"song"`` or ``"all"``.
        ratings: a CSV of per-file validity ratings (:func:`read_ratings`: a file-name column and a
            proportion-correct column); a relative path is looked up under ``root`` first, then the
            working directory. Adds ``human_rates`` / ``human_dominant`` / ``human_source`` to each
            clip's meta; clips none of whose files is rated are kept and counted
            (``counts["no_human_ratings"]``).

    Every clip's meta has ``presentations``: the presentations of its recording found under the root,
    in the order of :data:`~omnibench.data.indexers.common.PRESENTATIONS` (``["voice", "face", "both"]``
    when all three files are there).
    """
    no_fold("ravdess", fold)
    if pair not in _RAVDESS_MODES:
        raise ValueError(f"ravdess: pair must be one of {list(_RAVDESS_MODES)}, got {pair!r}")
    if channel not in _RAVDESS_CHANNELS:
        raise ValueError(f"ravdess: channel must be one of {list(_RAVDESS_CHANNELS)}, got {channel!r}")
    root = Path(root)
    check_root("ravdess", root)
    rated = None
    if ratings is not None:
        rpath = Path(ratings)
        if not rpath.is_absolute() and (root / rpath).is_file():
            rpath = root / rpath
        if not rpath.is_file():
            raise FileNotFoundError(f"ravdess: ratings file {ratings} not found (under {root} or here)")
        rated = read_ratings(rpath)
    table = codes("ravdess")
    by_key: dict[tuple[str, str], Path] = {}  # (modality, rest of the code) -> file
    for dirpath, _dirs, files in os.walk(root):
        for fname in files:
            stem, ext = os.path.splitext(fname)
            m = _RAVDESS_NAME.match(stem)
            if not m or ext.lower() not in VIDEO_EXTS + AUDIO_EXTS:
                continue
            where = str(Path(dirpath) / fname)
            modality, vocal, emo, inten, _stmt, _rep, actor = m.groups()
            if modality not in ("01", "02", "03"):
                raise LabelCodeError(
                    f"{where}: unknown RAVDESS modality code {modality!r} (01 AV, 02 video, 03 audio)"
                )
            if vocal not in ("01", "02") or inten not in ("01", "02") or not 1 <= int(actor) <= 24:
                raise LabelCodeError(
                    f"{where}: not a valid RAVDESS name (channel 01/02, intensity 01/02, actor 01..24)"
                )
            label_from_code("ravdess", emo, where, table)  # validates every file, used or not
            rest = stem[3:]
            by_key[(modality, rest)] = Path(dirpath) / fname
    if not by_key:
        raise nothing_found("ravdess", root, "no files named MM-VV-EE-II-SS-RR-AA.(mp4|wav)")
    want = _RAVDESS_MODES[pair]
    chans = _RAVDESS_CHANNELS[channel]
    clips = []
    unrated = 0
    for (modality, rest), path in sorted(by_key.items()):
        if modality != want or rest[:2] not in chans:
            continue
        vocal, emo, inten, stmt, rep, actor = rest.split("-")
        video, audio = (None, str(path)) if pair == "audio" else (str(path), None)
        if pair == "video+wav":
            wav = by_key.get(("03", rest))
            if wav is None:
                ctx.missing(f"03-{rest}.wav (the audio-only match of {path})")
                continue
            audio = str(wav)
        meta = {
            "actor": actor,
            "gender": "male" if int(actor) % 2 else "female",
            "channel": "speech" if vocal == "01" else "song",
            "intensity": "normal" if inten == "01" else "strong",
            "statement": stmt,
            "repetition": rep,
            "pair": pair,
            "presentations": [p for p in PRESENTATIONS if (_MODALITY_OF[p], rest) in by_key],
        }
        if rated is not None:
            rates = {p: rated.get((_MODALITY_OF[p], rest)) for p in PRESENTATIONS}
            if all(r is None for r in rates.values()):
                unrated += 1
            meta.update(human_meta(rates, rpath.name))
        clips.append(
            Clip(
                id=f"ravdess-{want}-{rest}",
                video=video,
                audio=audio,
                label=table[code_key(emo)],
                split=split,
                dataset="ravdess",
                meta=meta,
            )
        )
    if rated is not None:
        ctx.count(
            "no_human_ratings",
            unrated,
            f"{unrated} clips have no rated file in {rpath.name}: kept, with human_rates None",
        )
    if not clips and not ctx.report.missing:
        have = sorted({m for m, _ in by_key})
        raise nothing_found(
            "ravdess",
            root,
            f"no files with modality {want} for pair={pair!r}, channel={channel!r} "
            f"(modalities present: {have})",
        )
    return clips
