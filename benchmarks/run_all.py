"""Run every benchmark harness and collect their figures into benchmarks/results/latest.json.

    .venv/bin/python benchmarks/run_all.py [--only grpo_step,eval] [--quick] [--results DIR]
    make bench                                  # the same, after `make setup`

Each harness runs in its own process (one JSON line on stdout, written to ``results/<name>.json``);
a failing harness is recorded with its error and the others still run (exit status 1 at the end).
``latest.json`` holds every object plus the load average before and after the whole run; a short
table of the headline figures is printed last. Sizes are chosen so that the whole run takes a few
minutes on 2 CPU cores (``--quick``: tiny sizes, a smoke test whose figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common

#: name -> (script, arguments for a normal run, arguments for --quick)
HARNESSES: dict[str, tuple[str, list[str], list[str]]] = {
    "synth": ("bench_synth.py", ["--n", "200", "--workers", "2"], ["--n", "8", "--workers", "1"]),
    "decode": ("bench_decode.py", [], ["--quick"]),
    "grpo_step": ("bench_grpo_step.py", [], ["--quick"]),
    "eval": ("bench_eval.py", [], ["--quick"]),
    "attribution": ("bench_attribution.py", ["--n", "48"], ["--quick"]),
    "tower_attention": ("bench_tower_attention.py", [], ["--quick"]),
    "patch_embed": ("bench_tower_attention.py", ["--feature", "patch_embed"], ["--feature", "patch_embed", "--quick"]),
}
#: harnesses that write their own --out file (the synth helper's script only prints its line)
TAKES_OUT = {"decode", "grpo_step", "eval", "attribution", "tower_attention", "patch_embed"}


def run_one(name: str, quick: bool, results: Path, timeout: float) -> tuple[dict, float]:
    script, normal, small = HARNESSES[name]
    cmd = [sys.executable, str(HERE / script), *(small if quick else normal)]
    if name in TAKES_OUT:
        cmd += ["--out", str(results / f"{name}.json")]
    if name == "grpo_step" and not quick:  # operator tables: results/grpo_step_profile.<variant>.txt
        cmd += ["--profile", str(results / "grpo_step_profile")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    print(f"[bench] {name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=timeout,
                              cwd=common.REPO)
    except subprocess.TimeoutExpired:
        return {"bench": name, "error": f"timed out after {timeout:.0f} s"}, time.perf_counter() - t
    seconds = time.perf_counter() - t
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        return {"bench": name, "error": f"exit status {proc.returncode}; stderr tail:\n{tail}"}, seconds
    obj = json.loads(lines[-1])
    obj.setdefault("bench", name)
    if name not in TAKES_OUT:
        obj.setdefault("machine", common.machine())
        (results / f"{name}.json").write_text(json.dumps(obj) + "\n", encoding="utf-8")
    return obj, seconds


def headline(res: dict) -> list[tuple[str, str]]:
    """(figure, value) rows for the summary table."""
    rows: list[tuple[str, str]] = []

    def get(*keys):
        x = res
        for k in keys:
            if not isinstance(x, dict) or k not in x:
                return None
            x = x[k]
        return x

    def add(label, *keys, fmt="{}"):
        v = get(*keys)
        if v is not None:
            rows.append((label, fmt.format(v)))

    add("synth: clips/s", "synth", "clips_per_s")
    add("decode: cold clips/s", "decode", "cold", "clips_per_s")
    add("decode: cache-hit clips/s", "decode", "cache_hit", "clips_per_s")
    add("decode: cache hit / cold speed", "decode", "ratios", "cache_hit_over_cold_speed", "median", fmt="{}x")
    for v in ("omni", "omni_noopt", "trl_text"):
        add(f"grpo_step: {v} s/step", "grpo_step", "variants", v, "s_per_step")
        add(f"grpo_step: {v} samples/s", "grpo_step", "variants", v, "samples_per_s")
    add("grpo_step: omni / trl_text time", "grpo_step", "ratios", "omni_over_trl", "median", fmt="{}x")
    add("grpo_step: no-opt / opt time (share_encoders)", "grpo_step", "ratios", "noopt_over_opt", "median",
        fmt="{}x")
    for b in ("batch_1", "batch_4", "batch_16"):
        add(f"eval generate {b}: clips/s", "eval", "generate", b, "clips_per_s")
    for b in ("batch_1", "batch_4", "batch_16"):
        add(f"eval score {b}: clips/s", "eval", "score", b, "clips_per_s")
    add("attribution: generate / score (prompt) time", "attribution", "ratios", "generate_over_score_time",
        "median", fmt="{}x")
    add("attribution: generate / score (regenerate) time", "attribution", "ratios",
        "generate_over_score_regenerate_time", "median", fmt="{}x")
    for w in ("perception_step", "forward_backward"):
        add(f"tower_attention: {w} per-chunk / batched time", "tower_attention", w, "speedup", "median", fmt="{}x")
        add(f"patch_embed: {w} conv3d / matmul time", "patch_embed", w, "speedup", "median", fmt="{}x")
    add("attribution: dominant agreement gen vs score", "attribution", "agreement_generate_vs_score", "agreement",
        fmt="{:.2f}")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--only", default=None, help="comma-separated subset of " + ",".join(HARNESSES))
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--results", default=str(common.RESULTS), help="folder for <name>.json and latest.json")
    ap.add_argument("--timeout", type=float, default=420, help="seconds allowed per harness")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(HARNESSES)
    bad = [n for n in names if n not in HARNESSES]
    if bad:
        ap.error(f"unknown harness(es) {bad}; choose from {list(HARNESSES)}")
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)

    start = common.machine()
    t0 = time.perf_counter()
    collected: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    for name in names:
        obj, secs = run_one(name, args.quick, results, args.timeout)
        collected[name], seconds[name] = obj, round(secs, 1)
        print(json.dumps(obj), flush=True)
    failed = [n for n, o in collected.items() if "error" in o]
    summary = {
        "quick": args.quick,
        "machine_start": start,
        "machine_end": common.machine(),
        "seconds_total": round(time.perf_counter() - t0, 1),
        "seconds": seconds,
        "failed": failed,
        "results": collected,
    }
    out = results / ("latest_quick.json" if args.quick else "latest.json")
    out.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")

    rows = headline(collected)
    width = max((len(r[0]) for r in rows), default=10)
    print(f"\nomnibench benchmarks ({start['date']}, {start['host_cpus']} CPUs, load {start['load_1min']} -> "
          f"{summary['machine_end']['load_1min']}, {summary['seconds_total']} s)", file=sys.stderr)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}", file=sys.stderr)
    for name in failed:
        print(f"  FAILED {name}: {collected[name]['error']}", file=sys.stderr)
    print(f"figures: {out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
