"""Perception pre-training of the tiny base model: towers that see, a language model that describes.

Real omni models never start blank: Qwen2.5-Omni's vision tower comes from Qwen2.5-VL and its audio
tower from Whisper, and R1-Omni's base (HumanOmni) was trained on human-centric video descriptions
before any emotion RL. The embedded tiny thinker is built from scratch, and from scratch neither
cold-start SFT nor GRPO gets it off the ground: its 2-layer language model passes too little gradient
back to the towers (label-only SFT of the whole model on 2,800 SynthEmo clips stays at chance on the
face after 300 steps), and 140 explained clips are too few to learn to read the towers.

:func:`pretrain_tiny_base` gives the tiny base model the two things a real base model brings, and no
emotion answer:

1. **towers** (:func:`pretrain_encoders`): each tower's output tokens are mean-pooled and read by a
   linear head (discarded afterwards), trained with cross-entropy on per-modality targets --
   ``targets="modality"`` (default, SynthEmo): the face's expression ``meta["video_label"]`` for the
   vision tower, the voice's ``meta["audio_label"]`` for the audio tower (the single-modality
   recognisers real encoders learn from); ``targets="label"``: the clip's label for both towers;
2. **description** (:func:`pretrain_describer`): the whole model learns to answer
   :data:`DESCRIBE_PROMPT` with what the face and the voice show (:func:`omnibench.data.synth.description_text`
   of the clip's cues, or ``meta["description"]``) -- cue phrases only, no emotion word, no think/answer
   format, no modality dropout.

The base model therefore still cannot answer the emotion prompt (base row of the results table);
cold-start SFT and GRPO teach that. Read-out accuracy on held-out clips and the description loss are
logged (``history``) for the notebook's plot.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from omnibench.io import append_jsonl
from omnibench.model.inputs import ALL, ClipInputs
from omnibench.model.parts import QWEN2_5_THINKER, thinker

TARGETS = ("modality", "label")
#: the prompt of the description stage (never the emotion prompt)
DESCRIBE_PROMPT = "Describe the face and the voice."


@dataclass
class PerceptionConfig:
    """Settings of :func:`pretrain_encoders`."""

    steps: int = field(default=600, metadata={"help": "tower read-out steps (0 = none)"})
    batch_size: int = field(default=32, metadata={"help": "clips per step"})
    learning_rate: float = field(default=6e-3, metadata={"help": "tower read-out peak AdamW learning rate (linear decay)"})
    warmup_steps: int = field(default=0, metadata={"help": "linear warm-up steps"})
    max_grad_norm: float | None = field(default=None, metadata={"help": "clip each tower's gradient norm (None = no clipping)"})
    targets: str = field(default="modality", metadata={"help": "modality (meta video_label/audio_label) | label"})
    val_fraction: float = field(default=0.1, metadata={"help": "clips held out for the read-out accuracy"})
    eval_every: int = field(default=100, metadata={"help": "steps between held-out evaluations"})
    describe_steps: int = field(default=400, metadata={"help": "description SFT steps (0 = none)"})
    describe_batch_size: int = field(default=16, metadata={"help": "clips per description step"})
    describe_learning_rate: float = field(default=3e-3, metadata={"help": "description SFT peak learning rate"})
    describe_max_grad_norm: float = field(default=1.0, metadata={"help": "description SFT gradient clipping"})
    seed: int = field(default=0, metadata={"help": "batch order and head initialisation"})

    def __post_init__(self):
        if self.targets not in TARGETS:
            raise ValueError(f"targets must be one of {TARGETS}, got {self.targets!r}")
        if self.steps < 0 or self.batch_size < 1 or self.describe_steps < 0 or self.describe_batch_size < 1:
            raise ValueError("steps must be >= 0 and batch sizes >= 1")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")


def modality_targets(clips: Sequence, labels: Sequence[str], targets: str = "modality") -> dict[str, np.ndarray]:
    """Per-modality target indices into ``labels`` for ``clips`` (see the module docstring).

    Raises a ValueError naming the clip and the fix when a target is missing or outside ``labels``."""
    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {TARGETS}, got {targets!r}")
    index = {lab: i for i, lab in enumerate(labels)}
    out: dict[str, list[int]] = {"video": [], "audio": []}
    for c in clips:
        for mod, column in out.items():
            if targets == "modality":
                value = (c.meta or {}).get(f"{mod}_label")
                if value is None:
                    raise ValueError(
                        f"clip {c.id} has no meta['{mod}_label'] (per-modality labels are SynthEmo's); "
                        "pre-train with targets='label' to use the clip label for both towers"
                    )
            else:
                value = c.label
            if value not in index:
                raise ValueError(f"clip {c.id}: target {value!r} is not one of the model's labels {list(labels)}")
            column.append(index[value])
    return {m: np.asarray(v, dtype=np.int64) for m, v in out.items()}


def pooled_features(model, batch) -> dict[str, torch.Tensor]:
    """Mean-pooled tower outputs per clip: ``{"video": (n, d), "audio": (n, d)}`` for the modalities in ``batch``."""
    inner = thinker(model, family=QWEN2_5_THINKER)
    if inner is None:
        raise TypeError(f"{type(model).__name__} is not a Qwen2.5-Omni thinker; perception pre-training needs one")
    batch = _on_model(model, batch)
    out = {}
    if "pixel_values_videos" in batch:
        pooled = inner.get_video_features(batch["pixel_values_videos"], batch["video_grid_thw"]).pooler_output
        if not isinstance(pooled, (tuple, list)):
            merge = inner.visual.spatial_merge_size**2
            pooled = torch.split(pooled, (batch["video_grid_thw"].prod(-1) // merge).tolist())
        out["video"] = torch.stack([p.mean(0) for p in pooled])
    if "input_features" in batch:
        mask = batch["feature_attention_mask"]
        hidden = inner.get_audio_features(batch["input_features"], mask).last_hidden_state
        _, lengths = inner.audio_tower._get_feat_extract_output_lengths(mask.sum(-1))
        out["audio"] = torch.stack([p.mean(0) for p in torch.split(hidden, lengths.tolist())])
    return out


def _on_model(model, batch):
    """``batch`` on the model's device, floating tensors in its dtype (``--device`` / ``--dtype``)."""
    from omnibench.model.generation import model_device, to_device

    return to_device(batch, model_device(model), model.dtype)


