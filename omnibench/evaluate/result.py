"""Per-clip predictions and their metrics (:class:`EvalResult`), on disk as predictions JSONL, and
predictions made elsewhere (another model, another codebase) read under the same rules.

:func:`read_external_predictions` takes a JSONL or CSV of clip ids with completions (``completion``,
``output``, ``response``) or bare labels (``prediction``, ``label``, ``answer``) and scores them against a
manifest's gold labels through the same answer resolution (:mod:`omnibench.answers`) and
:func:`~omnibench.evaluate.metrics.metrics` as omnibench's own evaluation, so R1-Omni's released
checkpoint or an API model can stand in the same table. A clip of the split without a prediction counts
as unparseable (wrong), an id not in the split is skipped; both are counted and reported.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from omnibench.answers import resolve, resolve_label
from omnibench.evaluate.metrics import metrics, summary_cell
from omnibench.io import read_jsonl, write_jsonl
from omnibench.labels import labels_for

#: Column names read as a full completion (parsed for ``<answer>``) / as a bare label.
COMPLETION_COLUMNS: tuple[str, ...] = ("completion", "output", "response")
LABEL_COLUMNS: tuple[str, ...] = ("prediction", "label", "answer")


@dataclass
class EvalResult:
    """Per-clip predictions (parallel lists) and their metrics, for one checkpoint x split x modality set."""

    ids: list[str]
    gold: list[str | None]
    prediction: list[str | None]
    completion: list[str]
    status: list[str]
    labels: tuple[str, ...]
    modalities: str = "video,audio"
    checkpoint: str = ""
    split: str = ""
    mode: str = "generate"
    metrics: dict = field(default_factory=dict)
    seconds: float = float("nan")
    extra: dict = field(default_factory=dict)  # counts beside the metrics (e.g. external predictions' n_missing)

    @property
    def parsed(self) -> list[bool]:
        return [s != "unparseable" for s in self.status]

    @property
    def correct(self) -> np.ndarray:
        return np.array([p is not None and p == g for p, g in zip(self.prediction, self.gold)], dtype=bool)

    def summary(self) -> dict:
        """The metrics.json "eval" cell for this result."""
        return summary_cell(self.metrics)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(
            {
                "id": self.ids,
                "gold": self.gold,
                "prediction": self.prediction,
                "correct": self.correct,
                "status": self.status,
                "parsed": self.parsed,
                "completion": self.completion,
                "modalities": self.modalities,
                "checkpoint": self.checkpoint,
                "split": self.split,
            }
        )

    def records(self) -> list[dict]:
        return [
            {
                "id": i,
                "gold": g,
                "prediction": p,
                "completion": c,
                "parsed": s != "unparseable",
                "status": s,
                "modalities": self.modalities,
                "checkpoint": self.checkpoint,
                "split": self.split,
                "labels": list(self.labels),
            }
            for i, g, p, c, s in zip(self.ids, self.gold, self.prediction, self.completion, self.status)
        ]

    def write_predictions(self, path: str | os.PathLike) -> Path:
        """Predictions as JSONL (id, gold, prediction, completion, parsed, status, modalities, checkpoint, split,
        labels: the label set the answers were resolved against, so a later reader scores them the same way)."""
        return write_jsonl(path, self.records())

    @classmethod
    def from_records(cls, records: Sequence[Mapping], labels: Sequence[str] | None = None, n_boot: int = 1000,
                     seed: int = 0):
        """Rebuild a result (and its metrics) from predictions JSONL records, scored against ``labels`` or,
        when None, the label set the records carry (an error when they carry none)."""
        r0 = records[0] if records else {}
        if labels is None:
            if not r0.get("labels"):
                raise ValueError("these predictions do not record the label set they were resolved against "
                                 "(written before it was recorded): pass labels=... (e.g. label_set('dfew'))")
            labels = r0["labels"]
        labels = tuple(labels)
        res = cls(
            ids=[r["id"] for r in records],
            gold=[r["gold"] for r in records],
            prediction=[r["prediction"] for r in records],
            completion=[r.get("completion", "") for r in records],
            status=[r.get("status") or ("ok" if r.get("parsed") else "unparseable") for r in records],
            labels=labels,
            modalities=r0.get("modalities", "video,audio"),
            checkpoint=r0.get("checkpoint", ""),
            split=r0.get("split", ""),
        )
        res.metrics = metrics(res.gold, res.prediction, labels, n_boot=n_boot, seed=seed, status=res.status)
        return res


def read_predictions(path: str | os.PathLike, labels: Sequence[str] | None = None, n_boot: int = 1000,
                     seed: int = 0):
    """Load a predictions JSONL written by :meth:`EvalResult.write_predictions` (scored against the label
    set it records unless ``labels`` is given)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file {path} not found (write one with `omnibench eval`)")
    return EvalResult.from_records(read_jsonl(path), labels=labels, n_boot=n_boot, seed=seed)




