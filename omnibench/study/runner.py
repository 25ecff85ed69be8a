"""Running a study's units (reused when done, resumed when interrupted, in parallel with --jobs) and the
``omnibench study`` command."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from omnibench.io import atomic_write_text, json_safe, read_json
from omnibench.run import STAGES
from omnibench.study.aggregate import aggregate_study, format_study
from omnibench.study.units import (
    _RECIPE_COPY,
    DEFAULT_FOLD_KEY,
    StudyError,
    Unit,
    data_pinned,
    parse_list,
    study_units,
    unit_recipe,
)

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
