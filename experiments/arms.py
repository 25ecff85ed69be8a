"""Arms of a study: the same seeds, data and cold start as a base study, changed from GRPO on.

An arm copies each base unit's data and cold-start outputs (identical when only GRPO-stage settings
differ), writes the unit's recipe with the arm's overrides applied (``STAGE.KEY=VALUE`` strings, as
``omnibench run --set``) and re-runs the pipeline from the ``grpo`` stage. Used by
``reasoning_rewards.py`` (issue 16) and ``grpo_sweep.py`` (issue 14).
"""

from __future__ import annotations

import concurrent.futures as cf
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from omnibench.io import read_json, write_json
from omnibench.pipeline import load_recipe
from omnibench.run import STAGES

#: what an arm takes over from its base unit (data, base / cold-start / label-only checkpoints, stage records)
REUSED = ("data", "checkpoints/base", "checkpoints/cold_start", "checkpoints/label_sft", "notebooks/01_data.ipynb",
          "notebooks/02_cold_start.ipynb", "params.yaml", "state.json", "study_recipe.yaml")
#: recipe sections an arm may change: everything from the GRPO stage on
LATER_SECTIONS = ("grpo", "evaluate", "attribution", "report")


def units(study: Path) -> list[str]:
    """The seed units of a study folder that finished (every stage ok in their state.json)."""
    def finished(unit: Path) -> bool:
        state = read_json(unit / "state.json", default={})
        return (unit / "metrics.json").is_file() and all((state.get(st.name) or {}).get("status") == "ok"
                                                          for st in STAGES)

    return sorted(p.name for p in study.iterdir() if p.is_dir() and p.name.startswith("seed") and finished(p))


def check_overrides(overrides: Sequence[str]) -> None:
    """An arm reuses the cold start, so it may change only the sections of later stages."""
    for ov in overrides:
        section = ov.split("=", 1)[0].split(".", 1)[0].strip()
        if section not in LATER_SECTIONS:
            raise SystemExit(f"override {ov!r}: an arm reuses the base study's data and cold start, so it may change "
                             f"only {', '.join(LATER_SECTIONS)} (a new study is needed for {section!r})")


def prepare_unit(base: Path, arm: Path, unit: str, overrides: Sequence[str]) -> Path:
    """Copy a base unit's data and cold-start outputs into ``arm``; its recipe with ``overrides`` applied."""
    check_overrides(overrides)
    src, dst = base / unit, arm / unit
    dst.mkdir(parents=True, exist_ok=True)
    for rel in REUSED:
        s = src / rel
        if s.is_dir():
            shutil.copytree(s, dst / rel, dirs_exist_ok=True)
        elif s.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, dst / rel)
    metrics = read_json(src / "metrics.json", default={})
    write_json(dst / "metrics.json", {k: metrics[k] for k in ("data", "training", "timing") if k in metrics})
    recipe = load_recipe(base / "recipes" / f"{unit}.yaml", list(overrides))
    path = arm / "recipes" / f"{unit}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def _done(arm: Path, unit: str, recipe_text: str) -> bool:
    """The unit already ran to the end with this recipe (a re-run of the arm skips it)."""
    stamp = arm / unit / "arm_recipe.yaml"
    return stamp.is_file() and stamp.read_text(encoding="utf-8") == recipe_text and unit in units(arm)


def run_arm(base: Path, arm: Path, overrides: Sequence[str], jobs: int = 2) -> Path:
    """Every finished unit of ``base`` re-run from GRPO with ``overrides`` into ``arm`` (``jobs`` at once);
    units already run with the same recipe are kept."""
    run_arms(base, {arm: overrides}, jobs)
    return arm


def run_arms(base: Path, arms: dict[Path, Sequence[str]], jobs: int = 2) -> None:
    """:func:`run_arm` for several arms through one pool of ``jobs`` processes (all their units queued
    together, the arms in the order given), so no core idles between arms."""
    todo = []
    for arm, overrides in arms.items():
        for unit in units(base):
            recipe_text = yaml.safe_dump(load_recipe(base / "recipes" / f"{unit}.yaml", list(overrides)),
                                         sort_keys=False)
            if _done(arm, unit, recipe_text):
                print(f"{arm.name}/{unit}: done with this recipe, kept")
                continue
            recipe = prepare_unit(base, arm, unit, overrides)
            todo.append((arm, unit, recipe, [sys.executable, "-m", "omnibench", "run", "--config", str(recipe),
                                             "--name", unit, "--runs-dir", str(arm), "--from", "grpo", "--quiet"]))

    def one(item):
        arm, unit, recipe, cmd = item
        with open(arm / f"{unit}.log", "w", encoding="utf-8") as log:
            rc = subprocess.run(cmd, check=False, stdout=log, stderr=subprocess.STDOUT).returncode
        if rc == 0:
            shutil.copy2(recipe, arm / unit / "arm_recipe.yaml")
        print(f"{arm.name}/{unit}: " + ("done" if rc == 0 else f"FAILED (exit status {rc}, log {arm / (unit + '.log')})"),
              flush=True)
        return rc

    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        failed = sum(1 for rc in pool.map(one, todo) if rc)
    if failed:
        raise SystemExit(f"{failed} of {len(todo)} arm unit(s) failed (see the logs named above)")
