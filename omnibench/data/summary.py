"""Looking at a manifest's clips: counts, one example per class, durations, importing a real manifest,
merging several datasets into one, and what each split is (its dataset, label set, fold, in or out of
the training distribution).

Why here: these are what ``01_data`` shows of any manifest (SynthEmo or one written by
``omnibench index``) and what the later stages need to know of a split; they need only the data layer
(clips, the indexers, the data cards' label sets, the media container), so they live in it rather
than in the pipeline runner, and work outside a run too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from omnibench.data.manifest import Clip, read_manifest, write_manifest
from omnibench.labels import DFEW7, all_cards, label_set

__all__ = [
    "clip_durations", "count_table", "distribution", "import_manifest", "index_sources", "label_order",
    "label_union", "one_per_class", "resolve_sources", "split_dataset", "split_info",
]

#: Row order of :func:`count_table` for the splits the pipeline knows; any other split follows, by name.
SPLIT_ORDER = ("train", "cold_start", "test_id", "test_actors", "test_ood")


def import_manifest(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy a real dataset's manifest to ``dest`` (a run's ``run.manifest``), validated, with media
    paths re-rooted so they still point at the dataset's files (which are not copied)."""
    clips = read_manifest(src)  # validates labels and media; paths come back absolute
    if not clips:
        raise ValueError(f"manifest {src} holds no clips; index the dataset again (omnibench index)")
    return write_manifest(clips, dest)


def resolve_sources(sources: Sequence[Mapping], roots: Mapping[str, str] | None = None) -> list[dict]:
    """Each source spec with its ``root`` filled from ``roots``: a source without ``root`` takes
    ``roots[<its dataset>]``, a ``root`` that is a key of ``roots`` takes that entry (so a recipe lists
    its sources once and ``-o data.roots.dfew=/data/DFEW`` points them at the data). A source whose root
    is still unknown is an error naming the key to set."""
    roots = dict(roots or {})
    out, missing = [], []
    for i, src in enumerate(sources):
        if not isinstance(src, Mapping) or "dataset" not in src:
            raise ValueError(f"source {i + 1}: {src!r} is not a mapping with a 'dataset' key "
                             "(e.g. {dataset: dfew, fold: 1})")
        spec = dict(src)
        root = spec.get("root")
        if root is None or root == "":
            root = roots.get(spec["dataset"])
        elif str(root) in roots:
            root = roots[str(root)]
        if root is None or root == "":
            missing.append(str(spec.get("root") or spec["dataset"]))
            continue
        spec["root"] = str(Path(str(root)).expanduser())
        out.append(spec)
    if missing:
        raise ValueError(f"no root folder for the source(s) {', '.join(missing)}; set them with "
                         + " ".join(f"-o data.roots.{k}=PATH" for k in missing)
                         + f" (roots given: {sorted(k for k, v in roots.items() if v)})")
    return out


def index_sources(sources: Sequence[Mapping], dest: str | os.PathLike, roots: Mapping[str, str] | None = None,
                  on_missing: str = "skip") -> tuple[Path, list[dict]]:
    """Index every source (:func:`resolve_sources`) and merge them into one manifest at ``dest`` with
    split names qualified by dataset (:func:`omnibench.data.indexers.merge_with_reports`: ``dfew/train``,
    ``mafw/test``, ``emer/cold_start``, ...). Returns the manifest path and one record per source
    (dataset, root, fold, options, clips indexed, missing media, notes), for ``metrics.json``."""
    from omnibench.data.indexers import merge_with_reports

    specs = resolve_sources(sources, roots)
    clips, reports = merge_with_reports(specs, on_missing=on_missing)
    records = []
    for spec, rep in zip(specs, reports):
        opts = {k: v for k, v in spec.items() if k not in ("dataset", "root", "fold")}
        records.append({"dataset": spec["dataset"], "root": spec["root"], "fold": spec.get("fold"), "options": opts,
                        "indexed": rep.indexed, "missing": rep.missing, "summary": rep.summary()})
    return write_manifest(clips, dest), records


