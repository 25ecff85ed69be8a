"""A study: one pipeline recipe run over seeds (or DFEW/MAFW folds), aggregated into ``study.json`` / ``study.html``.

Why: one run of the demo cannot carry a claim. The same seed on two machines moved table cells by up
to six points and flipped the sign of GRPO's out-of-distribution effect. A study trains the recipe once
per seed (the training seed and the SynthEmo draw both follow it, unless the recipe pins the data) and
reports

* every table cell (checkpoint x split, WAR and UAR) as a mean over seeds with a Student-t 95% CI over
  seeds, plus a two-level bootstrap CI over seeds and clips (:func:`omnibench.stats.bootstrap_seeds_clips`);
* the paired comparisons of the R1-Omni question, per split: GRPO - cold start, GRPO - label-only SFT,
  cold start - label-only SFT, as the mean per-seed difference with a paired two-level bootstrap CI
  (clips of a seed resampled together for both checkpoints, then seeds;
  :func:`omnibench.stats.paired_bootstrap_seeds_clips`) and the fraction of seeds where it is > 0.

Layout::

    runs/<name>/study.json            units, cells, comparisons, method, what was missing
    runs/<name>/study.html            the same as tables
    runs/<name>/recipes/<unit>.yaml   the recipe each unit ran (the study's recipe + seed / fold)
    runs/<name>/<unit>/               a run folder as ``omnibench run`` writes it (seed0/, fold3/, seed1_fold3/)
    runs/<name>/<unit>.log            the unit's console output when units run in parallel (--jobs)

Reuse: a unit whose folder holds a completed run of the same recipe (``study_recipe.yaml`` equal, every
stage ``ok``) is not re-run; an interrupted one resumes from its first stage that did not finish. So
re-running a study after a crash, or adding a seed, only runs what is missing.

Folds: ``--folds 1,2,3,4,5`` sets each fold into the recipe at ``--fold-key`` (a dotted path; ``*`` walks
every item of a list), by default ``data.sources.*.fold``, the per-source fold of the protocol issue's
``data.sources`` list (a recipe with another shape names its key, e.g. ``--fold-key data.fold``).

The fair label-only budget (:func:`label_only_budget`): the label-only SFT baseline gets as many example
visits as cold start and GRPO together (cold-start epochs x its clips + GRPO steps x clips per step),
computed from the recipe, so that "GRPO beats SFT" is not "more training beats less".
"""

from __future__ import annotations

import argparse
import copy
import html
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from omnibench.io import atomic_write_text, json_safe, read_json, read_jsonl, write_json
from omnibench.run import CHECKPOINTS, STAGES, RunFolder
from omnibench.stats import bootstrap_seeds_clips, mean_ci_over_seeds, paired_bootstrap_seeds_clips

__all__ = [
    "COMPARISONS",
    "DEFAULT_FOLD_KEY",
    "StudyError",
    "Unit",
    "add_study_args",
    "aggregate_study",
    "cli_study",
    "data_pinned",
    "label_only_budget",
    "parse_list",
    "render_study_html",
    "run_study",
    "set_path",
    "study_units",
    "unit_recipe",
]

#: (A, B) pairs reported as A - B, per split
COMPARISONS: tuple[tuple[str, str], ...] = (("grpo", "cold_start"), ("grpo", "label_sft"), ("cold_start", "label_sft"))
#: where ``--folds`` writes the fold: every source of ``data.sources`` (the protocol issue's shape)
DEFAULT_FOLD_KEY = "data.sources.*.fold"
#: the splits in table order when present (others follow in first-seen order)
SPLIT_ORDER: tuple[str, ...] = ("test_id", "test_actors", "test_ood")
_RECIPE_COPY = "study_recipe.yaml"  # in a unit's run folder: the recipe that made it (reuse check)


class StudyError(RuntimeError):
    """A study that cannot run or be aggregated (bad seeds/folds, a failed unit, nothing to aggregate)."""


