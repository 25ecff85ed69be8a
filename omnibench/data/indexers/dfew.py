"""DFEW: the fold's split CSVs (``EmoLabel_DataSplit``) and the clips they name (``Clip/original``).

Layout, verified against DFEW's release README (which also spells the folders ``(single_labeled)``;
both spellings are accepted) and public loaders that read ``df.video_name`` / ``df.label``:
``EmoLabel_DataSplit/train(single-labeled)/set_N.csv`` and ``test(single-labeled)/set_N.csv``,
header ``video_name,label``, labels 1..7 = happy, sad, neutral, angry, surprise, disgust, fear.
``Clip/original/`` holds the 16,372 source mp4 clips (``NNNNN.mp4``; some copies use unpadded
``1.mp4`` or ``part_K/`` sub-folders, so clips are matched by the integer in the file name);
``Clip/clip_224x224_avi/NNNNN.avi`` is accepted; the frame folders are not videos and not indexed.

``fold="all"`` indexes the five folds into one list: every clip then appears once per fold, with
the fold in its split name and id (``train@fold3``, ``dfew-00001@fold3``) and in ``meta["fold"]``,
so a study over folds selects ``dfew/test@fold3`` after a merge.
"""

from __future__ import annotations

from pathlib import Path

from omnibench.data.indexers.common import (
    VIDEO_EXTS,
    DatasetLayoutError,
    IndexContext,
    check_root,
    codes,
    column,
    files_by_stem,
    fold_suffix,
    folds,
    label_from_code,
    nothing_found,
    pick_dir,
    read_rows,
)
from omnibench.data.manifest import Clip

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


def index_dfew(
    root, fold: int | str | None = None, *, video_dir: str | None = None, ctx: IndexContext
) -> list[Clip]:
    """DFEW fold ``fold``: its train CSV -> split "train", its test CSV -> split "test" (meta fold).

    Args:
        fold: 1..5 (default 1, noted in the report) or ``"all"``: every fold with split files, each
            clip once per fold with ``@foldN`` in its split name and id.
        video_dir: folder of the video files (default: the first of ``Clip/original``, ``videos``,
            ``Clip/clip_224x224_avi`` that exists; only the original mp4 clips carry audio).
    """
    root = Path(root)
    check_root("dfew", root)
    wanted = folds("dfew", fold, ctx)
    all_folds = len(wanted) > 1
    files = {(k, s): _dfew_split_file(root, s, k) for k in wanted for s in ("train", "test")}
    if not any(files.values()):
        which = "N" if all_folds else str(wanted[0])
        raise nothing_found(
            "dfew", root, f"no EmoLabel_DataSplit/{{train,test}}(single-labeled)/set_{which}.csv"
        )
    vdir = pick_dir(root, video_dir, _DFEW_VIDEO_DIRS)
    if vdir is None:
        frames = [d for d in _DFEW_FRAME_DIRS if (root / d).is_dir()]
        hint = f" (found only frame folders {frames}, which are not indexed)" if frames else ""
        raise nothing_found(
            "dfew", root, f"no video folder among {list(_DFEW_VIDEO_DIRS)}{hint}; pass video_dir="
        )
    videos: dict[int, Path] = {}
    for stem, path in files_by_stem(vdir, VIDEO_EXTS).items():
        if stem.isdigit():
            videos.setdefault(int(stem), path)
    ctx.note(f"videos from {vdir}")
    table = codes("dfew")
    clips = []
    for (k, split), path in files.items():
        if path is None:
            ctx.note(f"no {split} file for fold {k}")
            continue
        suffix = fold_suffix(k, all_folds)
        rows = read_rows(path)
        name_col, label_col, start = 0, 1, 0
        if rows and not rows[0][1][0].isdigit():  # header row
            header = rows[0][1]
            name_col = column(header, ("video_name", "clip_name", "name", "video"), path)
            label_col = column(header, ("label", "emotion"), path)
            start = 1
        for lineno, cells in rows[start:]:
            where = f"{path}:{lineno}"
            if len(cells) <= max(name_col, label_col) or not cells[name_col].isdigit():
                raise DatasetLayoutError(f"{where}: expected '<clip number>,<label 1..7>', got {cells}")
            num = int(cells[name_col])
            label = label_from_code("dfew", cells[label_col], where, table)
            video = videos.get(num)
            if video is None:
                ctx.missing(f"{vdir}/{num:05d}.*")
                continue
            clips.append(
                Clip(
                    id=f"dfew-{num:05d}{suffix}",
                    video=str(video),
                    label=label,
                    split=f"{split}{suffix}",
                    dataset="dfew",
                    meta={"fold": k, "clip": f"{num:05d}"},
                )
            )
    return clips
