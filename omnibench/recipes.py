"""Training recipes (YAML -> dataclasses) and the pieces SFT and GRPO share.

A recipe is a YAML mapping. Its keys are either fields of the recipe dataclass
(:class:`omnibench.sft.SFTRecipe`, :class:`omnibench.grpo.GRPORecipe`, both built on
:class:`TrainRecipe` below) or fields of the trainer's arguments class (transformers'
``TrainingArguments`` for SFT, TRL's ``GRPOConfig`` for GRPO): those are collected into the
recipe's ``trainer`` dict and passed to the arguments class unchanged, so every TRL option
(``loss_type``, ``scale_rewards``, ``epsilon``, ``num_iterations``, ``mask_truncated_completions``,
...) is available from YAML without this module naming it. Any other key is an error that names
the file and the closest valid key.

A pipeline config may hold several stages; :func:`load_recipe` then reads the section named after
the stage (``sft:`` / ``grpo:``) and inherits the top-level keys that are recipe fields
(``manifest``, ``seed``, ...).

Shared helpers: :func:`recipe_decode` (the starting checkpoint's decode settings, overridden by the
recipe's ``decode``) and :func:`recipe_media_store` (the run's
:class:`~omnibench.data.media.MediaStore`, re-exported here),
:func:`load_policy` (tiny model or checkpoint), :func:`set_trainable` (freeze towers),
:func:`lora_config` (LoRA restricted to the language model), :func:`modality_dropout`,
:class:`MetricsJSONL` (per-step metrics as JSONL), :func:`resolve_bf16` and :class:`FiniteGradients`.

Precision is done as the ecosystem does it: the weights are loaded in float32 (``dtype: auto``,
master weights; transformers 5 would otherwise load a bf16 checkpoint in bf16 and AdamW would then
update pure bf16 weights) and ``bf16: auto`` turns on bf16 autocast on a GPU (TrainingArguments /
GRPOConfig ``bf16=True``). Pure bf16 weights only with ``dtype: bfloat16``. ``device: cpu`` trains
on the CPU even where CUDA is present (``use_cpu``; bf16 autocast then runs on the CPU too).

Multi-process (``torchrun`` / ``accelerate launch``): DDP is configured with
``ddp_find_unused_parameters=True``, because modality dropout leaves a tower without gradient in
some steps and which tower varies from step to step (a static graph would be wrong); the final
model is written once through the Trainer's ``save_model`` (which gathers ZeRO-3 partitions), with
a model card (:mod:`omnibench.model.card`).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from omnibench.callbacks import FiniteGradients, MetricsJSONL, NonFiniteGradientError, read_metrics
from omnibench.data.media import DecodeConfig, MediaStore, decode_config_for, saved_decode_settings
from omnibench.dropout import DROPOUT_POLICIES, droppable_modalities, modality_dropout, stable_seed
from omnibench.io import atomic_write_text, json_safe

# re-exported: the one media store lives in omnibench.data.media, the Trainer callbacks in
# omnibench.callbacks, modality dropout in omnibench.dropout
__all__ = ["DROPOUT_POLICIES", "FiniteGradients", "MediaStore", "MetricsJSONL", "NonFiniteGradientError",
           "droppable_modalities", "modality_dropout", "read_metrics", "stable_seed"]

# ------------------------------------------------------------------------------------------ recipes


@dataclass
class TrainRecipe:
    """Fields shared by the SFT and GRPO recipes (help text on each field)."""

    manifest: str = field(default="data/synthemo/manifest.jsonl", metadata={"help": "manifest.jsonl of clips"})
    split: str = field(default="train", metadata={"help": "manifest split to train on"})
    model: str = field(
        default="tiny",
        metadata={"help": "'tiny' builds the embedded tiny thinker; otherwise a saved model folder (load_model)"},
    )
    tiny: dict = field(default_factory=dict, metadata={"help": "size overrides for build_tiny when model='tiny'"})
    out: str = field(default="runs/train", metadata={"help": "run folder: checkpoints/, model/, metrics.jsonl"})
    max_clips: int | None = field(default=None, metadata={"help": "use only the first N clips of the split"})
    prompt: str | None = field(default=None, metadata={"help": "user prompt; None = R1-Omni's DEFAULT_PROMPT"})
    decode: dict = field(
        default_factory=dict, metadata={"help": "DecodeConfig fields (num_frames, size, sr, max_audio_s, ...)"}
    )
    cache_dir: str | None = field(
        default=None, metadata={"help": "decode cache folder; None = <manifest folder>/.decode_cache"}
    )
    modality_dropout: float = field(
        default=0.0,
        metadata={"help": "probability that a training example has its video or its audio block dropped (50/50)"},
    )
    modality_dropout_policy: str = field(
        default="any",
        metadata={"help": "any: drop video or audio; consistent: drop a modality only when the one kept still "
                          "carries the clip's label (needs per-modality labels, as SynthEmo's meta has)"},
    )
    freeze_vision: bool = field(default=False, metadata={"help": "freeze the vision tower"})
    freeze_audio: bool = field(default=False, metadata={"help": "freeze the audio tower"})
    lora: dict | None = field(
        default=None,
        metadata={"help": "LoRA on the language model: {r, alpha, dropout, targets}; None = full fine-tuning"},
    )
    seed: int = field(default=0, metadata={"help": "random seed (model init, sampling, dropout)"})
    max_steps: int = field(default=-1, metadata={"help": "optimizer steps; -1 = from epochs"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the split when max_steps = -1"})
    learning_rate: float = field(default=1e-4, metadata={"help": "peak learning rate"})
    save_steps: int = field(default=0, metadata={"help": "checkpoint every N steps (0 = only at the end)"})
    bf16: bool | str = field(default="auto", metadata={"help": "bf16 mixed precision (autocast over float32 "
                                                                "weights): true | false | auto (CUDA)"})
    device: str = field(default="auto", metadata={"help": "auto (the Trainer's: CUDA when present) | cpu | cuda"})
    dtype: str = field(default="auto", metadata={"help": "weights' dtype: auto = float32 master weights; bfloat16 "
                                                          "= pure bf16 (only when asked)"})
    attn_implementation: str | None = field(
        default=None, metadata={"help": "sdpa | eager | flash_attention_2 (None: transformers' choice)"})
    report_to: list | str = field(
        default_factory=list, metadata={"help": "trainer loggers: [] | tensorboard | wandb | ... (TrainingArguments)"})
    max_nonfinite_steps: int = field(
        default=3, metadata={"help": "optimizer steps in a row with a non-finite gradient that are skipped before "
                                     "the run stops with an error (0 = stop at the first)"})
    progress: bool = field(default=True, metadata={"help": "show tqdm progress bars"})
    threads: int | str | None = field(
        default="auto",
        metadata={"help": "torch CPU threads; 'auto' = 1 when no CUDA device is present (the tiny model's small "
                  "matrices gain nothing from more, and a busy machine makes extra threads many times slower), "
                  "None = leave torch's setting"},
    )
    trainer: dict = field(
        default_factory=dict, metadata={"help": "further TrainingArguments / GRPOConfig fields, passed unchanged"}
    )

    @property
    def out_dir(self) -> Path:
        return Path(self.out)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}


def _recipe_fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if f.init}


def _args_fields(cls) -> set[str]:
    args_class = cls.trainer_args_class() if hasattr(cls, "trainer_args_class") else None
    return {f.name for f in dataclasses.fields(args_class)} if args_class else set()


def load_recipe(
    cls,
    source: str | os.PathLike | Mapping | None = None,
    section: str | None = None,
    overrides: Mapping[str, Any] | None = None,
):
    """Build a recipe dataclass ``cls`` from a YAML file (or mapping), then apply ``overrides``.

    With ``section`` (e.g. ``"grpo"``) and a file that has that top-level key, the section is read
    and the top-level keys that are ``cls`` fields are inherited. Keys that are fields of the
    trainer's arguments class go to ``recipe.trainer``. Unknown keys raise ``ValueError``.
    """
    name = str(source) if isinstance(source, (str, os.PathLike)) else "<recipe>"
    if source is None:
        data: dict = {}
    elif isinstance(source, Mapping):
        data = dict(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"recipe file {path} not found")
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a recipe must be a YAML mapping, got {type(data).__name__}")
    own = _recipe_fields(cls)
    if section and isinstance(data.get(section), Mapping):
        inherited = {k: v for k, v in data.items() if k in own}
        data = {**inherited, **data[section]}
    data = {**data, **{k: v for k, v in (overrides or {}).items() if v is not None}}

    trainer_keys = _args_fields(cls)
    kwargs: dict[str, Any] = {}
    trainer: dict[str, Any] = dict(data.pop("trainer", None) or {})
    for key, value in data.items():
        if key in own:
            kwargs[key] = value
        elif key in trainer_keys:
            trainer[key] = value
        else:
            close = difflib.get_close_matches(key, sorted(own | trainer_keys), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{name}: unknown recipe key {key!r} for {cls.__name__}{hint}")
    bad = sorted(set(trainer) - trainer_keys) if trainer_keys else []
    if bad:
        raise ValueError(f"{name}: trainer keys {bad} are not fields of {cls.trainer_args_class().__name__}")
    kwargs["trainer"] = trainer
    recipe = cls(**kwargs)
    recipe.validate() if hasattr(recipe, "validate") else None
    return recipe


def save_recipe(recipe: TrainRecipe, path: str | os.PathLike) -> Path:
    """Write the resolved recipe as YAML (the run folder's record of what ran)."""
    return atomic_write_text(path, yaml.safe_dump(json_safe(recipe.to_dict()), sort_keys=False))


def apply_threads(recipe: TrainRecipe) -> None:
    """Set torch's CPU thread count as the recipe asks ('auto': 1 on a machine without CUDA)."""
    import torch

    threads = recipe.threads
    if isinstance(threads, str):
        if threads.lower() != "auto":
            raise ValueError(f"threads must be an integer, 'auto' or null, got {threads!r}")
        threads = None if torch.cuda.is_available() else 1
    if threads:
        torch.set_num_threads(int(threads))


def resolve_bf16(value: bool | str, device: str = "auto") -> bool:
    """``"auto"`` -> True on a CUDA device with bf16 support (and ``device`` not ``cpu``), else False."""
    if isinstance(value, str):
        if value.lower() != "auto":
            raise ValueError(f"bf16 must be true, false or 'auto', got {value!r}")
        import torch

        return bool(str(device) != "cpu" and torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return bool(value)


def policy_load_kwargs(recipe: TrainRecipe) -> dict[str, Any]:
    """dtype and attention of the policy: the recipe's ``dtype`` / ``attn_implementation``, or
    ``trainer.model_init_kwargs`` (TRL's key, honoured here because the model is built before the
    trainer); ``dtype: auto`` = float32 master weights."""
    from omnibench.model.loading import resolve_dtype

    init = dict((recipe.trainer or {}).get("model_init_kwargs") or {})
    unknown = sorted(set(init) - {"dtype", "torch_dtype", "attn_implementation"})
    if unknown:
        raise ValueError(f"model_init_kwargs {unknown} are not supported here; use dtype / attn_implementation")
    dtype = init.get("dtype", init.get("torch_dtype", recipe.dtype))
    device = "cpu" if recipe.device == "cpu" else None
    return {"dtype": resolve_dtype(dtype, device, training=True),
            "attn_implementation": init.get("attn_implementation", recipe.attn_implementation)}


# ------------------------------------------------------------------------------------------ data


def load_clips(recipe: TrainRecipe):
    """The recipe's clips (manifest split, first ``max_clips``); errors name the manifest."""
    from omnibench.data.manifest import read_manifest

    path = Path(recipe.manifest)
    if not path.is_file():
        raise FileNotFoundError(
            f"manifest {path} not found; create SynthEmo with `omnibench synth --out {path.parent}` or index a dataset"
        )
    clips = read_manifest(path, split=recipe.split)
    if not clips:
        raise ValueError(f"manifest {path} has no clips in split {recipe.split!r}")
    return clips[: recipe.max_clips] if recipe.max_clips else clips


def recipe_decode(recipe: TrainRecipe, model=None) -> DecodeConfig:
    """The decode settings a run trains with: the starting checkpoint's (``config.omnibench_decode``),
    overridden by the recipe's ``decode`` (a difference is a logged warning, see
    :func:`~omnibench.data.media.decode_config_for`); a tiny model built from scratch has none, so
    the recipe's ``decode`` over the DecodeConfig defaults."""
    if model is None or (recipe.model == "tiny" and saved_decode_settings(model) is None):
        return DecodeConfig.coerce(recipe.decode)
    return decode_config_for(model, recipe.decode)


def recipe_media_store(recipe: TrainRecipe, clips, model=None) -> MediaStore:
    """The :class:`MediaStore` of a run: ``recipe_decode`` settings, cache ``recipe.cache_dir``
    (default ``<manifest folder>/.decode_cache``)."""
    cache = recipe.cache_dir or str(Path(recipe.manifest).parent / ".decode_cache")
    return MediaStore(clips, recipe_decode(recipe, model), cache)


# ------------------------------------------------------------------------------------------ model


def load_policy(recipe: TrainRecipe):
    """(model, processor): the tiny thinker built from scratch or a saved model folder."""
    from omnibench.model import load_model
    from omnibench.tiny import build_tiny

    kwargs = policy_load_kwargs(recipe)
    if recipe.model == "tiny":
        model, processor = build_tiny(seed=recipe.seed, **dict(recipe.tiny or {}))
        if kwargs["attn_implementation"]:
            model.set_attn_implementation(kwargs["attn_implementation"])
        return model.to(kwargs["dtype"]), processor
    path = Path(recipe.model)
    if not path.is_dir():
        raise FileNotFoundError(
            f"model folder {path} not found; give a folder written by save_model/run_sft, or build the tiny "
            f"base model there first (`omnibench base --manifest MANIFEST --out {path}`), or model: tiny"
        )
    return load_model(path, **kwargs)


#: LoRA targets: projection layers of the language model only (not the vision or audio towers).
LM_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


def lora_config(spec: Mapping | None):
    """peft ``LoraConfig`` restricted to the language model, or None for full fine-tuning.

    ``spec`` keys: ``r`` (8), ``alpha`` (16), ``dropout`` (0.05), ``targets`` (a regex over module
    names; default :data:`LM_LORA_TARGETS`), ``modules_to_save`` (e.g. towers to train fully).
    """
    if not spec:
        return None
    from peft import LoraConfig

    spec = dict(spec)
    allowed = {"r", "alpha", "dropout", "targets", "modules_to_save"}
    if set(spec) - allowed:
        raise ValueError(f"lora keys {sorted(set(spec) - allowed)} unknown; use {sorted(allowed)}")
    return LoraConfig(
        r=int(spec.get("r", 8)),
        lora_alpha=int(spec.get("alpha", 16)),
        lora_dropout=float(spec.get("dropout", 0.05)),
        target_modules=spec.get("targets", LM_LORA_TARGETS),
        modules_to_save=spec.get("modules_to_save"),
        task_type="CAUSAL_LM",
    )


def tower_modules(model) -> dict[str, Any]:
    """The vision and audio tower modules of a thinker (keys 'vision', 'audio'; found by
    :mod:`omnibench.model.parts`, through any wrapper)."""
    from omnibench.model.parts import audio_tower, vision_tower

    return {"vision": vision_tower(model), "audio": audio_tower(model)}


def set_trainable(model, freeze_vision: bool = False, freeze_audio: bool = False) -> dict[str, int]:
    """Freeze the requested towers; returns trainable parameter counts per part."""
    towers = tower_modules(model)
    for name, frozen in (("vision", freeze_vision), ("audio", freeze_audio)):
        if frozen and towers[name] is not None:
            towers[name].requires_grad_(False)
    counts = {name: sum(p.numel() for p in m.parameters() if p.requires_grad) if m is not None else 0
              for name, m in towers.items()}
    counts["total"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return counts


# ------------------------------------------------------------------------------------------ logging
# Trainer callbacks (per-step metrics JSONL, the non-finite gradient guard) live in omnibench.callbacks.


def last_checkpoint(out_dir: str | os.PathLike) -> str | None:
    """The newest ``checkpoint-N`` folder under ``<out>/checkpoints`` (None if there is none)."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = Path(out_dir) / "checkpoints"
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def common_args(recipe: TrainRecipe) -> dict[str, Any]:
    """TrainingArguments values every run sets from the recipe (the ``trainer`` dict wins)."""
    from omnibench.model.loading import resolve_device

    save_steps = recipe.save_steps if recipe.save_steps and recipe.save_steps > 0 else None
    report_to = [recipe.report_to] if isinstance(recipe.report_to, str) else list(recipe.report_to or [])
    args = {
        "output_dir": str(recipe.out_dir / "checkpoints"),
        "max_steps": recipe.max_steps,
        "num_train_epochs": recipe.epochs,
        "learning_rate": recipe.learning_rate,
        "seed": recipe.seed,
        "data_seed": recipe.seed,
        "bf16": resolve_bf16(recipe.bf16, recipe.device),
        # the CPU explicitly (``device: cpu``, or no CUDA): also what makes torchrun on CPUs run DDP over gloo
        "use_cpu": resolve_device(recipe.device) == "cpu",
        "logging_steps": 1,
        "save_strategy": "steps" if save_steps else "no",
        "save_steps": save_steps or 500,
        "report_to": report_to,
        "ddp_find_unused_parameters": True,  # modality dropout: a tower may get no gradient in a step
        "disable_tqdm": not recipe.progress,
        "remove_unused_columns": False,
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": False,
        "gradient_checkpointing": False,
    }
    args.update({k: v for k, v in (recipe.trainer or {}).items() if k != "model_init_kwargs"})
    if args.get("gradient_checkpointing") and not args.get("gradient_checkpointing_kwargs"):
        args["gradient_checkpointing_kwargs"] = {"use_reentrant": False}  # works with DDP's unused parameters
    return args


def run_recipe(cls, recipe, section: str, overrides: Mapping, build_trainer) -> Path:
    """Train what a recipe describes and save the final model; shared by SFT and GRPO.

    ``recipe`` is a ``cls`` instance, a mapping or a YAML path (its ``section`` is read);
    ``overrides`` (None values ignored) replace recipe fields. Then: applies the thread setting, loads
    the policy, resolves the decode settings (:func:`recipe_decode`; printed, written to
    ``recipe.yaml`` and recorded in the model's config), builds the trainer with
    ``build_trainer(recipe, model, processor)``, resumes from the last checkpoint when
    ``recipe.resume`` is true (saying so when there is none), trains, and saves the policy (LoRA
    merged) with its processor and decode settings to ``out_dir/model``.
    """
    from omnibench.model import save_model

    if not isinstance(recipe, cls):
        recipe = load_recipe(cls, recipe, section=section, overrides=overrides)
    elif overrides:
        recipe = load_recipe(cls, {**recipe.to_dict(), **overrides})
    apply_threads(recipe)
    model, processor = load_policy(recipe)
    decode = recipe_decode(recipe, model)
    recipe = dataclasses.replace(recipe, decode=decode.to_dict())  # the effective settings, in recipe.yaml
    save_recipe(recipe, recipe.out_dir / "recipe.yaml")
    model.config.omnibench_decode = decode.settings()  # in every Trainer checkpoint too
    print(f"decode: {decode.describe()}")
    # the output vocabulary: the starting model's labels and every training clip's label set
    from omnibench.data.summary import label_union
    from omnibench.labels import DFEW7

    start_labels = getattr(model.config, "omnibench_labels", None) or DFEW7
    model.config.omnibench_labels = list(label_union(load_clips(recipe), start_labels))
    trainer = build_trainer(recipe, model, processor)
    resume = recipe.resume
    if resume is True:
        resume = last_checkpoint(recipe.out_dir)
        if resume is None:
            print(f"--resume: no checkpoint under {recipe.out_dir / 'checkpoints'}; starting from the beginning")
    output = trainer.train(resume_from_checkpoint=resume or None)
    final = recipe.out_dir / "model"
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    main = trainer.accelerator.is_main_process
    if hasattr(unwrapped, "merge_and_unload"):  # LoRA: merge the adapters into the base weights
        if main:
            save_model(unwrapped.merge_and_unload(), processor, final, decode=decode)
    else:  # every rank calls it: under ZeRO-3 it gathers the partitioned weights; rank 0 writes them
        trainer.save_model(str(final))
        if main:
            save_model_extras(unwrapped, processor, final)
    if main:
        from omnibench.model.card import write_model_card

        write_model_card(final, stage=section, model_config=unwrapped.config, recipe=recipe,
                         clips=getattr(trainer, "omnibench_clips", ()), decode=decode,
                         metrics=run_metrics(trainer, output))
    trainer.accelerator.wait_for_everyone()
    return final


def save_model_extras(model, processor, folder: Path) -> None:
    """What ``Trainer.save_model`` leaves out of a model folder that :func:`omnibench.model.load_model`
    reads: the processor (tokenizer, chat template, feature extractor, video processor) and the
    generation config; ``training_args.bin`` is removed (a pickle, not needed to load the model)."""
    processor.save_pretrained(folder)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(folder)
    (folder / "training_args.bin").unlink(missing_ok=True)


def run_metrics(trainer, output=None) -> dict[str, Any]:
    """Headline figures of a finished run for the model card: steps, final-step loss (and accuracy /
    format rate for GRPO), train runtime; only those that were logged."""
    logs = [r for r in trainer.state.log_history if "loss" in r]
    out: dict[str, Any] = {"optimizer_steps": trainer.state.global_step}
    if logs:
        last = logs[-1]
        for key, name in (("loss", "final_loss"), ("rewards/accuracy_reward/mean", "final_accuracy_reward"),
                          ("rewards/format_reward/mean", "final_format_reward")):
            if isinstance(last.get(key), (int, float)):
                out[name] = float(last[key])
    metrics = getattr(output, "metrics", None) or {}
    for key in ("train_loss", "train_runtime"):
        if isinstance(metrics.get(key), (int, float)):
            out[key] = float(metrics[key])
    return out