def _read_table(path: Path) -> list[dict]:
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))
    return read_jsonl(path)


def read_external_predictions(path: str | os.PathLike, clips: Sequence, labels: Sequence[str] | None = None,
                              checkpoint: str | None = None, split: str | None = None, n_boot: int = 1000,
                              seed: int = 0, split_ids: set[str] | None = None) -> EvalResult:
    """Score a predictions file made elsewhere against ``clips`` (their gold labels), as :class:`EvalResult`.

    ``labels``: the label set to resolve against (None: the clips' dataset's, see
    :func:`omnibench.labels.labels_for`). The result's ``extra`` holds ``n_missing`` (clips
    without a prediction: unparseable, wrong) and ``n_unknown_ids`` (rows whose id is not a clip of the
    split: skipped; ``split_ids`` names the whole split when ``clips`` is only a part of it, so rows of
    the rest are not counted as unknown)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file {path} not found")
    rows = _read_table(path)
    if not rows:
        raise ValueError(f"{path}: no predictions in it")
    columns = set(rows[0])
    if "id" not in columns:
        raise ValueError(f"{path}: needs an 'id' column (clip ids of the manifest); found {sorted(columns)}")
    text_col = next((c for c in COMPLETION_COLUMNS if c in columns), None)
    label_col = next((c for c in LABEL_COLUMNS if c in columns), None)
    if text_col is None and label_col is None:
        raise ValueError(f"{path}: needs a completion column ({', '.join(COMPLETION_COLUMNS)}) or a label column "
                         f"({', '.join(LABEL_COLUMNS)}); found {sorted(columns)}")
    clips = list(clips)
    labels = tuple(labels) if labels is not None else labels_for(clips)
    by_id: dict[str, dict] = {}
    for n, row in enumerate(rows, 1):
        cid = str(row.get("id", "")).strip()
        if cid in by_id:
            raise ValueError(f"{path}: clip id {cid!r} appears twice (row {n})")
        by_id[cid] = row
    wanted = {c.id for c in clips}
    if not wanted & set(by_id):
        raise ValueError(f"{path}: none of its {len(by_id)} ids is a clip of the split (e.g. {sorted(by_id)[:3]} vs "
                         f"{sorted(wanted)[:3]}); check the manifest and --split")
    preds, completions, status = [], [], []
    for c in clips:
        row = by_id.get(c.id)
        if row is None:
            r, text = resolve_label(None, labels), ""
        elif text_col is not None and (row.get(text_col) or "").strip():
            text = str(row[text_col])
            r = resolve(text, labels)
        else:
            text = str(row.get(label_col) or "") if label_col else ""
            r = resolve_label(text, labels)
        preds.append(r.label)
        status.append(r.status)
        completions.append(text)
    res = EvalResult(
        ids=[c.id for c in clips], gold=[c.label for c in clips], prediction=preds, completion=completions,
        status=status, labels=labels, checkpoint=checkpoint or path.stem,
        split=split if split is not None else (clips[0].split if clips else ""), mode="external",
    )
    res.metrics = metrics(res.gold, res.prediction, labels, n_boot=n_boot, seed=seed, status=res.status)
    res.extra = {"n_missing": len(wanted - set(by_id)), "n_unknown_ids": len(set(by_id) - (split_ids or wanted)),
                 "source": str(path)}
    return res
