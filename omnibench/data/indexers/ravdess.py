"""RAVDESS: clips and labels from the file names (``MM-VV-EE-II-SS-RR-AA``), no label file.

Layout (Zenodo archive names used by public download scripts and loaders):
``Video_Speech_Actor_NN/Actor_NN/*.mp4`` and ``Audio_Speech_Actors_01-24/Actor_NN/*.wav``; the
fields are modality (01 AV / 02 video-only / 03 audio-only), vocal channel (01 speech / 02 song),
emotion 01..08, intensity, statement, repetition, actor. RAVDESS is an out-of-distribution test set
in R1-Omni, so its clips go to split "test" by default.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from omnibench.data.indexers.common import (
    AUDIO_EXTS,
    VIDEO_EXTS,
    IndexContext,
    LabelCodeError,
    check_root,
    code_key,
    codes,
    label_from_code,
    no_fold,
    nothing_found,
)
from omnibench.data.manifest import Clip

_RAVDESS_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_RAVDESS_MODES = {"av": "01", "video+wav": "02", "audio": "03"}
_RAVDESS_CHANNELS = {"speech": ("01",), "song": ("02",), "all": ("01", "02")}


def index_ravdess(
    root,
    fold: int | None = None,
    *,
    pair: str = "av",
    channel: str = "speech",
    split: str = "test",
    ctx: IndexContext,
) -> list[Clip]:
    """RAVDESS clips from their file names (``MM-VV-EE-II-SS-RR-AA``); split "test" (OOD) by default.

    Args:
        pair: ``"av"`` the audio-visual files (modality 01, own audio track); ``"video+wav"`` the
            video-only files (02) each paired with the audio-only wav (03) of the same recording as a
            separate audio file; ``"audio"`` the wav files alone (no video).
        channel: ``"speech"`` (default, as in R1-Omni), ``"song"`` or ``"all"``.
    """
    no_fold("ravdess", fold)
    if pair not in _RAVDESS_MODES:
        raise ValueError(f"ravdess: pair must be one of {list(_RAVDESS_MODES)}, got {pair!r}")
    if channel not in _RAVDESS_CHANNELS:
        raise ValueError(f"ravdess: channel must be one of {list(_RAVDESS_CHANNELS)}, got {channel!r}")
    root = Path(root)
    check_root("ravdess", root)
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
        }
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
    if not clips and not ctx.report.missing:
        have = sorted({m for m, _ in by_key})
        raise nothing_found(
            "ravdess",
            root,
            f"no files with modality {want} for pair={pair!r}, channel={channel!r} "
            f"(modalities present: {have})",
        )
    return clips
