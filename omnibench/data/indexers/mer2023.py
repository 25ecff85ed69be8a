"""MER2023: ``train-label.csv`` / ``test{1,2,3}-label.csv`` (name, discrete, valence) + ``train/``, ``test1/``, ...

Layout verified against the organisers' MERTools dataset script; labels neutral, angry, happy, sad,
worried, surprise. Videos are found as ``<name>.*`` in the split's folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omnibench.data.indexers.common import (
    VIDEO_EXTS,
    DatasetLayoutError,
    IndexContext,
    check_root,
    column,
    files_by_stem,
    label_from_code,
    no_fold,
    nothing_found,
    read_rows,
)
from omnibench.data.manifest import Clip

_MER_SPLITS = ("train", "test1", "test2", "test3")


def index_mer2023(
    root, fold: int | None = None, *, splits: Sequence[str] | str | None = None, ctx: IndexContext
) -> list[Clip]:
    """MER2023: each ``<split>-label.csv`` (name, discrete, valence) with videos in ``<split>/``.

    Args:
        splits: which label files to read (default: every one of train, test1, test2, test3 present).
    """
    no_fold("mer2023", fold)
    root = Path(root)
    check_root("mer2023", root)
    if isinstance(splits, str):
        splits = [s.strip() for s in splits.split(",") if s.strip()]
    wanted = list(splits) if splits else list(_MER_SPLITS)
    clips = []
    found_any = False
    for split in wanted:
        path = root / f"{split}-label.csv"
        if not path.is_file():
            if splits:
                raise nothing_found("mer2023", root, f"no {path.name}")
            continue
        found_any = True
        vdir = next(
            (root / d for d in (split, f"{split}_video", "video", "videos") if (root / d).is_dir()), None
        )
        videos = files_by_stem(vdir, VIDEO_EXTS) if vdir else {}
        if vdir is None:
            ctx.note(f"no video folder {root / split}")
        rows = read_rows(path)
        if not rows:
            continue
        header = rows[0][1]
        name_col = column(header, ("name", "names"), path)
        label_col = column(header, ("discrete", "emotion", "label"), path)
        low = [h.lower() for h in header]
        val_col = low.index("valence") if "valence" in low else None
        for lineno, cells in rows[1:]:
            where = f"{path}:{lineno}"
            name = cells[name_col]
            label = label_from_code("mer2023", cells[label_col], where)
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
        raise nothing_found("mer2023", root, "no train-label.csv / test{1,2,3}-label.csv")
    return clips
