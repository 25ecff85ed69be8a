"""SynthEmo generation speed: N clips (default 1,000) into a fresh folder; goal <= 60 s on 2 cores.

    .venv/bin/python benchmarks/bench_synth.py --n 1000 --workers 2

Prints one JSON line: clips_per_s, seconds, n, workers, and a single-process breakdown (ms per clip
for planning, drawing the frames, synthesising the audio, encoding the mp4) measured on a few clips.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from omnibench.data import synth


def breakdown(n: int = 12) -> dict[str, float]:
    cfg = synth.SynthConfig()
    acc = {"plan": 0.0, "video": 0.0, "audio": 0.0, "encode": 0.0}
    with tempfile.TemporaryDirectory() as d:
        for i in range(n):
            t = time.perf_counter()
            plan = synth.plan_clip(0, "train", i, (), cfg)
            t1 = time.perf_counter()
            frames = synth.render_frames(plan, cfg)
            t2 = time.perf_counter()
            audio = synth.render_audio(plan, cfg)
            t3 = time.perf_counter()
            synth.write_mp4(Path(d) / f"{i}.mp4", frames, audio, cfg.fps, cfg.sr, cfg.crf)
            t4 = time.perf_counter()
            for k, dt in zip(acc, (t1 - t, t2 - t1, t3 - t2, t4 - t3)):
                acc[k] += dt
    return {f"ms_{k}": round(v / n * 1000, 1) for k, v in acc.items()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="clips to generate (train split)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", default=None, help="folder to keep the clips in (default: a temporary one)")
    args = ap.parse_args(argv)

    out = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_synth_"))
    try:
        t0 = time.perf_counter()
        clips = synth.generate_split(out, "train", args.n, seed=0, workers=args.workers, resume=False)
        seconds = time.perf_counter() - t0
        size = sum(Path(c.video).stat().st_size for c in clips)
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    result = {
        "clips_per_s": round(args.n / seconds, 2),
        "seconds": round(seconds, 2),
        "n": args.n,
        "workers": args.workers,
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "goal_s_per_1000": 60,
        "kb_per_clip": round(size / args.n / 1024, 1),
        **breakdown(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
