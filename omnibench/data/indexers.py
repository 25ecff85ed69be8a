"""Indexers: turn each real dataset's native folder into :class:`~omnibench.data.manifest.Clip` records.

Nothing is downloaded: point an indexer at a folder you obtained from the dataset's authors (see
``data_cards/<name>.md``, key ``obtain``) and it writes a manifest that the rest of omnibench reads::

    omnibench index --dataset dfew --root /data/DFEW --fold 1 --out manifests/dfew_fd1.jsonl

or, from Python, ``clips = index_dataset("dfew", "/data/DFEW", fold=1)``.

Every indexer

* maps the dataset's native label codes to canonical labels — numeric or abbreviated codes come
  from the card's ``codes`` table, words go through :func:`omnibench.labels.normalize_label` (the
  cards' ``aliases``); an unknown code is an error naming the file and line;
* looks up every referenced media file; files that are not there are counted and reported
  (:class:`IndexReport`: N indexed, M missing, the first few paths) and the clip is left out
  (``on_missing="error"`` raises instead);
* raises :class:`DatasetLayoutError` naming the root and the expected layout when nothing is found.

Layouts, and how each was checked (public code and the datasets' own READMEs, read through the
project's search tool; no dataset was available on this machine, so the tests build fixtures in
these layouts with real file names and tiny generated media):

DFEW
    ``EmoLabel_DataSplit/train(single-labeled)/set_N.csv`` and ``test(single-labeled)/set_N.csv``,
    header ``video_name,label``, labels 1..7 = happy, sad, neutral, angry, surprise, disgust, fear —
    verified against DFEW's release README (which also spells the folders ``(single_labeled)``;
    both spellings are accepted) and several public loaders that read ``df.video_name``/``df.label``.
    Videos: ``Clip/original/`` holds the 16,372 source mp4 clips (named ``NNNNN.mp4``; some
    copies use unpadded ``1.mp4`` or ``part_K/`` sub-folders — clips are matched by the integer in
    the file name); ``Clip/clip_224x224_avi/NNNNN.avi`` is accepted; the frame folders
    ``clip_224x224``/``clip_224x224_16f`` are not videos and are not indexed.
MAFW
    ``Train & Test Set/single/no_caption/set_N/{train,test}.txt``, no header, space-separated
    ``00025.mp4 happiness`` lines, clips in ``data/clips/`` — verified against public loaders
    (label words anger, disgust, fear, happiness, neutral, sadness, surprise, contempt, anxiety,
    helplessness, disappointment) and MAFW's README (10,045 clips, 11 single classes).
RAVDESS
    file names ``MM-VV-EE-II-SS-RR-AA`` (modality 01 AV / 02 video-only / 03 audio-only, vocal
    channel 01 speech / 02 song, emotion 01..08, intensity, statement, repetition, actor) in
    ``Video_Speech_Actor_NN/Actor_NN/*.mp4`` and ``Audio_Speech_Actors_01-24/Actor_NN/*.wav`` —
    verified against the Zenodo archive names used by public download scripts and loaders.
CREMA-D
    ``VideoFlash/1001_DFA_ANG_XX.flv`` + ``AudioWAV/1001_DFA_ANG_XX.wav``
    (ActorID_Sentence_Emotion_Level) — verified against public loaders.
MER2023
    ``train-label.csv`` / ``test{1,2,3}-label.csv`` with columns ``name, discrete, valence`` and
    video folders ``train/``, ``test1/`` ... (files found as ``name.*``) — verified against the
    organisers' MERTools dataset script; labels neutral, angry, happy, sad, worried, surprise.
MELD
    ``{train,dev,test}_sent_emo.csv`` (Sr No., Utterance, Speaker, Emotion, Sentiment,
    Dialogue_ID, Utterance_ID, ...) and ``train_splits/``, ``dev_splits_complete/``,
    ``output_repeated_splits_test/`` with ``dia{D}_utt{U}.mp4`` — verified against public loaders.
R1-Omni JSON
    ``[{"video": ..., "conversations": [{"from": "human", "value": "<video>\\n<audio>\\n..."},
    {"from": "gpt", "value": "<think>..</think>\\n<answer>..</answer>"}]}]`` (cold start) or a bare
    label as the gpt value (RLVR data) — verified against R1-Omni's README. Import keeps the gpt text
    in ``meta["reasoning"]`` when it has ``<think>``; :func:`export_r1omni` writes the same format.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omnibench.data.manifest import Clip, read_manifest, write_manifest
from omnibench.labels import card, normalize_label

log = logging.getLogger(__name__)

VIDEO_EXTS = (".mp4", ".avi", ".flv", ".mkv", ".mov", ".webm")
AUDIO_EXTS = (".wav", ".flac", ".mp3", ".m4a")

#: R1-Omni's instruction (its README's training JSON), used when exporting.
R1OMNI_PROMPT = (
    "As an emotional recognition expert; throughout the video, which emotion conveyed by the "
    "characters is the most obvious to you? Output the thinking process in <think> </think> and "
    "final emotion in <answer> </answer> tags."
)
#: R1-Omni's RLVR (label-only) instruction.
R1OMNI_RL_PROMPT = (
    "As an emotional recognition expert; throughout the video, which emotion conveyed by the "
    "characters is the most obvious to you?"
)
R1OMNI_MEDIA_TAGS = "<video>\n<audio>\n"


class DatasetLayoutError(ValueError):
    """A dataset folder that does not match the expected layout, or holds an unusable entry."""


class LabelCodeError(DatasetLayoutError):
    """A label code that the dataset's card does not know (the message names file and line)."""


