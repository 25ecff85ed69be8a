"""Evaluation: batched greedy generation, answer parsing, WAR/UAR with bootstrap CIs, metrics.json.

The pieces, from pure to model-bound:

* :func:`resolve_prediction` turns a completion into a label of the model's label set: the text of the
  last ``<answer>…</answer>`` is normalised through the data cards' aliases ("Happiness" -> "happy").
  Its status is one of ``ok`` | ``alias`` | ``out_of_set`` | ``unparseable``; the last two are wrong
  answers, kept (never dropped) and counted.
* :func:`metrics` — WAR (accuracy), UAR (mean recall over the classes present in the gold labels),
  per-class recall, confusion matrix, unparseable rate, seeded bootstrap 95% CIs for WAR and UAR.
  Gold labels outside the model's label set stay in the data: the model cannot say them, so those
  clips count as wrong, and their class enters UAR with its (zero) recall; they are counted.
* :func:`evaluate_split` runs a model over clips (greedy generation, or the fast ``mode="score"``:
  argmax of :func:`omnibench.model.score_labels`) and returns an :class:`EvalResult` (parallel arrays,
  ``.to_frame()``, ``.write_predictions()``, ``.summary()``).
* :func:`update_metrics_json` merges ``{"eval": {CHECKPOINT: {SPLIT: {...}}}}`` into a run's
  ``metrics.json`` without losing other keys (atomic write).
* ``omnibench eval`` (:func:`add_eval_args` / :func:`cli_eval`).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from omnibench.answers import parse_answer, resolve, resolve_gold, resolve_label
from omnibench.io import read_jsonl, update_json, write_jsonl
from omnibench.labels import DFEW7

__all__ = [
    "CHECKPOINTS", "SPLITS", "SUMMARY_KEYS", "EvalConfig", "EvalResult", "add_eval_args", "cli_eval",
    "default_run_dir", "eval_table", "evaluate_split", "format_table", "metrics", "model_labels",
    "read_predictions", "summary_cell", "update_metrics_json", "validate_eval_schema",
]

#: Checkpoint and split names of the R1-Omni-shaped table (metrics.json "eval").
CHECKPOINTS: tuple[str, ...] = ("base", "cold_start", "label_sft", "grpo")
SPLITS: tuple[str, ...] = ("test_id", "test_ood")
#: Keys of one metrics.json "eval" cell.
SUMMARY_KEYS: tuple[str, ...] = ("war", "uar", "war_ci", "uar_ci", "n", "unparseable")

# ------------------------------------------------------------------------------------------ answers

#: A completion's label and status under a label set (``omnibench.answers.resolve``, the rule the
#: accuracy reward uses too); kept under the name the evaluation has always used.
resolve_prediction = resolve
__all__ += ["parse_answer", "resolve_gold", "resolve_label", "resolve_prediction"]


# ------------------------------------------------------------------------------------------ metrics


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


def bootstrap_war_uar(
    g: np.ndarray, correct: np.ndarray, n_classes: int, n_boot: int = 1000, seed: int = 0, ci: float = 0.95
) -> tuple[list[float], list[float]]:
    """Percentile bootstrap CIs ``[lo, hi]`` for WAR and UAR, resampling clips with replacement.

    In each resample UAR averages over the classes present in that resample's gold labels.
    Deterministic for a given ``seed``; ``n_boot=0`` gives ``[nan, nan]``.
    """
    n = len(g)
    if n == 0 or n_boot <= 0:
        return [float("nan")] * 2, [float("nan")] * 2
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    c = correct.astype(float)[idx]  # (B, n)
    wars = c.mean(axis=1)
    # Per-resample class totals / hits via an offset bincount (B * n_classes bins).
    offs = (np.arange(n_boot)[:, None] * n_classes + g[idx]).ravel()
    tot = np.bincount(offs, minlength=n_boot * n_classes).reshape(n_boot, n_classes)
    hit = np.bincount(offs, weights=c.ravel(), minlength=n_boot * n_classes).reshape(n_boot, n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        rec = np.where(tot > 0, hit / np.maximum(tot, 1), np.nan)
    uars = np.nanmean(rec, axis=1)
    a = (1 - ci) / 2
    q = [100 * a, 100 * (1 - a)]
    return [float(x) for x in np.percentile(wars, q)], [float(x) for x in np.percentile(uars, q)]


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
        labels: the model's label set.
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
    keep = [i for i, x in enumerate(gold) if x is not None]
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


# ------------------------------------------------------------------------------------------ results


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
            }
            for i, g, p, c, s in zip(self.ids, self.gold, self.prediction, self.completion, self.status)
        ]

    def write_predictions(self, path: str | os.PathLike) -> Path:
        """Predictions as JSONL (id, gold, prediction, completion, parsed, status, modalities, checkpoint, split)."""
        return write_jsonl(path, self.records())

    @classmethod
    def from_records(cls, records: Sequence[Mapping], labels: Sequence[str] = DFEW7, n_boot: int = 1000, seed: int = 0):
        """Rebuild a result (and its metrics) from predictions JSONL records."""
        labels = tuple(labels)
        r0 = records[0] if records else {}
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


def read_predictions(path: str | os.PathLike, labels: Sequence[str] = DFEW7, n_boot: int = 1000, seed: int = 0):
    """Load a predictions JSONL written by :meth:`EvalResult.write_predictions`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file {path} not found (write one with `omnibench eval`)")
    return EvalResult.from_records(read_jsonl(path), labels=labels, n_boot=n_boot, seed=seed)


