"""Several sources in one manifest: DFEW train + MAFW train for GRPO, each test set, an EMER cold start.

Why: each indexer writes its own split names, and DFEW and MAFW both call theirs ``test``; merged
as they are, their results would overwrite each other. :func:`merge_sources` qualifies every split
by its clips' dataset (``dfew/train``, ``dfew/test``, ``mafw/test``, ``ravdess/test``,
``emer/cold_start``; with ``fold="all"``: ``dfew/test@fold3``), so every later stage can name
exactly the clips it means, and ``read_manifest(path, split=[...])`` takes several of them.

A source is one of

* a mapping ``{"dataset": "dfew", "root": "/data/DFEW", "fold": 1, ...}``: an indexer (see
  :data:`~omnibench.data.indexers.INDEXERS`) with its root and options (``fold``, ``channel``,
  ``split``, ``open_vocab``, ``on_missing``, ...); ``name`` renames the clips' dataset where the
  indexer allows it (``{"dataset": "r1omni", "root": "emer.json", "name": "emer"}``);
* a path to an existing manifest (``.jsonl``), already merged or not;
* a list of :class:`~omnibench.data.manifest.Clip` (an index result).

Split names that already hold a ``/`` are kept (merging a merged manifest changes nothing). Clip ids
stay as they are unless they collide with an earlier source's: an identical clip (same media,
label and qualified split) is dropped and counted, a different one is renamed ``<dataset>/<id>``
(or ``<id>@src<k>``) with its old id in ``meta["source_id"]``; every rename and drop is a note in the
source's :class:`~omnibench.data.indexers.IndexReport`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omnibench.data.indexers.common import IndexReport
from omnibench.data.indexers.registry import dataset_key, index_with_report, warn_or_log
from omnibench.data.manifest import Clip, read_manifest

#: What :func:`merge_sources` accepts per source.
Source = Mapping[str, Any] | str | os.PathLike | Iterable[Clip]

#: Indexers whose clips' dataset name may be chosen (their option is called ``dataset``).
_RENAMABLE = ("r1omni",)


def qualify_split(dataset: str, split: str) -> str:
    """``"dfew", "test"`` -> ``"dfew/test"``; a split already holding a ``/`` is kept as it is."""
    return split if "/" in split else f"{dataset}/{split}"


def _load(source: Source, index: int, on_missing: str) -> tuple[list[Clip], IndexReport]:
    if isinstance(source, Mapping):
        spec = dict(source)
        for key in ("dataset", "root"):
            if not spec.get(key):
                raise ValueError(
                    f"source {index + 1}: {dict(source)} lacks {key!r}; a source is "
                    "{'dataset': 'dfew', 'root': '/path/to/DFEW', 'fold': 1, ...}"
                )
        dataset, root = dataset_key(spec.pop("dataset")), spec.pop("root")
        fold = spec.pop("fold", None)
        name = spec.pop("name", None)
        if name is not None and name != dataset:
            if dataset not in _RENAMABLE:
                raise ValueError(
                    f"source {index + 1}: 'name' applies to {', '.join(_RENAMABLE)} only ({dataset} clips keep "
                    f"their dataset, whose card gives their label set)"
                )
            spec["dataset"] = name
        return index_with_report(dataset, root, fold, on_missing=spec.pop("on_missing", on_missing), **spec)
    if isinstance(source, (str, os.PathLike)):
        clips = read_manifest(source)
        return clips, IndexReport("manifest", str(Path(source)), indexed=len(clips))
    clips = list(source)
    if not all(isinstance(c, Clip) for c in clips):
        raise TypeError(
            f"source {index + 1}: expected a mapping {{dataset, root, ...}}, a manifest path or a list of Clip, "
            f"got {type(source).__name__}"
        )
    return clips, IndexReport("clips", f"source {index + 1}", indexed=len(clips))


def merge_with_reports(
    sources: Iterable[Source], *, on_missing: str = "skip"
) -> tuple[list[Clip], list[IndexReport]]:
    """Like :func:`merge_sources`, also returning one :class:`IndexReport` per source (in order)."""
    merged: list[Clip] = []
    reports: list[IndexReport] = []
    taken: dict[str, Clip] = {}
    for i, source in enumerate(sources):
        clips, report = _load(source, i, on_missing)
        renamed = dropped = 0
        for clip in clips:
            new = dataclasses.replace(
                clip, split=qualify_split(clip.dataset, clip.split), meta=dict(clip.meta)
            )
            old = taken.get(new.id)
            if old is not None:
                if (old.video, old.audio, old.label, old.split) == (
                    new.video,
                    new.audio,
                    new.label,
                    new.split,
                ):
                    dropped += 1
                    continue
                candidates = [f"{clip.dataset}/{clip.id}", f"{clip.id}@src{i + 1}"]
                cid = next((c for c in candidates if c not in taken), None)
                k = 2
                while cid is None or cid in taken:
                    cid, k = f"{clip.id}@src{i + 1}.{k}", k + 1
                new.meta.setdefault("source_id", clip.id)
                new.id = cid
                renamed += 1
            taken[new.id] = new
            merged.append(new)
        if renamed:
            report.notes.append(
                f"{renamed} clip ids collided with earlier sources' and were renamed (meta source_id)"
            )
        if dropped:
            report.notes.append(f"{dropped} clips identical to earlier sources' were dropped")
        reports.append(report)
    if not merged:
        raise ValueError("merge: no sources, or no clips in them")
    return merged, reports


def merge_sources(sources: Iterable[Source], *, on_missing: str = "skip") -> list[Clip]:
    """Merge several sources (index specs, manifests, clip lists) into one list with qualified splits.

    Each source's report is a warning when it has missing media or skipped records, a log line otherwise.
    """
    clips, reports = merge_with_reports(sources, on_missing=on_missing)
    for report in reports:
        warn_or_log(report, stacklevel=3)
    return clips


def split_counts(clips: Iterable[Clip]) -> dict[str, int]:
    """Clips per split, in first-seen order."""
    counts: dict[str, int] = {}
    for c in clips:
        counts[c.split] = counts.get(c.split, 0) + 1
    return counts
