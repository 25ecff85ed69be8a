"""GRPO step time on video + audio, where it goes, and what the omni path costs beyond TRL itself.

    .venv/bin/python benchmarks/bench_grpo_step.py [--steps 4] [--warmup 1] [--rounds 2] [--out FILE]

One run, several trainers built from the demo recipe (configs/demo_train.yaml, section ``grpo``: 16 clips
x G=4 completions per step, 48 new tokens, beta 0.04, modality dropout 0.3) on the tiny thinker
(random initialisation, so completions mostly run to the 48-token limit):

* ``omni``                OmniGRPOTrainer as shipped: rows named by clip (encoders once per distinct
                          clip and pass, video patches collated once per clip, no tensor comparison),
                          prompt prefilled once per clip, frozen-tower reuse (idle here: towers train);
                          each batch's clips decoded by a dataloader worker process while the
                          step before it trains (``media_workers: 1``);
* ``omni_inline``         ``omni`` decoding in the training process, inside the step (``media_workers: 0``,
                          as before the workers);
* ``omni_nopositions``    ``omni`` with the M-RoPE position ids computed per row by the model
                          (``share_positions = False``) instead of once per clip;
* ``omni_warm``           ``omni`` with the clips decoded before the run (memory hits, as in every
                          epoch after the first);
* ``omni_noprefill``      ``omni`` without the shared prefill (``share_prefill = False``);
* ``omni_content``        sharing by content comparison, as before issue 15 (``identify_clips = False``:
                          no clip identity, no compact patches, no shared prefill, no reuse);
* ``omni_noopt``          no encoder sharing at all (encoders run once per completion);
* ``trl_text``            plain ``trl.GRPOTrainer`` on the same thinker with text-only prompts of the same
                          token length as the full omni prompt (the media placeholders replaced by words);
* ``omni_frozen``         ``omni`` with both towers frozen (``freeze_vision`` / ``freeze_audio``, as with
                          LoRA): their outputs computed once per step, reused by every pass;
* ``omni_frozen_nocache`` the same with that reuse off (``reuse_frozen_encoders = False``).

The variants run in turn, ``--rounds`` times (A B C, C B A, A B C ...): step times are medians over
all timed steps, and every ratio is computed within each round (its variants ran back to back) and
then summarised by the median over rounds, so a load change on a shared machine between rounds does
not masquerade as a speed-up. Each ratio is given on wall time and (``*_cpu``) on the process's CPU
time, which the other processes' load moves far less (one torch thread); ``worker_cpu_s_per_step`` is
the CPU time of the dataloader's worker processes (decoding off the step's path), per step. Each step is broken down by
wrapping the trainer's methods (nothing in omnibench is edited for this): ``decode`` (media decoding,
cold: every step brings 16 clips not seen before, as the demo's first epoch does), ``processor``
(prompt + video processor + Whisper features; the tokenizer for ``trl_text``), ``prompt_collate``,
``generation`` (``model.generate`` including prefill), ``ref_logprobs`` (the no-grad reference pass),
``rewards``, ``loss_forward`` (the loss pass with its log-probs), ``backward``, ``optimizer`` and
``other`` (Trainer/TRL bookkeeping: the rest of the step). ``encoders`` is the vision + audio encoder
forward time inside generation and the log-prob passes (a part of them, not added to the total).
``passes_s`` splits each pass into ``encoders``, ``rope_index`` (the 3-D M-RoPE position ids),
``scatter`` (placeholder masks and ``masked_scatter`` of the media embeddings), ``language_model``
(the decoder stack) and ``rest`` (LM head and log-probs, sampling, collation); generation also gives
``prefill_lm``, the language model's prompt forward (a part of ``language_model``).

Ratios (``median``, ``min``, ``max``, ``per_round``): ``omni_over_trl`` = omni step time / trl_text
step time; ``noopt_over_opt`` = step time without / with encoder sharing; ``content_over_identity``,
``noprefill_over_prefill``, ``frozen_nocache_over_cache``: without / with each optimisation (same
run, same clips, same seeds); ``encoders_*`` the same for the encoders' forward time.
"""

from __future__ import annotations

import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

VARIANTS = ("omni", "omni_inline", "omni_nopositions", "omni_warm", "omni_noprefill", "omni_content", "omni_noopt", "trl_text", "omni_frozen", "omni_frozen_nocache")
QUICK_VARIANTS = ("omni", "omni_noopt", "trl_text")
SECTIONS = ("decode", "processor", "prompt_collate", "generation", "ref_logprobs", "rewards",
            "loss_forward", "backward", "optimizer")
