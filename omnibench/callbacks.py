"""Trainer callbacks shared by SFT and GRPO: per-step metrics as JSONL, and the non-finite gradient guard.

:class:`MetricsJSONL` turns every log event into one JSON line (what the notebooks plot and the
report summarises); on resume it first drops the lines after the resumed step, so the file holds
each step once. :class:`FiniteGradients` skips an optimizer step whose gradient is not finite, counts
it, and stops the run after too many in a row.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from transformers import TrainerCallback

from omnibench.io import append_jsonl, atomic_write_text, read_jsonl

__all__ = ["FiniteGradients", "MetricsJSONL", "NonFiniteGradientError", "read_metrics"]


class MetricsJSONL(TrainerCallback):
    """Trainer callback: every log event becomes one JSON line ``{"step": ..., ...}`` in ``path``.

    ``aliases`` adds friendly names (e.g. ``accuracy`` for ``rewards/accuracy/mean``). On resume,
    lines after the resumed step are dropped first, so the file holds each step once.
    """

    def __init__(self, path: str | os.PathLike, aliases: Mapping[str, str] | None = None):
        self.path = Path(path)
        self.aliases = dict(aliases or {})

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            kept = []
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line) if line.strip() else None
                except json.JSONDecodeError:
                    row = None  # a line cut short by a crash: dropped (it is the step being rewritten)
                    print(f"{self.path}: dropping a truncated line on resume: {line[:80]!r}")
                if row is not None and row.get("step", 0) <= state.global_step:
                    kept.append(line)
            atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        row = {"step": state.global_step, "epoch": state.epoch}
        for key, value in logs.items():
            if isinstance(value, (int, float, str, bool)) or value is None:
                row[key] = value
        for alias, key in self.aliases.items():
            if key in row:
                row[alias] = row[key]
        append_jsonl(self.path, [row])


class NonFiniteGradientError(RuntimeError):
    """Optimizer steps met non-finite gradients more often in a row than the recipe allows."""


class FiniteGradients(TrainerCallback):
    """Trainer callback: an optimizer step whose gradient is not finite is skipped (the gradients are
    dropped before ``optimizer.step``), as torch's GradScaler and DeepSpeed do, instead of letting
    AdamW write NaN into every weight; more than ``max_skips`` such steps in a row stop the run with
    an error naming the step. Under DDP the gradients are already all-reduced, so every rank skips
    the same steps. (DeepSpeed keeps its gradients elsewhere and has its own overflow check.)

    Why: the one recorded GPU run of the tiny pipeline (benchmarks/README.md) had a NaN gradient in
    its fourth bf16 SFT step (finite loss, ``grad_norm nan``); gradient clipping multiplied every
    gradient by NaN, AdamW made every weight NaN, and the first GRPO generation then crashed in
    ``torch.multinomial`` with a device-side assert."""

    def __init__(self, max_skips: int = 3):
        self.max_skips = int(max_skips)
        self.in_row = 0
        self.skipped: list[int] = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        import torch

        if model is None:
            return
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not grads:
            return
        if bool(torch.stack([n.to(grads[0].device) for n in torch._foreach_norm(grads)]).isfinite().all()):
            self.in_row = 0
            return
        bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
        step = state.global_step + 1
        self.in_row += 1
        self.skipped.append(step)
        if self.in_row > self.max_skips:
            raise NonFiniteGradientError(
                f"optimizer step {step}: the gradient is not finite (in {len(bad)} parameter tensors after "
                f"clipping, e.g. {bad[:3]}) for {self.in_row} steps in a row; likely causes: a learning rate too high for this "
                "model, pure bf16 weights (use dtype: auto = float32 master weights with bf16: true), or a kernel "
                "that returns NaN gradients (try attn_implementation: eager); raise max_nonfinite_steps to skip more")
        print(f"optimizer step {step}: non-finite gradient (in {len(bad)} parameter tensors after clipping); "
              "step skipped, weights unchanged", flush=True)
        for p in model.parameters():
            p.grad = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None and "loss" in logs:
            logs["nonfinite_grad_steps"] = len(self.skipped)


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The rows of a metrics JSONL file (for notebooks: ``pd.DataFrame(read_metrics(p))``)."""
    path = Path(path)
    return read_jsonl(path / "metrics.jsonl" if path.is_dir() else path)