# --------------------------------------------------------------------------------------------
# report


@dataclass
class IndexReport:
    """What an indexer found: clips indexed, referenced media missing, notes on choices made."""

    dataset: str
    root: str
    indexed: int = 0
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self, max_list: int = 5) -> str:
        lines = [
            f"{self.dataset}: {self.indexed} clips indexed, {len(self.missing)} missing media files (root {self.root})"
        ]
        for path in self.missing[:max_list]:
            lines.append(f"  missing: {path}")
        if len(self.missing) > max_list:
            lines.append(f"  ... and {len(self.missing) - max_list} more")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


class _Ctx:
    """Shared state of one indexing run: the report and the missing-media policy."""

    def __init__(self, dataset: str, root: Path, on_missing: str):
        if on_missing not in ("skip", "error"):
            raise ValueError(f"on_missing must be 'skip' or 'error', got {on_missing!r}")
        self.dataset = dataset
        self.root = root
        self.on_missing = on_missing
        self.report = IndexReport(dataset, str(root))

    def missing(self, what: str) -> None:
        if self.on_missing == "error":
            raise DatasetLayoutError(
                f"{self.dataset}: referenced media file not found: {what} (root {self.root})"
            )
        self.report.missing.append(what)

    def note(self, text: str) -> None:
        self.report.notes.append(text)


# --------------------------------------------------------------------------------------------
# helpers


def _codes(dataset: str) -> dict[str, str]:
    """The card's native code table, keys normalised by :func:`_code_key`."""
    table = card(dataset).get("codes") or {}
    return {_code_key(k): v for k, v in table.items()}


def _code_key(code) -> str:
    text = str(code).strip()
    return str(int(text)) if text.isdigit() else text.lower()


def _label_from_code(dataset: str, code, where: str, table: dict[str, str] | None = None) -> str:
    """Canonical label for a native code (card ``codes`` first, then aliases); error naming ``where``."""
    table = _codes(dataset) if table is None else table
    label = table.get(_code_key(code))
    if label is None and not str(code).strip().isdigit():
        label = normalize_label(str(code))
    allowed = card(dataset)["labels"]
    if label is None or label not in allowed:
        known = sorted({str(k) for k in (card(dataset).get("codes") or {})}) or allowed
        raise LabelCodeError(f"{where}: unknown {dataset} label code {str(code)!r}; known codes: {known}")
    return label


def _layout(name: str) -> str:
    try:
        layout = card(name).get("layout")
    except KeyError:  # r1omni, manifest: no data card
        layout = None
    return str(layout or LAYOUTS.get(name, "")).rstrip()


def _check_root(name: str, root: Path) -> None:
    if not root.exists():
        raise FileNotFoundError(f"{name}: root {root} does not exist; expected layout:\n{_layout(name)}")


def _nothing_found(name: str, root: Path, what: str) -> DatasetLayoutError:
    return DatasetLayoutError(f"{name}: {what} under {root}; expected layout:\n{_layout(name)}")


def _files_by_stem(folder: Path, exts: Sequence[str]) -> dict[str, Path]:
    """stem -> path for media files below ``folder`` (recursive); the first extension in ``exts`` wins."""
    found: dict[str, Path] = {}
    rank = {e: i for i, e in enumerate(exts)}
    for dirpath, _dirs, files in os.walk(folder):
        for fname in files:
            ext = os.path.splitext(fname)[1].lower()
            if ext in rank:
                stem = os.path.splitext(fname)[0]
                path = Path(dirpath) / fname
                old = found.get(stem)
                if (
                    old is None
                    or rank[ext] < rank[old.suffix.lower()]
                    or (rank[ext] == rank[old.suffix.lower()] and str(path) < str(old))
                ):
                    found[stem] = path
    return found


def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, cells) for every non-empty row of a CSV file (BOM and stray spaces removed)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        reader = csv.reader(f)  # line_num: the file line a row ends on (quoted fields may span lines)
        return [(reader.line_num, [c.strip() for c in row]) for row in reader if any(c.strip() for c in row)]


def _column(header: list[str], names: Iterable[str], path: Path) -> int:
    low = [h.strip().lower() for h in header]
    for name in names:
        if name in low:
            return low.index(name)
    raise DatasetLayoutError(f"{path}: no column named any of {list(names)} in header {header}")


