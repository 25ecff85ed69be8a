"""Do judge-free reasoning rewards make the stated reasoning true to the input, and at what cost? (issues 16, 22)

Arms over the same seeds, same budget: GRPO with accuracy + format (the demo's study, ``runs/study_demo``)
against accuracy + format + ``w`` x grounding + ``w`` x consistency for each weight ``w`` of a sweep. An
arm reuses each seed's data and cold-start checkpoints from the base study (they are identical: only the
GRPO rewards differ) and re-runs the pipeline from the GRPO stage. Per seed it reads, from the run folders:

* ``absent_cite``: the rate of reasoning that cites an absent modality on video-only and audio-only
  inputs (the GRPO model's single-modality predictions of 04_evaluate; 1 - the grounding reward);
* ``consistency``: the rate of reasoning whose concluded emotion is the answer (full input);
* ``faithfulness``: stated vs measured dominant modality (agreement, correlation), from 05_attribution;
* ``war`` / ``uar`` of the GRPO checkpoint; ``s_per_step`` of GRPO training.

``compare`` writes every figure per arm as a mean with a t-CI over seeds and the paired difference
(arm - base: mean, t-CI over seeds, fraction of seeds where it is positive), the WAR difference also with
the study's paired two-level bootstrap (seeds, then each seed's clips, the same draw for both arms), and
``choice``: the arm with the fewest absent-modality citations among those costing at most ``--max-cost``
of test_id WAR (mean paired difference), or null and why.

    python experiments/reasoning_rewards.py run --base runs/study_demo --weights 0.1,0.3,1.0 --jobs 2
    python experiments/reasoning_rewards.py compare --base runs/study_demo --weights 0.1,0.3,1.0 \
        --out benchmarks/results/reward_sweep.json
    python experiments/reasoning_rewards.py figures runs/demo      # one run folder's figures

(The older single-arm comparison, weight 1.0 on the 600-step recipe, is
``benchmarks/results/reasoning_rewards.json``.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
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

BASE_REWARDS = {"accuracy": 1.0, "format": 1.0}
SPLITS = ("test_id", "test_actors", "test_ood", "test_draw")


def arm_rewards(weight: float) -> dict[str, float]:
    """The rewards of the arm with grounding and consistency weighted ``weight`` each."""
    return {**BASE_REWARDS, "grounding": float(weight), "consistency": float(weight)}


def arm_path(base: Path, weight: float, runs_dir: Path | None = None) -> Path:
    """Where the arm of ``weight`` lives: ``<runs_dir>/<base name>_rw<weight>``."""
    return (runs_dir or base.parent) / f"{base.name}_rw{weight:g}"


def parse_weights(text: str) -> list[float]:
    weights = [float(w) for w in str(text).split(",") if w.strip()]
    if not weights or any(w <= 0 for w in weights):
        raise SystemExit(f"--weights {text!r}: give positive weights, e.g. 0.1,0.3,1.0")
    return weights


def run_sweep(base: Path, weights, runs_dir: Path | None = None, jobs: int = 2) -> list[Path]:
    """Every weight's arm (resumable: units already run with the same recipe are kept)."""
    todo = {arm_path(base, w, runs_dir): ["grpo.rewards=" + json.dumps(arm_rewards(w))] for w in weights}
    arms.run_arms(base, todo, jobs)
    return list(todo)


def unit_figures(run_dir: Path, splits=SPLITS) -> dict:
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


def _absent_cite(figures: dict, split: str = "test_id", side: str = "arm") -> float | None:
    """Mean of the absent-modality citation rates (video-only and audio-only inputs) on ``split`` of the
    arm (``side="arm"``) or of the base (``side="base"``)."""
    rates = [figures[f"{split}.absent_cite_{m}_only"][side]["mean"] for m in ("video", "audio")
             if f"{split}.absent_cite_{m}_only" in figures]
    return float(np.mean(rates)) if rates else None


