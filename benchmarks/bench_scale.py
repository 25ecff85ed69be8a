"""Evaluation and attribution at scale: time and peak memory per step against the number of clips n.

    .venv/bin/python benchmarks/bench_scale.py [--ns 1000,5000] [--allow-20k] [--base 8] [--attr-max 1000]
                                               [--parallel-n 1000] [--rounds 2] [--out FILE]

Manifests of n clips (n = 1000 and 5000 by default; 20000 needs ``--allow-20k``) are made by reusing
``--base`` SynthEmo ``test_id`` clips (generated once under .cache/bench/) under new ids. **Each clip's
video is a hard link of its own** (``media/<id>.mp4`` -> one of the base files): the decode cache's key
holds the file's absolute path, so every clip is its own cache entry and decoding n clips decodes n
files (what a real set of n distinct files costs), while the disk holds only the base files.

Steps, for each n (each one timed on its own, its peak memory measured: ``VmHWM`` of this process,
reset before the step through ``/proc/self/clear_refs``; ``ru_maxrss`` where that is impossible):

- ``validate``: ``read_manifest(check_media=True)`` (parse, label check, one ``stat`` per file);
- ``decode``: every clip through a fresh :class:`~omnibench.data.media.DecodeCache` (all misses:
  decode + write of the ``.npz``), then ``decode_hit``: the same pass again (all hits: ``.npz`` read);
  at the smallest n also ``decode_capped``: a fresh cache capped at 25% of the uncapped one's size
  (least-recently-used eviction at work);
- ``eval_score`` / ``eval_generate``: ``evaluate_stage`` (score mode; generate mode with
  ``--max-new-tokens``) with a tiny untrained thinker (``build_tiny`` + ``save_model``), in a fresh run
  folder whose decode cache is the ``decode`` step's folder: the evaluation reads each clip's entry
  (a per-clip ``.npz`` read, not a decode), so these figures are the stage's own cost; decoding is
  the ``decode`` step's. The time inside ``DecodeCache.get`` and ``evaluate_split`` (the model) is
  reported as a breakdown;
- ``attribute``: ``attribution_stage`` (``generate=False``, ``n_perm=0``: exact Shapley over video and
  audio by scoring, 4 coalitions) on the first ``min(n, --attr-max)`` clips.

Then the growth: seconds per clip at each n and the ratio of the largest n's to the smallest's (1.0:
linear; > 1: worse than linear), and a least-squares line ``seconds = a + b * n`` per step.

Finally ``parallel``: ``omnibench eval --mode score`` on the first ``--parallel-n`` clips as a user runs
it, one process (``python -m omnibench``) and two (``python -m torch.distributed.run --nproc_per_node
2 -m omnibench``, gloo on the CPU), side by side in rounds of reversed order, both reading the same
decode cache; clips/s by the stage's own time (printed by the stage, model loading and process start
excluded) and by wall time, the 2-over-1 ratio within each round, and the load average.
"""

from __future__ import annotations

import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import re
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

# ------------------------------------------------------------------------------------ memory


