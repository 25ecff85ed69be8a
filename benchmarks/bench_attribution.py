"""What attribution costs: scoring-based exact Shapley vs generation-based ablation on the same clips.

    .venv/bin/python benchmarks/bench_attribution.py [--n 24] [--max-new-tokens 64] [--model DIR] [--out FILE]

Both methods evaluate the 4 coalitions of {video, audio} (modalities dropped) for every clip, with
the same target: the answer the model generates from the full input.

* ``generate``  :func:`omnibench.attribution.attribute_generate` -- greedy generation (reasoning +
  answer) under each coalition, ``v(S) = 1`` when the answer equals the target;
* ``score``     :func:`omnibench.attribution.attribute` -- ``v(S)`` = the target's probability among
  the labels, teacher-forced right after the prompt (one prompt pass per clip and coalition, the
  label tails batched over a shared cache); no generation.
* ``score_reasoning``  the same scoring after the model's own full-input reasoning
  (``position="reasoning"``, the completions reused from the generation run);
* ``score_regenerate``  scoring after reasoning generated under each coalition (``position=
  "regenerate"``, what ``position="auto"`` picks for a model that reasons first; the full-input
  completions reused, so 3 of the 4 coalitions generate).

The methods run in turn ``--rounds`` times (order reversed every other round); seconds are medians,
and the wall-time ratio generate / score is taken within each round, then its median.
Figures: seconds and clips per second of each, the wall-time ratio generate / score, agreement on
the dominant modality (clips where both name one; ties counted), and on SynthEmo's ground truth:
the share of single-modality clips (condition video / audio) whose informative modality each method
calls dominant. The model is the short-SFT tiny thinker (``common.bench_model``) unless ``--model``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common


def ground_truth_hits(res) -> dict:
    """Among clips of condition video/audio, the share whose informative modality is the dominant one."""
    dom = res.dominant()
    out = {}
    for mod in ("video", "audio"):
        sel = [d for d, c in zip(dom, res.condition) if c == mod]
        out[mod] = {"n": len(sel), "dominant_is_informative": common.rnd(np.mean([d == mod for d in sel]), 3)
                    if sel else None}
    return out


def main(argv=None) -> dict:
    ap = common.parser(__doc__)
    ap.add_argument("--n", type=int, default=24, help="test clips")
    ap.add_argument("--max-new-tokens", type=int, default=64, help="generation budget per coalition")
    ap.add_argument("--batch-size", type=int, default=8, help="clips per forward / generate call")
    ap.add_argument("--rounds", type=int, default=2, help="times the three methods run in turn (order reversed "
                    "every other round); the time ratio is taken within each round")
    ap.add_argument("--model", default=None, help="model folder (default: the cached short-SFT tiny model)")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.max_new_tokens, args.rounds = 4, 8, 1
    common.setup(args)
    started = common.machine()

    from omnibench.attribution import AttributionConfig, attribute, attribute_generate, dominant_agreement
    from omnibench.model import load_model

    model, processor = load_model(args.model) if args.model else common.bench_model(quick=args.quick)
    clips = common.synth_clips(args.n, "test_id")
    media = common.decoded_media(clips)
    cfg = AttributionConfig(batch_size=args.batch_size, position="prompt")
    attribute(model, processor, clips[:2], media[:2], config=cfg)  # warm-up

    t0 = time.perf_counter()
    cfg_r = AttributionConfig(batch_size=args.batch_size, position="reasoning", max_new_tokens=args.max_new_tokens)
    cfg_g = AttributionConfig(batch_size=args.batch_size, position="regenerate", max_new_tokens=args.max_new_tokens)

    def run_gen():
        return attribute_generate(model, processor, clips, media, config=cfg, max_new_tokens=args.max_new_tokens)

    gen = run_gen()  # its answers are the target of every method (greedy: the same in every round)

    def run_score():
        return attribute(model, processor, clips, media, config=cfg, predictions=gen.prediction)

    def run_score_r():
        return attribute(model, processor, clips, media, config=cfg_r, predictions=gen.prediction,
                         completions=gen.completion)

    def run_score_g():
        return attribute(model, processor, clips, media, config=cfg_g, predictions=gen.prediction,
                         completions=gen.completion)

    fns = {"generate": run_gen, "score": run_score, "score_reasoning": run_score_r, "score_regenerate": run_score_g}
    results = {"generate": [gen]}
    for r in range(args.rounds):
        for name in common.round_order(list(fns), r):
            if r == 0 and name == "generate":
                continue  # already ran
            results.setdefault(name, []).append(fns[name]())
    first = {name: res[0] for name, res in results.items()}
    out: dict = {"n_clips": args.n, "coalitions": 4, "max_new_tokens": args.max_new_tokens, "rounds": args.rounds,
                 "model": args.model or "tiny + short explained SFT (.cache/bench)",
                 "conditions": {c: sum(x.meta.get("condition") == c for x in clips) for c in ("both", "video", "audio")}}
    for name, res in first.items():
        secs = sorted(x.seconds for x in results[name])
        out[name] = {"seconds": common.rnd(statistics.median(secs), 3), "seconds_all": [common.rnd(x, 3) for x in secs],
                     "clips_per_s": common.rnd(len(res) / statistics.median(secs), 2),
                     "ground_truth": ground_truth_hits(res), "n_tie": sum(d is None for d in res.dominant())}
    out["ratios"] = {
        "generate_over_score_time": common.ratio_summary(
            [g.seconds / s.seconds for g, s in zip(results["generate"], results["score"])], 2),
        "generate_over_score_reasoning_time": common.ratio_summary(
            [g.seconds / s.seconds for g, s in zip(results["generate"], results["score_reasoning"])], 2),
        "generate_over_score_regenerate_time": common.ratio_summary(
            [g.seconds / s.seconds for g, s in zip(results["generate"], results["score_regenerate"])], 2),
    }
    gen, score, score_r = first["generate"], first["score"], first["score_reasoning"]
    out["agreement_generate_vs_score_regenerate"] = dominant_agreement(gen, first["score_regenerate"])
    out["agreement_generate_vs_score"] = dominant_agreement(gen, score)
    out["agreement_generate_vs_score_reasoning"] = dominant_agreement(gen, score_r)
    out["agreement_score_vs_score_reasoning"] = dominant_agreement(score, score_r)
    out["seconds"] = common.rnd(time.perf_counter() - t0, 1)
    return common.emit("attribution", out, args.out, started)


if __name__ == "__main__":
    main()
