"""An existing omnibench manifest as an indexer source (to export it as R1-Omni JSON, or to merge it)."""

from __future__ import annotations

from omnibench.data.indexers.common import IndexContext, no_fold
from omnibench.data.manifest import Clip, read_manifest


def index_manifest(root, fold: int | None = None, *, ctx: IndexContext) -> list[Clip]:
    """An existing omnibench manifest (``root`` is the .jsonl file), validated by read_manifest."""
    no_fold("manifest", fold)
    return read_manifest(root)
