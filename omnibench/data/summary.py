"""Looking at a manifest's clips: counts, one example per class, durations, importing a real manifest.

Why here: these are what ``01_data`` shows of any manifest (SynthEmo or one written by
``omnibench index``); they need only the data layer (clips, the data cards' label sets, the media
container), so they live in it rather than in the pipeline runner, and work outside a run too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from omnibench.data.manifest import Clip, read_manifest, write_manifest
from omnibench.labels import label_set

__all__ = ["clip_durations", "count_table", "import_manifest", "label_order", "one_per_class"]

#: Row order of :func:`count_table` for the splits the pipeline knows; any other split follows, by name.
SPLIT_ORDER = ("train", "cold_start", "test_id", "test_actors", "test_ood")


def import_manifest(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy a real dataset's manifest to ``dest`` (a run's ``run.manifest``), validated, with media
    paths re-rooted so they still point at the dataset's files (which are not copied)."""
    clips = read_manifest(src)  # validates labels and media; paths come back absolute
    if not clips:
        raise ValueError(f"manifest {src} holds no clips; index the dataset again (omnibench index)")
    return write_manifest(clips, dest)


def label_order(clips: Sequence[Clip]) -> list[str]:
    """The labels of ``clips``, ordered by their datasets' label sets (data cards; datasets in first-seen
    order), then any label no card lists, by name."""
    present = {c.label for c in clips if c.label}
    order: list[str] = []
    for dataset in dict.fromkeys(c.dataset for c in clips if c.dataset):
        try:
            order += [lab for lab in label_set(dataset) if lab in present and lab not in order]
        except KeyError:  # a dataset without a data card: its labels are ordered by name below
            continue
    return order + sorted(present - set(order))


def count_table(clips: Sequence[Clip]):
    """Clip counts: rows (split, condition), columns labels (in first-seen order) + total.

    Works for any manifest; clips without a SynthEmo ``condition`` are counted under ``-``."""
    import pandas as pd

    df = pd.DataFrame({
        "split": [c.split for c in clips],
        "condition": [str((c.meta or {}).get("condition") or "-") for c in clips],
        "label": [c.label or "<none>" for c in clips],
    })
    labels = list(dict.fromkeys(df["label"]))
    table = pd.crosstab([df["split"], df["condition"]], df["label"]).reindex(columns=labels, fill_value=0)
    split_order = {s: i for i, s in enumerate(SPLIT_ORDER)}
    table = table.sort_index(key=lambda idx: idx.map(lambda v: (split_order.get(v, len(split_order)), str(v))))
    table["total"] = table.sum(axis=1)
    return table


def one_per_class(clips: Sequence[Clip], split: str | None = None, prefer_condition: str = "both") -> dict:
    """Label -> one example clip (the first of ``split``, preferring ``prefer_condition``), labels in
    the order of the clips' label sets (:func:`label_order`)."""
    pool = [c for c in clips if c.label and (split is None or c.split == split)]
    if not pool:
        raise ValueError(f"no labelled clips in split {split!r}")
    out: dict = {}
    for c in sorted(pool, key=lambda c: (c.meta or {}).get("condition") != prefer_condition):
        out.setdefault(c.label, c)
    return {lab: out[lab] for lab in label_order(pool)}


def clip_durations(clips: Sequence[Clip]) -> list[float]:
    """Duration in seconds of each clip's video (or audio) file, read from the container (PyAV)."""
    import av

    out = []
    for c in clips:
        path = c.video or c.audio
        try:
            with av.open(path) as f:
                if f.duration is not None:
                    out.append(f.duration / 1e6)
                    continue
                st = (f.streams.video or f.streams.audio)[0]
                out.append(float(st.duration * st.time_base) if st.duration else float("nan"))
        except Exception as e:
            raise RuntimeError(f"cannot read the duration of {path} (clip {c.id}): {e}") from e
    return out
