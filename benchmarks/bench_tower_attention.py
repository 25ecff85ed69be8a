"""The towers' fast paths: batched chunk attention, and the patch embedding as a matrix product.

    .venv/bin/python benchmarks/bench_tower_attention.py [--clips 32] [--rounds 3] [--threads 2] [--out FILE]
    .venv/bin/python benchmarks/bench_tower_attention.py --feature patch_embed --out benchmarks/results/patch_embed.json

``--feature attention`` (default): transformers' one SDPA call per chunk vs one call per run of equal
chunks (:mod:`omnibench.model.attention`). ``--feature patch_embed``: the vision patch embedding's
``Conv3d`` vs one matrix product (:mod:`omnibench.model.patch_embed`; equal up to rounding, so the
figure is the largest absolute difference of the logits and gradients instead of bitwise equality).

Two workloads on the tiny thinker, each timed with the feature off and on, back to back in each round (order
reversed every other round):

* ``perception_step``: one step of the tower pre-training (``omnibench.tiny.perception``): the
  pooled vision + audio features of ``--clips`` clips, a read-out loss, backward, AdamW;
* ``forward_backward``: a full thinker forward + backward on the same clips with a 48-token answer
  (the shape of an SFT or GRPO loss pass).

Before timing, the two settings' outputs and gradients are compared (``bitwise_equal``). Figures:
median seconds per call per setting, and the per-round speed-up (per-chunk / batched).
Threads default to 2: perception pre-training uses every core (up to 8).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

#: a cold-start-shaped answer (about 40 tokens)
ANSWER = ("<think>The face shows a wide smile and raised brows. The voice has a lilting melody, fast syllables "
          "and a high pitch.</think><answer>happy</answer>")


def main(argv=None) -> dict:
    ap = common.parser(__doc__)
    ap.set_defaults(threads=2)
    ap.add_argument("--clips", type=int, default=32, help="clips per step (perception batch size)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; each times both settings back to back")
    ap.add_argument("--reps", type=int, default=5, help="timed calls per setting and round")
    ap.add_argument("--feature", choices=("attention", "patch_embed"), default="attention",
                    help="the fast path compared with and without")
    args = ap.parse_args(argv)
    if args.quick:
        args.clips, args.rounds, args.reps = 4, 1, 1
    common.setup(args)
    started = common.machine()

    import torch

    from omnibench.model import ALL, build_inputs
    from omnibench.model.attention import batch_tower_attention, tower_attention
    from omnibench.model.patch_embed import matmul_patch_embed
    from omnibench.tiny import build_tiny
    from omnibench.tiny.perception import pooled_features

    model, processor = build_tiny(seed=0)
    media = common.decoded_media(common.synth_clips(args.clips, "train"))
    clips_only = build_inputs(processor, media, [ALL] * len(media))
    full = build_inputs(processor, media, [ALL] * len(media), completions=[ANSWER] * len(media),
                        return_labels=True)
    heads = torch.nn.Linear(model.config.text_config.hidden_size, 7)
    opt = torch.optim.AdamW([*model.parameters(), *heads.parameters()], lr=1e-4)
    model.train()

    def perception_step():
        opt.zero_grad(set_to_none=True)
        feats = pooled_features(model, clips_only)
        loss = heads(feats["video"]).logsumexp(-1).mean() + heads(feats["audio"]).logsumexp(-1).mean()
        loss.backward()
        opt.step()

    def forward_backward():
        model.zero_grad(set_to_none=True)
        model(**full).loss.backward()

    def outputs():
        model.zero_grad(set_to_none=True)
        out = model(**full)
        out.loss.backward()
        return out.logits.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    off, on = ("per_chunk", "batched") if args.feature == "attention" else ("conv3d", "matmul")

    def use(fast: bool):
        if args.feature == "attention":
            batch_tower_attention(model, fast)
        else:
            matmul_patch_embed(model, fast)

    use(False)
    logits0, grads0 = outputs()
    use(True)
    logits1, grads1 = outputs()
    same_shape = len(grads0) == len(grads1)
    equal = bool(torch.equal(logits0, logits1) and same_shape and all(torch.equal(a, b) for a, b in zip(grads0, grads1)))
    max_diff = max([float((logits0 - logits1).abs().max())]
                   + [float((a - b).abs().max()) for a, b in zip(grads0, grads1)]) if same_shape else None

    state = {k: v.clone() for k, v in model.state_dict().items()}  # the optimizer steps move the weights
    figures: dict = {"clips": args.clips, "rounds": args.rounds, "reps": args.reps, "threads": args.threads,
                     "feature": args.feature, "bitwise_equal": equal, "max_abs_diff": max_diff,
                     "towers": tower_attention(model)}
    for name, fn in (("perception_step", perception_step), ("forward_backward", forward_backward)):
        times: dict[str, list[float]] = {off: [], on: []}
        ratios = []
        for r in range(args.rounds):
            this = {}
            for setting in common.round_order([off, on], r):
                use(setting == on)
                this[setting] = common.time_reps(fn, args.reps)["median"]
                times[setting].append(this[setting])
            ratios.append(this[off] / this[on])
        model.load_state_dict(state)
        figures[name] = {"s_per_call": {k: common.rnd(sorted(v)[len(v) // 2]) for k, v in times.items()},
                         "speedup": common.ratio_summary(ratios)}
    use(True)
    return common.emit("tower_attention" if args.feature == "attention" else "patch_embed", figures, args.out, started)


if __name__ == "__main__":
    main()