def _accuracy(model, inputs: ClipInputs, heads, clips: Sequence[int], y, batch_size: int) -> dict[str, float]:
    """Held-out read-out accuracy per modality on ``inputs``' clips ``clips`` (``y``: their targets, in order)."""
    correct = {m: 0 for m in heads}
    with torch.no_grad():
        for i in range(0, len(clips), batch_size):
            feats = pooled_features(model, inputs.batch(clips[i : i + batch_size]))
            for m, head in heads.items():
                correct[m] += int((head(feats[m].float()).argmax(-1).cpu() == y[m][i : i + batch_size]).sum())
    return {m: correct[m] / max(len(clips), 1) for m in heads}


def pretrain_encoders(
    model,
    processor,
    media: Sequence,
    targets: dict[str, np.ndarray],
    n_labels: int,
    config: PerceptionConfig | None = None,
    progress: bool = True,
    log_path: str | os.PathLike | None = None,
) -> list[dict]:
    """Train the vision and audio towers of ``model`` in place through linear read-outs of ``targets``.

    ``media``: decoded clips (both modalities); ``targets``: ``{"video": idx, "audio": idx}`` from
    :func:`modality_targets`, indices below ``n_labels``. Returns the history (one dict per evaluation: step, loss, held-out
    read-out accuracy per modality), also appended to ``log_path`` (JSONL) when given."""
    cfg = config or PerceptionConfig()
    media = list(media)
    n = len(media)
    for m in ("video", "audio"):
        if len(targets.get(m, ())) != n:
            raise ValueError(f"{len(targets.get(m, ()))} {m} targets for {n} clips")
    if cfg.steps == 0:
        return []
    partial = [md.clip_id or str(i) for i, md in enumerate(media) if md.frames is None or md.audio is None]
    if partial:
        raise ValueError(f"perception pre-training needs video and audio for every clip; {len(partial)} lack one "
                         f"(first: {partial[:3]}); decode with missing_audio='skip' to leave them out")
    n_val = round(n * cfg.val_fraction)
    if n - n_val < cfg.batch_size:
        raise ValueError(f"{n} clips leave {n - n_val} for training, fewer than batch_size {cfg.batch_size}; "
                         "lower batch_size (--batch-size) or val_fraction (--val-fraction)")
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(n)
    val, train = order[:n_val], order[n_val:]
    y = {m: torch.as_tensor(targets[m]) for m in ("video", "audio")}
    if any(int(t.min()) < 0 or int(t.max()) >= n_labels for t in y.values()):
        raise ValueError(f"targets must be label indices in [0, {n_labels})")
    hidden = model.config.text_config.hidden_size
    gen = torch.Generator().manual_seed(cfg.seed)
    heads = {m: torch.nn.Linear(hidden, n_labels) for m in ("video", "audio")}
    for head in heads.values():
        torch.nn.init.normal_(head.weight, std=0.02, generator=gen)
        torch.nn.init.zeros_(head.bias)
        head.to(next(model.parameters()).device)  # float32 read-outs next to the model
    inner = thinker(model, family=QWEN2_5_THINKER)
    towers = [inner.visual, inner.audio_tower]
    params = [p for t in towers for p in t.parameters()] + [p for h in heads.values() for p in h.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.01)
    sched = _schedule(opt, cfg.steps, cfg.warmup_steps)
    inputs = ClipInputs(processor, media, ALL)  # each clip processed once, not once per step
    val_y = {m: y[m][val] for m in y}
    history: list[dict] = []
    was_training = model.training
    model.train()
    bar = _bar(progress, cfg.steps, "tower pre-training")
    running = []
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        idx = rng.choice(train, cfg.batch_size, replace=False)
        feats = pooled_features(model, inputs.batch(idx))
        losses = {m: torch.nn.functional.cross_entropy(heads[m](feats[m].float()), y[m][idx].to(feats[m].device))
                  for m in heads}
        _optimizer_step(sum(losses.values()), opt, sched, [t.parameters() for t in towers], cfg.max_grad_norm,
                        running, bar)
        if (step + 1) % max(cfg.eval_every, 1) == 0 or step + 1 == cfg.steps:
            model.eval()
            acc = _accuracy(model, inputs, heads, val, val_y, 64) if n_val else {}
            model.train()
            _record(history, log_path, "towers", step + 1, running[-cfg.eval_every :], sched,
                    **{f"{m}_accuracy": a for m, a in acc.items()}, seconds=round(time.perf_counter() - t0, 1))
    if bar is not None:
        bar.close()
    model.train(was_training)
    return history