def split_dataset(split: str, clips: Sequence[Clip] = ()) -> str:
    """The dataset of a split: the qualifier of ``dfew/test``, else the (one) dataset of its clips."""
    if "/" in split:
        return split.split("/", 1)[0]
    names = list(dict.fromkeys(c.dataset for c in clips if c.split == split or not split))
    return names[0] if len(names) == 1 else "+".join(map(str, names)) or "?"


def distribution(split: str, dataset: str, trained: Sequence[str]) -> str:
    """``"in"`` when ``dataset`` was trained on, else ``"out"``; SynthEmo's own splits are what they
    were built to be (``test_ood``: out of distribution by construction, the others in)."""
    if "/" not in split and dataset == "synthemo":
        return "out" if split.startswith("test_ood") else "in"
    return "in" if dataset in set(trained) else "out"


def split_info(clips: Sequence[Clip], splits: Sequence[str], training_splits: Sequence[str] = (),
               default_labels: Sequence[str] = DFEW7) -> dict[str, dict]:
    """Split -> ``{dataset, labels, n_labels, fold, distribution}``: what a table column is. ``labels``
    is the split's own label set (its dataset's card; :func:`omnibench.labels.labels_for`), ``fold`` the
    folds its clips come from (``meta["fold"]``; None when the dataset has none), ``distribution`` in or
    out of the training data (:func:`distribution`, over the datasets of ``training_splits``' clips)."""
    from omnibench.labels import labels_for

    trained = list(dict.fromkeys(c.dataset for c in clips if c.split in set(training_splits)))
    out = {}
    for s in splits:
        part = [c for c in clips if c.split == s]
        dataset = split_dataset(s, part)
        labels = labels_for(part, default=default_labels) if part else tuple(default_labels)
        folds = sorted({(c.meta or {}).get("fold") for c in part} - {None}, key=str)
        out[s] = {"dataset": dataset, "labels": list(labels), "n_labels": len(labels),
                  "fold": (folds[0] if len(folds) == 1 else folds) if folds else None,
                  "distribution": distribution(s, dataset, trained), "n_clips": len(part)}
    return out


def label_union(clips: Sequence[Clip], base: Sequence[str] = ()) -> tuple[str, ...]:
    """The output vocabulary of a model trained on ``clips``: ``base`` (the starting model's labels)
    first, then each dataset's card labels (datasets in first-seen order), then any label of a clip
    whose dataset has no card (open-vocabulary EMER answers), in first-seen order."""
    out = list(dict.fromkeys(base))
    cards = all_cards()
    for dataset in dict.fromkeys(c.dataset for c in clips):
        if dataset in cards:
            out += [lab for lab in label_set(dataset) if lab not in out]
    out += [c.label for c in clips if c.label and c.label not in out and c.dataset not in cards]
    return tuple(dict.fromkeys(out))


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


def one_per_class(clips: Sequence[Clip], split: str | None = None, prefer_condition: str = "both",
                  store=None) -> dict:
    """Label -> one example clip (the first of ``split``, preferring ``prefer_condition``), labels in
    the order of the clips' label sets (:func:`label_order`). With a :class:`~omnibench.data.media.MediaStore`
    (``on_error="skip"``) as ``store``, a clip whose media do not decode is passed over for the label's
    next one (and recorded in ``store.skipped``)."""
    pool = [c for c in clips if c.label and (split is None or c.split == split)]
    if not pool:
        raise ValueError(f"no labelled clips in split {split!r}")
    out: dict = {}
    for c in sorted(pool, key=lambda c: (c.meta or {}).get("condition") != prefer_condition):
        if c.label in out or (store is not None and not store.usable([c])):
            continue
        out[c.label] = c
    return {lab: out[lab] for lab in label_order(pool) if lab in out}


def clip_durations(clips: Sequence[Clip], on_error: str = "error") -> list[float]:
    """Duration in seconds of each clip's video (or audio) file, read from the container (PyAV).

    ``on_error="skip"``: a file PyAV cannot open gets NaN (the data stage lists it among the skipped
    clips) instead of an error."""
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
            if on_error == "skip":
                out.append(float("nan"))
                continue
            raise RuntimeError(f"cannot read the duration of {path} (clip {c.id}): {e}") from e
    return out