# --------------------------------------------------------------------------------------------------
# Units and recipes
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """One run of a study: a seed, a fold, or both."""

    seed: int | None = None
    fold: int | str | None = None

    @property
    def name(self) -> str:
        parts = ([f"seed{self.seed}"] if self.seed is not None else []) + (
            [f"fold{self.fold}"] if self.fold is not None else [])
        return "_".join(parts) or "run"


def parse_list(text: str | Sequence | None, what: str = "seeds") -> list[int]:
    """``"0,1,2"`` or ``"0-2"`` -> ``[0, 1, 2]`` (a list passes through as ints); duplicates are an error."""
    if text is None or text == "":
        return []
    if isinstance(text, str):
        import re

        out: list[int] = []
        for part in (x.strip() for x in text.split(",")):
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not m:
                raise StudyError(f"--{what} {text!r}: expected non-negative integers like 0,1,2 or 0-2")
            out += list(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    else:
        out = [int(x) for x in text]
    if len(set(out)) != len(out):
        raise StudyError(f"--{what} {text!r}: a value appears twice")
    return out


def study_units(seeds: Sequence[int] = (), folds: Sequence[int] = ()) -> list[Unit]:
    """Every (seed, fold) combination, seeds outermost; seeds alone or folds alone when one list is empty."""
    if not seeds and not folds:
        raise StudyError("a study needs --seeds and/or --folds")
    return [Unit(s, f) for s in (seeds or [None]) for f in (folds or [None])]


def set_path(recipe: dict, key: str, value) -> int:
    """Set ``value`` at the dotted ``key`` of ``recipe`` in place (``*`` = every item of a list); returns
    how many places were set. Missing mappings on the way are created; a ``*`` over a missing or empty
    list sets nothing (the caller reports it)."""
    parts = key.split(".")

    def walk(node, i: int) -> int:
        p = parts[i]
        last = i == len(parts) - 1
        if p == "*":
            if not isinstance(node, list):
                return 0
            if last:
                node[:] = [value] * len(node)
                return len(node)
            return sum(walk(item, i + 1) for item in node if isinstance(item, (dict, list)))
        if not isinstance(node, dict):
            return 0
        if last:
            node[p] = value
            return 1
        if p not in node or node[p] is None:
            if parts[i + 1] == "*":
                return 0
            node[p] = {}
        return walk(node[p], i + 1)

    return walk(recipe, 0)


def data_pinned(recipe: Mapping) -> str | None:
    """Why the data do not follow the study's seed, or None when they do: a real manifest or sources in
    the ``data`` section, or a ``data.seed`` of its own (the SynthEmo draw fixed across seeds)."""
    data = recipe.get("data") or {}
    if data.get("manifest"):
        return f"data.manifest = {data['manifest']} (real clips)"
    if data.get("sources"):
        return "data.sources (real clips)"
    if "seed" in data:
        return f"data.seed = {data['seed']} (one SynthEmo draw for every seed)"
    return None


def unit_recipe(recipe: Mapping, unit: Unit, fold_key: str = DEFAULT_FOLD_KEY) -> dict:
    """The study's recipe for one unit: ``seed`` (the shared key: SynthEmo draw, model init, training,
    sampling and bootstrap seeds, unless a section sets its own) and the fold at ``fold_key``."""
    out = copy.deepcopy(dict(recipe))
    if unit.seed is not None:
        out["seed"] = int(unit.seed)
    if unit.fold is not None and set_path(out, fold_key, unit.fold) == 0:
        raise StudyError(f"--fold-key {fold_key!r}: nothing in the recipe to set the fold on (a '*' needs a "
                         "non-empty list there); name the recipe's fold key, e.g. --fold-key data.fold")
    return out


# --------------------------------------------------------------------------------------------------
# The fair label-only budget
# --------------------------------------------------------------------------------------------------


def _visits(steps: int, n: int, batch: int) -> int:
    """Examples seen in ``steps`` optimizer steps over ``n`` examples in batches of ``batch`` (the last
    batch of an epoch is partial, as the Trainer's data loader makes it)."""
    per_epoch = math.ceil(n / batch)
    full, rem = divmod(int(steps), per_epoch)
    return full * n + min(rem * batch, n)


def _steps_for(epochs: float, max_steps: int, n: int, batch: int) -> int:
    """Optimizer steps of an SFT run (``max_steps`` > 0 wins, else ``ceil(epochs x steps per epoch)``)."""
    return int(max_steps) if max_steps and max_steps > 0 else math.ceil(float(epochs) * math.ceil(n / batch))


def _section_value(recipe: Mapping, section: str, key: str, defaults: Mapping[str, Mapping]):
    sec = recipe.get(section) or {}
    if key in sec:
        return sec[key]
    if key in recipe:  # a shared key
        return recipe[key]
    if key in defaults.get(section, {}):
        return defaults[section][key]
    raise StudyError(f"label_only_budget: {section}.{key} not in the recipe and no notebook default for it")


def _notebook_defaults() -> dict[str, dict]:
    """Stage name -> the defaults of its notebook's parameters cell (what a recipe key left out gets)."""
    import ast

    from omnibench.pipeline import notebook_parameters, notebooks_dir

    out = {}
    for st in STAGES:
        params = notebook_parameters(notebooks_dir() / st.notebook)
        vals = {}
        for k, info in params.items():
            try:
                vals[k] = ast.literal_eval(info.get("default", "None"))
            except (ValueError, SyntaxError):
                vals[k] = info.get("default")
        out[st.name] = vals
    return out


def label_only_budget(recipe: Mapping, n_cold_start: int | None = None, n_label: int | None = None,
                      defaults: Mapping[str, Mapping] | None = None) -> dict:
    """The label-only SFT steps that give it the example visits of cold start + GRPO together.

    visits(cold start) = its epochs x its clips (or what its ``max_steps`` cover); visits(GRPO) =
    ``max_steps`` x clips per step, where clips per step = ``per_device_train_batch_size`` (completions) x
    ``gradient_accumulation_steps`` / ``num_generations``. The label-only run trains on
    ``label_sft_split`` (``n_label`` clips, default ``data.n_train``) with the cold start's batch size;
    ``label_sft_max_steps`` is the fewest steps whose visits reach the budget. Clip counts come from the
    ``data`` section (SynthEmo) unless given (a real manifest). Returns the figures and that value."""
    defaults = _notebook_defaults() if defaults is None else defaults
    cs = lambda k: _section_value(recipe, "cold_start", k, defaults)
    gr = lambda k: _section_value(recipe, "grpo", k, defaults)
    data = recipe.get("data") or {}
    if data.get("manifest") and (n_cold_start is None or n_label is None):
        raise StudyError("label_only_budget: a real manifest; give n_cold_start and n_label (clip counts)")
    n_cs = int(n_cold_start if n_cold_start is not None else _section_value(recipe, "data", "n_cold_start", defaults))
    if n_label is None:
        split = cs("label_sft_split")
        if split != "train":
            raise StudyError(f"label_only_budget: label_sft_split is {split!r}; give n_label (its clip count)")
        n_label = int(_section_value(recipe, "data", "n_train", defaults))
    batch = int(cs("batch_size"))
    cs_steps = _steps_for(cs("epochs"), int(cs("max_steps")), n_cs, batch)
    cs_visits = _visits(cs_steps, n_cs, batch)
    g = int(gr("num_generations"))
    accum = int((gr("extra") or {}).get("gradient_accumulation_steps", 1))
    completions = int(gr("per_device_train_batch_size")) * accum
    if completions % g:
        raise StudyError(f"label_only_budget: {completions} completions per step is not a multiple of G = {g}")
    clips_per_step = completions // g
    grpo_visits = int(gr("max_steps")) * clips_per_step
    budget = cs_visits + grpo_visits
    steps = math.ceil(n_label / batch) * (budget // n_label)  # whole epochs first, then single steps
    while _visits(steps, n_label, batch) < budget:
        steps += 1
    return {"cold_start_steps": cs_steps, "cold_start_visits": cs_visits, "grpo_steps": int(gr("max_steps")),
            "grpo_clips_per_step": clips_per_step, "grpo_visits": grpo_visits, "budget_visits": budget,
            "label_sft_clips": n_label, "batch_size": batch, "label_sft_max_steps": steps,
            "label_sft_visits": _visits(steps, n_label, batch),
            "label_sft_epochs": round(_visits(steps, n_label, batch) / n_label, 4)}


# --------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------


def _unit_status(run_path: Path, recipe_text: str) -> str | None:
    """'done' (same recipe, every stage ok), a stage name to resume from, or None (run from scratch)."""
    copy_path = run_path / _RECIPE_COPY
    if not copy_path.is_file() or copy_path.read_text(encoding="utf-8") != recipe_text:
        return None
    state = read_json(run_path / "state.json", default={})
    for st in STAGES:
        if state.get(st.name, {}).get("status") != "ok":
            return st.name
    return "done"


def _run_in_process(recipe_path: Path, unit_name: str, study_dir: Path, from_stage: str | None, quiet: bool) -> None:
    from omnibench.pipeline import run_pipeline

    run_pipeline(recipe_path, unit_name, runs_dir=study_dir, from_stage=from_stage, quiet=quiet)


def _run_command(recipe_path: Path, unit_name: str, study_dir: Path, from_stage: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "omnibench", "run", "--config", str(recipe_path), "--name", unit_name,
           "--runs-dir", str(study_dir)]
    return cmd + (["--from", from_stage] if from_stage else [])


def run_study(
    config_path: str | os.PathLike,
    name: str,
    seeds: Sequence[int] = (),
    folds: Sequence[int] = (),
    *,
    fold_key: str = DEFAULT_FOLD_KEY,
    runs_dir: str | os.PathLike = "runs",
    overrides: Sequence[str] | None = None,
    jobs: int = 1,
    n_boot: int = 1000,
    boot_seed: int = 0,
    quiet: bool = False,
    runner: Callable[[Path, str, Path, str | None, bool], None] | None = None,
) -> dict:
    """Run ``config_path`` once per unit into ``runs_dir/name/<unit>/`` and aggregate (:func:`aggregate_study`).

    ``jobs`` > 1 runs that many units at once, each in its own ``omnibench run`` process (each process
    uses one torch thread on CPU, so two jobs use two cores). ``runner`` replaces the in-process pipeline
    (tests). A unit that fails is reported and the others still run; the study is aggregated over the
    units that completed and a :class:`StudyError` names the failed ones. Returns the study dict."""
    from omnibench.pipeline import PipelineError, load_recipe

    if not name or "/" in name or name in (".", ".."):
        raise StudyError(f"study name {name!r}: use a plain folder name such as 'study_demo'")
    units = study_units(list(seeds), list(folds))
    recipe = load_recipe(config_path, overrides)
    study_dir = Path(runs_dir).resolve() / name
    (study_dir / "recipes").mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    todo: list[tuple[Unit, Path, str | None]] = []
    for u in units:
        text = yaml.safe_dump(json_safe(unit_recipe(recipe, u, fold_key)), sort_keys=False)
        path = atomic_write_text(study_dir / "recipes" / f"{u.name}.yaml", text)
        status = _unit_status(study_dir / u.name, text)
        if status == "done":
            say(f"study {name}: {u.name} reused (completed with the same recipe)")
            continue
        if status is None and (study_dir / u.name).exists():
            say(f"study {name}: {u.name} exists with another recipe or none recorded: re-run from the start")
        (study_dir / u.name).mkdir(parents=True, exist_ok=True)
        atomic_write_text(study_dir / u.name / _RECIPE_COPY, text)
        todo.append((u, path, status))
    pinned = data_pinned(recipe)
    say(f"study {name}: {len(units)} unit(s), {len(todo)} to run into {study_dir}"
        + (f"; data pinned by {pinned}" if pinned else "; data and training follow the seed"))
    failed: dict[str, str] = {}
    t0 = time.perf_counter()
    if jobs > 1 and runner is None:
        running: list[tuple[Unit, subprocess.Popen, object]] = []
        queue = list(todo)
        while queue or running:
            while queue and len(running) < jobs:
                u, path, status = queue.pop(0)
                log = open(study_dir / f"{u.name}.log", "w", encoding="utf-8")  # noqa: SIM115 - closed below
                say(f"study {name}: {u.name} started (log {log.name})")
                running.append((u, subprocess.Popen(_run_command(path, u.name, study_dir, status), stdout=log,
                                                    stderr=subprocess.STDOUT), log))
            time.sleep(1.0)
            for item in list(running):
                u, proc, log = item
                if proc.poll() is not None:
                    log.close()
                    running.remove(item)
                    logname = study_dir / f"{u.name}.log"
                    text = (study_dir / u.name / _RECIPE_COPY).read_text(encoding="utf-8")
                    if proc.returncode and _unit_status(study_dir / u.name, text) == "done":
                        say(f"study {name}: {u.name} exited {proc.returncode} after every stage completed "
                            f"(a report error? see {logname}); its outputs are aggregated")
                    elif proc.returncode:
                        failed[u.name] = f"exit status {proc.returncode}; see {logname}"
                        say(f"study {name}: {u.name} failed (see {logname})")
                    else:
                        say(f"study {name}: {u.name} done")
    else:
        run = runner or _run_in_process
        for u, path, status in todo:
            say(f"study {name}: {u.name}" + (f" (resuming from {status})" if status else ""))
            try:
                run(path, u.name, study_dir, status, quiet)
            except (PipelineError, StudyError, OSError) as e:
                failed[u.name] = f"{type(e).__name__}: {e}"
                say(f"study {name}: {u.name} failed: {e}")
    seconds = round(time.perf_counter() - t0, 1)
    done = [u for u in units if u.name not in failed]
    if not done:
        raise StudyError(f"study {name}: every unit failed: {failed}")
    study = aggregate_study(study_dir, done, n_boot=n_boot, seed=boot_seed,
                            info={"config": str(Path(config_path).resolve()), "overrides": list(overrides or []),
                                  "fold_key": fold_key if folds else None, "data_pinned": pinned,
                                  "failed": failed, "seconds": seconds, "jobs": jobs})
    say(f"study {name}: {study_dir / 'study.json'}, {study_dir / 'study.html'} ({seconds:.0f} s)")
    say(format_study(study))
    if failed:
        raise StudyError(f"study {name}: unit(s) failed: {failed} (aggregated over the {len(done)} that completed)")
    return study


# --------------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------------


def _discover_units(study_dir: Path) -> list[Unit]:
    import re

    units = []
    for p in sorted(study_dir.iterdir()):
        m = re.fullmatch(r"(?:seed(\d+))?_?(?:fold(\w+))?", p.name)
        if p.is_dir() and m and (m.group(1) or m.group(2)) and (p / "metrics.json").is_file():
            f = m.group(2)
            units.append(Unit(int(m.group(1)) if m.group(1) else None,
                              int(f) if f is not None and f.isdigit() else f))
    return sorted(units, key=lambda u: (u.seed if u.seed is not None else -1, str(u.fold)))


def _ordered(splits: Sequence[str]) -> list[str]:
    seen = list(dict.fromkeys(splits))
    return [s for s in SPLIT_ORDER if s in seen] + [s for s in seen if s not in SPLIT_ORDER]


def _predictions(run: RunFolder, checkpoint: str, split: str) -> dict[str, tuple] | None:
    """id -> (gold, correct) from the full-input predictions file (None when absent)."""
    path = run.predictions_path(checkpoint, split)
    if not path.is_file():
        return None
    return {r["id"]: (r["gold"], r.get("prediction") is not None and r.get("prediction") == r["gold"])
            for r in read_jsonl(path)}


def aggregate_study(
    study_dir: str | os.PathLike,
    units: Sequence[Unit] | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    comparisons: Sequence[tuple[str, str]] = COMPARISONS,
    info: Mapping | None = None,
) -> dict:
    """Read each unit's run folder and write ``study.json`` and ``study.html`` in ``study_dir``.

    Cells come from each unit's ``metrics.json`` ``eval`` table (the figures its own report shows); the
    bootstrap CIs and the paired comparisons from its predictions files (``predictions/<ck>__<split>__
    video+audio.jsonl``), a clip counted correct when its resolved prediction equals its gold label (the
    evaluation's rule). A cell or comparison missing in some unit is computed over the units that have
    it and the missing ones are listed under ``missing``. Returns the study dict."""
    study_dir = Path(study_dir)
    units = list(units) if units is not None else _discover_units(study_dir)
    if not units:
        raise StudyError(f"{study_dir}: no unit folders (seed<k>/, fold<f>/) with a metrics.json to aggregate")
    runs = {u.name: RunFolder(study_dir / u.name, create=False) for u in units}
    evals = {n: (r.read_metrics().get("eval") or {}) for n, r in runs.items()}
    ck_seen = list(dict.fromkeys(ck for ev in evals.values() for ck in ev))
    checkpoints = [c for c in CHECKPOINTS if c in ck_seen] + [c for c in ck_seen if c not in CHECKPOINTS]
    splits = _ordered([sp for ev in evals.values() for cells in ev.values() for sp in cells])
    missing: list[str] = []
    preds: dict[tuple[str, str, str], dict | None] = {}
    for n, r in runs.items():
        for ck in checkpoints:
            for sp in splits:
                preds[(n, ck, sp)] = _predictions(r, ck, sp) if sp in evals[n].get(ck, {}) else None

    def codes_for(sp: str) -> dict[str, int]:
        golds = sorted({g for (n, _, s), p in preds.items() if s == sp and p for g, _ in p.values()})
        from omnibench.labels import DFEW7

        order = [g for g in DFEW7 if g in golds] + [g for g in golds if g not in DFEW7]
        return {g: i for i, g in enumerate(order)}

    cells: dict = {}
    consistency: list[str] = []
    for ck in checkpoints:
        for sp in splits:
            have = [n for n in runs if sp in evals[n].get(ck, {})]
            missing += [f"{n}: eval {ck}/{sp}" for n in runs if n not in have]
            if not have:
                continue
            cell = {k: mean_ci_over_seeds([evals[n][ck][sp].get(k) for n in have]) for k in ("war", "uar")}
            cell["units"] = have
            cell["n_clips"] = [evals[n][ck][sp].get("n") for n in have]
            codes = codes_for(sp)
            groups = []
            for n in have:
                p = preds[(n, ck, sp)]
                if p is None:
                    missing.append(f"{n}: predictions {ck}/{sp}")
                    continue
                g = np.array([codes[v[0]] for v in p.values()])
                c = np.array([v[1] for v in p.values()])
                groups.append((g, c))
                war = float(c.mean())
                if abs(war - float(evals[n][ck][sp]["war"])) > 1e-9:
                    consistency.append(f"{n}: {ck}/{sp} WAR {evals[n][ck][sp]['war']:.4f} in metrics.json, "
                                       f"{war:.4f} from its predictions file")
            if groups and len(groups) == len(have):
                b = bootstrap_seeds_clips(groups, len(codes), n_boot=n_boot, seed=seed)
                cell["war_boot_ci"], cell["uar_boot_ci"] = b["war"]["ci"], b["uar"]["ci"]
            cells.setdefault(ck, {})[sp] = cell

    comps: dict = {}
    for a, b in comparisons:
        key = f"{a} - {b}"
        for sp in splits:
            groups, used = [], []
            for n in runs:
                pa, pb = preds.get((n, a, sp)), preds.get((n, b, sp))
                if pa is None or pb is None:
                    continue
                if set(pa) != set(pb):
                    raise StudyError(f"{study_dir / n}: {a} and {b} predictions on {sp} cover different clips "
                                     f"({len(set(pa) ^ set(pb))} differ); re-run 04_evaluate for both")
                codes = codes_for(sp)
                ids = list(pa)
                groups.append((np.array([codes[pa[i][0]] for i in ids]), np.array([pa[i][1] for i in ids]),
                               np.array([pb[i][1] for i in ids])))
                used.append(n)
            if not groups:
                continue
            res = paired_bootstrap_seeds_clips(groups, len(codes_for(sp)), n_boot=n_boot, seed=seed)
            res["units"] = used
            comps.setdefault(key, {})[sp] = res

    study = {
        "name": study_dir.name,
        "units": [{"name": u.name, "seed": u.seed, "fold": u.fold, "path": str(runs[u.name].path)} for u in units],
        "n_units": len(units),
        "checkpoints": checkpoints,
        "splits": splits,
        "cells": cells,
        "comparisons": comps,
        "method": {
            "cell": "mean over units of each unit's metrics.json figure; ci: Student-t 95% over units "
                    "(n - 1 df); *_boot_ci: two-level percentile bootstrap, units then clips",
            "comparison": "A - B per unit on the same clips; mean over units; ci: paired two-level "
                          "percentile bootstrap (units with replacement, then each unit's clips, the same "
                          "draw for A and B); frac_positive: share of units with A - B > 0",
            "n_boot": n_boot,
            "bootstrap_seed": seed,
        },
        "missing": missing,
        "consistency": consistency,
        **dict(info or {}),
    }
    write_json(study_dir / "study.json", study)
    atomic_write_text(study_dir / "study.html", render_study_html(study))
    return study


# --------------------------------------------------------------------------------------------------
# Presenting
# --------------------------------------------------------------------------------------------------


def _pct(x) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def _pm(cell: Mapping, key: str = "ci") -> str:
    ci = cell.get(key) or [None, None]
    return f"{_pct(cell.get('mean'))} [{_pct(ci[0])}, {_pct(ci[1])}]"


def format_study(study: Mapping) -> str:
    """The study's WAR table and comparisons as plain text (percent, 95% CIs over units)."""
    lines = [f"study {study.get('name')}: {study.get('n_units')} unit(s), WAR % mean [95% CI over units]"]
    splits = study.get("splits", [])
    lines.append(f"{'checkpoint':<12}" + "".join(f"{s:>26}" for s in splits))
    for ck, row in study.get("cells", {}).items():
        lines.append(f"{ck:<12}" + "".join(f"{_pm(row[s]['war']) if s in row else '–':>26}" for s in splits))
    for key, row in study.get("comparisons", {}).items():
        lines.append(f"{key:<24}" + "  ".join(
            f"{s}: {_pm(row[s]['war'])} (+ in {row[s]['war']['frac_positive']:.0%})" for s in splits if s in row))
    return "\n".join(lines)


_STYLE = ("<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
          "margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}"
          "td:first-child{text-align:left}.pos{color:#060}.neg{color:#a00}</style></head><body>")


def render_study_html(study: Mapping) -> str:
    """``study.html``: the cells (WAR, UAR) and the paired comparisons as tables; stands alone."""
    e = html.escape
    splits = study.get("splits", [])
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>study {e(str(study.get('name')))}</title>",
             _STYLE,
             f"<h1>Study {e(str(study.get('name')))}</h1>",
             f"<p>{study.get('n_units')} unit(s): " + ", ".join(e(u["name"]) for u in study.get("units", []))
             + (f"; data pinned by {e(str(study['data_pinned']))}" if study.get("data_pinned") else "")
             + ". Figures in %, mean over units [95% CI].</p>"]
    for metric in ("war", "uar"):
        parts.append(f"<h2>{metric.upper()}</h2><table><tr><th>checkpoint</th>"
                     + "".join(f"<th>{e(s)}<br>mean [t CI]</th><th>{e(s)}<br>[bootstrap CI]</th><th>per unit</th>"
                               for s in splits) + "</tr>")
        for ck, row in study.get("cells", {}).items():
            tds = []
            for s in splits:
                c = row.get(s)
                if c is None:
                    tds.append("<td>–</td><td>–</td><td>–</td>")
                    continue
                boot = c.get(f"{metric}_boot_ci") or [None, None]
                tds.append(f"<td>{_pm(c[metric])}</td><td>[{_pct(boot[0])}, {_pct(boot[1])}]</td>"
                           f"<td>{' / '.join(_pct(v) for v in c[metric]['values'])}</td>")
            parts.append(f"<tr><td>{e(ck)}</td>{''.join(tds)}</tr>")
        parts.append("</table>")
    parts.append("<h2>Paired comparisons (A − B, same clips)</h2><table><tr><th>comparison</th><th>split</th>"
                 "<th>WAR diff [paired bootstrap CI]</th><th>units with diff &gt; 0</th><th>per unit</th>"
                 "<th>UAR diff [CI]</th></tr>")
    for key, row in study.get("comparisons", {}).items():
        for s in splits:
            if s not in row:
                continue
            w, u = row[s]["war"], row[s]["uar"]
            cls = "pos" if (w["ci"][0] or 0) > 0 else ("neg" if (w["ci"][1] or 0) < 0 else "")
            parts.append(f"<tr><td>{e(key)}</td><td>{e(s)}</td><td class='{cls}'>{_pm(w)}</td>"
                         f"<td>{w['frac_positive']:.0%}</td><td>{' / '.join(_pct(v) for v in w['per_seed'])}</td>"
                         f"<td>{_pm(u)}</td></tr>")
    parts.append("</table>")
    m = study.get("method", {})
    parts.append(f"<h2>Method</h2><p>{e(str(m.get('cell', '')))}.</p><p>{e(str(m.get('comparison', '')))}; "
                 f"{m.get('n_boot')} resamples, seed {m.get('bootstrap_seed')}.</p>")
    for title, key in (("Missing", "missing"), ("Consistency warnings", "consistency")):
        if study.get(key):
            parts.append(f"<h2>{title}</h2><ul>" + "".join(f"<li>{e(str(x))}</li>" for x in study[key]) + "</ul>")
    if study.get("failed"):
        parts.append("<h2>Failed units</h2><ul>" + "".join(
            f"<li>{e(k)}: {e(str(v))}</li>" for k, v in study["failed"].items()) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------------
# CLI (wired by omnibench/cli.py)
# --------------------------------------------------------------------------------------------------


def add_study_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Flags of ``omnibench study``."""
    parser.add_argument("--config", help="YAML recipe (e.g. configs/demo.yaml); not needed with --aggregate-only")
    parser.add_argument("--name", required=True, help="study name; outputs go to RUNS_DIR/NAME/")
    parser.add_argument("--seeds", default="", help="seeds, e.g. 0,1,2 or 0-2 (training and SynthEmo draw)")
    parser.add_argument("--folds", default="", help="folds, e.g. 1,2,3,4,5 (DFEW / MAFW recipes)")
    parser.add_argument("--fold-key", default=DEFAULT_FOLD_KEY,
                        help=f"dotted recipe key the fold is written to, '*' = every list item (default {DEFAULT_FOLD_KEY})")
    parser.add_argument("--runs-dir", default="runs", help="parent folder of the study folder (default: runs)")
    parser.add_argument("--set", "-o", dest="overrides", action="append", default=[], metavar="STAGE.KEY=VALUE",
                        help="override a recipe value for every unit (YAML-parsed), repeatable")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="units run at once, one process each (default 1)")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--aggregate-only", action="store_true", help="only re-aggregate the unit folders there")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only errors")
    return parser


def cli_study(args: argparse.Namespace) -> int:
    """``omnibench study``: returns the exit status (1 with the error on stderr)."""
    from omnibench.pipeline import PipelineError

    try:
        if args.aggregate_only:
            study = aggregate_study(Path(args.runs_dir) / args.name, n_boot=args.n_boot)
            if not args.quiet:
                print(format_study(study))
            return 0
        if not args.config:
            raise StudyError("--config is required (or --aggregate-only)")
        run_study(args.config, args.name, parse_list(args.seeds, "seeds"), parse_list(args.folds, "folds"),
                  fold_key=args.fold_key, runs_dir=args.runs_dir, overrides=args.overrides, jobs=args.jobs,
                  n_boot=args.n_boot, quiet=args.quiet)
    except (StudyError, PipelineError, FileNotFoundError) as e:
        print(f"omnibench study: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m omnibench.study``: the same as ``omnibench study``."""
    parser = add_study_args(argparse.ArgumentParser(prog="omnibench study", description=__doc__.split("\n")[0]))
    return cli_study(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