def _fold(name: str, fold: int | None, ctx: _Ctx) -> int:
    n_folds = int(card(name).get("folds", 5))
    if fold is None:
        ctx.note(f"fold not given: using fold 1 of {n_folds} (pass --fold N)")
        return 1
    if not 1 <= int(fold) <= n_folds:
        raise ValueError(f"{name}: fold must be in 1..{n_folds}, got {fold}")
    return int(fold)


def _no_fold(name: str, fold: int | None) -> None:
    if fold is not None:
        raise ValueError(f"{name} has no folds (got fold={fold}); leave --fold out")


# --------------------------------------------------------------------------------------------
# DFEW

_DFEW_VIDEO_DIRS = (
    "Clip/original",
    "original",
    "videos",
    "Clip/videos",
    "Clip/clip_224x224_avi",
    "clip_224x224_avi",
)
_DFEW_FRAME_DIRS = ("Clip/clip_224x224", "Clip/clip_224x224_16f", "clip_224x224", "clip_224x224_16f")


def _dfew_split_file(root: Path, subset: str, fold: int) -> Path | None:
    for base in (root / "EmoLabel_DataSplit", root):
        for spelling in ("single-labeled", "single_labeled", "single-labelled", "single_labelled"):
            path = base / f"{subset}({spelling})" / f"set_{fold}.csv"
            if path.is_file():
                return path
    return None


def index_dfew(root, fold: int | None = None, *, video_dir: str | None = None, ctx: _Ctx) -> list[Clip]:
    """DFEW fold ``fold``: its train CSV -> split "train", its test CSV -> split "test" (meta fold).

    Args:
        video_dir: folder of the video files (default: the first of ``Clip/original``, ``videos``,
            ``Clip/clip_224x224_avi`` that exists; only the original mp4 clips carry audio).
    """
    root = Path(root)
    _check_root("dfew", root)
    fold = _fold("dfew", fold, ctx)
    files = {s: _dfew_split_file(root, s, fold) for s in ("train", "test")}
    if not any(files.values()):
        raise _nothing_found(
            "dfew", root, f"no EmoLabel_DataSplit/{{train,test}}(single-labeled)/set_{fold}.csv"
        )
    vdir = _pick_dir(root, video_dir, _DFEW_VIDEO_DIRS)
    if vdir is None:
        frames = [d for d in _DFEW_FRAME_DIRS if (root / d).is_dir()]
        hint = f" (found only frame folders {frames}, which are not indexed)" if frames else ""
        raise _nothing_found(
            "dfew", root, f"no video folder among {list(_DFEW_VIDEO_DIRS)}{hint}; pass video_dir="
        )
    videos: dict[int, Path] = {}
    for stem, path in _files_by_stem(vdir, VIDEO_EXTS).items():
        if stem.isdigit():
            videos.setdefault(int(stem), path)
    ctx.note(f"videos from {vdir}")
    table = _codes("dfew")
    clips = []
    for split, path in files.items():
        if path is None:
            ctx.note(f"no {split} file for fold {fold}")
            continue
        rows = _read_rows(path)
        name_col, label_col, start = 0, 1, 0
        if rows and not rows[0][1][0].isdigit():  # header row
            header = rows[0][1]
            name_col = _column(header, ("video_name", "clip_name", "name", "video"), path)
            label_col = _column(header, ("label", "emotion"), path)
            start = 1
        for lineno, cells in rows[start:]:
            where = f"{path}:{lineno}"
            if len(cells) <= max(name_col, label_col) or not cells[name_col].isdigit():
                raise DatasetLayoutError(f"{where}: expected '<clip number>,<label 1..7>', got {cells}")
            num = int(cells[name_col])
            label = _label_from_code("dfew", cells[label_col], where, table)
            video = videos.get(num)
            if video is None:
                ctx.missing(f"{vdir}/{num:05d}.*")
                continue
            clips.append(
                Clip(
                    id=f"dfew-{num:05d}",
                    video=str(video),
                    label=label,
                    split=split,
                    dataset="dfew",
                    meta={"fold": fold, "clip": f"{num:05d}"},
                )
            )
    return clips


def _pick_dir(root: Path, given: str | None, candidates: Sequence[str]) -> Path | None:
    if given is not None:
        p = Path(given)
        p = p if p.is_absolute() else root / p
        if not p.is_dir():
            raise FileNotFoundError(f"video_dir {p} does not exist")
        return p
    for c in candidates:
        if (root / c).is_dir():
            return root / c
    return None


# --------------------------------------------------------------------------------------------
# MAFW

_MAFW_SPLIT_DIRS = (
    "Train & Test Set/single/no_caption",
    "Train&Test Set/single/no_caption",
    "single/no_caption",
)
_MAFW_VIDEO_DIRS = ("data/clips", "clips", "data/videos", "videos", "data/video")


