"""Indexers: turn each real dataset's native folder into :class:`~omnibench.data.manifest.Clip` records.

Nothing is downloaded: point an indexer at a folder you obtained from the dataset's authors (see
``data_cards/<name>.md``, key ``obtain``) and it writes a manifest that the rest of omnibench reads::

    omnibench index --dataset dfew --root /data/DFEW --fold 1 --out manifests/dfew_fd1.jsonl
    omnibench index --merge manifests/dfew_fd1.jsonl manifests/mafw_fd1.jsonl --out manifests/all.jsonl

or, from Python, ``clips = index_dataset("dfew", "/data/DFEW", fold=1)`` and
``merge_sources([{"dataset": "dfew", "root": "/data/DFEW", "fold": 1}, {"dataset": "ravdess", ...}])``.

One module per dataset (:mod:`.dfew`, :mod:`.mafw`, :mod:`.ravdess`, :mod:`.cremad`, :mod:`.mer2023`,
:mod:`.meld`, :mod:`.r1omni` import and export, :mod:`.manifest`), each with its layout and how it was
checked in its docstring; :mod:`.common` holds what they share (errors, :class:`IndexReport`, label
codes, file lookup, CSV reading), :mod:`.registry` the table of indexers and the entry points,
:mod:`.merge` several sources in one manifest with split names qualified by dataset, :mod:`.cli`
``omnibench index``. Every indexer

* maps the dataset's native label codes to canonical labels — numeric or abbreviated codes come
  from the card's ``codes`` table, words go through :func:`omnibench.labels.normalize_label` (the
  cards' ``aliases``); an unknown code is an error naming the file and line (the R1-Omni importer
  counts labels outside the cards instead, see :mod:`.r1omni`);
* looks up every referenced media file; files that are not there are counted and reported
  (:class:`IndexReport`: N indexed, M missing, the first few paths) and the clip is left out
  (``on_missing="error"`` raises instead);
* raises :class:`DatasetLayoutError` naming the root and the expected layout when nothing is found.

No dataset was available when the layouts were checked (public code and the datasets' own READMEs),
so the tests build fixtures in these layouts with real file names and tiny generated media
(``tests/fixtures_layouts.py``).
"""

from __future__ import annotations

from omnibench.data.indexers.cli import add_index_args, cli_index
from omnibench.data.indexers.common import (
    ALL_FOLDS,
    AUDIO_EXTS,
    LAYOUTS,
    VIDEO_EXTS,
    DatasetLayoutError,
    IndexContext,
    IndexReport,
    LabelCodeError,
)
from omnibench.data.indexers.cremad import index_cremad
from omnibench.data.indexers.dfew import index_dfew
from omnibench.data.indexers.mafw import index_mafw
from omnibench.data.indexers.manifest import index_manifest
from omnibench.data.indexers.meld import index_meld
from omnibench.data.indexers.mer2023 import index_mer2023
from omnibench.data.indexers.merge import (
    Source,
    merge_sources,
    merge_with_reports,
    qualify_split,
    split_counts,
)
from omnibench.data.indexers.r1omni import (
    R1OMNI_MEDIA_TAGS,
    R1OMNI_PROMPT,
    R1OMNI_RL_PROMPT,
    export_r1omni,
    index_r1omni,
)
from omnibench.data.indexers.ravdess import index_ravdess
from omnibench.data.indexers.registry import INDEXERS, dataset_key, index_dataset, index_with_report

__all__ = [
    "ALL_FOLDS",
    "AUDIO_EXTS",
    "INDEXERS",
    "LAYOUTS",
    "R1OMNI_MEDIA_TAGS",
    "R1OMNI_PROMPT",
    "R1OMNI_RL_PROMPT",
    "VIDEO_EXTS",
    "DatasetLayoutError",
    "IndexContext",
    "IndexReport",
    "LabelCodeError",
    "Source",
    "add_index_args",
    "cli_index",
    "dataset_key",
    "export_r1omni",
    "index_cremad",
    "index_dataset",
    "index_dfew",
    "index_mafw",
    "index_manifest",
    "index_meld",
    "index_mer2023",
    "index_r1omni",
    "index_ravdess",
    "index_with_report",
    "merge_sources",
    "merge_with_reports",
    "qualify_split",
    "split_counts",
]