#: the passes that run the model forward, and the parts of a forward pass timed inside each
PASSES = ("generation", "ref_logprobs", "loss_forward")
PARTS = ("encoders", "rope_index", "scatter", "language_model")
#: variant -> (encoder sharing, trainer knows which rows share a clip, frozen-tower reuse, prompt
#: prefilled once per clip, towers frozen)
OPTIONS = {
    "omni": (True, True, True, True, False),
    "omni_inline": (True, True, True, True, False),
    "omni_nopositions": (True, True, True, True, False),
    "omni_warm": (True, True, True, True, False),
    "omni_noprefill": (True, True, True, False, False),
    "omni_content": (True, False, False, False, False),
    "omni_noopt": (False, False, False, False, False),
    "omni_frozen": (True, True, True, True, True),
    "omni_frozen_nocache": (True, True, False, True, True),
}


# ------------------------------------------------------------------------------------ trainers


def demo_recipe(out_dir: str, steps: int, quick: bool):
    """The demo GRPO recipe on the tiny thinker (random init), no checkpoints, no progress bars."""
    from omnibench.grpo import GRPORecipe
    from omnibench.recipes import load_recipe

    over = {"model": "tiny", "out": out_dir, "max_steps": steps, "save_steps": 0, "progress": False, "threads": None}
    if quick:
        over.update(per_device_train_batch_size=4, num_generations=2, max_completion_length=6)
    return load_recipe(GRPORecipe, common.REPO / "configs" / "demo_train.yaml", section="grpo", overrides=over)


def media_token_ids(processor) -> list[int]:
    """Token ids a text-only run must never sample either (media placeholders and their markers)."""
    tok = processor.tokenizer
    ids = set()
    for text in ("<|IMAGE|>", "<|VIDEO|>", "<|AUDIO|>", "<|vision_bos|>", "<|vision_eos|>",
                 "<|audio_bos|>", "<|audio_eos|>", "<|image_pad|>", "<|video_pad|>"):
        tid = tok.convert_tokens_to_ids(text)
        if isinstance(tid, int) and tid != tok.unk_token_id:
            ids.add(tid)
    return sorted(ids)


def text_prompt(processor, n_tokens: int) -> str:
    """The rendered chat prompt without media blocks, padded with ordinary words to ``n_tokens`` tokens."""
    from omnibench.model.inputs import NONE, render_prompt

    tok = processor.tokenizer
    base = render_prompt(processor, NONE)
    head = "<|im_start|>user\n"
    if not base.startswith(head):
        raise RuntimeError(f"unexpected chat template output: {base[:60]!r}")

    def length(text):
        return len(tok(text)["input_ids"])

    k = 0
    text = base
    while length(text) < n_tokens:
        k += 1
        text = head + " ".join(["face"] * k) + " " + base[len(head):]
    if length(text) != n_tokens:
        raise RuntimeError(f"could not pad the text prompt to {n_tokens} tokens (got {length(text)})")
    return text


def media_store(clips, decode):
    """A media store without a disk cache (cold decoding, like a first epoch)."""
    try:
        from omnibench.data.media import MediaStore
    except ImportError:  # before the media store moved to omnibench.data.media
        from omnibench.recipes import MediaStore
    return MediaStore(clips, decode)


def omni_trainer(recipe, clips, variant: str, timers):
    from omnibench.grpo import build_trainer
    from omnibench.tiny import build_tiny

    share, identify, reuse, prefill, frozen = OPTIONS[variant]
    if frozen:
        recipe.freeze_vision = recipe.freeze_audio = True
    model, processor = build_tiny(seed=recipe.seed)
    store = media_store(clips, recipe.decode)
    if variant == "omni_warm":  # decoded before the run: every epoch after the first (memory hits)
        for c in clips:
            store(c.id)
    if variant == "omni_inline" and hasattr(recipe, "media_workers"):
        recipe.media_workers = 0
    trainer = build_trainer(recipe, model, processor, media_store=store, clips=clips)
    set_dedupe(trainer, share)
    # switches of OmniGRPOTrainer (absent in versions before them: then the variant runs as shipped)
    for attr, on in (("identify_clips", identify), ("reuse_frozen_encoders", reuse), ("share_prefill", prefill)):
        if hasattr(trainer, attr):
            setattr(trainer, attr, on)
    if variant == "omni_nopositions" and hasattr(trainer, "share_positions"):
        trainer.share_positions = False
    trainer.media_store = timers.timed(store, "decode")
    return trainer, processor


