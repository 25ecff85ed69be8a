"""MAFW: the single-label fold's ``train.txt`` / ``test.txt`` (no_caption) and the clips in ``data/clips``.

Layout, verified against public loaders and MAFW's README (10,045 clips, 11 single classes):
``Train & Test Set/single/no_caption/set_N/{train,test}.txt``, no header, space-separated
``00025.mp4 happiness`` lines; label words anger, disgust, fear, happiness, neutral, sadness,
surprise, contempt, anxiety, helplessness, disappointment.

``fold="all"`` works as for DFEW: every clip once per fold, ``train@fold3`` / ``mafw-00025@fold3``,
``meta["fold"]``.
"""

from __future__ import annotations

import os
from pathlib import Path

from omnibench.data.indexers.common import (
    VIDEO_EXTS,
    DatasetLayoutError,
    IndexContext,
    check_root,
    codes,
    files_by_stem,
    fold_suffix,
    folds,
    label_from_code,
    nothing_found,
    pick_dir,
)
from omnibench.data.manifest import Clip

_MAFW_SPLIT_DIRS = (
    "Train & Test Set/single/no_caption",
    "Train&Test Set/single/no_caption",
    "single/no_caption",
)
_MAFW_VIDEO_DIRS = ("data/clips", "clips", "data/videos", "videos", "data/video")


def _split_dir(root: Path, fold: int) -> Path | None:
    return next(
        (root / d / f"set_{fold}" for d in _MAFW_SPLIT_DIRS if (root / d / f"set_{fold}").is_dir()), None
    )


def index_mafw(
    root, fold: int | str | None = None, *, video_dir: str | None = None, ctx: IndexContext
) -> list[Clip]:
    """MAFW single-label fold ``fold`` (no_caption): train.txt -> "train", test.txt -> "test" (meta fold).

    Args:
        fold: 1..5 (default 1, noted in the report) or ``"all"`` (every ``set_N`` folder present, each
            clip once per fold with ``@foldN`` in its split name and id).
        video_dir: folder of the clips (default: the first of ``data/clips``, ``clips``, ... that exists).
    """
    root = Path(root)
    check_root("mafw", root)
    wanted = folds("mafw", fold, ctx)
    all_folds = len(wanted) > 1
    split_dirs = {k: _split_dir(root, k) for k in wanted}
    if not any(split_dirs.values()):
        which = "N" if all_folds else str(wanted[0])
        raise nothing_found("mafw", root, f"no 'Train & Test Set/single/no_caption/set_{which}/' folder")
    vdir = pick_dir(root, video_dir, _MAFW_VIDEO_DIRS)
    if vdir is None:
        raise nothing_found("mafw", root, f"no clip folder among {list(_MAFW_VIDEO_DIRS)}; pass video_dir=")
    videos = files_by_stem(vdir, VIDEO_EXTS)
    table = codes("mafw")
    clips, seen_file = [], False
    for k, split_dir in split_dirs.items():
        if split_dir is None:
            ctx.note(f"no set_{k} folder for fold {k}")
            continue
        suffix = fold_suffix(k, all_folds)
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
                        raise DatasetLayoutError(
                            f"{where}: expected '<clip file> <label>', got {line.strip()!r}"
                        )
                    name, code = parts
                    label = label_from_code("mafw", code, where, table)
                    stem = os.path.splitext(name)[0]
                    video = videos.get(stem)
                    if video is None:
                        ctx.missing(str(vdir / name))
                        continue
                    clips.append(
                        Clip(
                            id=f"mafw-{stem}{suffix}",
                            video=str(video),
                            label=label,
                            split=f"{split}{suffix}",
                            dataset="mafw",
                            meta={"fold": k, "clip": stem},
                        )
                    )
    if not seen_file:
        raise nothing_found(
            "mafw", root, f"no train.txt/test.txt in {[str(d) for d in split_dirs.values() if d]}"
        )
    return clips
