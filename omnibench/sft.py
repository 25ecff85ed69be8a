"""Cold-start supervised fine-tuning on explained (or label-only) answers, with video + audio.

R1-Omni first teaches the model the answer format on a small set of clips whose answers explain
themselves (``<think>…</think><answer>label</answer>``), then runs GRPO on a much larger label-only
set. :func:`run_sft` does the first stage with transformers' ``Trainer``:

* the dataset is the manifest's ``cold_start`` split; each example is ``(clip id, target text)``;
* :class:`OmniSFTCollator` takes each clip's decoded media from a
  :class:`~omnibench.data.media.MediaStore` (decoded once, then reused every epoch), applies modality
  dropout, and batches the clips as ``omnibench.model.build_inputs(..., completions=targets,
  return_labels=True)`` would (each clip processed once per modality set and kept:
  ``omnibench.model.inputs.clip_row`` / ``collate_rows``), so the loss covers the assistant tokens
  only (prompt, media placeholders and padding are -100);
* ``mode: explained`` trains on ``clip.meta["reasoning"]``; ``mode: label_only`` trains on
  ``<answer>label</answer>`` with no think block at all -- the paper's "label-only SFT" baseline,
  which (by design) earns no format reward;
* modality dropout: with probability ``modality_dropout`` an example is shown without its video or
  without its audio block, removed exactly as attribution and single-modality evaluation remove
  it (:func:`omnibench.model.inputs.keep_modalities`), so those inputs are not out of distribution later.

The run folder holds ``checkpoints/`` (Trainer checkpoints, ``resume: true`` continues the last),
``model/`` (final weights + processor, what :func:`run_sft` returns), ``recipe.yaml`` and
``metrics.jsonl`` (loss, learning rate, grad norm per step).

CLI: ``omnibench sft --config FILE [--out DIR] [--mode label_only] [--max-steps N] [--resume]``,
also under ``accelerate launch --config_file configs/accelerate/ddp.yaml -m omnibench.cli sft ...``.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from omnibench.recipes import (
    FiniteGradients,
    MetricsJSONL,
    TrainRecipe,
    common_args,
    droppable_modalities,
    load_clips,
    load_policy,
    lora_config,
    modality_dropout,
    recipe_media_store,
    run_recipe,
    set_trainable,
)

MODES = ("explained", "label_only")


def target_text(clip, mode: str, modalities: frozenset[str] | None = None) -> str | None:
    """The assistant answer SFT trains on for ``clip`` in ``mode``, for an input showing ``modalities``
    (None: both).

    An explained answer describes only what the input shows: with a modality removed by dropout, a
    SynthEmo clip's reasoning is restated from its cues for the modality kept
    (:func:`omnibench.data.synth.cues.reasoning_text`), so the cold start never teaches the model to
    describe a voice it was not given. Reasoning that cannot be restated (real data: one text per clip)
    gives None for a partial input; such clips are never dropped (see :func:`droppable_for_targets`)."""
    if mode == "label_only":
        if not clip.label:
            raise ValueError(f"clip {clip.id} has no label; label-only SFT needs labelled clips")
        return f"<answer>{clip.label}</answer>"
    if mode == "explained":
        meta = clip.meta or {}
        text = meta.get("reasoning")
        if not text:
            raise ValueError(
                f"clip {clip.id} (split {clip.split}) has no meta['reasoning']; explained SFT needs "
                "clips with reasoning text (SynthEmo's cold_start split), or use mode: label_only"
            )
        if modalities is None or set(modalities) >= {"video", "audio"}:
            return text
        if clip.dataset == "synthemo" and "cues" in meta and "condition" in meta and modalities:
            from omnibench.data.synth.cues import reasoning_text

            return reasoning_text(clip.label, meta["condition"], meta["cues"], sorted(modalities))
        return None
    raise ValueError(f"unknown SFT mode {mode!r}; use one of {MODES}")


def droppable_for_targets(clip, mode: str, droppable: frozenset[str]) -> frozenset[str]:
    """The modalities dropout may remove from ``clip`` given that its target must describe what is kept:
    a modality is droppable only when the clip has a target for the input without it."""
    return frozenset(m for m in droppable
                     if target_text(clip, mode, frozenset({"video", "audio"}) - {m}) is not None)


class SFTDataset(torch.utils.data.Dataset):
    """``{"clip_id", "target", "targets"}`` examples (media are attached by the collator); ``targets``
    holds the answer for each single-modality input the clip can be shown with."""

    def __init__(self, clips: Sequence, mode: str):
        self.items = []
        for c in clips:
            partial = {m: target_text(c, mode, frozenset({m})) for m in ("video", "audio")}
            self.items.append({"clip_id": c.id, "target": target_text(c, mode),
                               "targets": {m: t for m, t in partial.items() if t is not None}})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


class OmniSFTCollator:
    """Batch of ``{"clip_id", "target"}`` -> model inputs with labels on the answer tokens only."""

    def __init__(self, processor, media_store: Callable[[str], Any], prompt: str | None = None,
                 modality_dropout: float = 0.0, seed: int = 0, droppable: dict | None = None):
        from omnibench.model.inputs import DEFAULT_PROMPT

        self.processor = processor
        self.media_store = media_store
        self.prompt = prompt or DEFAULT_PROMPT
        self.p = float(modality_dropout)
        self.rng = random.Random(seed)
        self.droppable = droppable or {}  # clip id -> modalities dropout may remove (default: both)
        self.seen: dict[str, int] = {}  # how often each modality set was used (for the report)
        #: (clip id, modalities shown) -> the clip's processor output (prompt ids, media tensors): each clip
        #: is processed once per modality set, not once per epoch (collated as build_inputs would batch it),
        #: within RowCache's memory budget
        from omnibench.model.inputs import RowCache

        self._rows = RowCache()

    def __call__(self, features: Sequence[dict]) -> dict:
        from omnibench.model.inputs import available_modalities, clip_row, collate_rows

        rows, targets = [], []
        for f in features:
            full = self.media_store(f["clip_id"])
            m, keep = modality_dropout(full, self.p, self.rng, self.droppable.get(f["clip_id"]))
            rows.append(self._rows.get((f["clip_id"], keep),
                                       lambda m=m, keep=keep: clip_row(self.processor, m, keep, self.prompt)))
            targets.append(self._target(f, keep, dropped=keep != available_modalities(full)))
            name = ",".join(sorted(keep)) or "none"
            self.seen[name] = self.seen.get(name, 0) + 1
        return dict(collate_rows(self.processor.tokenizer, rows, targets, return_labels=True))

    @staticmethod
    def _target(feature: dict, keep: frozenset[str], dropped: bool) -> str:
        """The answer for an example shown ``keep``: the restated one when dropout removed a modality
        (an SFTDataset feature always has it, :func:`droppable_for_targets` sees to that), else the
        clip's own. A hand-made feature without ``targets`` is trained on its ``target`` as given."""
        if not dropped or "targets" not in feature:
            return feature["target"]
        (kept,) = keep
        if kept not in feature["targets"]:
            raise ValueError(f"clip {feature['clip_id']}: modality dropout kept only {kept}, but the clip has no "
                             "answer restated for that input (droppable_for_targets should have prevented it)")
        return feature["targets"][kept]