def set_dedupe(trainer, on: bool) -> None:
    """Switch the encoder optimisation of the trainer's policy and reference models on or off."""
    from omnibench.model.encoders import share_encoders

    for model in (trainer.model, getattr(trainer, "ref_model", None)):
        if model is not None:
            share_encoders(trainer.accelerator.unwrap_model(model), on)


def text_trainer(recipe, clips, prompt_len: int):
    """Plain ``trl.GRPOTrainer``: same thinker, config, rewards and labels; text-only prompts."""
    from datasets import Dataset
    from trl import GRPOTrainer

    from omnibench.grpo import _reference_model
    from omnibench.rewards import resolve_rewards
    from omnibench.tiny import build_tiny

    model, processor = build_tiny(seed=recipe.seed)
    prompt = text_prompt(processor, prompt_len)
    config = recipe.grpo_config()
    config.dataloader_num_workers, config.dataloader_persistent_workers = 0, False  # TRL's default: no media to decode
    config.generation_kwargs = {**(config.generation_kwargs or {}), "suppress_tokens": media_token_ids(processor)}
    ds = Dataset.from_list([{"prompt": prompt, "label": c.label} for c in clips])
    funcs, _ = resolve_rewards(recipe.rewards)
    ref = copy.deepcopy(model).requires_grad_(False)
    with _reference_model(ref):
        trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=config, train_dataset=ds,
                              processing_class=processor.tokenizer)
    return trainer, processor


# ------------------------------------------------------------------------------------ instrumentation


class StepClock:
    """Trainer callback: wall time and section totals at every step boundary."""

    def __new__(cls, timers):
        from transformers import TrainerCallback

        class _Clock(TrainerCallback):
            def __init__(self):
                self.timers, self.steps, self._t, self._snap, self._opt = timers, [], None, None, None

            def on_step_begin(self, args, state, control, **kw):
                common.sync()
                self._t, self._snap = time.perf_counter(), timers.snapshot()
                self._cpu = time.process_time()

            def on_pre_optimizer_step(self, args, state, control, **kw):
                common.sync()
                self._opt = time.perf_counter()

            def on_optimizer_step(self, args, state, control, **kw):
                common.sync()
                timers.total["optimizer"] += time.perf_counter() - self._opt

            def on_step_end(self, args, state, control, **kw):
                common.sync()
                wall = time.perf_counter() - self._t
                cpu = time.process_time() - self._cpu  # this process's CPU seconds: far less load-dependent
                self.steps.append({"wall": wall, "cpu": cpu, **common.diff(timers.snapshot(), self._snap)})

        return _Clock()


class PassParts:
    """Times the parts of each forward pass (encoders, 3-D position ids, placeholder scatter, language
    model) under the pass that runs them: ``<pass>.<part>`` in the timers, where the pass is the
    outer section open at the time (generation, ref_logprobs, loss_forward; ``other`` outside them).
    Hooks and instance attributes only: nothing in omnibench or transformers is edited."""

    def __init__(self, timers):
        self.timers, self.stack, self.handles, self._seen = timers, ["other"], [], set()

    def name(self, part: str) -> str:
        return f"{self.stack[-1]}.{part}"

    def outer(self, obj, attr: str, section: str) -> None:
        """Wrap ``obj.attr`` as the timed outer section ``section`` (a pass, when it is one)."""
        fn = getattr(obj, attr)

        def inner(*args, _fn=fn, **kwargs):
            self.stack.append(section)
            try:
                with self.timers.section(section):
                    return _fn(*args, **kwargs)
            finally:
                self.stack.pop()

        self.timers._patches.append((obj, attr, vars(obj).get(attr), attr in vars(obj)))
        setattr(obj, attr, inner)

    def module(self, module, part: str) -> None:
        """Forward pre/post hooks timing ``module`` as ``part`` (once per module object)."""
        if module is None or id(module) in self._seen:
            return
        self._seen.add(id(module))
        start = []

        def pre(mod, args, kwargs):
            common.sync()
            x = kwargs.get("inputs_embeds")
            start.append((time.perf_counter(), 0 if x is None or x.dim() < 2 else x.shape[1]))

        def post(mod, args, out):
            common.sync()
            t0, seq = start.pop()
            t = time.perf_counter() - t0
            self.timers.total[self.name(part)] += t
            if part == "encoders":
                self.timers.total["encoders"] += t
            if part == "language_model" and self.stack[-1] == "generation" and seq > 1:
                self.timers.total["generation.prefill_lm"] += t  # the prompt's forward (a part of it)

        self.handles += [module.register_forward_pre_hook(pre, with_kwargs=True), module.register_forward_hook(post)]

    def method(self, obj, attr: str, part: str) -> None:
        if obj is None or not hasattr(obj, attr) or (id(obj), attr) in self._seen:
            return
        self._seen.add((id(obj), attr))
        self.timers.wrap(obj, attr, lambda *a, **k: self.name(part))

    def model(self, model) -> None:
        inner = getattr(model, "model", model)
        self.module(getattr(inner, "visual", None), "encoders")
        self.module(getattr(inner, "audio_tower", None), "encoders")
        self.module(getattr(inner, "language_model", None), "language_model")
        # rope: generation computes it in the outer model, the log-prob passes in the inner one
        self.method(model, "get_rope_index", "rope_index")
        if inner is not model:
            self.method(inner, "get_rope_index", "rope_index")
        self.method(inner, "get_placeholder_mask", "scatter")

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()