def index_mafw(root, fold: int | None = None, *, video_dir: str | None = None, ctx: _Ctx) -> list[Clip]:
    """MAFW single-label fold ``fold`` (no_caption): train.txt -> "train", test.txt -> "test" (meta fold)."""
    root = Path(root)
    _check_root("mafw", root)
    fold = _fold("mafw", fold, ctx)
    split_dir = next(
        (root / d / f"set_{fold}" for d in _MAFW_SPLIT_DIRS if (root / d / f"set_{fold}").is_dir()), None
    )
    if split_dir is None:
        raise _nothing_found("mafw", root, f"no 'Train & Test Set/single/no_caption/set_{fold}/' folder")
    vdir = _pick_dir(root, video_dir, _MAFW_VIDEO_DIRS)
    if vdir is None:
        raise _nothing_found("mafw", root, f"no clip folder among {list(_MAFW_VIDEO_DIRS)}; pass video_dir=")
    videos = _files_by_stem(vdir, VIDEO_EXTS)
    table = _codes("mafw")
    clips, seen_file = [], False
    for split in ("train", "test"):
        path = split_dir / f"{split}.txt"
        if not path.is_file():
            ctx.note(f"no {path}")
            continue
        seen_file = True
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                parts = line.replace(",", " ").split()
                if len(parts) != 2:
                    raise DatasetLayoutError(f"{where}: expected '<clip file> <label>', got {line.strip()!r}")
                name, code = parts
                label = _label_from_code("mafw", code, where, table)
                stem = os.path.splitext(name)[0]
                video = videos.get(stem)
                if video is None:
                    ctx.missing(str(vdir / name))
                    continue
                clips.append(
                    Clip(
                        id=f"mafw-{stem}",
                        video=str(video),
                        label=label,
                        split=split,
                        dataset="mafw",
                        meta={"fold": fold, "clip": stem},
                    )
                )
    if not seen_file:
        raise _nothing_found("mafw", root, f"no train.txt/test.txt in {split_dir}")
    return clips


# --------------------------------------------------------------------------------------------
# RAVDESS

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
    ctx: _Ctx,
) -> list[Clip]:
    """RAVDESS clips from their file names (``MM-VV-EE-II-SS-RR-AA``); split "test" (OOD) by default.

    Args:
        pair: ``"av"`` the audio-visual files (modality 01, own audio track); ``"video+wav"`` the
            video-only files (02) each paired with the audio-only wav (03) of the same recording as a
            separate audio file; ``"audio"`` the wav files alone (no video).
        channel: ``"speech"`` (default, as in R1-Omni), ``"song"`` or ``"all"``.
    """
    _no_fold("ravdess", fold)
    if pair not in _RAVDESS_MODES:
        raise ValueError(f"ravdess: pair must be one of {list(_RAVDESS_MODES)}, got {pair!r}")
    if channel not in _RAVDESS_CHANNELS:
        raise ValueError(f"ravdess: channel must be one of {list(_RAVDESS_CHANNELS)}, got {channel!r}")
    root = Path(root)
    _check_root("ravdess", root)
    table = _codes("ravdess")
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
            _label_from_code("ravdess", emo, where, table)  # validates every file, used or not
            rest = stem[3:]
            by_key[(modality, rest)] = Path(dirpath) / fname
    if not by_key:
        raise _nothing_found("ravdess", root, "no files named MM-VV-EE-II-SS-RR-AA.(mp4|wav)")
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
                label=table[_code_key(emo)],
                split=split,
                dataset="ravdess",
                meta=meta,
            )
        )
    if not clips and not ctx.report.missing:
        have = sorted({m for m, _ in by_key})
        raise _nothing_found(
            "ravdess",
            root,
            f"no files with modality {want} for pair={pair!r}, channel={channel!r} "
            f"(modalities present: {have})",
        )
    return clips


# --------------------------------------------------------------------------------------------
# CREMA-D