def _war_bootstrap(base: Path, arm: Path, common: list[str], n_boot: int, missing: list[str]) -> dict:
    """Per split: arm - base GRPO WAR/UAR with the study's paired two-level bootstrap on the same clips;
    a split some unit has no full-input GRPO predictions for is left out and named in ``missing``."""
    from omnibench.labels import DFEW7
    from omnibench.stats import paired_bootstrap_seeds_clips
    from omnibench.study.aggregate import clip_correctness

    out = {}
    for split in SPLITS:
        pairs = [(clip_correctness(RunFolder(arm / u, create=False), "grpo", split),
                  clip_correctness(RunFolder(base / u, create=False), "grpo", split)) for u in common]
        lacking = [f"{folder / u}: predictions grpo/{split}" for u, (a, b) in zip(common, pairs)
                   for folder, p in ((arm, a), (base, b)) if p is None]
        if lacking:
            missing += lacking if len(lacking) < 2 * len(common) else []  # a split nobody evaluated is not missing
            continue
        codes = {g: i for i, g in enumerate(DFEW7)}
        groups = []
        for a, b in pairs:
            if set(a) != set(b):
                raise SystemExit(f"{arm}: predictions on {split} cover other clips than {base}'s; re-run 04_evaluate")
            ids = sorted(a)
            groups.append((np.array([codes.setdefault(a[i][0], len(codes)) for i in ids]),
                           np.array([a[i][1] for i in ids]), np.array([b[i][1] for i in ids])))
        out[split] = paired_bootstrap_seeds_clips(groups, len(codes), n_boot=n_boot, seed=0)
    return out


def compare(base: Path, arm_paths: dict[str, Path], rewards: dict[str, dict] | None = None,
            max_cost: float = 0.01, n_boot: int = 1000) -> dict:
    """Each arm against ``base`` on the seeds both finished; ``choice`` as the module docstring says."""
    common = [u for u in units(base) if all(u in units(p) for p in arm_paths.values())]
    if not common:
        raise SystemExit(f"no seed unit finished in {base} and in every arm ({', '.join(map(str, arm_paths.values()))})")
    base_figs = {u: _flatten(unit_figures(base / u)) for u in common}
    result: dict = {"units": common, "base": {"path": str(base), "rewards": BASE_REWARDS}, "arms": {},
                    "method": {"figure": "mean over seeds, Student-t 95% CI (n - 1 df)",
                               "difference": "arm - base per seed on the same data and cold start; mean, t-CI, "
                                             "share of seeds > 0",
                               "war_bootstrap": "paired two-level percentile bootstrap (seeds, then clips)",
                               "choice": f"fewest absent-modality citations (test_id, mean of video-only and "
                                         f"audio-only) among arms whose test_id WAR difference >= -{max_cost}",
                               "n_boot": n_boot}}
    for name, path in arm_paths.items():
        arm_figs = {u: _flatten(unit_figures(path / u)) for u in common}
        every = [*base_figs.values(), *arm_figs.values()]
        keys = sorted(set.intersection(*(set(f) for f in every)))
        missing = sorted(set.union(*(set(f) for f in every)) - set(keys))  # in some units' folders only
        figures = {}
        for key in keys:
            b = [base_figs[u][key] for u in common]
            a = [arm_figs[u][key] for u in common]
            diff = [y - x for x, y in zip(b, a)]
            figures[key] = {"base": mean_ci_over_seeds(b), "arm": mean_ci_over_seeds(a),
                            "difference": {**mean_ci_over_seeds(diff),
                                           "frac_positive": float(np.mean([d > 0 for d in diff]))}}
        boot = _war_bootstrap(base, path, common, n_boot, missing)
        result["arms"][name] = {"path": str(path), "rewards": (rewards or {}).get(name), "figures": figures,
                                "war_bootstrap": boot, "missing": missing}
    result["choice"] = choose(result, max_cost)
    result["machine"] = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                         "cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
                         "cores": os.cpu_count()}
    return result