@dataclass
class SFTRecipe(TrainRecipe):
    """A cold-start SFT run. Keys that are ``transformers.TrainingArguments`` fields
    (``weight_decay``, ``warmup_ratio``, ``lr_scheduler_type``, ...) may be given at the top level."""

    split: str = field(default="cold_start", metadata={"help": "manifest split (clips with reasoning text)"})
    mode: str = field(default="explained", metadata={"help": "explained | label_only (paper's baseline)"})
    batch_size: int = field(default=8, metadata={"help": "examples per device per step"})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "micro-steps per optimizer step"})
    epochs: float = field(default=3.0, metadata={"help": "passes over the cold-start set"})
    learning_rate: float = field(default=5e-4, metadata={"help": "peak learning rate"})
    warmup_ratio: float = field(default=0.05, metadata={"help": "share of steps with linear warm-up"})
    resume: bool | str = field(default=False, metadata={"help": "true = last checkpoint in out/checkpoints; or a path"})

    @staticmethod
    def trainer_args_class():
        from transformers import TrainingArguments

        return TrainingArguments

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not 0.0 <= self.modality_dropout <= 1.0:
            raise ValueError(f"modality_dropout must be in [0, 1], got {self.modality_dropout}")

    def training_args(self):
        from transformers import TrainingArguments

        args = {"per_device_train_batch_size": self.batch_size,
                    "gradient_accumulation_steps": self.gradient_accumulation_steps,
                    "warmup_steps": self.warmup_ratio, "lr_scheduler_type": "cosine"}
        args.update(common_args(self))
        return TrainingArguments(**args)


