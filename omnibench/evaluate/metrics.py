"""Scoring predictions: WAR / UAR with bootstrap CIs, per-class recall, confusion, the table cells.

Pure functions over labels (no model): evaluation, external predictions and studies all score through
:func:`metrics`, so a number in the table means the same thing wherever it came from.

* :func:`metrics` -- WAR (accuracy), UAR (mean recall over the classes present in the gold labels),
  per-class recall, confusion matrix, unparseable rate, seeded bootstrap 95% CIs
  (:func:`omnibench.stats.bootstrap_war_uar`). Gold labels outside the label set stay in the data: the
  model cannot say them, so those clips count as wrong and their class enters UAR with its (zero)
  recall; they are counted.
* :func:`subset_metrics` -- the same restricted to the clips whose gold label is in a subset (the data
  cards' cross-dataset rule: the DFEW seven), with the clips outside it counted beside, never dropped.
* :func:`summary_cell` / :func:`eval_table` / :func:`validate_eval_schema` -- the ``metrics.json``
  ``eval`` cells; :func:`format_table` prints them; :func:`update_metrics_json` merges them into a
  run's ``metrics.json`` by the run folder's one rule (:func:`omnibench.run.merge_metrics`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from omnibench.answers import resolve_gold, resolve_label
from omnibench.labels import DFEW7
from omnibench.run import merge_metrics
from omnibench.stats import bootstrap_war_uar

#: Keys of one metrics.json "eval" cell.
SUMMARY_KEYS: tuple[str, ...] = ("war", "uar", "war_ci", "uar_ci", "n", "unparseable")


def _encode(gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str]):
    """Integer codes: gold classes = labels + extra gold labels (outside the set); predictions map to
    the label index, or -1 for None/unparseable/out-of-set (always wrong)."""
    classes = list(labels)
    for g in gold:
        if g not in classes:
            classes.append(g)
    index = {c: i for i, c in enumerate(classes)}
    g = np.array([index[x] for x in gold], dtype=np.int64)
    lab_index = {c: i for i, c in enumerate(labels)}
    p = np.array([lab_index.get(x, -1) if x is not None else -1 for x in pred], dtype=np.int64)
    return classes, g, p


def _war_uar(g: np.ndarray, correct: np.ndarray, n_classes: int) -> tuple[float, float]:
    n = len(g)
    if n == 0:
        return float("nan"), float("nan")
    war = float(correct.mean())
    tot = np.bincount(g, minlength=n_classes)
    hit = np.bincount(g, weights=correct.astype(float), minlength=n_classes)
    present = tot > 0
    uar = float((hit[present] / tot[present]).mean())
    return war, uar


def metrics(
    gold: Sequence[str | None],
    pred: Sequence[str | None],
    labels: Sequence[str] = DFEW7,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    status: Sequence[str] | None = None,
) -> dict:
    """WAR / UAR / per-class recall / confusion / unparseable rate with bootstrap CIs.

    Args:
        gold: gold labels (aliases are normalised; labels outside ``labels`` are kept and always wrong;
            None = unlabelled clip, excluded from the metrics and counted as ``n_unlabelled``).
        pred: predicted labels (None = no usable answer: wrong). A prediction outside ``labels`` is
            mapped through the aliases, else counted as wrong (``n_out_of_set``).
        labels: the label set the split is scored against (its dataset's: :func:`omnibench.labels.labels_for`).
        status: optional per-clip status from :func:`resolve_prediction`; used for the
            ``unparseable`` / ``out_of_set`` counts (else None predictions count as unparseable).

    Returns a dict with ``war``, ``uar``, ``war_ci``, ``uar_ci``, ``n``, ``unparseable`` (fraction),
    ``per_class_recall`` {class: recall or None if absent}, ``support``, ``confusion`` (rows = gold
    classes ``classes``, columns = ``labels`` + ``"<none>"`` for no usable answer), ``classes``,
    ``n_unparseable``, ``n_out_of_set``, ``n_gold_out_of_set``, ``n_alias``, ``n_unlabelled``.
    """
    labels = tuple(labels)
    if len(gold) != len(pred):
        raise ValueError(f"gold ({len(gold)}) and pred ({len(pred)}) differ in length")
    if status is not None and len(status) != len(pred):
        raise ValueError(f"status ({len(status)}) and pred ({len(pred)}) differ in length")
    keep = [i for i, x in enumerate(gold) if resolve_gold(x, labels).status != "missing"]
    n_unlabelled = len(gold) - len(keep)
    gold_r = [resolve_gold(gold[i], labels) for i in keep]
    g_lab = [x for x, _ in gold_r]
    n_gold_oos = sum(s == "out_of_set" for _, s in gold_r)
    if status is None:
        res = [resolve_label(pred[i], labels) for i in keep]
        p_lab = [x for x, _ in res]
        st = [s for _, s in res]
    else:
        p_lab = [pred[i] if pred[i] in labels else None for i in keep]
        st = [status[i] for i in keep]
    classes, g, p = _encode(g_lab, p_lab, labels)
    correct = (p == g) & (p >= 0)
    war, uar = _war_uar(g, correct, len(classes))
    war_ci, uar_ci = bootstrap_war_uar(g, correct, len(classes), n_boot=n_boot, seed=seed, ci=ci)
    n = len(g)
    conf = np.zeros((len(classes), len(labels) + 1), dtype=np.int64)
    np.add.at(conf, (g, np.where(p >= 0, p, len(labels))), 1)
    support = np.bincount(g, minlength=len(classes))
    hits = np.bincount(g, weights=correct.astype(float), minlength=len(classes))
    # recall per gold class; None for a class absent from the gold labels (not part of UAR)
    per_class = {c: (float(hits[i] / support[i]) if support[i] else None) for i, c in enumerate(classes)}
    n_unp = sum(s == "unparseable" for s in st)
    return {
        "war": war,
        "uar": uar,
        "war_ci": war_ci,
        "uar_ci": uar_ci,
        "n": n,
        "unparseable": float(n_unp / n) if n else float("nan"),
        "per_class_recall": per_class,
        "support": {c: int(s) for c, s in zip(classes, support)},
        "confusion": conf.tolist(),
        "classes": classes,
        "columns": list(labels) + ["<none>"],
        "n_unparseable": int(n_unp),
        "n_out_of_set": int(sum(s == "out_of_set" for s in st)),
        "n_alias": int(sum(s == "alias" for s in st)),
        "n_gold_out_of_set": int(n_gold_oos),
        "n_unlabelled": int(n_unlabelled),
    }


def summary_cell(m: Mapping) -> dict:
    """The metrics.json "eval" cell (exactly :data:`SUMMARY_KEYS`) from a :func:`metrics` dict."""
    return {
        "war": float(m["war"]),
        "uar": float(m["uar"]),
        "war_ci": [float(x) for x in m["war_ci"]],
        "uar_ci": [float(x) for x in m["uar_ci"]],
        "n": int(m["n"]),
        "unparseable": float(m["unparseable"]),
    }



def subset_metrics(gold: Sequence[str | None], pred: Sequence[str | None], labels: Sequence[str],
                   subset: Sequence[str] = DFEW7, status: Sequence[str] | None = None, **kwargs) -> dict:
    """:func:`metrics` over the clips whose (resolved) gold label is in ``subset``, scored against the
    labels of ``labels`` that are in ``subset``; ``n_outside_subset`` counts the clips left out (reported
    beside the full-label figure, never dropped from it)."""
    labels = tuple(labels)
    sub = tuple(lab for lab in labels if lab in set(subset))
    keep = [i for i, g in enumerate(gold) if resolve_gold(g, labels).label in sub]
    m = metrics([gold[i] for i in keep], [pred[i] for i in keep], sub,
                status=None if status is None else [status[i] for i in keep], **kwargs)
    m["n_outside_subset"] = sum(resolve_gold(g, labels).status != "missing" for g in gold) - len(keep)
    m["subset"] = list(sub)
    return m


def eval_table(results: Sequence) -> dict:
    """``{"eval": {checkpoint: {split: cell}}}`` from full-modality :class:`EvalResult` s (single-modality results,
    i.e. ``modalities`` other than both, go under ``"eval_modalities"`` keyed ``checkpoint/modalities``)."""
    table: dict = {}
    extra: dict = {}
    for r in results:
        if set(r.modalities.split(",")) == {"video", "audio"}:
            table.setdefault(r.checkpoint, {})[r.split] = r.summary()
        else:
            extra.setdefault(f"{r.checkpoint}/{r.modalities}", {})[r.split] = r.summary()
    out = {"eval": table}
    if extra:
        out["eval_modalities"] = extra
    return out


def validate_eval_schema(d: Mapping) -> None:
    """Raise ValueError unless ``d["eval"]`` follows the metrics.json schema (see issue 6)."""
    ev = d.get("eval")
    if not isinstance(ev, Mapping):
        raise TypeError('metrics.json lacks an "eval" object')
    for ck, splits in ev.items():
        if not isinstance(splits, Mapping):
            raise TypeError(f"eval[{ck!r}] is not an object")
        for sp, cell in splits.items():
            if set(cell) != set(SUMMARY_KEYS):
                raise ValueError(f"eval[{ck!r}][{sp!r}] keys {sorted(cell)} != {sorted(SUMMARY_KEYS)}")
            for k in ("war", "uar", "unparseable"):
                v = cell[k]
                if v is not None and not (0.0 <= v <= 1.0):
                    raise ValueError(f"eval[{ck!r}][{sp!r}][{k!r}] = {v} outside [0, 1]")
            for k in ("war_ci", "uar_ci"):
                if not (isinstance(cell[k], list) and len(cell[k]) == 2):
                    raise ValueError(f"eval[{ck!r}][{sp!r}][{k!r}] must be [lo, hi]")
            if not isinstance(cell["n"], int) or cell["n"] < 0:
                raise ValueError(f"eval[{ck!r}][{sp!r}]['n'] must be a non-negative int")


def format_table(table: Mapping) -> str:
    """A plain-text R1-Omni-shaped table from ``{"eval": {...}}`` (WAR/UAR in %, with CIs)."""
    ev = table.get("eval", table)
    lines = [f"{'checkpoint':<12} {'split':<9} {'WAR':>22} {'UAR':>22} {'n':>5} {'unparse':>7}"]
    for ck, splits in ev.items():
        for sp, c in splits.items():
            def pc(v, ci):
                return f"{100 * v:5.1f} [{100 * ci[0]:5.1f},{100 * ci[1]:5.1f}]"
            lines.append(
                f"{ck:<12} {sp:<9} {pc(c['war'], c['war_ci']):>22} {pc(c['uar'], c['uar_ci']):>22} "
                f"{c['n']:>5} {100 * c['unparseable']:6.1f}%"
            )
    return "\n".join(lines)




def update_metrics_json(path: str | os.PathLike, update: Mapping) -> dict:
    """Merge ``update`` (e.g. :func:`eval_table`'s output) into the ``metrics.json`` at ``path`` by the run
    folder's rule (an eval cell, ``eval -> checkpoint -> split``, is replaced whole; everything else
    kept; :func:`omnibench.run.merge_metrics`). Returns the merged object."""
    return merge_metrics(path, update)
