"""Notebook-facing steps that bind the run folder to the model and training layers.

Why a module of its own: a notebook cell should be one call, and some of those calls need both the
run-folder layout (:mod:`omnibench.run`) and the model layer (building and saving the tiny base
model) or the training logs. :mod:`omnibench.run` must stay below the model layer (the ``eval`` and
``attribute`` CLIs import it for their default output places) and ``model/perception.py`` should not
know the run folder, so these steps live here, above both; the pipeline runner does not need them.

* :func:`save_base_model` — the run's ``base`` checkpoint (tiny thinker, perception-pretrained; or a
  real model folder, registered without copying).
* :func:`perception_summary` / :func:`training_summary` — what ``metrics.json`` keeps of a training
  log (``training`` section).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from omnibench.io import read_jsonl
from omnibench.run import RunFolder

__all__ = ["perception_summary", "save_base_model", "training_summary"]


def save_base_model(run: RunFolder, model: str = "tiny", seed: int = 0, tiny: Mapping | None = None,
                    labels: Sequence[str] | None = None, perception: Mapping | None = None,
                    decode: Mapping | None = None, split: str = "train", progress: bool = False) -> Path:
    """The base checkpoint of the run, saved to ``checkpoints/base/model``.

    ``model="tiny"``: the embedded tiny thinker, built from scratch, then pre-trained on the run's
    ``split`` (:func:`omnibench.model.perception.build_tiny_base`; ``perception`` holds
    :class:`~omnibench.model.perception.PerceptionConfig` fields, ``{"steps": 0, "describe_steps": 0}``
    skips it) so that the base model, like a real omni model, starts with working perception and no
    emotion answer. The history goes to ``checkpoints/base/perception.jsonl``. Any other ``model`` is a
    local model folder, registered without copying (its encoders are already trained)."""
    log_path = run.train_dir("base") / "perception.jsonl"
    log_path.unlink(missing_ok=True)  # a re-run's old history
    if model == "tiny":
        from omnibench.labels import DFEW7
        from omnibench.model import build_tiny, save_model
        from omnibench.model.perception import PerceptionConfig, build_tiny_base

        cfg = PerceptionConfig(**{"seed": seed, **dict(perception or {})})
        out = run.checkpoint("base")
        if cfg.steps or cfg.describe_steps:
            return build_tiny_base(run.manifest, out, split=split, seed=seed, config=cfg, decode=decode, tiny=tiny,
                                   labels=labels, cache_dir=run.decode_cache_dir, progress=progress,
                                   log_path=log_path)
        m, processor = build_tiny(labels=tuple(labels or DFEW7), seed=seed, **dict(tiny or {}))
        save_model(m, processor, out, decode=decode)
        return out
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"base model folder {path} has no config.json; give a local Qwen2.5-Omni folder or 'tiny'")
    return run.register_checkpoint("base", path)


def perception_summary(log: str | os.PathLike) -> dict:
    """Per stage of the tiny base model's pre-training (``towers``, ``describe``): steps and the last
    logged row's loss and read-out accuracies."""
    out: dict = {}
    for row in read_jsonl(log):
        stage = row.get("stage", "towers")
        out[stage] = {k: v for k, v in row.items() if k not in ("stage", "learning_rate")}
    return out


def training_summary(metrics_jsonl: str | os.PathLike, keys: Sequence[str] = ("loss",), frac: float = 0.1) -> dict:
    """Steps, and the mean of each key over the first and last ``frac`` of the logged steps."""
    import pandas as pd

    from omnibench.plots import read_metrics_jsonl

    df = read_metrics_jsonl(metrics_jsonl)
    out: dict = {"steps": int(df["step"].max()) if "step" in df and len(df) else 0}
    if "train_runtime" in df:
        out["seconds"] = float(df["train_runtime"].dropna().iloc[-1]) if df["train_runtime"].notna().any() else None
    for k in keys:
        if k not in df:
            continue
        col = pd.to_numeric(df[k], errors="coerce").dropna()
        if col.empty:
            continue
        m = max(1, round(len(col) * frac))
        out[k] = {"first": float(col.iloc[:m].mean()), "last": float(col.iloc[-m:].mean())}
    return out
