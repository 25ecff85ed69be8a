"""Why does GRPO move the tiny thinker so little? A sweep of principled changes over seeds (issue 14).

The three-seed demo study found GRPO's sampled accuracy flat over training, 37-41% of the groups with
zero reward variance (no gradient at all) and a KL to the cold start of 0.02-0.04 (the policy barely
moves). Each arm changes one thing the diagnosis points at and keeps everything else (seeds, data,
cold start, clips seen, the number of steps):

* ``g8``     G = 4 -> 8 completions per clip (16 clips x 8 per step): fewer groups whose completions
             all get the same reward, so more of each batch carries a learning signal;
* ``lr1e-3`` learning rate 3e-4 -> 1e-3: a policy that moves farther per step (KL is small);
* ``temp1``  sampling temperature 0.7 -> 1.0: more diverse completions, more reward variance (and more
             badly formed ones: the config says 1.0 breaks the tiny model's format);
* ``beta0``  no KL penalty (beta 0.04 -> 0, no reference model): nothing pulls the policy back.

Every arm reuses each seed's data and cold start from the base study (``arms.py``) and re-runs from
the GRPO stage; its evaluation scores the GRPO checkpoint only. Per arm and seed, from the run folders:
GRPO's WAR / UAR per split; the paired difference to the base arm's GRPO and to the cold start (a
two-level bootstrap over clips and seeds, ``omnibench.stats.paired_bootstrap_seeds_clips``); and the
training diagnostics from ``checkpoints/grpo/metrics.jsonl``: sampled accuracy over the first and last
20 steps, ``frac_reward_zero_std``, ``reward_std``, ``kl``, the format rate and seconds per step.

    python experiments/grpo_sweep.py run --base runs/study_demo --arms g8,lr1e-3,temp1 --jobs 2
    python experiments/grpo_sweep.py compare --base runs/study_demo --arms g8,lr1e-3,temp1
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
from pathlib import Path

import numpy as np

from omnibench.io import read_jsonl, write_json
from omnibench.run import RunFolder
from omnibench.stats import mean_ci_over_seeds, paired_bootstrap_seeds_clips

sys.path.insert(0, str(Path(__file__).resolve().parent))
import arms

#: what every arm evaluates: the GRPO checkpoint only (the cold start and label-only rows are the base's)
EVAL_ONLY_GRPO = ["evaluate.checkpoints=[grpo]", "evaluate.single_modality_checkpoints=[]",
                  "attribution.splits=[test_id]"]
ARMS: dict[str, list[str]] = {
    "g8": ["grpo.num_generations=8", "grpo.per_device_train_batch_size=128"],
    "lr1e-3": ["grpo.learning_rate=0.001"],
    "temp1": ["grpo.temperature=1.0"],
    "beta0": ["grpo.beta=0.0"],
}
SPLITS = ("test_id", "test_actors", "test_ood")
#: training-log figures: name -> (metrics.jsonl key, which steps)
DIAGNOSTICS = {
    "accuracy_first20": ("rewards/accuracy_reward/mean", slice(0, 20)),
    "accuracy_last20": ("rewards/accuracy_reward/mean", slice(-20, None)),
    "frac_reward_zero_std": ("frac_reward_zero_std", slice(None)),
    "reward_std": ("reward_std", slice(None)),
    "kl_last20": ("kl", slice(-20, None)),
    "format_rate": ("rewards/format_reward/mean", slice(None)),
    "completion_length": ("completions/mean_length", slice(None)),
}


def diagnostics(run_dir: Path) -> dict:
    """Training-log figures of a unit's GRPO run (means over the steps named in :data:`DIAGNOSTICS`)."""
    log = RunFolder(run_dir, create=False).train_dir("grpo") / "metrics.jsonl"
    rows = [r for r in read_jsonl(log) if "loss" in r] if log.is_file() else []
    out = {}
    for name, (key, steps) in DIAGNOSTICS.items():
        vals = [r[key] for r in rows if r.get(key) is not None][steps]
        out[name] = float(np.mean(vals)) if vals else None
    runtime = [r["train_runtime"] for r in (read_jsonl(log) if log.is_file() else []) if r.get("train_runtime")]
    out["s_per_step"] = runtime[-1] / len(rows) if runtime and rows else None
    return out