# ------------------------------------------------------------------------------------------ metrics.json


def update_metrics_json(path: str | os.PathLike, update: Mapping, depth: int = 3) -> dict:
    """Merge ``update`` into the JSON file at ``path`` (created if absent) and write atomically.

    Objects are merged through ``depth`` levels of keys (3: ``eval`` -> checkpoint -> split), below
    which a value replaces the old one whole (an eval cell is never a mix of two runs). Keys not in
    ``update`` are kept; NaN becomes null. Returns the merged dict.
    """
    return update_json(path, update, depth)


def eval_table(results: Sequence[EvalResult]) -> dict:
    """``{"eval": {checkpoint: {split: cell}}}`` from full-modality results (single-modality results,
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


# ------------------------------------------------------------------------------------------ model-bound


@dataclass
class EvalConfig:
    """How :func:`evaluate_split` runs a model."""

    modalities: str = field(default="video,audio", metadata={"help": "modalities given to the model: video,audio | video | audio | none"})
    mode: str = field(default="generate", metadata={"help": "generate (greedy, answer parsed) | score (argmax of label scores; fast, no reasoning)"})
    batch_size: int = field(default=8, metadata={"help": "clips per forward/generate call"})
    max_new_tokens: int = field(default=64, metadata={"help": "generation budget (reasoning + answer)"})
    n_boot: int = field(default=1000, metadata={"help": "bootstrap resamples for the CIs"})
    seed: int = field(default=0, metadata={"help": "bootstrap seed"})
    prompt: str | None = field(default=None, metadata={"help": "prompt text (None = the model layer's DEFAULT_PROMPT)"})

    def __post_init__(self):
        if self.mode not in ("generate", "score"):
            raise ValueError(f"EvalConfig.mode must be 'generate' or 'score', got {self.mode!r}")


def paired_media(clips, media=None, decode_config=None, cache=None, progress: bool = False):
    """``(clips, media)`` in the same order: decodes ``clips`` when ``media`` is None, pairs by clip id.

    A clip without decoded media (``decode_clips`` skipped it) is an error naming it, never dropped here.
    """
    clips = list(clips)
    if media is None:
        from omnibench.data.media import decode_clips

        media, _ = decode_clips(clips, decode_config, cache=cache, progress=progress)
    by_id = {m.clip_id: m for m in media}
    missing = [c.id for c in clips if c.id not in by_id]
    if missing:
        raise ValueError(
            f"{len(missing)} clip(s) have no decoded media (e.g. {missing[:3]}); decode them or drop them "
            "from the manifest explicitly (DecodeConfig.missing_audio='skip' reports which)"
        )
    return clips, [by_id[c.id] for c in clips]


def evaluate_split(
    model,
    processor,
    clips,
    media=None,
    labels: Sequence[str] = DFEW7,
    config: EvalConfig | None = None,
    checkpoint: str = "",
    split: str | None = None,
    decode_config=None,
    cache=None,
    progress: bool = False,
) -> EvalResult:
    """Predict every clip and compute the metrics.

    Args:
        clips: :class:`omnibench.data.manifest.Clip` records (gold = ``clip.label``).
        media: their decoded :class:`Media` (decoded here with ``decode_config``/``cache`` if None).
        labels: the model's label set.
        config: :class:`EvalConfig` (modalities, generate|score mode, batch size, bootstrap).
        checkpoint / split: names stored with the predictions (split defaults to the clips' split).
    """
    from omnibench.model import generate, score_labels
    from omnibench.model.inputs import DEFAULT_PROMPT, parse_modalities

    cfg = config or EvalConfig()
    labels = tuple(labels)
    clips, media = paired_media(clips, media, decode_config, cache, progress)
    mods = parse_modalities(cfg.modalities)
    prompt = cfg.prompt if cfg.prompt is not None else DEFAULT_PROMPT
    t0 = time.perf_counter()
    if cfg.mode == "generate":
        completions = generate(
            model, processor, media, mods, prompt=prompt, max_new_tokens=cfg.max_new_tokens,
            do_sample=False, batch_size=cfg.batch_size, progress=progress,
        )
        resolved = [resolve(c, labels) for c in completions]
    else:
        scores = score_labels(model, processor, media, mods, labels, prompt=prompt, batch_size=cfg.batch_size)
        best = np.asarray(scores).argmax(axis=1)
        resolved = [(labels[i], "ok") for i in best]
        completions = [f"<answer>{labels[i]}</answer>" for i in best]
    seconds = time.perf_counter() - t0
    gold = [c.label for c in clips]
    res = EvalResult(
        ids=[c.id for c in clips],
        gold=gold,
        prediction=[p for p, _ in resolved],
        completion=list(completions),
        status=[s for _, s in resolved],
        labels=labels,
        modalities=",".join(m for m in ("video", "audio") if m in mods) or "none",
        checkpoint=checkpoint,
        split=split if split is not None else (clips[0].split if clips else ""),
        mode=cfg.mode,
        seconds=seconds,
    )
    res.metrics = metrics(gold, res.prediction, labels, n_boot=cfg.n_boot, seed=cfg.seed, status=res.status)
    return res


# ------------------------------------------------------------------------------------------ CLI


def add_eval_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Flags of ``omnibench eval``."""
    parser.add_argument("--model", required=True, help="checkpoint folder (save_pretrained) to evaluate")
    parser.add_argument("--manifest", required=True, help="manifest JSONL")
    parser.add_argument("--split", required=True, help="split to evaluate (e.g. test_id, test_ood)")
    parser.add_argument("--modalities", default="video,audio", help="video,audio | video | audio | none")
    parser.add_argument("--out", default=None, help="output folder (predictions + metrics.json); default: the model folder's run")
    parser.add_argument("--checkpoint-name", default=None, help="row name in metrics.json (default: model folder name)")
    parser.add_argument("--mode", default="generate", choices=["generate", "score"], help="generate | score (fast argmax of label scores)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N clips")
    parser.add_argument("--cache", default=None, help="decode cache folder")
    parser.add_argument("--dataset", default=None, help="label set to use (data card name; default: the model's labels)")
    return parser


def default_run_dir(model_path: str | os.PathLike) -> Path:
    """Where outputs go without ``--out``: the run folder holding the checkpoint
    (``runs/NAME/checkpoints/grpo`` -> ``runs/NAME``; ``runs/NAME/sft/model`` -> ``runs/NAME/sft``)."""
    p = Path(model_path).resolve()
    parent = p.parent
    return parent.parent if parent.name == "checkpoints" else parent


def model_labels(model, dataset: str | None = None) -> tuple[str, ...]:
    """The label set to score ``model`` with: ``dataset``'s card when given, else the labels the model
    was trained on (``config.omnibench_labels``), else the DFEW seven."""
    from omnibench.labels import label_set

    if dataset:
        return label_set(dataset)
    cfg_labels = getattr(getattr(model, "config", None), "omnibench_labels", None)
    return tuple(cfg_labels) if cfg_labels else DFEW7


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


def cli_eval(args: argparse.Namespace) -> int:
    """``omnibench eval``: evaluate one checkpoint on one split; writes predictions + merges metrics.json.

    Returns the exit status (0)."""
    from omnibench.data.manifest import read_manifest
    from omnibench.data.media import DecodeCache, DecodeConfig
    from omnibench.model import load_model

    model, processor = load_model(args.model)
    model.eval()
    labels = model_labels(model, getattr(args, "dataset", None))
    clips = read_manifest(args.manifest, split=args.split)
    if not clips:
        raise SystemExit(f"{args.manifest}: no clips in split {args.split!r}")
    if args.limit:
        clips = clips[: args.limit]
    name = args.checkpoint_name or Path(args.model).resolve().name
    out = Path(args.out) if args.out else default_run_dir(args.model)
    cache = DecodeCache(args.cache) if args.cache else None
    cfg = EvalConfig(
        modalities=args.modalities, mode=args.mode, batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens, n_boot=args.n_boot, seed=args.seed,
    )
    res = evaluate_split(model, processor, clips, labels=labels, config=cfg, checkpoint=name, split=args.split,
                         decode_config=DecodeConfig(), cache=cache, progress=True)
    tag = res.modalities.replace(",", "+")
    pred_path = res.write_predictions(out / "predictions" / f"{name}__{args.split}__{tag}.jsonl")
    update_metrics_json(out / "metrics.json", eval_table([res]))
    m = res.metrics
    print(format_table({"eval": {f"{name}" + ("" if tag == "video+audio" else f"[{tag}]"): {args.split: res.summary()}}}))
    print(
        f"unparseable {m['n_unparseable']}, out-of-set answers {m['n_out_of_set']}, alias-mapped {m['n_alias']}, "
        f"gold outside the label set {m['n_gold_out_of_set']} (counted wrong); {res.seconds:.1f} s"
    )
    print(f"predictions: {pred_path}\nmetrics: {out / 'metrics.json'}")
    return 0
