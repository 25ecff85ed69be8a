"""The Python half of benchmarks/gpu_check.sh: environment, tiny bf16 pipeline, 3B-sized GRPO step.

    python3 benchmarks/gpu_check.py env|pipeline|grpo3b      (GPU_CHECK_DRY=1: CPU, tiny dims)

Each stage prints one JSON line and writes it to ``$OUT/<stage>.json`` (``$OUT`` defaults to
benchmarks/results/gpu). Media are SynthEmo clips rendered in memory (the same faces and voices as
the mp4 files, sampled like ``decode_clip``), so no codec library is needed on the GPU machine.

``grpo3b``: a randomly initialised Qwen2.5-Omni thinker with the 3B sizes (transformers'
``Qwen2_5OmniThinkerConfig`` defaults are the 7B ones: text 3584 x 28 layers, 28 heads, 4 KV heads,
MLP 18944, vocab 152064; the 3B checkpoint has text 2048 x 36 layers, 16 heads, 2 KV heads, MLP
11008, vocab 151936, and the same towers: vision 32 blocks of 1280 (16 heads, MLP 3420, window 112,
full attention in blocks 7/15/23/31), audio 32 layers of 1280 (20 heads, FFN 5120), both projecting
to the text width), weights in bf16, the omnibench tokenizer (token ids < 700 of the 151936
embeddings are used, so prompt lengths are omnibench's, not Qwen's). GRPO as the demo recipe but
with G = 8 generations, gradient checkpointing, AdamW, in two phases (one trainer each): towers
training (steps cycle through: as shipped, without the shared prompt prefill, without encoder
sharing) and towers frozen (steps alternate the step-level reuse of the frozen towers' outputs on
and off), so each optimisation is measured side by side; each phase reports its peak memory, the
reference model's weights shared with the policy, and the prompt prefill's language-model time.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

DRY = os.environ.get("GPU_CHECK_DRY", "0") not in ("", "0", "false", "no")
OUT = Path(os.environ.get("OUT") or common.RESULTS / "gpu")
ENV_INT = {  # knobs for the 3B stage (environment variables GPU_CHECK_<NAME>)
    "G": 8, "CLIPS": 1, "STEPS": 6, "NEW_TOKENS": 128, "FRAMES": 16, "SIZE": 224, "GC": 1,
}


def knob(name: str) -> int:
    return int(os.environ.get(f"GPU_CHECK_{name}", ENV_INT[name]))


def device() -> str:
    import torch

    return "cuda" if (torch.cuda.is_available() and not DRY) else "cpu"


def emit(stage: str, figures: dict) -> dict:
    figures = {"dry": DRY, **figures}
    obj = common.emit(f"gpu_check.{stage}", figures, OUT / f"{stage}.json", device=device())
    return obj


# ------------------------------------------------------------------------------------ media


def synth_media(n: int, split: str = "train", frames: int = 8, size: int = 112, seconds: float = 1.5):
    """(clips, {id: Media}): SynthEmo clips rendered in memory, frames sampled as decode_clip does."""
    import numpy as np

    from omnibench.data import synth
    from omnibench.data.manifest import Clip
    from omnibench.data.media import Media, sample_indices

    cfg = synth.SynthConfig(duration=seconds, size=size)
    clips, media = [], {}
    for i in range(n):
        plan = synth.plan_clip(0, split, i, (), cfg)
        video = synth.render_frames(plan, cfg)
        video = np.ascontiguousarray(video[sample_indices(len(video), frames)])
        audio = synth.render_audio(plan, cfg).astype("float32")
        cid = plan["id"]
        clips.append(Clip(id=cid, video=f"{cid}.mp4", label=plan["label"], split=split, meta=synth._meta(plan)))
        media[cid] = Media(frames=video, audio=audio, sr=cfg.sr, clip_id=cid)
    return clips, media


# ------------------------------------------------------------------------------------ stages


def stage_env() -> dict:
    import torch

    info: dict = {"python": sys.executable, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), sm_count=p.multi_processor_count,
                    cuda=torch.version.cuda, bf16=torch.cuda.is_bf16_supported())
    for mod in ("transformers", "trl", "datasets", "accelerate", "peft", "tokenizers", "numpy", "pyarrow"):
        try:
            m = __import__(mod)
            info[mod] = f"{m.__version__} ({Path(m.__file__).parent.parent})"
        except Exception as e:  # noqa: BLE001 - report whatever breaks the import
            info[mod] = f"MISSING: {type(e).__name__}: {e}"[:200]
    try:
        import omnibench.grpo  # noqa: F401 - the import chain the training stages need

        info["omnibench_grpo_import"] = "ok"
    except Exception as e:  # noqa: BLE001
        info["omnibench_grpo_import"] = f"FAILED: {type(e).__name__}: {e}"[:300]
    return emit("env", info)


def _length_reward(completions, **kwargs):
    """A reward with spread even for an untrained model (so the GRPO step has non-zero advantages)."""
    from omnibench.rewards import completion_text

    return [len(completion_text(c)) / 100.0 for c in completions]


def _tiny_recipes(out: Path, dev: str):
    from omnibench.grpo import GRPORecipe
    from omnibench.rewards import REWARDS, register

    if "gpu_check_length" not in REWARDS:
        register("gpu_check_length")(_length_reward)
    from omnibench.recipes import load_recipe
    from omnibench.sft import SFTRecipe

    bf16 = dev == "cuda"
    sft = load_recipe(SFTRecipe, {"out": str(out / "sft"), "max_steps": 1 if DRY else 4, "batch_size": 8,
                                  "learning_rate": 1e-3, "modality_dropout": 0.3, "bf16": bf16,
                                  "progress": False, "threads": None})
    grpo = load_recipe(GRPORecipe, {"out": str(out / "grpo"), "max_steps": 1 if DRY else 3, "num_generations": 4,
                                    "per_device_train_batch_size": 8, "max_completion_length": 16 if DRY else 48,
                                    "rewards": {"accuracy": 1.0, "format": 1.0, "gpu_check_length": 0.1},
                                    "beta": 0.04, "modality_dropout": 0.3, "bf16": bf16, "learning_rate": 2e-4,
                                    "progress": False, "threads": None})
    return sft, grpo


def _changed(before: dict, model, part: str) -> bool:
    import torch

    return any(not torch.equal(before[n], p.detach().to(before[n].device)) for n, p in model.named_parameters()
               if part in n)


def stage_pipeline() -> dict:
    """Tiny thinker: SFT then GRPO steps in bf16 (autocast) on the GPU, then bf16 evaluation and scoring."""
    import torch

    from omnibench import grpo as grpo_mod
    from omnibench import sft as sft_mod
    from omnibench.evaluate import EvalConfig, evaluate_split
    from omnibench.labels import DFEW7
    from omnibench.model import ALL, score_labels
    from omnibench.recipes import MediaStore
    from omnibench.tiny import build_tiny

    dev = device()
    cold, cold_media = synth_media(8 if DRY else 16, "cold_start")
    train, train_media = synth_media(8 if DRY else 16, "train")
    test, test_media = synth_media(4 if DRY else 16, "test_id")
    out: dict = {"device": dev}
    with tempfile.TemporaryDirectory() as d, common.quiet_stdout():
        sft_recipe, grpo_recipe = _tiny_recipes(Path(d), dev)
        model, processor = build_tiny(seed=0)
        t = time.perf_counter()
        trainer = sft_mod.build_trainer(sft_recipe, model, processor, MediaStore.from_media(cold_media), cold)
        trainer.train()
        common.sync()
        out["sft"] = {"steps": sft_recipe.max_steps, "seconds": common.rnd(time.perf_counter() - t, 2),
                      "loss": [r["loss"] for r in trainer.state.log_history if "loss" in r],
                      "bf16": trainer.args.bf16, "model_device": str(next(model.parameters()).device)}
        model = trainer.model
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        t = time.perf_counter()
        trainer = grpo_mod.build_trainer(grpo_recipe, model, processor, MediaStore.from_media(train_media), train)
        trainer.train()
        common.sync()
        logs = [r for r in trainer.state.log_history if "loss" in r]
        out["grpo"] = {"steps": grpo_recipe.max_steps, "seconds": common.rnd(time.perf_counter() - t, 2),
                       "loss": [r["loss"] for r in logs], "kl": [r.get("kl") for r in logs],
                       "completion_length": [r.get("completions/mean_length") for r in logs],
                       "language_model_changed": _changed(before, trainer.model, "language_model")}
        model = trainer.accelerator.unwrap_model(trainer.model).to(dev)
        if dev == "cuda":
            model = model.to(torch.bfloat16)
        t = time.perf_counter()
        res = evaluate_split(model, processor, test, [test_media[c.id] for c in test],
                             config=EvalConfig(batch_size=8, max_new_tokens=32, n_boot=0))
        common.sync()
        scores = score_labels(model, processor, [test_media[c.id] for c in test], ALL, DFEW7)
        out["eval"] = {"clips": len(test), "seconds": common.rnd(time.perf_counter() - t, 2),
                       "dtype": str(model.dtype), "war": res.metrics["war"],
                       "scores_finite": bool(torch.isfinite(torch.as_tensor(scores)).all())}
    return emit("pipeline", out)


def omni3b_model(processor, dev: str, dry: bool):
    """A randomly initialised thinker with Qwen2.5-Omni-3B sizes (bf16 on CUDA) for the omnibench tokenizer."""
    import torch
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    from omnibench.tiny import TinySizes
    from omnibench.tiny.model import tiny_config

    if dry:
        sizes = TinySizes()
        vocab = len(processor.tokenizer)
    else:
        sizes = TinySizes(text_hidden=2048, text_layers=36, text_heads=16, text_kv_heads=2, text_intermediate=11008,
                          vision_depth=32, vision_hidden=1280, vision_heads=16, vision_intermediate=3420,
                          audio_layers=32, audio_d_model=1280, audio_heads=20, audio_ffn=5120,
                          frame_size=max(112, knob("SIZE")), rope_theta=1_000_000.0)
        vocab = 151936
    cfg = tiny_config(processor.tokenizer, sizes)
    cfg.text_config.vocab_size = vocab
    cfg.text_config.max_position_embeddings = 32768
    if not dry:
        cfg.vision_config.window_size = 112
        cfg.vision_config.fullatt_block_indexes = [7, 15, 23, 31]
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(dev):
            model = Qwen2_5OmniThinkerForConditionalGeneration(cfg)
    finally:
        torch.set_default_dtype(old)
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    return model, cfg


#: the GRPO-step settings grpo3b compares, phase by phase (each phase: one trainer, steps cycling
#: through its settings after a warm-up step with the first)
PHASES = {
    # towers train (full fine-tuning): as shipped; without the shared prompt prefill; without any
    # encoder sharing (and so without the prefill sharing, which needs named rows)
    "train_towers": (("shared", {}), ("no_prefill", {"prefill": False}),
                     ("unshared", {"share": False, "prefill": False})),
    # towers frozen (as with LoRA on the language model): the step's encoder outputs reused by all
    # passes vs recomputed in each pass
    "frozen_towers": (("reuse", {}), ("no_reuse", {"reuse": False})),
}


def _settings(trainer, share: bool = True, reuse: bool = True, prefill: bool = True) -> None:
    from omnibench.model.encoders import share_encoders

    for m in (trainer.model, trainer.ref_model):
        if m is not None:
            share_encoders(trainer.accelerator.unwrap_model(m), share)
    for attr, on in (("reuse_frozen_encoders", reuse), ("share_prefill", prefill)):
        if hasattr(trainer, attr):
            setattr(trainer, attr, on)


def _grpo3b_phase(phase: str, processor, clips, media, dev: str, steps: int, warmup: int, G: int,
                  n_clips: int, new_tokens: int) -> dict:
    import gc
    import statistics

    import bench_grpo_step as bgs
    import torch
    from transformers import TrainerCallback

    from omnibench.grpo import GRPORecipe, build_trainer
    from omnibench.recipes import MediaStore, load_recipe

    settings = PHASES[phase]
    frozen = phase == "frozen_towers"
    t = time.perf_counter()
    model, cfg = omni3b_model(processor, dev, DRY)
    common.sync()
    build_s = time.perf_counter() - t
    timers = common.Timers()
    flags: list[str] = []
    held: dict = {}

    class Alternate(TrainerCallback):
        """Warm-up with the first setting, then cycle through them: the same run measures each."""

        def on_step_begin(self, args, state, control, **kw):
            k = 0 if state.global_step < warmup else (state.global_step - warmup) % len(settings)
            _settings(held["trainer"], **settings[k][1])
            flags.append(settings[k][0])

    with tempfile.TemporaryDirectory() as d:
        recipe = load_recipe(GRPORecipe, {
            "out": d, "max_steps": steps + warmup, "num_generations": G, "per_device_train_batch_size": G * n_clips,
            "max_completion_length": new_tokens, "beta": 0.04, "learning_rate": 1e-6, "bf16": dev == "cuda",
            "progress": False, "threads": None, "modality_dropout": 0.0,
            "freeze_vision": frozen, "freeze_audio": frozen,
            "trainer": {"gradient_checkpointing": bool(knob("GC")), "logging_steps": 1}})
        if dev == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        trainer = held["trainer"] = build_trainer(recipe, model, processor, MediaStore.from_media(media), clips)
        ref = trainer.ref_model
        policy_ids = {id(p) for p in trainer.accelerator.unwrap_model(trainer.model).parameters()}
        ref_shared = sum(p.numel() for p in ref.parameters() if id(p) in policy_ids) if ref is not None else 0
        ref_own = sum(p.numel() for p in ref.parameters() if id(p) not in policy_ids) if ref is not None else 0
        trainer.add_callback(Alternate())
        clock = bgs.StepClock(timers)
        trainer.add_callback(clock)
        parts = bgs.instrument(trainer, timers, text=False)
        t = time.perf_counter()
        try:
            with common.quiet_stdout():
                trainer.train()
        finally:
            timers.restore()
            parts.remove()
        train_s = time.perf_counter() - t
        prompt_len = len(trainer.encode_clips([clips[0].id], train=False)[0].prompt_ids)
        lens = [r.get("completions/mean_length") for r in trainer.state.log_history if "loss" in r]
    peak = torch.cuda.max_memory_allocated() / 2**30 if dev == "cuda" else None
    rows = [{**s, "setting": f} for s, f in zip(clock.steps, flags)][warmup:]

    def summary(sel):
        if not sel:
            return None
        wall = statistics.median(s["wall"] for s in sel)
        keys = (*bgs.SECTIONS, "encoders", "generation.prefill_lm", "generation.language_model")
        return {"s_per_step": common.rnd(wall), "samples_per_s": common.rnd(G * n_clips / wall, 3),
                "breakdown_s": {k: common.rnd(statistics.median(s.get(k, 0.0) for s in sel)) for k in keys},
                "step_walls": [common.rnd(s["wall"], 3) for s in sel]}

    per = {name: summary([r for r in rows if r["setting"] == name]) for name, _ in settings}
    first_name = settings[0][0]
    a = per[first_name]
    ratios = {f"{name}_over_{first_name}_time": common.rnd(b["s_per_step"] / a["s_per_step"], 3) if a and b else None
              for name, b in per.items() if name != first_name}
    out = {"phase": phase, "towers_frozen": frozen, "build_s": common.rnd(build_s, 2), "train_s": common.rnd(train_s, 2),
           "peak_memory_gib": common.rnd(peak, 2) if peak is not None else None,
           "reference_params_shared_with_policy": ref_shared, "reference_params_own": ref_own,
           "prompt_tokens": prompt_len, "completion_len": lens, **per, **ratios,
           "params_total": sum(p.numel() for p in model.parameters()),
           "params": {n: sum(p.numel() for p in getattr(model.model, n).parameters())
                      for n in ("language_model", "visual", "audio_tower")},
           "text": {k: getattr(cfg.text_config, k) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                            "num_key_value_heads", "intermediate_size", "vocab_size")},
           "dtype": str(model.dtype)}
    held.clear()
    del trainer, model, ref
    gc.collect()
    if dev == "cuda":
        torch.cuda.empty_cache()
    return out


def stage_grpo3b() -> dict:
    """Two phases on the 3B-shaped thinker (one trainer each, built in turn): towers training (as
    shipped / without the shared prefill / without encoder sharing); towers frozen (step-level
    encoder reuse on / off). Each reports its peak memory, how much of the reference model is the
    policy's own (shared) weights, and the prompt prefill's language-model time
    (``generation.prefill_lm``)."""
    from omnibench.tiny import build_tiny

    dev = device()
    G, n_clips = (2, 1) if DRY else (knob("G"), knob("CLIPS"))
    steps = 2 if DRY else knob("STEPS")
    warmup = 0 if DRY else 1
    frames, size = (8, 112) if DRY else (knob("FRAMES"), knob("SIZE"))
    new_tokens = 8 if DRY else knob("NEW_TOKENS")
    _, processor = build_tiny(seed=0, frame_size=max(112, size))
    clips, media = synth_media((steps + warmup) * n_clips, "train", frames=frames, size=size,
                               seconds=1.5 if DRY else 3.0)
    phases = [p.strip() for p in os.environ.get("GPU_CHECK_PHASES", ",".join(PHASES)).split(",") if p.strip()]
    results = {}
    for phase in phases:
        try:
            results[phase] = _grpo3b_phase(phase, processor, clips, media, dev, steps, warmup, G, n_clips, new_tokens)
        except (RuntimeError, ValueError, KeyError) as e:  # e.g. out of memory: recorded, the next phase runs
            results[phase] = {"error": f"{type(e).__name__}: {e}"[:2000]}
    first = next((r for r in results.values() if "error" not in r), {})
    train = results.get("train_towers", {})
    figures = {
        "device": dev, "model": "Qwen2.5-Omni-3B sizes, random init" if not DRY else "tiny (dry run)",
        "G": G, "clips_per_step": n_clips, "completions_per_step": G * n_clips, "max_completion_length": new_tokens,
        "frames": frames, "frame_size": size, "gradient_checkpointing": bool(knob("GC")),
        "prompt_tokens": first.get("prompt_tokens"), "params_total": first.get("params_total"),
        "params": first.get("params"), "text": first.get("text"), "dtype": first.get("dtype"),
        "peak_memory_gib": train.get("peak_memory_gib"),
        # the keys of the first version of this stage (towers training, sharing on / off)
        "shared_encoders": train.get("shared"), "unshared_encoders": train.get("unshared"),
        "unshared_over_shared_time": train.get("unshared_over_shared_time"),
        "no_prefill_over_shared_time": train.get("no_prefill_over_shared_time"),
        "no_reuse_over_reuse_time": results.get("frozen_towers", {}).get("no_reuse_over_reuse_time"),
        "phases": results,
    }
    if any("error" in r for r in results.values()):
        emit("grpo3b", figures)
        raise SystemExit(1)
    return emit("grpo3b", figures)


STAGES = {"env": stage_env, "pipeline": stage_pipeline, "grpo3b": stage_grpo3b}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in STAGES:
        print(f"usage: gpu_check.py {{{'|'.join(STAGES)}}}", file=sys.stderr)
        return 2
    import torch

    if device() == "cpu":
        torch.set_num_threads(1 if DRY else torch.get_num_threads())
    OUT.mkdir(parents=True, exist_ok=True)
    STAGES[argv[0]]()
    return 0



# ------------------------------------------------------------------------------------ scale (issue 13)


def _scale_run(name: str, model, processor, dev: str, cold, cold_media, train, train_media) -> dict:
    """One SFT step (or four on the tiny model) then GRPO steps, bf16 mixed precision on float32 master
    weights, through the recipes' build_trainer (FiniteGradients included): s/step, peak memory,
    finite losses and weights."""
    import gc
    import math
    import statistics

    import torch

    from omnibench import grpo as grpo_mod
    from omnibench import sft as sft_mod
    from omnibench.grpo import GRPORecipe
    from omnibench.recipes import MediaStore, load_recipe
    from omnibench.rewards import REWARDS, register
    from omnibench.sft import SFTRecipe

    if "gpu_check_length" not in REWARDS:
        register("gpu_check_length")(_length_reward)
    big = name == "3b" and not DRY
    cuda = dev == "cuda"
    base = {"bf16": True, "dtype": "auto", "progress": False, "threads": None, "modality_dropout": 0.3,
              "device": dev, "trainer": {"gradient_checkpointing": big, "logging_steps": 1}}
    res: dict = {"weights_dtype": str(next(model.parameters()).dtype)}

    def peak():
        return common_rnd(torch.cuda.max_memory_allocated() / 2**30) if cuda else None

    with tempfile.TemporaryDirectory() as d:
        sft = load_recipe(SFTRecipe, {**base, "out": f"{d}/sft", "max_steps": 1 if (big or DRY) else 4,
                                      "batch_size": 2 if big else 8, "learning_rate": 2e-5 if big else 1e-3})
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        trainer = sft_mod.build_trainer(sft, model, processor, MediaStore.from_media(cold_media), cold)
        trainer.train()
        _sync()
        logs = [r for r in trainer.state.log_history if "loss" in r]
        res["sft"] = {"steps": len(logs), "s_per_step": common_rnd((time.perf_counter() - t) / max(len(logs), 1)),
                      "loss": [r["loss"] for r in logs], "grad_norm": [r.get("grad_norm") for r in logs],
                      "autocast": str(trainer.accelerator.mixed_precision), "peak_memory_gib": peak()}
        model = trainer.model
        del trainer
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        G = 8 if big else 4
        grpo = load_recipe(GRPORecipe, {
            **base, "out": f"{d}/grpo", "max_steps": 1 if DRY else (2 if big else 3), "num_generations": G,
            "per_device_train_batch_size": G, "max_completion_length": 8 if DRY else (64 if big else 48),
            "rewards": {"accuracy": 1.0, "format": 1.0, "gpu_check_length": 0.1}, "beta": 0.04,
            "temperature": 1.0, "learning_rate": 1e-6 if big else 2e-4})
        t = time.perf_counter()
        trainer = grpo_mod.build_trainer(grpo, model, processor, MediaStore.from_media(train_media), train)
        trainer.train()
        _sync()
        logs = [r for r in trainer.state.log_history if "loss" in r]
        walls = [r["step_time"] for r in logs if isinstance(r.get("step_time"), (int, float))]
        res["grpo"] = {"steps": len(logs), "G": G, "s_per_step": common_rnd(statistics.median(walls)) if walls else
                       common_rnd((time.perf_counter() - t) / max(len(logs), 1)),
                       "loss": [r["loss"] for r in logs], "kl": [r.get("kl") for r in logs],
                       "completion_length": [r.get("completions/mean_length") for r in logs],
                       "peak_memory_gib": peak()}
        model = trainer.accelerator.unwrap_model(trainer.model)
        del trainer
        gc.collect()
    losses = res["sft"]["loss"] + res["grpo"]["loss"]
    res["finite_losses"] = all(isinstance(x, (int, float)) and math.isfinite(x) for x in losses)
    res["finite_weights"] = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    return res, model


def common_rnd(x, n: int = 4):
    return common.rnd(x, n)


def _sync():
    common.sync()


def stage_scale() -> dict:
    """Issue 13 on the GPU: the tiny model and a 3B-shaped random thinker, each one SFT step (four on
    the tiny model, the recorded failure's recipe) and GRPO steps in bf16 mixed precision over
    float32 master weights (s/step, peak memory, finite losses and weights); then evaluation and
    attribution on the GPU, batched in bf16, through the CLIs' loading path (load_model with
    model_load_kwargs: device auto, dtype auto = bf16 on CUDA)."""
    import gc
    import math

    import torch

    from omnibench.attribution.value import AttributionConfig, attribute
    from omnibench.evaluate import EvalConfig, evaluate_split
    from omnibench.labels import DFEW7
    from omnibench.model.loading import describe_load, load_model, model_load_kwargs, save_model
    from omnibench.tiny import build_tiny

    dev = device()
    cold, cold_media = synth_media(8 if DRY else 16, "cold_start")
    train, train_media = synth_media(4 if DRY else 8, "train")
    test, test_media = synth_media(4 if DRY else 16, "test_id")
    out: dict = {"device": dev}
    with common.quiet_stdout():
        model, processor = build_tiny(seed=0)
        out["tiny"], tiny = _scale_run("tiny", model.to(dev), processor, dev, cold, cold_media, train, train_media)
        try:
            big, _ = omni3b_model(processor, dev, DRY)
            big = big.float()  # float32 master weights; bf16 enters by autocast
            out["3b"], big = _scale_run("3b", big, processor, dev, cold, cold_media, train, train_media)
            out["3b"]["params_total"] = sum(p.numel() for p in big.parameters())
        except torch.OutOfMemoryError as e:  # recorded, not fatal: the tiny and eval parts still count
            out["3b"] = {"error": f"OutOfMemoryError: {str(e)[:300]}"}
        big = None
        gc.collect()
        if dev == "cuda":
            torch.cuda.empty_cache()
        with tempfile.TemporaryDirectory() as d:
            save_model(tiny.cpu(), processor, Path(d) / "model")
            kwargs = model_load_kwargs({"device": dev, "dtype": "auto"})
            model, processor = load_model(Path(d) / "model", **kwargs)
        media = [test_media[c.id] for c in test]
        t = time.perf_counter()
        res = evaluate_split(model, processor, test, media, config=EvalConfig(batch_size=16, max_new_tokens=32,
                                                                              n_boot=0))
        _sync()
        eval_s = time.perf_counter() - t
        t = time.perf_counter()
        attr = attribute(model, processor, test, media, labels=DFEW7,
                         config=AttributionConfig(position="prompt", batch_size=16))
        _sync()
        attr_s = time.perf_counter() - t
        values = [float(v) for v in attr.to_frame().select_dtypes("number").to_numpy().ravel()]
    out["eval"] = {"model": describe_load(model), "clips": len(test), "seconds": common_rnd(eval_s, 2),
                   "war": res.metrics["war"], "n_unparseable": res.metrics["n_unparseable"]}
    out["attribution"] = {"clips": len(attr), "seconds": common_rnd(attr_s, 2),
                          "finite": bool(values) and all(math.isfinite(v) for v in values)}
    out["ok"] = bool(out["tiny"]["finite_losses"] and out["tiny"]["finite_weights"] and out["attribution"]["finite"]
                     and (out["3b"].get("finite_losses", False) or "error" in out["3b"]))
    return emit("scale", out)


STAGES["scale"] = stage_scale


if __name__ == "__main__":
    sys.exit(main())
