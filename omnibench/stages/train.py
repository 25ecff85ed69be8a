"""The training stages: the base model, cold-start SFT with the label-only SFT baseline, and GRPO.

* :func:`base_stage` -- the run's ``base`` checkpoint: the embedded tiny thinker built from scratch
  and perception-pretrained (:func:`omnibench.tiny.perception.build_tiny_base`), or a real model folder
  registered without copying.
* :func:`cold_start_stage` -- R1-Omni's cold start on explained answers, and the paper's label-only
  SFT baseline on the large split (:func:`omnibench.sft.run_sft`).
* :func:`grpo_stage` -- GRPO with verifiable rewards from a checkpoint of the run
  (:func:`omnibench.grpo.run_grpo`).

Each stage first leaves out the clips whose media do not decode (:func:`usable_manifest`: counted in
``skipped.jsonl``, or the first one raises with ``on_error="error"``) and writes what ``metrics.json``
keeps of its training log (``training`` section). ``02_cold_start.ipynb`` and ``03_grpo.ipynb`` call
these, then plot the logs and :func:`sample_completions`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from omnibench.io import read_jsonl
from omnibench.run import RunFolder
from omnibench.stages.config import ATTN_HELP, DEVICE_HELP, DTYPE_HELP, StageConfig, knob

__all__ = [
    "ColdStartStageConfig", "GRPOStageConfig", "base_stage", "cold_start_stage", "grpo_stage", "perception_summary",
    "run_vocabulary", "sample_completions", "training_summary", "usable_manifest",
]

_ON_ERROR = "clips whose media do not decode: skip (listed in skipped.jsonl) | error"
_PROGRESS = "tqdm progress bars while training"


@dataclass
class ColdStartStageConfig(StageConfig):
    """Parameters of the base model and the two SFT runs (``02_cold_start.ipynb``; recipe ``cold_start:``)."""

    notebook = "02_cold_start.ipynb"

    seed: int = knob(0, "model initialisation and training seed")
    device: str = knob("auto", DEVICE_HELP)
    dtype: str = knob("auto", DTYPE_HELP)
    attn_implementation: str = knob("", ATTN_HELP)
    model: str = knob("tiny", "base model: \"tiny\" (embedded thinker, built from scratch) or a local Qwen2.5-Omni folder")
    perception: dict = knob({}, "PerceptionConfig fields of the tiny base model's pre-training ({\"steps\": 0, "
                                "\"describe_steps\": 0}: none)")
    tiny: dict = knob({}, "size overrides for the tiny thinker (TinySizes fields)")
    decode: dict = knob({}, "DecodeConfig overrides for all stages (num_frames, size, ...); {}: each checkpoint's own")
    labels: list = knob([], "output labels of a tiny base model; []: the union of the label sets of the splits the "
                            "run trains on")
    perception_split: str = knob("train", "split(s) the tiny base model's perception pre-training reads")
    split: str = knob("cold_start", "split(s) of the explained cold-start SFT (clips with reasoning; a list: several)")
    epochs: float = knob(3.0, "cold-start SFT passes over the cold_start split")
    max_steps: int = knob(-1, "cold-start SFT optimizer steps; -1: from epochs")
    batch_size: int = knob(8, "examples per step")
    learning_rate: float = knob(0.0005, "peak learning rate")
    modality_dropout: float = knob(0.3, "probability that an example loses its video or its audio block")
    label_sft: bool = knob(True, "also train the label-only SFT baseline (R1-Omni table row)")
    label_sft_split: str = knob("train", "split(s) the label-only baseline trains on (a list: several datasets)")
    label_sft_epochs: float = knob(1.0, "label-only SFT passes over its split")
    label_sft_max_steps: int = knob(-1, "label-only SFT optimizer steps; -1: from epochs")
    extra: dict = knob({}, "further SFTRecipe / TrainingArguments keys for both runs")
    n_samples: int = knob(4, "clips of samples_split whose completions are shown")
    samples_split: str = knob("test_id", "split the sample completions come from")
    on_error: str = knob("skip", _ON_ERROR)
    max_new_tokens: int = knob(64, "generation budget for the samples")
    progress: bool = knob(False, _PROGRESS)


@dataclass
class GRPOStageConfig(StageConfig):
    """Parameters of GRPO (``03_grpo.ipynb``; recipe ``grpo:``)."""

    notebook = "03_grpo.ipynb"

    seed: int = knob(0, "sampling and training seed")
    device: str = knob("auto", DEVICE_HELP)
    dtype: str = knob("auto", DTYPE_HELP)
    attn_implementation: str = knob("", ATTN_HELP)
    init: str = knob("cold_start", "checkpoint GRPO starts from (cold_start | label_sft | base)")
    decode: dict = knob({}, "DecodeConfig overrides of the starting checkpoint's settings; {}: its own")
    split: str = knob("train", "split(s) GRPO trains on (labels only; a list: several datasets, e.g. dfew/train + "
                               "mafw/train)")
    max_clips: int = knob(0, "use only the first N clips of the split; 0: all")
    max_steps: int = knob(60, "GRPO optimizer steps")
    num_generations: int = knob(4, "completions per clip (G)")
    per_device_train_batch_size: int = knob(8, "completions per step (a multiple of G)")
    learning_rate: float = knob(0.0002, "peak learning rate")
    beta: float = knob(0.04, "KL coefficient; 0: no reference model")
    temperature: float = knob(1.0, "sampling temperature")
    max_completion_length: int = knob(48, "tokens per completion")
    modality_dropout: float = knob(0.3, "probability that a clip loses its video or its audio block")
    rewards: dict = knob({"accuracy": 1.0, "format": 1.0}, "reward name -> weight")
    extra: dict = knob({}, "further GRPORecipe / GRPOConfig keys")
    n_samples: int = knob(4, "clips whose completions are compared before and after GRPO")
    samples_split: str = knob("test_id", "split the compared clips come from")
    on_error: str = knob("skip", _ON_ERROR)
    progress: bool = knob(False, _PROGRESS)


# --------------------------------------------------------------------------------------------------
# The stages
# --------------------------------------------------------------------------------------------------


def base_stage(run: RunFolder, config: ColdStartStageConfig) -> Path:
    """The base checkpoint of the run, ``checkpoints/base/model``.

    ``model="tiny"``: the embedded tiny thinker, built from scratch, then pre-trained on the run's
    ``perception_split`` (``perception`` holds :class:`~omnibench.tiny.perception.PerceptionConfig`
    fields; ``{"steps": 0, "describe_steps": 0}`` skips it) so that the base model, like a real omni
    model, starts with working perception and no emotion answer; the history goes to
    ``checkpoints/base/perception.jsonl`` and its summary to ``metrics.json``. The clips it reads are
    those whose media decode. Any other ``model`` is a local model folder, registered without copying
    (its encoders are already trained)."""
    cfg = config
    log_path = run.train_dir("base") / "perception.jsonl"
    log_path.unlink(missing_ok=True)  # a re-run's old history
    if cfg.model != "tiny":
        path = Path(cfg.model).expanduser()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"base model folder {path} has no config.json; give a local Qwen2.5-Omni "
                                    "folder or 'tiny'")
        return run.register_checkpoint("base", path)
    from omnibench.labels import DFEW7
    from omnibench.model import save_model
    from omnibench.tiny import build_tiny
    from omnibench.tiny.perception import PerceptionConfig, build_tiny_base

    labels = tuple(cfg.labels) or run_vocabulary(run, [cfg.split, cfg.label_sft_split])
    perception = PerceptionConfig(**{"seed": cfg.seed, **dict(cfg.perception)})
    out = run.checkpoint("base")
    if perception.steps or perception.describe_steps:
        manifest = usable_manifest(run, "base", cfg.perception_split, None, cfg.decode, cfg.on_error)
        path = build_tiny_base(manifest, out, split=cfg.perception_split, seed=cfg.seed, config=perception,
                               decode=cfg.decode, tiny=cfg.tiny, labels=labels, cache_dir=run.decode_cache_dir,
                               progress=cfg.progress, log_path=log_path, **cfg.model_flags())
        run.update_metrics("training", {"base": perception_summary(log_path)})
        return path
    m, processor = build_tiny(labels=tuple(labels or DFEW7), seed=cfg.seed, **dict(cfg.tiny))
    save_model(m, processor, out, decode=cfg.decode)
    return out


def _sft(run: RunFolder, cfg: ColdStartStageConfig, name: str, mode: str, split, epochs: float, max_steps: int,
         base: Path) -> Path:
    from omnibench.sft import run_sft

    manifest = usable_manifest(run, name, split, base, cfg.decode, cfg.on_error)
    return run_sft(dict(manifest=str(manifest), split=split, mode=mode, model=str(base), out=str(run.train_dir(name)),
                        seed=cfg.seed, decode=cfg.decode, epochs=epochs, max_steps=max_steps,
                        batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
                        modality_dropout=cfg.modality_dropout, progress=cfg.progress, **cfg.model_flags(),
                        **cfg.extra))


def cold_start_stage(run: RunFolder, config: ColdStartStageConfig, base: os.PathLike | None = None) -> dict[str, Path]:
    """Cold-start SFT on explained answers (``checkpoints/cold_start``) and, with ``label_sft``, the
    label-only SFT baseline (``checkpoints/label_sft``) from ``base`` (default the run's base
    checkpoint); their loss summaries go to ``metrics.json``. Returns checkpoint name -> model folder."""
    cfg = config
    base = Path(base) if base else run.checkpoint("base")
    out = {"cold_start": _sft(run, cfg, "cold_start", "explained", cfg.split, cfg.epochs, cfg.max_steps, base)}
    if cfg.label_sft:
        out["label_sft"] = _sft(run, cfg, "label_sft", "label_only", cfg.label_sft_split, cfg.label_sft_epochs,
                                cfg.label_sft_max_steps, base)
    run.update_metrics("training", {name: training_summary(run.train_dir(name) / "metrics.jsonl", keys=["loss"])
                                    for name in out})
    return out


def grpo_stage(run: RunFolder, config: GRPOStageConfig) -> Path:
    """GRPO from the run's ``init`` checkpoint on ``split`` (``checkpoints/grpo``); the summary of its
    log (accuracy, format rate, reward, KL, completion length) goes to ``metrics.json``."""
    from omnibench.grpo import run_grpo

    cfg = config
    start = run.checkpoint(cfg.init)
    print("GRPO starts from", start)
    manifest = usable_manifest(run, "grpo", cfg.split, start, cfg.decode, cfg.on_error, max_clips=cfg.max_clips or None)
    path = run_grpo(dict(manifest=str(manifest), split=cfg.split, model=str(start), out=str(run.train_dir("grpo")),
                         seed=cfg.seed, decode=cfg.decode, max_clips=cfg.max_clips or None, max_steps=cfg.max_steps,
                         num_generations=cfg.num_generations,
                         per_device_train_batch_size=cfg.per_device_train_batch_size,
                         learning_rate=cfg.learning_rate, beta=cfg.beta, temperature=cfg.temperature,
                         max_completion_length=cfg.max_completion_length, modality_dropout=cfg.modality_dropout,
                         rewards=cfg.rewards, progress=cfg.progress, **cfg.model_flags(), **cfg.extra))
    run.update_metrics("training", {"grpo": training_summary(
        run.train_dir("grpo") / "metrics.jsonl", keys=["accuracy", "format_rate", "reward", "kl", "completion_length"])})
    return path


def sample_completions(run: RunFolder, config: ColdStartStageConfig | GRPOStageConfig, checkpoints: Mapping[str, os.PathLike],
                       sample: bool = False, max_new_tokens: int | None = None):
    """A table of the first ``n_samples`` usable clips of ``samples_split`` (id, gold, condition) with
    one column of completions per checkpoint: greedy, or sampled at the config's ``temperature``
    (``sample=True``, torch seeded with ``seed`` before each checkpoint), each decoded with the
    checkpoint's own settings (``decode`` overriding them)."""
    import pandas as pd
    import torch

    from omnibench.data.manifest import read_manifest
    from omnibench.data.media import MediaStore, decode_config_for
    from omnibench.model import generate, load_model
    from omnibench.model.inputs import ALL

    cfg = config
    first = next(iter(checkpoints.values()))
    clips = MediaStore([], decode_config_for(first, cfg.decode), run.decode_cache, on_error=cfg.on_error).usable(
        read_manifest(run.manifest, split=cfg.samples_split)[:cfg.n_samples])
    table = pd.DataFrame({"id": [c.id for c in clips], "gold": [c.label for c in clips],
                          "condition": [(c.meta or {}).get("condition") for c in clips]})
    tokens = max_new_tokens or getattr(cfg, "max_new_tokens", None) or cfg.max_completion_length
    for name, path in checkpoints.items():
        if sample:
            torch.manual_seed(cfg.seed)
        m, processor = load_model(path, **cfg.load_kwargs())
        store = MediaStore(clips, decode_config_for(m, cfg.decode), run.decode_cache)  # the checkpoint's settings
        kw = {"do_sample": True, "temperature": cfg.temperature} if sample else {}
        table[name] = generate(m, processor, store.decode(clips), ALL, max_new_tokens=tokens, **kw)
    return table