_CREMAD_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def index_cremad(
    root, fold: int | None = None, *, mode: str = "av", audio: str = "wav", split: str = "test", ctx: _Ctx
) -> list[Clip]:
    """CREMA-D clips from ``ActorID_Sentence_Emotion_Level`` names; split "test" (OOD) by default.

    Args:
        mode: ``"av"`` a clip per video file (VideoFlash/*.flv, or mp4 copies); ``"audio"`` a clip
            per AudioWAV/*.wav with no video.
        audio: for ``mode="av"``: ``"wav"`` (default) pairs the video with the wav of the same name as
            its separate audio file (missing wavs are counted); ``"track"`` uses the video's own track.
    """
    _no_fold("cremad", fold)
    if mode not in ("av", "audio"):
        raise ValueError(f"cremad: mode must be 'av' or 'audio', got {mode!r}")
    if audio not in ("wav", "track"):
        raise ValueError(f"cremad: audio must be 'wav' or 'track', got {audio!r}")
    root = Path(root)
    _check_root("cremad", root)
    table = _codes("cremad")
    levels = card("cremad").get("levels") or {}
    videos: dict[str, Path] = {}
    wavs: dict[str, Path] = {}
    for dirpath, _dirs, files in os.walk(root):
        for fname in files:
            stem, ext = os.path.splitext(fname)
            ext = ext.lower()
            if not _CREMAD_NAME.match(stem):
                continue
            if ext in (".flv", ".mp4", ".avi"):
                old = videos.get(stem)
                if old is None or (old.suffix.lower() != ".flv" and ext == ".flv"):
                    videos[stem] = Path(dirpath) / fname
            elif ext == ".wav":
                wavs[stem] = Path(dirpath) / fname
    primary = videos if mode == "av" else wavs
    if not primary:
        what = (
            "no VideoFlash/AAAA_SSS_EEE_LL.flv videos"
            if mode == "av"
            else "no AudioWAV/AAAA_SSS_EEE_LL.wav files"
        )
        raise _nothing_found("cremad", root, what)
    clips = []
    for stem, path in sorted(primary.items()):
        actor, sentence, emo, level = _CREMAD_NAME.match(stem).groups()
        label = _label_from_code("cremad", emo, str(path), table)
        if level not in levels:
            raise LabelCodeError(f"{path}: unknown CREMA-D level {level!r}; known: {sorted(levels)}")
        video, aud = (str(path), None) if mode == "av" else (None, str(path))
        if mode == "av" and audio == "wav":
            wav = wavs.get(stem)
            if wav is None:
                ctx.missing(str(root / "AudioWAV" / f"{stem}.wav"))
                continue
            aud = str(wav)
        clips.append(
            Clip(
                id=f"cremad-{stem}",
                video=video,
                audio=aud,
                label=label,
                split=split,
                dataset="cremad",
                meta={"actor": actor, "sentence": sentence, "level": levels[level]},
            )
        )
    return clips


# --------------------------------------------------------------------------------------------
# MER2023

_MER_SPLITS = ("train", "test1", "test2", "test3")


def index_mer2023(
    root, fold: int | None = None, *, splits: Sequence[str] | str | None = None, ctx: _Ctx
) -> list[Clip]:
    """MER2023: each ``<split>-label.csv`` (name, discrete, valence) with videos in ``<split>/``.

    Args:
        splits: which label files to read (default: every one of train, test1, test2, test3 present).
    """
    _no_fold("mer2023", fold)
    root = Path(root)
    _check_root("mer2023", root)
    if isinstance(splits, str):
        splits = [s.strip() for s in splits.split(",") if s.strip()]
    wanted = list(splits) if splits else list(_MER_SPLITS)
    clips = []
    found_any = False
    for split in wanted:
        path = root / f"{split}-label.csv"
        if not path.is_file():
            if splits:
                raise _nothing_found("mer2023", root, f"no {path.name}")
            continue
        found_any = True
        vdir = next(
            (root / d for d in (split, f"{split}_video", "video", "videos") if (root / d).is_dir()), None
        )
        videos = _files_by_stem(vdir, VIDEO_EXTS) if vdir else {}
        if vdir is None:
            ctx.note(f"no video folder {root / split}")
        rows = _read_rows(path)
        if not rows:
            continue
        header = rows[0][1]
        name_col = _column(header, ("name", "names"), path)
        label_col = _column(header, ("discrete", "emotion", "label"), path)
        low = [h.lower() for h in header]
        val_col = low.index("valence") if "valence" in low else None
        for lineno, cells in rows[1:]:
            where = f"{path}:{lineno}"
            name = cells[name_col]
            label = _label_from_code("mer2023", cells[label_col], where)
            video = videos.get(name)
            if video is None:
                ctx.missing(str((vdir or root / split) / f"{name}.*"))
                continue
            meta = {"clip": name}
            if val_col is not None and val_col < len(cells) and cells[val_col] not in ("", "-10"):
                try:
                    meta["valence"] = float(cells[val_col])
                except ValueError:
                    raise DatasetLayoutError(f"{where}: valence {cells[val_col]!r} is not a number") from None
            clips.append(
                Clip(
                    id=f"mer2023-{split}-{name}",
                    video=str(video),
                    label=label,
                    split=split,
                    dataset="mer2023",
                    meta=meta,
                )
            )
    if not found_any:
        raise _nothing_found("mer2023", root, "no train-label.csv / test{1,2,3}-label.csv")
    return clips


# --------------------------------------------------------------------------------------------
# MELD

_MELD_DIRS = {
    "train": ("train_splits",),
    "dev": ("dev_splits_complete", "dev_splits"),
    "test": ("output_repeated_splits_test", "test_splits"),
}


def _walk_limited(root: Path, depth: int):
    """(dirpath, dirnames, filenames) like os.walk, at most ``depth`` levels below root."""
    base = len(root.parts)
    for dirpath, dirs, files in os.walk(root):
        if len(Path(dirpath).parts) - base >= depth:
            dirs[:] = []
        yield Path(dirpath), dirs, files