def description_targets(clips: Sequence) -> list[str]:
    """Each clip's description: ``meta["description"]``, else SynthEmo's text from ``meta["cues"]``."""
    from omnibench.data.synth import description_text

    out = []
    for c in clips:
        meta = c.meta or {}
        if meta.get("description"):
            out.append(str(meta["description"]))
        elif meta.get("cues"):
            out.append(description_text(meta["cues"]))
        else:
            raise ValueError(f"clip {c.id} has neither meta['description'] nor SynthEmo meta['cues']; "
                             "give descriptions or skip the stage (describe_steps: 0 / --describe-steps 0)")
    return out


def _schedule(opt, steps: int, warmup: int):
    warm = max(warmup, 1)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, 1.0 - s / steps))


def pretrain_describer(
    model, processor, media: Sequence, texts: Sequence[str], config: PerceptionConfig | None = None,
    progress: bool = True, log_path: str | os.PathLike | None = None,
) -> list[dict]:
    """SFT of the whole model (in place) on ``DESCRIBE_PROMPT`` -> ``texts`` (loss on the answer only).

    Returns the history (mean loss every ``eval_every`` steps), also appended to ``log_path``."""
    cfg = config or PerceptionConfig()
    media, texts = list(media), list(texts)
    if cfg.describe_steps == 0:  # no description stage: real clips have no description texts to check
        return []
    if len(media) != len(texts):
        raise ValueError(f"{len(texts)} descriptions for {len(media)} clips")
    if len(media) < cfg.describe_batch_size:
        raise ValueError(f"{len(media)} clips, fewer than describe_batch_size {cfg.describe_batch_size}")
    rng = np.random.default_rng(cfg.seed + 1)
    inputs = ClipInputs(processor, media, ALL, prompt=DESCRIBE_PROMPT)  # each clip processed once
    params = [p for p in model.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=cfg.describe_learning_rate, weight_decay=0.0)
    sched = _schedule(opt, cfg.describe_steps, cfg.warmup_steps)
    history: list[dict] = []
    was_training = model.training
    model.train()
    bar = _bar(progress, cfg.describe_steps, "description pre-training")
    running: list[float] = []
    order = rng.permutation(len(media))
    pos = 0
    t0 = time.perf_counter()
    for step in range(cfg.describe_steps):
        if pos + cfg.describe_batch_size > len(order):  # epochs without replacement
            order, pos = rng.permutation(len(media)), 0
        idx = order[pos : pos + cfg.describe_batch_size]
        pos += cfg.describe_batch_size
        batch = inputs.batch(idx, completions=[texts[i] for i in idx], return_labels=True)
        _optimizer_step(model(**_on_model(model, batch)).loss, opt, sched, [params], cfg.describe_max_grad_norm,
                        running, bar)
        if (step + 1) % max(cfg.eval_every, 1) == 0 or step + 1 == cfg.describe_steps:
            _record(history, log_path, "describe", step + 1, running[-cfg.eval_every :], sched,
                    seconds=round(time.perf_counter() - t0, 1))
    if bar is not None:
        bar.close()
    model.train(was_training)
    return history