def choose(result: dict, max_cost: float = 0.01) -> dict:
    """The arm with the fewest absent-modality citations among those costing at most ``max_cost`` of
    test_id WAR and citing less than the base; else ``{"arm": None, "why": ...}``."""
    rows = [{"arm": name, "war_cost": -arm["figures"]["test_id.war"]["difference"]["mean"],
             "absent_cite": _absent_cite(arm["figures"])}
            for name, arm in result["arms"].items() if "test_id.war" in arm["figures"]]
    first = next(iter(result["arms"].values()), {"figures": {}})  # every arm has the same base column
    base_cite = _absent_cite(first["figures"], side="base")
    ok = [r for r in rows if r["war_cost"] <= max_cost and r["absent_cite"] is not None
          and (base_cite is None or r["absent_cite"] < base_cite)]
    if ok:
        best = min(ok, key=lambda r: (r["absent_cite"], r["war_cost"]))
        return {**best, "base_absent_cite": base_cite, "max_cost": max_cost, "candidates": rows}
    why = "; ".join(f"{r['arm']} costs {100 * r['war_cost']:+.1f} WAR points (cites absent {r['absent_cite']})"
                    for r in rows) or "no arm has test_id figures"
    return {"arm": None, "why": f"no arm costs at most {100 * max_cost:.0f} WAR point(s) and cites less: {why}",
            "base_absent_cite": base_cite, "max_cost": max_cost, "candidates": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="the weights' arms, reusing the base study's data and cold-start stages")
    r.add_argument("--base", required=True, type=Path)
    r.add_argument("--weights", default="0.1,0.3,1.0", help="grounding = consistency weights, comma-separated")
    r.add_argument("--runs-dir", default=None, type=Path, help="where the arms go (default: beside --base)")
    r.add_argument("--jobs", type=int, default=2)
    c = sub.add_parser("compare", help="per-seed figures of every arm and their paired differences to the base")
    c.add_argument("--base", required=True, type=Path)
    c.add_argument("--weights", default="0.1,0.3,1.0")
    c.add_argument("--runs-dir", default=None, type=Path)
    c.add_argument("--max-cost", type=float, default=0.01, help="test_id WAR an acceptable arm may lose (0.01: 1 point)")
    c.add_argument("--n-boot", type=int, default=1000)
    c.add_argument("--out", default=Path("benchmarks/results/reward_sweep.json"), type=Path)
    f = sub.add_parser("figures", help="the same figures for one run folder (e.g. an older runs/demo)")
    f.add_argument("run", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "figures":
        for key, value in sorted(_flatten(unit_figures(args.run)).items()):
            print(f"{key:<40} {value:.3f}")
        return 0
    weights = parse_weights(args.weights)
    if args.cmd == "run":
        for path in run_sweep(args.base, weights, args.runs_dir, args.jobs):
            print(path)
        return 0
    paths = {f"rw{w:g}": arm_path(args.base, w, args.runs_dir) for w in weights}
    result = compare(args.base, paths, {f"rw{w:g}": arm_rewards(w) for w in weights}, args.max_cost, args.n_boot)
    write_json(args.out, result)
    for name, arm in result["arms"].items():
        for key in ("test_id.war", "test_id.absent_cite_video_only", "test_id.absent_cite_audio_only",
                    "test_id.consistency", "test_id.faithfulness_agreement"):
            if key in arm["figures"]:
                f, d = arm["figures"][key], arm["figures"][key]["difference"]
                print(f"{name:<7} {key:<34} base {f['base']['mean']:.3f}  arm {f['arm']['mean']:.3f}  "
                      f"diff {d['mean']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]  >0 in {d['frac_positive']:.0%}")
    for name, arm in result["arms"].items():
        if arm["missing"]:
            print(f"{name}: left out, not in every unit: {', '.join(arm['missing'])}")
    print("choice:", result["choice"].get("arm") or result["choice"].get("why"))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