def index_meld(
    root, fold: int | None = None, *, splits: Sequence[str] | str | None = None, ctx: _Ctx
) -> list[Clip]:
    """MELD: ``{split}_sent_emo.csv`` rows -> ``dia{D}_utt{U}.mp4`` in the split's folder.

    Transcript, speaker, sentiment, dialogue and utterance ids, season, episode and times go to meta.
    """
    _no_fold("meld", fold)
    root = Path(root)
    _check_root("meld", root)
    if isinstance(splits, str):
        splits = [s.strip() for s in splits.split(",") if s.strip()]
    wanted = list(splits) if splits else ["train", "dev", "test"]
    csvs: dict[str, Path] = {}
    dirs: dict[str, Path] = {}
    for dirpath, dirnames, files in _walk_limited(root, 3):
        for fname in files:
            m = re.match(r"^(train|dev|test)_sent_emo\.csv$", fname)
            if m:
                csvs.setdefault(m.group(1), dirpath / fname)
        for d in dirnames:
            for split, names in _MELD_DIRS.items():
                if d in names:
                    dirs.setdefault(split, dirpath / d)
    if not any(s in csvs for s in wanted):
        raise _nothing_found("meld", root, "no {train,dev,test}_sent_emo.csv")
    clips = []
    for split in wanted:
        if split not in csvs:
            if splits:
                raise _nothing_found("meld", root, f"no {split}_sent_emo.csv")
            continue
        path = csvs[split]
        vdir = dirs.get(split)
        if vdir is None:
            ctx.note(f"no video folder {list(_MELD_DIRS[split])} for {split}")
        rows = _read_rows(path)
        if not rows:
            raise DatasetLayoutError(f"{path}: empty file (expected a header row and one row per utterance)")
        header = rows[0][1]
        col = {k: _column(header, (k.lower(),), path) for k in ("Emotion", "Dialogue_ID", "Utterance_ID")}
        opt = {
            k: header.index(k)
            for k in (
                "Utterance",
                "Speaker",
                "Sentiment",
                "Season",
                "Episode",
                "StartTime",
                "EndTime",
                "Sr No.",
            )
            if k in header
        }
        for lineno, cells in rows[1:]:
            where = f"{path}:{lineno}"
            label = _label_from_code("meld", cells[col["Emotion"]], where)
            d, u = cells[col["Dialogue_ID"]], cells[col["Utterance_ID"]]
            if not (d.isdigit() and u.isdigit()):
                raise DatasetLayoutError(
                    f"{where}: Dialogue_ID/Utterance_ID must be integers, got {d!r}/{u!r}"
                )
            name = f"dia{int(d)}_utt{int(u)}.mp4"
            video = (vdir / name) if vdir else None
            if video is None or not video.is_file():
                ctx.missing(str((vdir or root / _MELD_DIRS[split][0]) / name))
                continue
            meta = {"dialogue_id": int(d), "utterance_id": int(u)}
            for key, i in opt.items():
                if i < len(cells):
                    meta[key.lower().replace(" ", "_").replace(".", "")] = cells[i]
            clips.append(
                Clip(
                    id=f"meld-{split}-dia{int(d)}_utt{int(u)}",
                    video=str(video),
                    label=label,
                    split=split,
                    dataset="meld",
                    meta=meta,
                )
            )
    return clips


# --------------------------------------------------------------------------------------------
# R1-Omni JSON (import and export)

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def index_r1omni(
    root,
    fold: int | None = None,
    *,
    split: str = "train",
    video_root: str | None = None,
    dataset: str = "r1omni",
    ctx: _Ctx,
) -> list[Clip]:
    """Import R1-Omni's training JSON (``root`` is the .json file).

    The label is the last ``<answer>…</answer>`` of the gpt turn (or the whole gpt value when it has
    no tags, as in R1-Omni's RLVR data); a gpt value with ``<think>`` is kept in ``meta["reasoning"]``,
    the human value in ``meta["prompt"]``. Video paths are relative to ``video_root`` (default: the
    JSON file's folder).
    """
    _no_fold("r1omni", fold)
    path = Path(root)
    _check_root("r1omni", path)
    if path.is_dir():
        found = sorted(path.glob("*.json"))
        if len(found) != 1:
            raise _nothing_found(
                "r1omni", path, f"{len(found)} .json files (give the JSON file itself as root)"
            )
        path = found[0]
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DatasetLayoutError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(items, list) or not items:
        raise _nothing_found("r1omni", path, "no items (expected a non-empty JSON list)")
    base = Path(video_root) if video_root else path.parent
    clips, seen = [], set()
    for i, item in enumerate(items):
        where = f"{path}: item {i}"
        if (
            not isinstance(item, dict)
            or "conversations" not in item
            or not (item.get("video") or item.get("audio"))
        ):
            raise DatasetLayoutError(f"{where}: expected {{'video': ..., 'conversations': [...]}}")
        human = next((c.get("value", "") for c in item["conversations"] if c.get("from") == "human"), None)
        gpt = next((c.get("value", "") for c in item["conversations"] if c.get("from") == "gpt"), None)
        if gpt is None:
            raise DatasetLayoutError(f"{where}: no turn with from='gpt'")
        answers = _ANSWER.findall(gpt)
        raw = answers[-1].strip() if answers else gpt.strip()
        label = normalize_label(raw)
        if label is None:
            raise LabelCodeError(
                f"{where}: unknown label {raw!r}; add it as an alias in a data card "
                f"(data_cards/*.md, key aliases) if it is a spelling of a known label"
            )
        media = {}
        for key in ("video", "audio"):
            if item.get(key):
                p = Path(item[key])
                p = p if p.is_absolute() else base / p
                media[key] = p
        if any(not p.is_file() for p in media.values()):
            ctx.missing(", ".join(str(p) for p in media.values() if not p.is_file()))
            continue
        stem = Path(str(item.get("video") or item.get("audio"))).stem
        cid = f"{dataset}-{stem}"
        if cid in seen:
            cid = f"{dataset}-{i:06d}-{stem}"
        seen.add(cid)
        meta = {"source": str(item.get("video") or item.get("audio"))}
        if human is not None:
            meta["prompt"] = human
        if "<think>" in gpt:
            meta["reasoning"] = gpt
        clips.append(
            Clip(
                id=cid,
                video=str(media["video"]) if "video" in media else None,
                audio=str(media["audio"]) if "audio" in media else None,
                label=label,
                split=split,
                dataset=dataset,
                meta=meta,
            )
        )
    return clips


