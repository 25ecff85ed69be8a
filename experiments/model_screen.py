"""A stronger embedded model: one-seed screens of the base model and cold start (issue 14).

The three-seed study left GRPO where the cold start put it (46.7 test_id) and pointed at the model:
the base model's linear read-outs reached 0.75 (face) and 0.61 (voice) after perception pre-training.
Each arm changes one thing of the base model or the cold start (``cold_start.*`` recipe keys, as
``omnibench run --set``) and is scored by its cold-start checkpoint on ``test_id`` and
``test_actors`` of one seed's SynthEmo draw; GRPO and the label-only baseline are left out, so an arm
costs about 4-7 minutes on 2 cores instead of an hour for a three-seed study. The winner then goes
through the three-seed study (``make study``).

    python experiments/model_screen.py run --data runs/demo --out-dir runs/model_screen [--arms base,tow1500]
    python experiments/model_screen.py collect --out-dir runs/model_screen --results benchmarks/results/model_screen.json

``run``: for each arm, copies ``--data``'s run folder after its data stage (``data/``, ``state.json``,
``notebooks/01_data.ipynb``, ``params.yaml``, ``metrics.json``), runs ``omnibench run --from cold_start --to cold_start``
with ``cold_start.label_sft=false`` and the arm's overrides, then ``omnibench eval`` of
``checkpoints/cold_start/model`` on both splits. ``collect``: WAR per split and per evidence
condition, the read-outs at the last perception step (``checkpoints/base/perception.jsonl``) and the
stage's seconds (``state.json``), for every arm folder there.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
from pathlib import Path

from omnibench.io import read_json, read_jsonl, write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # common.machine()
import common

#: arm -> cold-start recipe overrides (the demo recipe as of the screen: 600 tower steps, towers training in SFT)
ARMS: dict[str, list[str]] = {
    "base": [],
    "desc1000": ["cold_start.perception.describe_steps=1000"],
    "freeze": ["cold_start.extra.freeze_vision=true", "cold_start.extra.freeze_audio=true"],
    "ep20": ["cold_start.epochs=20"],
    "tow1000": ["cold_start.perception.steps=1000"],
    "tow1000lr12": ["cold_start.perception.steps=1000", "cold_start.perception.learning_rate=0.012"],
    "tow1500": ["cold_start.perception.steps=1500"],
    "tow1500frz": ["cold_start.perception.steps=1500", "cold_start.extra.freeze_vision=true",
                   "cold_start.extra.freeze_audio=true"],
}
#: what each arm tests
WHY = {
    "base": "the recipe before the screen (600 tower steps, 400 description steps, towers train in SFT)",
    "desc1000": "a language model that reads the towers better: 1,000 description steps",
    "freeze": "towers frozen in cold-start SFT: 140 clips cannot pull them off their read-outs",
    "ep20": "a longer cold start: 20 epochs",
    "tow1000": "towers trained longer: 1,000 read-out steps",
    "tow1000lr12": "the same with twice the tower learning rate (1.2e-2)",
    "tow1500": "1,500 read-out steps",
    "tow1500frz": "1,500 read-out steps and towers frozen in SFT",
}
SPLITS = ("test_id", "test_actors")
REUSED = ("data", "state.json", "params.yaml", "metrics.json", "skipped.jsonl", "notebooks/01_data.ipynb")
RECIPE = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


#: overrides that put the demo recipe back to the one the screen started from (the arms change it from there)
SCREEN_BASE = ["cold_start.perception.steps=600", "cold_start.extra.freeze_vision=false",
               "cold_start.extra.freeze_audio=false", "cold_start.label_sft=false"]


def run_arm(data: Path, out_dir: Path, arm: str, recipe: Path = RECIPE) -> Path:
    folder = out_dir / arm
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for rel in REUSED:
        src = data / rel
        if src.is_dir():
            shutil.copytree(src, folder / rel)
        elif src.is_file():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, folder / rel)
    sets = [a for ov in SCREEN_BASE + ARMS[arm] for a in ("--set", ov)]
    cmds = [[sys.executable, "-m", "omnibench", "run", "--config", str(recipe), "--name", arm, "--runs-dir",
             str(out_dir), "--from", "cold_start", "--to", "cold_start", "--no-report", "--quiet", *sets]]
    cmds += [[sys.executable, "-m", "omnibench", "eval", "--model", str(folder / "checkpoints/cold_start/model"),
              "--manifest", str(folder / "data/manifest.jsonl"), "--split", split, "--out",
              str(folder / f"eval_{split}"), "--batch-size", "32"] for split in SPLITS]
    with (out_dir / f"{arm}.log").open("w", encoding="utf-8") as log:
        for cmd in cmds:
            subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    return folder


def collect_arm(folder: Path) -> dict:
    manifest = {c["id"]: c for c in read_jsonl(folder / "data" / "manifest.jsonl")}
    out: dict = {"overrides": ARMS.get(folder.name), "why": WHY.get(folder.name)}
    for split in SPLITS:
        metrics = read_json(folder / f"eval_{split}" / "metrics.json")
        cell = metrics["eval"]["cold_start"][split]
        by_condition = collections.defaultdict(list)
        for path in sorted((folder / f"eval_{split}" / "predictions").glob("*.jsonl")):
            for p in read_jsonl(path):
                by_condition[manifest[p["id"]]["meta"]["condition"]].append(p["prediction"] == p["gold"])
        out[split] = {"war": round(100 * cell["war"], 1), "war_ci": [round(100 * x, 1) for x in cell["war_ci"]],
                      "n": cell["n"], "war_by_condition": {k: round(100 * sum(v) / len(v), 1)
                                                            for k, v in sorted(by_condition.items())}}
    readouts = [r for r in read_jsonl(folder / "checkpoints/base/perception.jsonl") if "video_accuracy" in r]
    last = readouts[-1]
    out["readout"] = {"step": last["step"], "face": round(last["video_accuracy"], 3),
                      "voice": round(last["audio_accuracy"], 3)}
    out["cold_start_stage_s"] = read_json(folder / "state.json")["cold_start"]["seconds"]
    out["finished_at"] = read_json(folder / "state.json")["cold_start"]["finished_at"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--data", required=True, type=Path, help="a run folder whose data stage finished (seed 0)")
    r.add_argument("--out-dir", required=True, type=Path)
    r.add_argument("--arms", default=",".join(ARMS))
    r.add_argument("--config", type=Path, default=RECIPE, help="recipe (default configs/demo.yaml)")
    c = sub.add_parser("collect")
    c.add_argument("--out-dir", required=True, type=Path)
    c.add_argument("--results", type=Path, default=Path("benchmarks/results/model_screen.json"))
    args = ap.parse_args(argv)
    if args.cmd == "run":
        for arm in [a.strip() for a in args.arms.split(",") if a.strip()]:
            if arm not in ARMS:
                raise SystemExit(f"unknown arm {arm!r}; known: {', '.join(ARMS)}")
            print(f"{arm}: {run_arm(args.data, args.out_dir, arm, args.config)}", flush=True)
        return 0
    arms = {p.name: collect_arm(p) for p in sorted(args.out_dir.iterdir())
            if p.is_dir() and (p / "eval_test_actors" / "metrics.json").is_file()}
    order = [a for a in ARMS if a in arms] + [a for a in arms if a not in ARMS]
    result = {"bench": "model_screen", "seed": 0, "checkpoint": "cold_start", "base_overrides": SCREEN_BASE,
              "arms": {a: arms[a] for a in order}, "machine": common.machine(),
              "note": "cold_start_stage_s is the stage's wall time; other work shared the machine during some arms, "
                      "so it is no timing comparison (benchmarks/bench_tower_attention.py and the study time stages)"}
    write_json(args.results, result)
    for a in order:
        x = arms[a]
        print(f"{a:12s} test_id {x['test_id']['war']:5.1f}  test_actors {x['test_actors']['war']:5.1f}  "
              f"read-outs {x['readout']['face']:.2f}/{x['readout']['voice']:.2f}  {x['cold_start_stage_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