def _paired(units, run_a, ck_a, run_b, ck_b, split, n_boot) -> dict | None:
    """A - B (WAR, UAR) over seeds and clips, the clips paired by id within each seed."""
    from omnibench.study.aggregate import clip_correctness

    groups, codes = [], {}
    for u in units:
        a = clip_correctness(RunFolder(run_a / u, create=False), ck_a, split)
        b = clip_correctness(RunFolder(run_b / u, create=False), ck_b, split)
        if a is None or b is None:
            return None
        ids = sorted(set(a) & set(b))
        for i in ids:
            codes.setdefault(a[i][0], len(codes))
        groups.append((np.array([codes[a[i][0]] for i in ids]), np.array([a[i][1] for i in ids]),
                       np.array([b[i][1] for i in ids])))
    return paired_bootstrap_seeds_clips(groups, len(codes), n_boot=n_boot)


def compare(base: Path, arm_dirs: dict[str, Path], n_boot: int = 1000) -> dict:
    common = [u for u in arms.units(base) if all(u in arms.units(d) for d in arm_dirs.values())]
    if not common:
        raise SystemExit(f"no seed units in {base} and every arm ({', '.join(map(str, arm_dirs.values()))})")
    result = {"units": common, "base": str(base), "arms": {}, "n_boot": n_boot}
    everyone = {"base": base, **arm_dirs}
    for name, d in everyone.items():
        per_seed = {u: RunFolder(d / u, create=False).read_metrics().get("eval", {}).get("grpo", {}) for u in common}
        entry = {"overrides": ARMS.get(name, []), "war": {}, "uar": {}, "diagnostics": {}}
        for sp in SPLITS:
            for k in ("war", "uar"):
                entry[k][sp] = mean_ci_over_seeds([per_seed[u].get(sp, {}).get(k) for u in common])
            entry.setdefault("minus_cold_start", {})[sp] = _paired(common, d, "grpo", base, "cold_start", sp, n_boot)
            if name != "base":
                entry.setdefault("minus_base", {})[sp] = _paired(common, d, "grpo", base, "grpo", sp, n_boot)
        diags = {u: diagnostics(d / u) for u in common}
        for key in (*DIAGNOSTICS, "s_per_step"):
            entry["diagnostics"][key] = mean_ci_over_seeds([diags[u][key] for u in common])
        result["arms"][name] = entry
    result["machine"] = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                         "cpu": platform.processor() or platform.machine(), "python": platform.python_version()}
    return result


def format_sweep(result: dict) -> str:
    lines = [f"units: {', '.join(result['units'])}", "", ("arm        split        GRPO WAR   - base GRPO [CI]        "
             "- cold start [CI]      zero-std  KL(last20)  acc first->last20  s/step")]
    for name, e in result["arms"].items():
        d = e["diagnostics"]
        for sp in SPLITS:
            mb = (e.get("minus_base") or {}).get(sp)
            mc = e["minus_cold_start"][sp]

            def cell(c):
                if not c:
                    return " " * 22
                w = c["war"]
                return f"{100 * w['mean']:+5.1f} [{100 * w['ci'][0]:+5.1f},{100 * w['ci'][1]:+5.1f}] {w['frac_positive']:.0%}"

            lines.append(f"{name:<10} {sp:<11} {100 * e['war'][sp]['mean']:6.1f}   {cell(mb)}  {cell(mc)}  "
                         f"{d['frac_reward_zero_std']['mean']:.2f}      {d['kl_last20']['mean'] or 0:.3f}     "
                         f"{d['accuracy_first20']['mean']:.2f}->{d['accuracy_last20']['mean']:.2f}       "
                         f"{d['s_per_step']['mean']:.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for cmd in ("run", "compare"):
        p = sub.add_parser(cmd)
        p.add_argument("--base", required=True, type=Path, help="the base study folder (runs/study_demo)")
        p.add_argument("--arms", default="g8,lr1e-3,temp1", help="comma-separated, of " + ", ".join(ARMS))
        p.add_argument("--runs-dir", default=Path("runs"), type=Path)
        p.add_argument("--prefix", default="sweep_", help="an arm's folder: RUNS_DIR/PREFIX<arm>")
        if cmd == "run":
            p.add_argument("--jobs", type=int, default=2)
        else:
            p.add_argument("--out", default=Path("benchmarks/results/grpo_sweep.json"), type=Path)
            p.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args(argv)
    names = [a.strip() for a in args.arms.split(",") if a.strip()]
    bad = [a for a in names if a not in ARMS]
    if bad:
        parser.error(f"unknown arms {bad}; choose from {', '.join(ARMS)}")
    dirs = {a: args.runs_dir / f"{args.prefix}{a}" for a in names}
    if args.cmd == "run":
        arms.run_arms(args.base, {dirs[a]: ARMS[a] + EVAL_ONLY_GRPO for a in names}, args.jobs)
        return 0
    result = compare(args.base, dirs, n_boot=args.n_boot)
    write_json(args.out, result)
    print(format_sweep(result))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