def instrument(trainer, timers, text: bool) -> PassParts:
    import torch

    import omnibench.model.inputs as inputs_mod

    parts = PassParts(timers)
    if text:
        timers.wrap(trainer, "_tokenize_prompts", "processor")
    else:
        timers.wrap(inputs_mod, "build_inputs", "processor")
        timers.wrap(trainer, "_tokenize_prompts", "prompt_collate")
    parts.outer(trainer, "_generate_single_turn", "generation")
    timers.wrap(trainer, "_calculate_rewards", "rewards")
    parts.outer(trainer, "_compute_loss", "loss_forward")
    timers.wrap(trainer.accelerator, "backward", "backward")
    # the no-grad passes (reference, old policy); the loss pass's own log-probs stay in loss_forward
    original = trainer._get_per_token_logps_and_entropies

    def logps(*args, **kwargs):
        if torch.is_grad_enabled():
            return original(*args, **kwargs)
        parts.stack.append("ref_logprobs")
        try:
            with timers.section("ref_logprobs"):
                return original(*args, **kwargs)
        finally:
            parts.stack.pop()

    trainer._get_per_token_logps_and_entropies = logps
    timers.wrap(torch.Tensor, "masked_scatter", lambda *a, **k: parts.name("scatter"))
    for model in (trainer.model, getattr(trainer, "ref_model", None)):
        if model is not None:
            base = trainer.accelerator.unwrap_model(model)
            parts.model(base.get_base_model() if hasattr(base, "get_base_model") else base)
    return parts


# ------------------------------------------------------------------------------------ run


def run_variant(variant: str, clips, steps: int, warmup: int, prompt_len: int | None, quick: bool,
                profile: str | None = None) -> dict:
    """Train one variant for ``warmup + steps`` steps; per-step wall and section times of the timed steps.

    With ``profile`` (a file name), the whole run is recorded by ``torch.profiler`` and the operators
    with the most self CPU time are written to that file (and returned under ``profile_top``).
    """
    import gc
    import resource

    import torch

    def children_cpu() -> float:
        use = resource.getrusage(resource.RUSAGE_CHILDREN)
        return use.ru_utime + use.ru_stime

    timers = common.Timers()
    workers_before = children_cpu()
    with tempfile.TemporaryDirectory() as out:
        recipe = demo_recipe(out, steps + warmup, quick)
        torch.manual_seed(recipe.seed)
        if variant == "trl_text":
            trainer, _ = text_trainer(recipe, clips, prompt_len)
        else:
            trainer, _ = omni_trainer(recipe, clips, variant, timers=timers)
        clock = StepClock(timers)
        trainer.add_callback(clock)
        parts = instrument(trainer, timers, text=(variant == "trl_text"))
        prof = None
        try:
            with common.quiet_stdout():
                if profile:
                    from torch.profiler import ProfilerActivity
                    from torch.profiler import profile as torch_profile

                    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
                    with torch_profile(activities=acts) as prof:
                        trainer.train()
                else:
                    trainer.train()
        finally:
            timers.restore()
            parts.remove()
        lengths = [r.get("completions/mean_length") for r in trainer.state.log_history
                   if "completions/mean_length" in r]
        del trainer
        gc.collect()  # the dataloader's workers exit (and are reaped) with their iterator
    timed = clock.steps[warmup:]
    result = {"steps": timed, "completion_len": lengths[warmup:],
              "worker_cpu_s_per_step": (children_cpu() - workers_before) / (warmup + steps),
              "batch": recipe.per_device_train_batch_size, "G": recipe.num_generations}
    if prof is not None:
        result["profile_top"] = profile_table(prof, profile, warmup + steps, variant)
    return result