def build_trainer(recipe: SFTRecipe, model=None, processor=None, media_store=None, clips=None, callbacks=()):
    """The transformers Trainer a recipe describes (model, clips and media may be passed in)."""
    from transformers import Trainer

    if model is None:
        model, processor = load_policy(recipe)
    clips = clips if clips is not None else load_clips(recipe)
    store = media_store or recipe_media_store(recipe, clips, model)
    peft = lora_config(recipe.lora)
    if peft is not None:
        from peft import get_peft_model

        model = get_peft_model(model, peft)
    else:
        set_trainable(model, recipe.freeze_vision, recipe.freeze_audio)
    droppable = {c.id: droppable_for_targets(c, recipe.mode, droppable_modalities(c, recipe.modality_dropout_policy))
                 for c in clips}
    collator = OmniSFTCollator(processor, store, recipe.prompt, recipe.modality_dropout, recipe.seed, droppable)
    metrics = MetricsJSONL(recipe.out_dir / "metrics.jsonl")
    trainer = Trainer(model=model, args=recipe.training_args(), train_dataset=SFTDataset(clips, recipe.mode),
                      data_collator=collator,
                      callbacks=[FiniteGradients(recipe.max_nonfinite_steps), metrics, *callbacks])
    trainer.omnibench_clips = clips  # for the model card
    return trainer


def run_sft(recipe: SFTRecipe | dict | str, **overrides) -> Path:
    """Run SFT from a recipe (object, mapping or YAML path); returns the final model folder."""
    return run_recipe(SFTRecipe, recipe, "sft", overrides, build_trainer)


def add_sft_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML recipe (a file with an 'sft:' section also works)")
    parser.add_argument("--out", help="run folder (overrides the recipe's 'out')")
    parser.add_argument("--mode", choices=MODES, help="explained (cold start) | label_only (paper's baseline)")
    parser.add_argument("--model", help="starting model: 'tiny' or a model folder (overrides 'model')")
    parser.add_argument("--manifest", help="manifest.jsonl (overrides 'manifest')")
    parser.add_argument("--max-steps", type=int, dest="max_steps", help="optimizer steps (overrides 'max_steps')")
    parser.add_argument("--resume", action="store_true", default=None, help="continue from the last checkpoint")
    parser.add_argument("--seed", type=int, help="random seed (overrides 'seed')")
    from omnibench.model.loading import add_model_args

    add_model_args(parser, training=True)  # --device / --dtype / --attn-implementation (override the recipe's)


def cli_sft(args: argparse.Namespace) -> int:
    keys = ("out", "mode", "model", "manifest", "max_steps", "resume", "seed",
            "device", "dtype", "attn_implementation")
    overrides = {k: getattr(args, k, None) for k in keys}
    path = run_sft(args.config, **overrides)
    print(f"SFT model saved to {path}")
    return 0
