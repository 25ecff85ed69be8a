"""Batched evaluation speed: clips per second of ``evaluate_split`` at batch sizes 1, 4 and 16.

    .venv/bin/python benchmarks/bench_eval.py [--n 32] [--batch-sizes 1,4,16] [--max-new-tokens 64]
                                              [--model DIR] [--out FILE]

The model is the tiny thinker after a short explained cold-start SFT (``common.bench_model``, built
once under .cache/bench/; or ``--model DIR``), so it writes ``<think>…</think><answer>…</answer>``
completions of realistic length. Media are decoded before timing (decoding has its own harness).
For each batch size: ``generate`` mode (greedy reasoning + parsed answer, the default) and ``score``
mode (argmax of teacher-forced label scores, no reasoning). Figures: clips per second (the time
``evaluate_split`` reports for the model calls), mean completion length, and the speed-up of each
batch size over batch size 1.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common


def main(argv=None) -> dict:
    ap = common.parser(__doc__)
    ap.add_argument("--n", type=int, default=32, help="test clips")
    ap.add_argument("--batch-sizes", default="1,4,16", help="comma-separated batch sizes")
    ap.add_argument("--max-new-tokens", type=int, default=64, help="generation budget (EvalConfig default)")
    ap.add_argument("--model", default=None, help="model folder (default: the cached short-SFT tiny model)")
    ap.add_argument("--rounds", type=int, default=2, help="passes over all (mode, batch size) settings, order "
                    "reversed every other pass; clips/s are medians, speed-ups taken within each pass")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.batch_sizes, args.max_new_tokens, args.rounds = 4, "1,4", 8, 1
    common.setup(args)
    started = common.machine()

    from omnibench.evaluate import EvalConfig, evaluate_split
    from omnibench.model import load_model

    model, processor = load_model(args.model) if args.model else common.bench_model(quick=args.quick)
    tok = processor.tokenizer
    clips = common.synth_clips(args.n, "test_id")
    media = common.decoded_media(clips)
    sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    # warm-up (first-call costs: kernels, processor caches)
    evaluate_split(model, processor, clips[:2], media[:2], config=EvalConfig(batch_size=2, max_new_tokens=4, n_boot=0))

    out: dict = {"n_clips": args.n, "max_new_tokens": args.max_new_tokens, "rounds": args.rounds,
                 "model": args.model or "tiny + short explained SFT (.cache/bench)", "generate": {}, "score": {}}
    t0 = time.perf_counter()
    runs: dict = {}
    for r in range(args.rounds):
        for mode, b in common.round_order([(m, b) for m in ("generate", "score") for b in sizes], r):
            cfg = EvalConfig(mode=mode, batch_size=b, max_new_tokens=args.max_new_tokens, n_boot=0)
            runs.setdefault((mode, b), []).append(evaluate_split(model, processor, clips, media, config=cfg))
    for (mode, b), results in runs.items():
        res = results[0]
        secs = statistics.median(x.seconds for x in results)
        row = {"clips_per_s": common.rnd(len(clips) / secs, 2), "seconds": common.rnd(secs, 3),
               "seconds_all": [common.rnd(x.seconds, 3) for x in results], "war": common.rnd(res.metrics["war"], 3)}
        if mode == "generate":
            lens = [len(tok(c, add_special_tokens=False)["input_ids"]) for c in res.completion]
            row["completion_tokens_mean"] = common.rnd(sum(lens) / len(lens), 1)
            row["parsed"] = common.rnd(sum(res.parsed) / len(res.parsed), 3)
        out[mode][f"batch_{b}"] = row
    for mode in ("generate", "score"):  # speed-ups within each round, then their median
        base = runs[(mode, sizes[0])]
        out[mode][f"speedup_over_batch_{sizes[0]}"] = {
            f"batch_{b}": common.ratio_summary([x.seconds / y.seconds for x, y in zip(base, runs[(mode, b)])], 2)
            for b in sizes}
    big = sizes[-1]
    out["score_over_generate_speed"] = common.ratio_summary(
        [g.seconds / s.seconds for g, s in zip(runs[("generate", big)], runs[("score", big)])], 2)
    out["seconds"] = common.rnd(time.perf_counter() - t0, 1)
    return common.emit("eval", out, args.out, started)


if __name__ == "__main__":
    main()
