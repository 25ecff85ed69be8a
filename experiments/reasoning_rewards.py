"""Do judge-free reasoning rewards make the stated reasoning true to the input? (issue 16)

Two arms over the same seeds, same budget: GRPO with accuracy + format (the demo's study,
``runs/study_demo``) against accuracy + format + grounding + consistency. The second arm reuses each
seed's data and cold-start checkpoints from the first (they are identical: only the GRPO rewards
differ) and re-runs the pipeline from the GRPO stage. Per seed it reads, from the run folders:

* ``absent_cite``: the rate of reasoning that cites an absent modality on video-only and audio-only
  inputs (the GRPO model's single-modality predictions of 04_evaluate; 1 - the grounding reward);
* ``consistency``: the rate of reasoning whose concluded emotion is the answer (full input);
* ``faithfulness``: stated vs measured dominant modality (agreement, correlation), from 05_attribution;
* ``war`` / ``uar`` of the GRPO checkpoint; ``s_per_step`` of GRPO training.

and writes ``benchmarks/results/reasoning_rewards.json``: every figure per arm as a mean with a t-CI
over seeds, and the paired difference (grounded - base) with its CI and the fraction of seeds where it
is positive.

    python experiments/reasoning_rewards.py run --base runs/study_demo --name study_grounded --jobs 2
    python experiments/reasoning_rewards.py compare --base runs/study_demo --arm runs/study_grounded
    python experiments/reasoning_rewards.py figures runs/demo      # one run folder's figures
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
from pathlib import Path

import numpy as np

from omnibench.io import read_jsonl, write_json
from omnibench.rewards import consistency_reward, grounding_reward
from omnibench.run import RunFolder
from omnibench.stats import mean_ci_over_seeds

sys.path.insert(0, str(Path(__file__).resolve().parent))
import arms
from arms import units

GROUNDED_REWARDS = {"accuracy": 1.0, "format": 1.0, "grounding": 1.0, "consistency": 1.0}
#: the grounded arm's change to the base recipe
GROUNDED = ["grpo.rewards=" + json.dumps(GROUNDED_REWARDS)]


def run_arm(base: Path, name: str, runs_dir: Path, jobs: int) -> Path:
    return arms.run_arm(base, runs_dir / name, GROUNDED, jobs)


def unit_figures(run_dir: Path, splits=("test_id", "test_actors", "test_ood")) -> dict:
    run = RunFolder(run_dir, create=False)
    metrics = run.read_metrics()
    out: dict = {}
    for split in splits:
        cell = (metrics.get("eval", {}).get("grpo") or {}).get(split)
        if cell is None:
            continue
        fig = {"war": cell["war"], "uar": cell["uar"]}
        for mods in ("video", "audio"):
            p = run.predictions_path("grpo", split, mods)
            if p.is_file():
                comps = [r["completion"] for r in read_jsonl(p)]
                g = grounding_reward(comps, modalities=[mods] * len(comps))
                fig[f"absent_cite_{mods}_only"] = 1.0 - float(np.mean(g))
        full = run.predictions_path("grpo", split)
        if full.is_file():
            rows = read_jsonl(full)
            fig["consistency"] = float(np.mean(consistency_reward([r["completion"] for r in rows])))
        faith = ((metrics.get("attribution", {}).get("by_split") or {}).get(split) or {}).get("faithfulness") or {}
        for k in ("agreement", "correlation"):
            if faith.get(k) is not None:
                fig[f"faithfulness_{k}"] = faith[k]
        out[split] = fig
    log = run.train_dir("grpo") / "metrics.jsonl"
    if log.is_file():
        rows = read_jsonl(log)
        runtime = [r["train_runtime"] for r in rows if r.get("train_runtime")]
        steps = max((r.get("step", 0) for r in rows), default=0)
        if runtime and steps:
            out["s_per_step"] = runtime[-1] / steps
    return out


def _flatten(d: dict, prefix: str = "") -> dict:
    flat = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(_flatten(v, key + "."))
        else:
            flat[key] = v
    return flat


def compare(base: Path, arm: Path) -> dict:
    common = [u for u in units(base) if u in units(arm)]
    if not common:
        raise SystemExit(f"no seed units in both {base} and {arm}")
    per = {name: {u: _flatten(unit_figures(path / u)) for u in common} for name, path in (("base", base), ("grounded", arm))}
    keys = sorted(set.intersection(*(set(f) for figs in per.values() for f in figs.values())))
    result = {"units": common, "arms": {"base": str(base), "grounded": str(arm)},
              "rewards": {"base": {"accuracy": 1.0, "format": 1.0}, "grounded": GROUNDED_REWARDS}, "figures": {}}
    for key in keys:
        b = [per["base"][u][key] for u in common]
        g = [per["grounded"][u][key] for u in common]
        diff = [y - x for x, y in zip(b, g)]
        result["figures"][key] = {"base": mean_ci_over_seeds(b), "grounded": mean_ci_over_seeds(g),
                                  "difference": {**mean_ci_over_seeds(diff),
                                                 "frac_positive": float(np.mean([d > 0 for d in diff]))}}
    result["machine"] = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                         "cpu": platform.processor() or platform.machine(), "python": platform.python_version()}
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="the grounded arm, reusing the base study's data and cold-start stages")
    r.add_argument("--base", required=True, type=Path)
    r.add_argument("--name", default="study_grounded")
    r.add_argument("--runs-dir", default=Path("runs"), type=Path)
    r.add_argument("--jobs", type=int, default=2)
    c = sub.add_parser("compare", help="per-seed figures of both arms and their paired differences")
    c.add_argument("--base", required=True, type=Path)
    c.add_argument("--arm", required=True, type=Path)
    c.add_argument("--out", default=Path("benchmarks/results/reasoning_rewards.json"), type=Path)
    f = sub.add_parser("figures", help="the same figures for one run folder (e.g. an older runs/demo)")
    f.add_argument("run", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "figures":
        for key, value in sorted(_flatten(unit_figures(args.run)).items()):
            print(f"{key:<40} {value:.3f}")
        return 0
    if args.cmd == "run":
        print(run_arm(args.base, args.name, args.runs_dir, args.jobs))
        return 0
    result = compare(args.base, args.arm)
    write_json(args.out, result)
    for key, f in result["figures"].items():
        d = f["difference"]
        print(f"{key:<40} base {f['base']['mean']:.3f}  grounded {f['grounded']['mean']:.3f}  "
              f"diff {d['mean']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]  >0 in {d['frac_positive']:.0%}")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