def _optimizer_step(loss, opt, sched, clip_groups, max_norm, running: list, bar) -> None:
    """Backward, per-group gradient clipping (``max_norm`` falsy: none), step, schedule, progress."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if max_norm:
        for group in clip_groups:
            torch.nn.utils.clip_grad_norm_(group, max_norm)
    opt.step()
    sched.step()
    running.append(float(loss.detach()))
    if bar is not None:
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(running[-20:]):.3f}")


def _bar(progress: bool, total: int, desc: str):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step")


def _record(history: list, log_path, stage: str, step: int, losses: list, sched, **extra) -> None:
    """One history row (stage, step, mean of ``losses``, learning rate, ``extra``: read-outs, seconds since the
    stage began), also appended to ``log_path``."""
    row = {"stage": stage, "step": step, "loss": float(np.mean(losses)), "learning_rate": sched.get_last_lr()[0], **extra}
    history.append(row)
    if log_path:
        append_jsonl(log_path, [row])


def pretrain_tiny_base(
    model, processor, clips: Sequence, media: Sequence, config: PerceptionConfig | None = None,
    labels: Sequence[str] = (), progress: bool = True, log_path: str | os.PathLike | None = None,
) -> list[dict]:
    """Both stages on ``clips`` (towers, then description), recording the settings and the last
    read-out accuracies and description loss in ``model.config.omnibench_perception``."""
    cfg = config or PerceptionConfig()
    labels = list(labels)
    if not labels:
        raise ValueError("pretrain_tiny_base needs the model's label set (labels=...)")
    texts = description_targets(clips) if cfg.describe_steps else []
    targets = (modality_targets(clips, labels, cfg.targets) if cfg.steps
               else {m: np.zeros(len(clips), np.int64) for m in ("video", "audio")})  # towers skipped
    towers = pretrain_encoders(model, processor, media, targets, len(labels), cfg, progress=progress,
                               log_path=log_path)
    described = pretrain_describer(model, processor, media, texts, cfg, progress=progress, log_path=log_path)
    model.config.omnibench_perception = {**asdict(cfg), "n_clips": len(clips),
                                         "towers": towers[-1] if towers else None,
                                         "describe": described[-1] if described else None}
    return towers + described


def build_tiny_base(
    manifest: str | os.PathLike, out: str | os.PathLike, split: str = "train", seed: int = 0,
    config: PerceptionConfig | None = None, decode: dict | None = None, tiny: dict | None = None,
    labels: Sequence[str] | None = None, cache_dir: str | os.PathLike | None = None, progress: bool = True,
    log_path: str | os.PathLike | None = None, device: str | None = None, dtype: str | None = None,
    attn_implementation: str | None = None,
) -> Path:
    """Build the tiny thinker, pre-train it on ``manifest``'s ``split`` and save it to ``out`` (model
    files and the ``decode`` settings it was trained with; the history in ``log_path``, default
    ``out/perception.jsonl``). Uses every CPU core meanwhile. ``device`` (default: CUDA when present),
    ``dtype`` (default float32: master weights) and ``attn_implementation`` as the ``--device`` /
    ``--dtype`` / ``--attn-implementation`` flags (:func:`omnibench.model.loading.add_model_args`);
    the model is saved back on the CPU."""
    from omnibench.data.manifest import read_manifest
    from omnibench.data.media import DecodeCache, DecodeConfig, decode_clips
    from omnibench.labels import DFEW7
    from omnibench.model.loading import save_model
    from omnibench.tiny.model import build_tiny

    manifest, out = Path(manifest), Path(out)
    if not manifest.is_file():
        raise FileNotFoundError(f"manifest {manifest} not found; create SynthEmo with `omnibench synth --out {manifest.parent}`")
    clips = read_manifest(manifest, split=split)
    if not clips:
        raise ValueError(f"{manifest} has no clips in split {split!r}")
    cfg = config or PerceptionConfig(seed=seed)
    labels = tuple(labels or DFEW7)
    from omnibench.model.loading import describe_load, model_load_kwargs

    model, processor = build_tiny(labels=labels, seed=seed, **dict(tiny or {}))
    placement = model_load_kwargs({"device": device, "dtype": dtype, "attn_implementation": attn_implementation},
                                  training=True)
    if placement["attn_implementation"]:
        model.set_attn_implementation(placement["attn_implementation"])
    model.to(device=placement["device"], dtype=placement["dtype"])
    print(f"model: {describe_load(model)}")
    cache = DecodeCache(cache_dir or manifest.parent / ".decode_cache")
    decode_cfg = DecodeConfig.coerce(decode)  # a model built from scratch: no checkpoint settings to read
    print(f"decode: {decode_cfg.describe()}")
    media, report = decode_clips(clips, decode_cfg, cache=cache, progress=progress)
    if report.skipped_no_audio or report.kept_without_audio:
        print(f"perception pre-training: {report.summary()}")  # counted and said, whatever `progress` is
    kept = {m.clip_id for m in media}
    clips = [c for c in clips if c.id in kept]
    log = Path(log_path) if log_path else out / "perception.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(os.cpu_count() or 1, 8)))  # batch-32 tower passes use every core
    try:
        pretrain_tiny_base(model, processor, clips, media, cfg, labels=labels, progress=progress, log_path=log)
    finally:
        torch.set_num_threads(threads)
    save_model(model.cpu(), processor, out, decode=decode_cfg)
    return out


def add_base_args(parser) -> None:
    from dataclasses import fields

    parser.add_argument("--manifest", required=True, help="manifest.jsonl (SynthEmo: per-modality labels and cues)")
    parser.add_argument("--out", required=True, help="folder for the base model (loadable with load_model)")
    parser.add_argument("--split", default="train", help="split to pre-train on (default: train)")
    parser.add_argument("--seed", type=int, default=0, help="model initialisation and batch order")
    kinds = {"int": int, "float": float, "str": str}
    for f in fields(PerceptionConfig):
        if f.name == "seed":
            continue
        kind = kinds.get(str(f.type).split(" ")[0])
        if kind is None:
            raise TypeError(f"PerceptionConfig.{f.name}: no command-line type for {f.type!r}")
        extra = {"choices": TARGETS} if f.name == "targets" else {}
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default,
                            help=f.metadata.get("help"), **extra)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    from omnibench.data.media import add_decode_args
    from omnibench.model.loading import add_model_args

    add_decode_args(parser)
    add_model_args(parser, training=True)


def cli_base(args) -> int:
    from dataclasses import fields

    cfg = PerceptionConfig(seed=args.seed, **{f.name: getattr(args, f.name) for f in fields(PerceptionConfig)
                                              if f.name != "seed"})
    from omnibench.data.media import decode_overrides

    out = build_tiny_base(args.manifest, args.out, split=args.split, seed=args.seed, config=cfg,
                          decode=decode_overrides(args), progress=not args.no_progress,
                          device=args.device, dtype=args.dtype, attn_implementation=args.attn_implementation)
    print(f"base model: {out}")
    return 0
