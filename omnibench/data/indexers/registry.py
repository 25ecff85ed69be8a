"""The registry of indexers and the two entry points that run one: :func:`index_with_report`, :func:`index_dataset`.

A module of its own (re-exported by the package) so that :mod:`.merge` and :mod:`.cli` can import it
without importing the package's ``__init__`` half-way through its own initialisation.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path

from omnibench.data.indexers.common import DatasetLayoutError, IndexContext, IndexReport, layout
from omnibench.data.indexers.cremad import index_cremad
from omnibench.data.indexers.dfew import index_dfew
from omnibench.data.indexers.mafw import index_mafw
from omnibench.data.indexers.manifest import index_manifest
from omnibench.data.indexers.meld import index_meld
from omnibench.data.indexers.mer2023 import index_mer2023
from omnibench.data.indexers.r1omni import index_r1omni
from omnibench.data.indexers.ravdess import index_ravdess
from omnibench.data.manifest import Clip

log = logging.getLogger("omnibench.data.indexers")

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


def dataset_key(name: str) -> str:
    """The registry key of ``name`` ("CREMA-D" -> "cremad"); KeyError listing the known ones."""
    key = str(name).lower().replace("-", "").replace("_", "")
    if key not in INDEXERS:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(INDEXERS)}")
    return key


def index_with_report(
    name: str, root, fold: int | str | None = None, *, on_missing: str = "skip", **opts
) -> tuple[list[Clip], IndexReport]:
    """Like :func:`index_dataset`, also returning the :class:`IndexReport`."""
    key = dataset_key(name)
    ctx = IndexContext(key, Path(root), on_missing)
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
            f"{key}: nothing indexed under {root}\n{ctx.report.summary()}\nexpected layout:\n{layout(key)}"
        )
    return clips, ctx.report


def warn_or_log(report: IndexReport, stacklevel: int = 3) -> None:
    """A warning with the report's summary when media are missing or records were skipped, else a log line."""
    if report.missing or report.skipped:
        warnings.warn(report.summary(), stacklevel=stacklevel)
    else:
        log.info(report.summary())


def index_dataset(name: str, root, fold: int | str | None = None, **opts) -> list[Clip]:
    """Index a dataset folder into clips.

    Args:
        name: one of :data:`INDEXERS` (dfew, mafw, ravdess, cremad, mer2023, meld, r1omni, manifest).
        root: the dataset folder (for r1omni/manifest: the JSON/JSONL file).
        fold: DFEW/MAFW fold 1..5 (default 1, noted in the report) or ``"all"``; an error for other datasets.
        **opts: ``on_missing`` ("skip" counts and reports missing media, "error" raises) and the
            indexer's own options (see ``index_<name>``).

    Missing media and skipped records are reported as a warning with :meth:`IndexReport.summary`.
    """
    clips, report = index_with_report(name, root, fold, **opts)
    warn_or_log(report)
    return clips