def profile_table(prof, path: str, n_steps: int, variant: str, rows: int = 12) -> list[dict]:
    """Write the profiler's operator table to ``path``; the top ``rows`` operators by self CPU time."""
    events = prof.key_averages()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(f"# bench_grpo_step --profile: variant {variant}, {n_steps} steps (all steps, "
                          "profiler overhead included)\n" + events.table(sort_by="self_cpu_time_total", row_limit=40))
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:rows]
    return [{"op": e.key, "self_cpu_ms_per_step": common.rnd(e.self_cpu_time_total / 1000 / n_steps, 1),
             "share": common.rnd(e.self_cpu_time_total / total, 3), "calls_per_step": e.count // n_steps}
            for e in top]


def summarise(runs: list[dict]) -> dict:
    steps = [s for r in runs for s in r["steps"]]
    wall = statistics.median(s["wall"] for s in steps)
    med = {k: statistics.median(s.get(k, 0.0) for s in steps) for k in (*SECTIONS, "encoders")}
    mean_wall = statistics.fmean(s["wall"] for s in steps)
    mean = {k: statistics.fmean(s.get(k, 0.0) for s in steps) for k in SECTIONS}
    other = mean_wall - sum(mean.values())
    batch, G = runs[0]["batch"], runs[0]["G"]
    lens = [x for r in runs for x in r["completion_len"]]
    passes = {}  # per pass: each timed part (median over steps) and the rest of the pass
    for p in PASSES:
        row = {part: statistics.median(s.get(f"{p}.{part}", 0.0) for s in steps) for part in PARTS}
        row["rest"] = med[p] - sum(row.values())
        if p == "generation":  # the prompt's language-model forward: a part of language_model
            row["prefill_lm"] = statistics.median(s.get("generation.prefill_lm", 0.0) for s in steps)
        passes[p] = {k: common.rnd(v) for k, v in {"total": med[p], **row}.items()}
    return {
        "s_per_step": common.rnd(wall),
        "s_per_step_mean": common.rnd(mean_wall),
        "cpu_s_per_step": common.rnd(statistics.median(s.get("cpu", 0.0) for s in steps)),
        "worker_cpu_s_per_step": common.rnd(statistics.fmean(r.get("worker_cpu_s_per_step", 0.0) for r in runs)),
        "samples_per_s": common.rnd(batch / wall, 3),
        "clips_per_s": common.rnd(batch / G / wall, 3),
        "breakdown_s": {**{k: common.rnd(med[k]) for k in SECTIONS}, "other": common.rnd(other)},
        "breakdown_share": {**{k: common.rnd(mean[k] / mean_wall, 3) for k in SECTIONS},
                            "other": common.rnd(other / mean_wall, 3)},
        "encoders_s": common.rnd(med["encoders"]),
        "passes_s": passes,
        "completion_len_mean": common.rnd(statistics.fmean(lens), 1) if lens else None,
        "n_steps": len(steps),
        "step_walls": [common.rnd(s["wall"], 3) for s in steps],
    }


def full_prompt_len(clip, recipe_decode) -> int:
    from omnibench.data.media import DecodeConfig, decode_clip
    from omnibench.model.inputs import ALL, build_inputs
    from omnibench.tiny import build_tiny

    _, processor = build_tiny(seed=0)
    media = decode_clip(clip, DecodeConfig(**dict(recipe_decode or {})))
    return int(build_inputs(processor, [media], [ALL])["input_ids"].shape[1])


def main(argv=None) -> dict:
    ap = common.parser(__doc__)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per trainer and round")
    ap.add_argument("--warmup", type=int, default=1, help="untimed first steps per trainer and round")
    ap.add_argument("--rounds", type=int, default=3, help="times the variants run in turn (order reversed "
                    "every other round); ratios are taken within each round, then their median")
    ap.add_argument("--variants", default=None, help="comma-separated subset of " + ",".join(VARIANTS)
                    + " (default: all; with --quick: " + ",".join(QUICK_VARIANTS) + ")")
    ap.add_argument("--profile", default=None, metavar="FILE",
                    help="after the timed rounds, profile omni and omni_noopt once more with torch.profiler "
                         "(operator tables to FILE with suffixes .omni.txt / .omni_noopt.txt)")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.rounds = 1, 0, 1
    common.setup(args)
    started = common.machine()
    chosen = args.variants or ",".join(QUICK_VARIANTS if args.quick else VARIANTS)
    variants = [v.strip() for v in chosen.split(",") if v.strip()]
    bad = set(variants) - set(VARIANTS)
    if bad:
        ap.error(f"unknown variants {sorted(bad)}; choose from {VARIANTS}")

    with tempfile.TemporaryDirectory() as d:
        recipe = demo_recipe(d, 1, args.quick)
    per_round = (args.steps + args.warmup) * recipe.per_device_train_batch_size // recipe.num_generations
    clips = common.synth_clips(per_round)  # each round of each variant sees the same clips, decoded cold
    prompt_len = full_prompt_len(clips[0], recipe.decode)

    t0 = time.perf_counter()
    runs: dict[str, list] = {v: [] for v in variants}
    for r in range(args.rounds):
        for v in common.round_order(variants, r):
            runs[v].append(run_variant(v, clips, args.steps, args.warmup, prompt_len, args.quick))
    figures = {"recipe": "configs/demo_train.yaml#grpo" + (" (quick sizes)" if args.quick else ""),
               "completions_per_step": recipe.per_device_train_batch_size,
               "num_generations": recipe.num_generations,
               "max_completion_length": recipe.max_completion_length,
               "prompt_tokens_full": prompt_len, "rounds": args.rounds, "steps_per_round": args.steps,
               "variants": {v: summarise(r) for v, r in runs.items() if r}}

    def per_round(a: str, b: str, key=lambda run: statistics.median(s["wall"] for s in run["steps"])):
        return [key(x) / key(y) if key(y) else None for x, y in zip(runs.get(a, []), runs.get(b, []))]

    def enc(run):
        return statistics.median(s.get("encoders", 0.0) for s in run["steps"])

    pairs = {"omni_over_trl": ("omni", "trl_text"), "omni_noopt_over_trl": ("omni_noopt", "trl_text"),
             "noopt_over_opt": ("omni_noopt", "omni"), "content_over_identity": ("omni_content", "omni"),
             "noprefill_over_prefill": ("omni_noprefill", "omni"), "content_over_trl": ("omni_content", "trl_text"),
             "omni_warm_over_trl": ("omni_warm", "trl_text"),
             "omni_inline_over_trl": ("omni_inline", "trl_text"), "inline_over_workers": ("omni_inline", "omni"),
             "nopositions_over_positions": ("omni_nopositions", "omni"),
             "omni_frozen_over_trl": ("omni_frozen", "trl_text"),
             "frozen_nocache_over_cache": ("omni_frozen_nocache", "omni_frozen")}
    ratios = {name: common.ratio_summary(per_round(a, b)) for name, (a, b) in pairs.items()
              if runs.get(a) and runs.get(b)}

    def cpu(run):
        return statistics.median(s.get("cpu", 0.0) for s in run["steps"])

    # the same ratios on the process's CPU time (1 torch thread: the work done, much less moved by
    # other processes' load than wall time)
    ratios.update({f"{name}_cpu": common.ratio_summary(per_round(a, b, cpu)) for name, (a, b) in pairs.items()
                   if runs.get(a) and runs.get(b)})
    if runs.get("omni") and runs.get("omni_noopt"):
        ratios["encoders_noopt_over_opt"] = common.ratio_summary(per_round("omni_noopt", "omni", enc))
    if runs.get("omni_frozen") and runs.get("omni_frozen_nocache"):
        ratios["encoders_frozen_nocache_over_cache"] = common.ratio_summary(
            per_round("omni_frozen_nocache", "omni_frozen", enc))
    figures["ratios"] = ratios
    if args.profile:
        figures["profile"] = {}
        for v in ("omni", "omni_noopt"):
            r = run_variant(v, clips, args.steps, args.warmup, prompt_len, args.quick, profile=f"{args.profile}.{v}.txt")
            figures["profile"][v] = r["profile_top"]
    figures["seconds"] = common.rnd(time.perf_counter() - t0, 1)
    return common.emit("grpo_step", figures, args.out, started)


if __name__ == "__main__":
    main()