def export_r1omni(
    clips: Iterable[Clip],
    path,
    *,
    style: str = "auto",
    prompt: str | None = None,
    video_root: str | None = None,
) -> Path:
    """Write clips as R1-Omni training JSON.

    Args:
        style: ``"cold_start"`` — gpt turn = ``meta["reasoning"]`` (``<think>…</think>\\n<answer>…</answer>``),
            an error if a clip has none; ``"rl"`` — gpt turn = the bare label, as in R1-Omni's RLVR
            data; ``"auto"`` — cold_start when every clip has reasoning, else rl.
        prompt: the instruction after ``<video>\\n<audio>\\n`` (default: R1-Omni's, per style).
        video_root: media paths are written relative to this folder (default: the JSON's folder).
    """
    clips = list(clips)
    if style not in ("auto", "cold_start", "rl"):
        raise ValueError(f"style must be 'auto', 'cold_start' or 'rl', got {style!r}")
    if style == "auto":
        style = "cold_start" if clips and all(c.meta.get("reasoning") for c in clips) else "rl"
    if style == "cold_start":
        lacking = [c.id for c in clips if not c.meta.get("reasoning")]
        if lacking:
            raise ValueError(
                f"style='cold_start' needs meta['reasoning'] on every clip; missing on {len(lacking)}: "
                f"{lacking[:5]} (use style='rl' for label-only data)"
            )
    if prompt is None:
        prompt = R1OMNI_PROMPT if style == "cold_start" else R1OMNI_RL_PROMPT
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = Path(video_root).resolve() if video_root else path.parent.resolve()
    items = []
    for c in clips:
        if c.label is None:
            raise ValueError(f"clip {c.id} has no label; R1-Omni training data needs one")
        item: dict = {}
        for key in ("video", "audio"):
            value = getattr(c, key)
            if value:
                p = Path(value)
                item[key] = os.path.relpath(p.resolve(), base) if p.is_absolute() else str(p)
        answer = c.meta["reasoning"] if style == "cold_start" else c.label
        item["conversations"] = [
            {"from": "human", "value": R1OMNI_MEDIA_TAGS + prompt},
            {"from": "gpt", "value": answer},
        ]
        items.append(item)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(items, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------------------------
# manifest (re-read, e.g. to export it as R1-Omni JSON)


def index_manifest(root, fold: int | None = None, *, ctx: _Ctx) -> list[Clip]:
    """An existing omnibench manifest (``root`` is the .jsonl file), validated by read_manifest."""
    _no_fold("manifest", fold)
    return read_manifest(root)


# --------------------------------------------------------------------------------------------
# registry and entry points

#: Fallback layout descriptions (cards' ``layout`` key takes precedence).
LAYOUTS: dict[str, str] = {
    "r1omni": 'a JSON file: [{"video": "rel/path.mp4", "conversations": [{"from": "human", "value": "<video>\\n<audio>\\n..."}, '
    '{"from": "gpt", "value": "<think>..</think>\\n<answer>label</answer>"}]}, ...]',
    "manifest": "an omnibench manifest .jsonl (see omnibench.data.manifest)",
}

INDEXERS: dict[str, Callable[..., list[Clip]]] = {
    "dfew": index_dfew,
    "mafw": index_mafw,
    "ravdess": index_ravdess,
    "cremad": index_cremad,
    "mer2023": index_mer2023,
    "meld": index_meld,
    "r1omni": index_r1omni,
    "manifest": index_manifest,
}


def index_with_report(
    name: str, root, fold: int | None = None, *, on_missing: str = "skip", **opts
) -> tuple[list[Clip], IndexReport]:
    """Like :func:`index_dataset`, also returning the :class:`IndexReport`."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in INDEXERS:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(INDEXERS)}")
    ctx = _Ctx(key, Path(root), on_missing)
    try:
        clips = INDEXERS[key](root, fold, ctx=ctx, **opts)
    except TypeError as e:
        if "unexpected keyword argument" in str(e):
            raise TypeError(
                f"{key}: {e}; see help(omnibench.data.indexers.{INDEXERS[key].__name__})"
            ) from None
        raise
    ctx.report.indexed = len(clips)
    if not clips:
        raise DatasetLayoutError(
            f"{key}: nothing indexed under {root}\n{ctx.report.summary()}\nexpected layout:\n{_layout(key)}"
        )
    return clips, ctx.report


def index_dataset(name: str, root, fold: int | None = None, **opts) -> list[Clip]:
    """Index a dataset folder into clips.

    Args:
        name: one of :data:`INDEXERS` (dfew, mafw, ravdess, cremad, mer2023, meld, r1omni, manifest).
        root: the dataset folder (for r1omni/manifest: the JSON/JSONL file).
        fold: DFEW/MAFW fold 1..5 (default 1, noted in the report); an error for other datasets.
        **opts: ``on_missing`` ("skip" counts and reports missing media, "error" raises) and the
            indexer's own options (see ``index_<name>``).

    Missing media are reported as a warning with :meth:`IndexReport.summary`.
    """
    clips, report = index_with_report(name, root, fold, **opts)
    if report.missing:
        warnings.warn(report.summary(), stacklevel=2)
    else:
        log.info(report.summary())
    return clips


# --------------------------------------------------------------------------------------------
# CLI


def add_index_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Flags of ``omnibench index``."""
    parser.add_argument("--dataset", required=True, choices=sorted(INDEXERS), help="dataset layout to read")
    parser.add_argument(
        "--root", required=True, help="dataset folder (r1omni/manifest: the .json/.jsonl file)"
    )
    parser.add_argument("--out", required=True, help="output manifest .jsonl (or .json with --format r1omni)")
    parser.add_argument("--fold", type=int, default=None, help="DFEW/MAFW fold 1..5 (default 1)")
    parser.add_argument(
        "--format",
        default="manifest",
        choices=("manifest", "r1omni"),
        help="write an omnibench manifest (default) or R1-Omni training JSON",
    )
    parser.add_argument(
        "--style",
        default="auto",
        choices=("auto", "cold_start", "rl"),
        help="R1-Omni export: gpt turn = reasoning (cold_start) or bare label (rl)",
    )
    parser.add_argument(
        "--on-missing",
        default="skip",
        choices=("skip", "error"),
        help="referenced media not found: skip and report (default) or fail",
    )
    parser.add_argument(
        "--split", default=None, help="split name for ravdess/cremad (default test) and r1omni (train)"
    )
    parser.add_argument("--splits", default=None, help="mer2023/meld: comma-separated subset of splits")
    parser.add_argument(
        "--video-dir", default=None, help="dfew/mafw: folder of the video files (relative to root)"
    )
    parser.add_argument(
        "--video-root", default=None, help="r1omni: folder the JSON's video paths are relative to"
    )
    parser.add_argument(
        "--pair",
        default=None,
        choices=("av", "video+wav", "audio"),
        help="ravdess: AV files (default), video-only + matching wav, or wav only",
    )
    parser.add_argument(
        "--channel", default=None, choices=("speech", "song", "all"), help="ravdess vocal channel"
    )
    parser.add_argument(
        "--mode", default=None, choices=("av", "audio"), help="cremad: video clips or wav only"
    )
    parser.add_argument(
        "--audio",
        default=None,
        choices=("wav", "track"),
        help="cremad: separate wav (default) or the video's own audio track",
    )
    return parser


_CLI_OPTS = {
    "split": ("ravdess", "cremad", "r1omni"),
    "splits": ("mer2023", "meld"),
    "video_dir": ("dfew", "mafw"),
    "video_root": ("r1omni",),
    "pair": ("ravdess",),
    "channel": ("ravdess",),
    "mode": ("cremad",),
    "audio": ("cremad",),
}


def cli_index(args: argparse.Namespace) -> int:
    """``omnibench index``: index a dataset and write a manifest (or R1-Omni JSON); prints the summary."""
    opts = {}
    for key, allowed in _CLI_OPTS.items():
        value = getattr(args, key, None)
        if value is None:
            continue
        if args.dataset not in allowed:
            raise SystemExit(f"--{key.replace('_', '-')} applies to {', '.join(allowed)}, not {args.dataset}")
        opts[key] = value
    try:
        clips, report = index_with_report(args.dataset, args.root, args.fold, on_missing=args.on_missing, **opts)
    except (DatasetLayoutError, FileNotFoundError) as e:  # a user-facing message, not a traceback
        raise SystemExit(f"omnibench index: {e}") from None
    if args.format == "r1omni":
        out = export_r1omni(clips, args.out, style=args.style)
    else:
        out = write_manifest(clips, args.out)
    print(report.summary())
    splits: dict[str, int] = {}
    for c in clips:
        splits[c.split] = splits.get(c.split, 0) + 1
    print(f"wrote {out} ({len(clips)} clips; splits {splits})")
    return 0