def _status(field: str) -> int | None:
    """A ``/proc/self/status`` figure in KiB (None off Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset this process's peak RSS (Linux >= 4.0); False where that is impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Step:
    """Times one step and measures its peak memory."""

    def __init__(self, n_clips: int):
        self.n = n_clips

    def __enter__(self):
        import gc

        gc.collect()
        self.reset = _reset_peak()
        self.rss0 = _status("VmRSS")
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        peak = _status("VmHWM") if self.reset else None
        self.peak_kib = peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return False

    def row(self, **extra) -> dict:
        return {"n": self.n, "seconds": common.rnd(self.seconds, 3),
                "clips_per_s": common.rnd(self.n / max(self.seconds, 1e-9), 1),
                "ms_per_clip": common.rnd(1000 * self.seconds / max(self.n, 1), 3),
                "peak_rss_mib": common.rnd(self.peak_kib / 1024, 1),
                "rss_at_start_mib": common.rnd((self.rss0 or 0) / 1024, 1),
                "peak_is": "step" if self.reset else "process lifetime (ru_maxrss)", **extra}


# ------------------------------------------------------------------------------------ data


def make_manifest(base, n: int, folder: Path) -> Path:
    """A manifest of ``n`` clips in split ``test_id``, clip i a hard link of base clip ``i % len(base)``."""
    from omnibench.data.manifest import Clip, write_manifest

    media = folder / "media"
    media.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(n):
        b = base[i % len(base)]
        dst = media / f"s{i:06d}.mp4"
        if not dst.exists():
            try:
                os.link(b.video, dst)
            except OSError:  # another file system: a copy (the disk then holds n files)
                shutil.copyfile(b.video, dst)
        clips.append(Clip(id=f"s{i:06d}", video=str(dst), label=b.label, split="test_id", dataset=b.dataset,
                          meta=dict(b.meta or {})))
    return write_manifest(clips, folder / "manifest.jsonl")


def run_folder(root: Path, name: str, cache: Path):
    """A fresh run folder whose decode cache is ``cache`` (a symbolic link)."""
    from omnibench.run import RunFolder

    shutil.rmtree(root / name, ignore_errors=True)
    run = RunFolder(root / name)
    run.decode_cache_dir.parent.mkdir(parents=True, exist_ok=True)
    run.decode_cache_dir.symlink_to(cache.resolve(), target_is_directory=True)
    return run


# ------------------------------------------------------------------------------------ steps


def scale_steps(n: int, manifest: Path, model_dir: Path, work: Path, args, timers, capped: bool) -> dict:
    from omnibench.data.manifest import read_manifest
    from omnibench.data.media import DecodeCache, decode_clip, decode_config_for
    from omnibench.stages import (
        AttributionStageConfig,
        EvaluateStageConfig,
        attribution_stage,
        evaluate_stage,
    )

    out: dict = {}
    with Step(n) as s:
        clips = read_manifest(manifest, split="test_id", check_media=True)
    assert len(clips) == n
    out["validate"] = s.row()

    cfg = decode_config_for(model_dir, warn=False)
    cache_dir = work / "decode_cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    cache = DecodeCache(cache_dir)
    with Step(n) as s:
        for c in clips:
            decode_clip(c, cfg, cache)
    disk = cache.disk_bytes()
    out["decode"] = s.row(cache=cache.stats(), cache_mib=common.rnd(disk / 2**20, 1),
                          entry_kib=common.rnd(disk / n / 1024, 1), settings=cfg.describe())
    if cache.misses != n:
        raise RuntimeError(f"decode: expected {n} misses (one entry per clip), got {cache.stats()}")
    cache = DecodeCache(cache_dir)
    with Step(n) as s:
        for c in clips:
            decode_clip(c, cfg, cache)
    out["decode_hit"] = s.row(cache=cache.stats())
    if capped:
        cap_dir = work / "decode_cache_capped"
        shutil.rmtree(cap_dir, ignore_errors=True)
        cap = DecodeCache(cap_dir, max_bytes=disk / 4)
        with Step(n) as s:
            for c in clips:
                decode_clip(c, cfg, cap)
        out["decode_capped"] = s.row(cache=cap.stats(), cap_mib=common.rnd(cap.max_bytes / 2**20, 1),
                                     disk_mib_after=common.rnd(cap.disk_bytes() / 2**20, 1))
        shutil.rmtree(cap_dir, ignore_errors=True)

    model = f"tiny:{model_dir}"
    common_kw = {"splits": ["test_id"], "manifest": str(manifest), "batch_size": args.batch_size, "device": "cpu",
                 "progress": False}
    for mode in ("score", "generate"):
        run = run_folder(work, f"eval_{mode}", cache_dir)
        ecfg = EvaluateStageConfig(checkpoints=[model], mode=mode, max_new_tokens=args.max_new_tokens,
                                   single_modality_checkpoints=[], **common_kw)
        before = timers.snapshot()
        with Step(n) as s, common.quiet_stdout():
            res = evaluate_stage(run, ecfg)
        spent = common.diff(timers.snapshot(), before)
        out[f"eval_{mode}"] = s.row(n_evaluated=res.results[0].metrics["n"],
                                    breakdown_s={k: common.rnd(v, 3) for k, v in sorted(spent.items()) if v > 0},
                                    **({"max_new_tokens": args.max_new_tokens} if mode == "generate" else {}))
        shutil.rmtree(run.path, ignore_errors=True)

    k = min(n, args.attr_max)
    run = run_folder(work, "attribute", cache_dir)
    acfg = AttributionStageConfig(checkpoint=model, generate=False, n_perm=0, max_clips=k, n_boot=200,
                                  **common_kw)
    before = timers.snapshot()
    with Step(k) as s, common.quiet_stdout():
        res = attribution_stage(run, acfg)
    spent = common.diff(timers.snapshot(), before)
    out["attribute"] = s.row(n_attributed=len(res.clips["test_id"]),
                             position=res.head.position,
                             breakdown_s={k_: common.rnd(v, 3) for k_, v in sorted(spent.items()) if v > 0})
    shutil.rmtree(run.path, ignore_errors=True)
    return out


def growth(by_n: dict[int, dict]) -> dict:
    """Per step: seconds per clip at each n, largest-n over smallest-n ratio, least-squares a + b n."""
    import numpy as np

    ns = sorted(by_n)
    out = {}
    for step in by_n[ns[0]]:
        pts = [(by_n[n][step]["n"], by_n[n][step]["seconds"]) for n in ns if step in by_n[n]]
        if len(pts) < 2 or pts[0][0] == pts[-1][0]:
            continue
        x, y = np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float)
        b, a = np.polyfit(x, y, 1)
        per = [yy / xx for xx, yy in zip(x, y)]
        ratio = per[-1] / per[0]
        out[step] = {"n": [int(v) for v in x], "ms_per_clip": [common.rnd(1000 * p, 3) for p in per],
                     "per_clip_ratio_largest_over_smallest": common.rnd(ratio, 3),
                     "fit_seconds": {"intercept": common.rnd(a, 3), "per_clip": common.rnd(b, 6)},
                     "linear": bool(ratio < 1.25),
                     "peak_rss_mib": [by_n[n][step]["peak_rss_mib"] for n in ns if step in by_n[n]]}
    return out


# ------------------------------------------------------------------------------------ 1 vs 2 processes


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_eval(nproc: int, manifest: Path, model_dir: Path, n: int, work: Path, cache_dir: Path, args) -> dict:
    """``omnibench eval --mode score`` on the first n clips in 1 or 2 processes: stage and wall clips/s."""
    run = run_folder(work, f"par{nproc}", cache_dir)
    cmd = ["-m", "omnibench", "eval", "--model", str(model_dir), "--checkpoint-name", "tiny", "--manifest",
           str(manifest), "--split", "test_id", "--limit", str(n), "--mode", "score", "--batch-size",
           str(args.batch_size), "--n-boot", "200", "--no-progress", "--device", "cpu", "--out", str(run.path)]
    if nproc > 1:
        cmd = ["-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr", "127.0.0.1",
               "--master_port", str(_port()), *cmd]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(common.REPO)}
    load0 = common.loadavg()
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, *cmd], env=env, capture_output=True, text=True, timeout=1200, check=False)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise RuntimeError(f"omnibench eval ({nproc} proc) failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    m = re.search(r"\bn (\d+)\b.*\((\d+) labels, ([\d.]+) s\)", proc.stdout)
    if not m or int(m.group(1)) != n:
        raise RuntimeError(f"omnibench eval ({nproc} proc): no table line with n {n}:\n{proc.stdout[-2000:]}")
    stage = float(m.group(3))
    preds = run.predictions_path("tiny", "test_id").read_bytes()
    shutil.rmtree(run.path, ignore_errors=True)
    return {"stage_seconds": stage, "wall_seconds": common.rnd(wall, 2), "load_1min_start": load0,
            "load_1min_end": common.loadavg(), "stage_clips_per_s": common.rnd(n / stage, 1),
            "wall_clips_per_s": common.rnd(n / wall, 1), "_predictions": preds}


def parallel(manifest: Path, model_dir: Path, n: int, work: Path, cache_dir: Path, args) -> dict:
    runs: dict[int, list] = {1: [], 2: []}
    for r in range(args.rounds):
        for nproc in common.round_order([1, 2], r):
            runs[nproc].append(cli_eval(nproc, manifest, model_dir, n, work, cache_dir, args))
    same = all(x.pop("_predictions") == runs[1][0]["_predictions"] for x in runs[1][1:] + runs[2])
    runs[1][0].pop("_predictions")
    return {"n": n, "mode": "score", "batch_size": args.batch_size, "one_process": runs[1], "two_processes": runs[2],
            "predictions_identical": same,
            "two_over_one_stage_speed": common.ratio_summary(
                [a["stage_seconds"] / b["stage_seconds"] for a, b in zip(runs[1], runs[2])], 3),
            "two_over_one_wall_speed": common.ratio_summary(
                [a["wall_seconds"] / b["wall_seconds"] for a, b in zip(runs[1], runs[2])], 3)}


# ------------------------------------------------------------------------------------ main


def main(argv=None) -> dict:
    ap = common.parser(__doc__)
    ap.add_argument("--ns", default="1000,5000", help="comma-separated manifest sizes")
    ap.add_argument("--allow-20k", action="store_true", help="allow n > 5000 (20000: ~4x the 5000 run's time)")
    ap.add_argument("--base", type=int, default=8, help="distinct SynthEmo media files reused under new ids")
    ap.add_argument("--batch-size", type=int, default=16, help="clips per forward / generate call")
    ap.add_argument("--max-new-tokens", type=int, default=8, help="generation budget of eval_generate")
    ap.add_argument("--attr-max", type=int, default=1000, help="attribution on the first min(n, this) clips")
    ap.add_argument("--parallel-n", type=int, default=1000, help="clips of the 1 vs 2 process comparison (0: none)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the 1 vs 2 process comparison")
    ap.add_argument("--work", default=None, help="scratch folder (default: .cache/bench/scale; emptied per n)")
    args = ap.parse_args(argv)
    if args.quick:
        args.ns, args.base, args.attr_max, args.parallel_n, args.rounds = "8,16", 4, 8, 0, 1
    ns = sorted({int(x) for x in args.ns.split(",") if x.strip()})
    if max(ns) > 5000 and not args.allow_20k:
        ap.error("n > 5000 takes long on a 2-core machine: add --allow-20k")
    common.setup(args)
    started = common.machine()

    import torch

    from omnibench.data.media.cache import DecodeCache
    from omnibench.evaluate import runner
    from omnibench.model import save_model
    from omnibench.tiny import build_tiny

    work = Path(args.work) if args.work else common.cache_root() / "scale"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    torch.manual_seed(0)
    model, processor = build_tiny(seed=0)
    model_dir = work / "model"
    save_model(model, processor, model_dir)
    del model, processor
    base = common.synth_clips(args.base, "test_id")

    timers = common.Timers()
    timers.wrap(DecodeCache, "get", "decode_cache_get")
    timers.wrap(runner, "evaluate_split", "evaluate_split (model)")
    import omnibench.attribution as attr_mod  # the stages import these inside their functions: patched here

    timers.wrap(attr_mod, "attribute", "attribute (model)")
    t0 = time.perf_counter()
    by_n: dict[int, dict] = {}
    try:
        for n in ns:
            folder = work / f"n{n}"
            manifest = make_manifest(base, n, folder)
            print(f"scale: n={n}", file=sys.stderr, flush=True)
            by_n[n] = scale_steps(n, manifest, model_dir, folder, args, timers, capped=(n == ns[0]))
            print(f"scale: n={n}: " + ", ".join(f"{k} {v['seconds']} s" for k, v in by_n[n].items()),
                  file=sys.stderr, flush=True)
            if n != ns[-1] or not args.parallel_n:
                shutil.rmtree(folder / "decode_cache", ignore_errors=True)
    finally:
        timers.restore()
    out: dict = {"ns": ns, "base_media_files": args.base, "batch_size": args.batch_size,
                 "max_new_tokens": args.max_new_tokens, "attr_max": args.attr_max,
                 "model": "tiny thinker, random weights (build_tiny(seed=0) + save_model)",
                 "steps": {str(n): v for n, v in by_n.items()}, "growth": growth(by_n)}
    if args.parallel_n:
        n = min(args.parallel_n, ns[-1])
        folder = work / f"n{ns[-1]}"
        print(f"scale: 1 vs 2 processes on {n} clips", file=sys.stderr, flush=True)
        out["parallel"] = parallel(folder / "manifest.jsonl", model_dir, n, folder, folder / "decode_cache", args)
    out["seconds"] = common.rnd(time.perf_counter() - t0, 1)
    shutil.rmtree(work, ignore_errors=True)
    return common.emit("scale", out, args.out, started)


if __name__ == "__main__":
    main()