# --------------------------------------------------------------------------------------------------
# What the training stages share
# --------------------------------------------------------------------------------------------------


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


def as_list(splits) -> list[str]:
    """A split name or a (nested) list of them, as a flat list without repeats."""
    if isinstance(splits, str):
        return [splits]
    out: list[str] = []
    for s in splits or []:
        out += [x for x in as_list(s) if x not in out]
    return out


def run_vocabulary(run: RunFolder, splits: Sequence[str] | str = ()) -> tuple[str, ...] | None:
    """The labels a tiny base model of this run answers in: the union of the label sets of the splits
    the run trains on (:meth:`RunFolder.training_splits` from ``params.yaml``, plus ``splits``), DFEW's
    seven first (:func:`omnibench.data.summary.label_union`). None when that union is the DFEW seven
    (SynthEmo: the tiny model's default, unchanged)."""
    from omnibench.data.manifest import read_manifest
    from omnibench.data.summary import label_union
    from omnibench.labels import DFEW7

    wanted = list(dict.fromkeys(run.training_splits() + as_list(splits)))
    clips = read_manifest(run.manifest, split=wanted, check_media=False)
    labels = label_union(clips, base=DFEW7)
    return None if labels == DFEW7 else labels


def usable_manifest(run: RunFolder, stage: str, splits: Sequence[str] | str, model: str | os.PathLike | None = None,
                    decode: Mapping | None = None, on_error: str = "skip", max_clips: int | None = None,
                    progress: bool = False) -> Path:
    """The manifest a training stage reads: ``run.manifest`` when every clip of ``splits`` (the first
    ``max_clips``) decodes, else ``data/<stage>.jsonl`` without the clips that do not, which are
    recorded in ``skipped.jsonl`` (stage, split, id, reason) and printed. Clips are decoded with the
    settings the stage trains with (``model``'s checkpoint settings overridden by ``decode``; the
    DecodeConfig defaults for a model built from scratch) through the run's decode cache, so training
    reads them back without decoding again. ``on_error="error"``: the first undecodable clip raises."""
    from omnibench.data.manifest import read_manifest, write_manifest
    from omnibench.data.media import DecodeConfig, MediaStore, decode_config_for

    cfg = decode_config_for(model, decode, warn=False) if model not in (None, "tiny") else DecodeConfig.coerce(decode)
    store = MediaStore([], cfg, run.decode_cache, on_error=on_error)
    for split in as_list(splits):
        clips = read_manifest(run.manifest, split=split)
        before = set(store.skipped)
        if max_clips:  # the first max_clips usable clips (what the stage's max_clips then takes)
            n_ok = 0
            for c in clips:
                if n_ok >= max_clips:
                    break
                n_ok += len(store.usable([c]))
        else:
            store.usable(clips, progress=progress)
        mine = {k: v for k, v in store.skipped.items() if k not in before}
        run.record_skipped(stage, split, mine)
        if mine:
            print(f"{stage}: skipped {len(mine)} of {len(clips)} clips of {split} whose media do not decode "
                  f"(listed in {run.skipped_path}): {', '.join(list(mine)[:5])}")
    if not store.skipped:
        return run.manifest
    keep = [c for c in read_manifest(run.manifest) if c.id not in store.skipped]
    return write_manifest(keep, run.data / f"{stage}.jsonl")
