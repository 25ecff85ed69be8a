"""MELD: ``{train,dev,test}_sent_emo.csv`` rows -> ``dia{D}_utt{U}.mp4`` in the split's video folder.

Layout verified against public loaders: ``train_splits/``, ``dev_splits_complete/``,
``output_repeated_splits_test/``; the CSV columns are Sr No., Utterance, Speaker, Emotion,
Sentiment, Dialogue_ID, Utterance_ID, Season, Episode, StartTime, EndTime.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from omnibench.data.indexers.common import (
    DatasetLayoutError,
    IndexContext,
    check_root,
    column,
    label_from_code,
    no_fold,
    nothing_found,
    read_rows,
)
from omnibench.data.manifest import Clip

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
    root, fold: int | None = None, *, splits: Sequence[str] | str | None = None, ctx: IndexContext
) -> list[Clip]:
    """MELD: ``{split}_sent_emo.csv`` rows -> ``dia{D}_utt{U}.mp4`` in the split's folder.

    Transcript, speaker, sentiment, dialogue and utterance ids, season, episode and times go to meta.
    """
    no_fold("meld", fold)
    root = Path(root)
    check_root("meld", root)
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
        raise nothing_found("meld", root, "no {train,dev,test}_sent_emo.csv")
    clips = []
    for split in wanted:
        if split not in csvs:
            if splits:
                raise nothing_found("meld", root, f"no {split}_sent_emo.csv")
            continue
        path = csvs[split]
        vdir = dirs.get(split)
        if vdir is None:
            ctx.note(f"no video folder {list(_MELD_DIRS[split])} for {split}")
        rows = read_rows(path)
        if not rows:
            raise DatasetLayoutError(f"{path}: empty file (expected a header row and one row per utterance)")
        header = rows[0][1]
        col = {k: column(header, (k.lower(),), path) for k in ("Emotion", "Dialogue_ID", "Utterance_ID")}
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
            label = label_from_code("meld", cells[col["Emotion"]], where)
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
