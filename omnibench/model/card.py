"""Model cards: the README.md in every model folder that SFT and GRPO write.

A checkpoint handed to someone else must say what it is without the run folder next to it: the
base model it started from, the recipe (stage and the settings that matter), the data it saw
(sources, splits, clip counts), the decode settings its inputs need, the label set it answers in,
the run's metrics when they are known, and how to load it with plain transformers (no omnibench
needed). :func:`write_model_card` writes it through :mod:`omnibench.io`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omnibench.io import atomic_write_text

#: recipe fields shown in the card (the full recipe is in the run folder's recipe.yaml)
_RECIPE_KEYS = ("mode", "epochs", "max_steps", "learning_rate", "batch_size", "per_device_train_batch_size",
                "gradient_accumulation_steps", "num_generations", "max_completion_length", "temperature", "beta",
                "rewards", "modality_dropout", "modality_dropout_policy", "freeze_vision", "freeze_audio", "lora",
                "bf16", "dtype", "seed")


def _base_model(model_config, recipe) -> str:
    start = getattr(recipe, "model", None) or "?"
    if start == "tiny":
        return "the omnibench tiny Qwen2.5-Omni thinker (random initialisation, `omnibench.tiny.build_tiny`)"
    name = getattr(model_config, "_name_or_path", "") or ""
    return f"`{start}`" + (f" ({name})" if name and name != str(start) else "")


def _yaml_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return str(value)


def model_card(*, stage: str, model_config, recipe=None, clips: Sequence = (), decode=None,
               metrics: Mapping[str, Any] | None = None, architecture: str | None = None) -> str:
    """The card's markdown text (see the module docstring for what it holds)."""
    labels = list(getattr(model_config, "omnibench_labels", None) or [])
    arch = architecture or (getattr(model_config, "architectures", None) or ["Qwen2_5OmniThinkerForConditionalGeneration"])[0]
    processor = "Qwen3OmniMoeProcessor" if "Qwen3" in arch else "Qwen2_5OmniProcessor"
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: any-to-any",
        "tags: [omnibench, emotion-recognition, qwen2.5-omni, " + ("grpo" if stage == "grpo" else "sft") + "]",
        "---",
        "",
        f"# omnibench {stage.upper()} checkpoint",
        "",
        (f"A `{arch}` (the thinker of Qwen2.5-Omni: video + audio in, text out) trained by omnibench's "
        f"{'GRPO with verifiable rewards' if stage == 'grpo' else 'supervised fine-tuning'} stage to recognise "
        "emotions in audio-visual clips and explain them as `<think>...</think><answer>label</answer>`."),
        "",
        f"- **Base model**: {_base_model(model_config, recipe)}",
        f"- **Stage**: {stage}",
    ]
    if recipe is not None:
        shown = {k: getattr(recipe, k) for k in _RECIPE_KEYS if hasattr(recipe, k)}
        lines.append("- **Recipe**: " + ", ".join(f"{k} = {_yaml_value(v)}" for k, v in shown.items()))
        trainer = {k: v for k, v in (getattr(recipe, "trainer", None) or {}).items()}
        if trainer:
            lines.append("- **Trainer arguments**: " + ", ".join(f"{k} = {_yaml_value(v)}" for k, v in trainer.items()))
    if clips:
        by = Counter((getattr(c, "dataset", "?"), getattr(c, "split", "?")) for c in clips)
        parts = [f"{ds} / {split}: {n} clips" for (ds, split), n in sorted(by.items())]
        manifest = getattr(recipe, "manifest", None)
        lines.append("- **Data**: " + "; ".join(parts) + (f" (manifest `{manifest}`)" if manifest else ""))
    if decode is not None:
        describe = decode.describe() if hasattr(decode, "describe") else _yaml_value(decode)
        lines.append(f"- **Decode settings** (inputs must be decoded the same way; also in config.json as "
                     f"`omnibench_decode`): {describe}")
    if labels:
        lines.append(f"- **Label set** ({len(labels)}; config.json `omnibench_labels`): {', '.join(labels)}")
    if metrics:
        lines.append("- **Metrics of the run**: " + ", ".join(
            f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in metrics.items()))
    else:
        lines.append("- **Metrics of the run**: not known when the model was saved (see the run folder's "
                     "metrics.json after `omnibench eval`)")
    lines += [
        "",
        "## Loading with plain transformers",
        "",
        "```python",
        "import torch",
        f"from transformers import {arch}, {processor}",
        "",
        'path = "PATH/TO/THIS/FOLDER"',
        f"model = {arch}.from_pretrained(path, dtype=torch.bfloat16)  # or float32 on the CPU",
        f"processor = {processor}.from_pretrained(path)",
        "```",
        "",
        ("With omnibench: `omnibench eval --model PATH --manifest MANIFEST --split test_id` (decodes with the "
        "settings above), or `from omnibench.model.loading import load_model`."),
        "",
    ]
    return "\n".join(lines)


def write_model_card(folder: str | os.PathLike, **info) -> Path:
    """Write :func:`model_card` (same keywords) as ``folder/README.md``."""
    path = Path(folder) / "README.md"
    atomic_write_text(path, model_card(**info))
    return path
