"""Media decoding speed: decord frames + audio per second, cold vs decode-cache hit.

    .venv/bin/python benchmarks/bench_decode.py [--n 24] [--reps 2] [--out FILE]

On ``--n`` SynthEmo clips (mp4: H.264 video 112 px 8 fps, AAC audio, 1.5 s), with the default
``DecodeConfig`` (8 frames sampled uniformly, 112 px, 16 kHz mono):

* ``cold``         ``decode_clip`` without a cache (decord video + audio for every clip);
* ``video_only`` / ``audio_only``  the two halves of a cold decode, timed separately;
* ``cache_miss``   the first pass through a fresh :class:`DecodeCache` (decode + write the .npz);
* ``cache_hit``    the next pass (read the .npz back);
* ``memory_hit``   :class:`MediaStore` after its first pass (what every later GRPO/SFT epoch costs).

Figures: clips per second, frames per second and audio seconds per second (median of ``--reps``
passes), and the speed-up of a cache hit over a cold decode.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common


def _pass(fn, clips) -> float:
    t = time.perf_counter()
    for c in clips:
        fn(c)
    return time.perf_counter() - t


def _rates(seconds: list[float], n: int, frames_per_clip: int, audio_s_per_clip: float) -> dict:
    s = statistics.median(seconds)
    return {"clips_per_s": common.rnd(n / s, 2), "frames_per_s": common.rnd(n * frames_per_clip / s, 1),
            "audio_s_per_s": common.rnd(n * audio_s_per_clip / s, 1), "ms_per_clip": common.rnd(1000 * s / n, 2),
            "seconds": [common.rnd(x, 3) for x in seconds]}


def main(argv=None) -> dict:
    ap = common.parser(__doc__)
    ap.add_argument("--n", type=int, default=24, help="clips")
    ap.add_argument("--reps", type=int, default=3, help="rounds of all measurements (medians; ratios within rounds)")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.reps = 4, 1
    common.setup(args)
    started = common.machine()

    from omnibench.data.media import DecodeCache, DecodeConfig, decode_audio, decode_clip, decode_frames
    from omnibench.recipes import MediaStore

    cfg = DecodeConfig()
    clips = common.synth_clips(args.n)
    probe = decode_clip(clips[0], cfg)
    n_frames, audio_s = len(probe.frames), len(probe.audio) / probe.sr
    _pass(lambda c: decode_clip(c, cfg), clips[:2])  # warm-up: library load, file system cache

    out: dict = {"n_clips": args.n, "num_frames": n_frames, "frame_size": cfg.size, "audio_s_per_clip": audio_s,
                 "reps": args.reps}
    passes = {
        "cold": lambda c: decode_clip(c, cfg),
        "video_only": lambda c: decode_frames(c.video, cfg),
        "audio_only": lambda c: decode_audio(c.video, cfg, True),
    }
    times: dict[str, list[float]] = {k: [] for k in (*passes, "cache_miss", "cache_hit", "memory_hit")}
    for r in range(args.reps):  # every measurement once per round, order reversed every other round
        for name in common.round_order([*passes, "cache"], r):
            if name != "cache":
                times[name].append(_pass(passes[name], clips))
                continue
            with tempfile.TemporaryDirectory() as d:
                cache = DecodeCache(d)
                times["cache_miss"].append(_pass(lambda c, cache=cache: decode_clip(c, cfg, cache), clips))
                times["cache_hit"].append(_pass(lambda c, cache=cache: decode_clip(c, cfg, cache), clips))
                if cache.stats()["hits"] != args.n:
                    raise RuntimeError(f"decode cache: expected {args.n} hits, got {cache.stats()}")
        store = MediaStore(clips, None, None)
        _pass(store, [c.id for c in clips])
        times["memory_hit"].append(_pass(store, [c.id for c in clips]))
    for name, secs in times.items():
        out[name] = _rates(secs, args.n, 0 if name == "audio_only" else n_frames,
                           0.0 if name == "video_only" else audio_s)

    def per_round(a, b):
        return common.ratio_summary([x / y for x, y in zip(times[a], times[b])], 2)

    out["ratios"] = {
        "cache_hit_over_cold_speed": per_round("cold", "cache_hit"),
        "cache_miss_over_cold_time": per_round("cache_miss", "cold"),
        "video_share_of_cold": per_round("video_only", "cold"),
    }
    return common.emit("decode", out, args.out, started)


if __name__ == "__main__":
    main()
