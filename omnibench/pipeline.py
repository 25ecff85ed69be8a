"""Run the notebooks in order with papermill into one folder per run, then build the report.

A *recipe* is a YAML file (``configs/demo.yaml``, ``configs/smoke.yaml``). Its top-level keys are
either a **stage section** (``data``, ``cold_start``, ``grpo``, ``evaluate``, ``attribution``: a
mapping of that stage's notebook parameters) or a **shared key** (``seed``, ``device``, ...), which
is passed to every notebook that declares it in its ``parameters`` cell. ``run_dir`` is always
passed (the absolute path of ``runs/<name>/``). A key that no notebook declares is an error, so a
typo never silently falls back to a default.

``run_pipeline(config, name)`` executes each stage's notebook with papermill into
``runs/<name>/notebooks/``, records the resolved parameters in ``params.yaml``, per-stage wall time
under ``timing`` in ``metrics.json`` (the notebooks merge their own ``eval`` / ``attribution`` /
``training`` sections into the same file through :class:`~omnibench.run.RunFolder`), renders the
executed notebooks to HTML and writes ``report.html``. ``from_stage`` re-runs from a stage, reusing
the earlier stages' outputs. A failing notebook stops the run with a :class:`PipelineError` naming the
executed notebook and the failing cell; earlier outputs stay in place.

This module is the runner only. The run folder's layout, the stages and the ``metrics.json`` merge
are :mod:`omnibench.run`; the report is :mod:`omnibench.report`; what the notebooks call lives with
the stage layer (:mod:`omnibench.stages`: one function per stage, which the notebooks call).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from omnibench import report as _report
from omnibench.run import STAGES, RunFolder, Stage

__all__ = ["PipelineError", "add_run_args", "cli_run", "find_stage", "load_recipe", "notebook_parameters",
           "notebooks_dir", "resolve_params", "run_pipeline"]

KERNEL_NAME = "python3"


class PipelineError(RuntimeError):
    """A run that cannot start or continue (bad recipe, missing earlier outputs, failing notebook)."""


def notebooks_dir() -> Path:
    """The repository's ``notebooks/`` folder (``$OMNIBENCH_NOTEBOOKS`` overrides it)."""
    env = os.environ.get("OMNIBENCH_NOTEBOOKS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "notebooks"


def find_stage(key: str, stages: Sequence[Stage] = STAGES) -> int:
    """Index of a stage given as its name (``grpo``), notebook stem (``03_grpo``) or number (``3``)."""
    k = str(key).strip().lower().removesuffix(".ipynb")
    for i, st in enumerate(stages):
        if k in (st.name, st.stem, str(i + 1), f"{i + 1:02d}"):
            return i
    known = ", ".join(f"{st.name} ({st.stem})" for st in stages)
    raise PipelineError(f"unknown stage {key!r}; known stages: {known}")


# --------------------------------------------------------------------------------------------------
# Recipes and parameters
# --------------------------------------------------------------------------------------------------


def load_recipe(config_path: str | os.PathLike, overrides: Sequence[str] | None = None) -> dict:
    """Read a YAML recipe and apply ``overrides`` (``"grpo.max_steps=4"``, ``"seed=1"``,
    ``"data.roots.dfew=/data/DFEW"``: nested keys set inside the section's mapping; values parsed as YAML)."""
    path = Path(config_path)
    if not path.is_file():
        raise PipelineError(f"recipe {path} not found (see configs/demo.yaml and configs/smoke.yaml)")
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise PipelineError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(recipe, dict):
        raise PipelineError(f"{path}: expected a mapping at the top level, got {type(recipe).__name__}")
    for ov in overrides or ():
        if "=" not in ov:
            raise PipelineError(f"override {ov!r}: expected KEY=VALUE, STAGE.KEY=VALUE or STAGE.KEY.SUBKEY=VALUE")
        key, raw = ov.split("=", 1)
        value = yaml.safe_load(raw) if raw.strip() else ""
        parts = [k.strip() for k in key.strip().split(".")]
        if not all(parts):
            raise PipelineError(f"override {ov!r}: empty key part (use STAGE.KEY=VALUE or STAGE.KEY.SUBKEY=VALUE)")
        target = recipe
        for depth, part in enumerate(parts[:-1]):
            node = target.setdefault(part, {})
            if node is None:
                node = target[part] = {}
            if not isinstance(node, dict):
                where = ".".join(parts[: depth + 1])
                raise PipelineError(f"override {ov!r}: {where!r} is a {type(node).__name__} in {path}, not a mapping")
            target = node
        target[parts[-1]] = value
    return recipe


def notebook_parameters(notebook: str | os.PathLike) -> dict:
    """Name -> {default, inferred_type_name, help} of the notebook's ``parameters`` cell (papermill)."""
    import papermill as pm

    return {k: dict(v) for k, v in pm.inspect_notebook(str(notebook)).items()}


def resolve_params(
    recipe: Mapping,
    run_dir: str | os.PathLike,
    stages: Sequence[Stage] = STAGES,
    nb_dir: str | os.PathLike | None = None,
) -> dict[str, dict]:
    """Stage name -> parameters to inject (only keys the notebook declares; run_dir always).

    Raises PipelineError for a section key its notebook does not declare, a shared key no notebook
    declares, or a section that is not a mapping.
    """
    nb_dir = Path(nb_dir) if nb_dir else notebooks_dir()
    names = {st.name for st in stages}
    shared = {k: v for k, v in recipe.items() if k not in names}
    declared: dict[str, dict] = {}
    for st in stages:
        nb = nb_dir / st.notebook
        if not nb.is_file():
            raise PipelineError(f"notebook {nb} not found (stage {st.name})")
        declared[st.name] = notebook_parameters(nb)
    unused = set(shared) - {"run_dir"} - {k for d in declared.values() for k in d}
    if unused:
        raise PipelineError(
            f"recipe key(s) {sorted(unused)} are not parameters of any notebook; a stage's keys go under its "
            f"section ({', '.join(st.name for st in stages)})"
        )
    if "run_dir" in shared:
        raise PipelineError("recipe sets run_dir; the pipeline sets it to runs/<name> (use --runs-dir / --name)")
    out: dict[str, dict] = {}
    for st in stages:
        section = recipe.get(st.name) or {}
        if not isinstance(section, Mapping):
            raise PipelineError(f"recipe section {st.name!r} must be a mapping of {st.notebook} parameters")
        params = declared[st.name]
        unknown = set(section) - set(params)
        if unknown:
            raise PipelineError(
                f"recipe section {st.name!r}: {sorted(unknown)} not among the parameters of {st.notebook} "
                f"({', '.join(sorted(params))})"
            )
        if "run_dir" not in params:
            raise PipelineError(f"{st.notebook}: its parameters cell must declare run_dir")
        resolved = {k: v for k, v in shared.items() if k in params}
        resolved.update(section)
        resolved["run_dir"] = str(Path(run_dir).resolve())
        out[st.name] = resolved
    return out


def _full_params(injected: Mapping, declared: Mapping) -> dict:
    """Notebook defaults overlaid with the injected values (what the notebook actually ran with)."""
    import ast

    full = {}
    for k, info in declared.items():
        try:
            full[k] = ast.literal_eval(info.get("default", "None"))
        except (ValueError, SyntaxError):
            full[k] = info.get("default")
    full.update(injected)
    return full


# --------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------


def _say(msg: str, quiet: bool = False) -> None:
    if not quiet:
        print(msg, flush=True)


def _failure_message(stage: Stage, out_nb: Path, err) -> str:
    src = (getattr(err, "source", "") or "").strip().splitlines()
    head = "\n".join("    " + line for line in src[:8]) + ("\n    ..." if len(src) > 8 else "")
    cell = getattr(err, "cell_index", None)
    count = getattr(err, "exec_count", None)
    where = f"cell {cell + 1}" if cell is not None else "a cell"  # 1-based, counting papermill's injected cell
    if count is not None:
        where += f" (In [{count}])"
    return (
        f"stage {stage.name!r} failed in {where} of the executed notebook {out_nb}:\n"
        f"  {getattr(err, 'ename', type(err).__name__)}: {getattr(err, 'evalue', err)}\n"
        f"  cell source:\n{head}\n"
        f"Earlier stages' outputs are kept; fix the cause and resume with --from {stage.name}."
    )


class _PapermillLog:
    """Route papermill's streamed notebook output to ``pipeline.log`` only (the console shows progress)."""

    def __init__(self, log_path: Path):
        self.logger = logging.getLogger("papermill")
        self.handler = logging.FileHandler(log_path, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))

    def __enter__(self) -> logging.Logger:
        self._saved = (self.logger.level, self.logger.propagate)
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        return self.logger

    def __exit__(self, *exc) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()
        self.logger.setLevel(self._saved[0])
        self.logger.propagate = self._saved[1]


def _kernel_config():
    """Kernel-manager config: CurveZMQ-encrypted loopback sockets when pyzmq has them (no ipykernel warning)."""
    import zmq
    from traitlets.config import Config

    cfg = Config()
    if zmq.has("curve"):
        cfg.KernelManager.transport_encryption = "auto"
    return cfg


def run_pipeline(
    config_path: str | os.PathLike,
    name: str,
    runs_dir: str | os.PathLike = "runs",
    from_stage: str | None = None,
    overrides: Sequence[str] | None = None,
    *,
    to_stage: str | None = None,
    stages: Sequence[Stage] = STAGES,
    nb_dir: str | os.PathLike | None = None,
    report: bool = True,
    quiet: bool = False,
    progress_bar: bool | None = None,
    cell_timeout: int | None = None,
) -> RunFolder:
    """Execute the stage notebooks into ``runs_dir/name`` and build ``report.html``.

    Args:
        config_path: YAML recipe (stage sections + shared keys).
        name: run name; the run folder is ``runs_dir/name``.
        runs_dir: parent folder of the run folders.
        from_stage: re-run from this stage (name, notebook stem or number), reusing the earlier
            stages' outputs in the run folder (a PipelineError lists what is missing).
        overrides: ``"STAGE.KEY=VALUE"`` / ``"KEY=VALUE"`` strings applied over the recipe.
        to_stage: stop after this stage (inclusive).
        stages, nb_dir: the stage list and the folder of the source notebooks (tests use their own).
        report: render the executed notebooks to HTML and write report.html at the end.
        quiet: print nothing (progress, report path, table).
        progress_bar: papermill's per-cell progress bar (default: when stderr is a terminal).
        cell_timeout: seconds before a single cell is interrupted (None: no limit).

    Returns the RunFolder. Raises PipelineError on a bad recipe, missing earlier outputs or a
    failing notebook (the message names the executed notebook and the failing cell).
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    nb_dir = Path(nb_dir) if nb_dir else notebooks_dir()
    if not name or "/" in name or name in (".", ".."):
        raise PipelineError(f"run name {name!r}: use a plain folder name such as 'demo'")
    recipe = load_recipe(config_path, overrides)
    run = RunFolder(Path(runs_dir) / name)
    params = resolve_params(recipe, run.path, stages, nb_dir)
    declared = {st.name: notebook_parameters(nb_dir / st.notebook) for st in stages}

    start = find_stage(from_stage, stages) if from_stage is not None else 0
    stop = find_stage(to_stage, stages) if to_stage is not None else len(stages) - 1
    if stop < start:
        raise PipelineError(f"--to {to_stage!r} comes before --from {from_stage!r}")

    previous = run.read_params()
    state = run.read_state()
    if start == 0 and state:
        removed = run.clear_outputs()
        _say(f"note: {run.path} held an earlier run; its outputs ({', '.join(removed)}) are cleared first "
             "(data/ is kept); use --from STAGE to reuse them instead", quiet)
        previous, state = {}, {}
    if start > 0:
        missing = []
        for st in stages[:start]:
            if state.get(st.name, {}).get("status") != "ok":
                missing.append(f"stage {st.name} has not completed in {run.path} (state.json)")
            missing += [f"{run.path / o} (made by {st.notebook})" for o in st.outputs if not (run.path / o).exists()]
        if missing:
            raise PipelineError(
                f"cannot start from {stages[start].name!r}: earlier outputs are missing:\n  - "
                + "\n  - ".join(missing)
                + "\nRun without --from (or --from an earlier stage) first."
            )
        for st in stages[:start]:
            old = (previous.get("stages") or {}).get(st.name)
            new = _full_params(params[st.name], declared[st.name])
            if old is not None and old != new:
                changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                _say(f"note: {st.name} parameters in the recipe differ from the ones its reused outputs were "
                     f"made with ({', '.join(changed)}); params.yaml keeps the ones used.", quiet)

    # params.yaml: stages that run get the new values, reused stages keep what made their outputs.
    resolved_stages = {}
    for i, st in enumerate(stages):
        if start <= i <= stop or st.name not in (previous.get("stages") or {}):
            resolved_stages[st.name] = _full_params(params[st.name], declared[st.name])
        else:
            resolved_stages[st.name] = previous["stages"][st.name]
    resolved = {
        "name": name,
        "config": str(Path(config_path).resolve()),
        "overrides": list(overrides or []),
        "updated": _dt.datetime.now().isoformat(timespec="seconds"),
        "stages": resolved_stages,
    }
    run.write_params(resolved)

    if progress_bar is None:
        progress_bar = sys.stderr.isatty() and not quiet
    todo = list(enumerate(stages))[start : stop + 1]
    _say(f"omnibench run {name!r}: {len(todo)} stage(s) into {run.path}", quiet)
    t_all = time.perf_counter()
    with _PapermillLog(run.log_path) as logger:
        for i, st in todo:
            src = nb_dir / st.notebook
            out_nb = run.notebooks / st.notebook
            _say(f"[{i + 1}/{len(stages)}] {st.name:<12} {src.name} ...", quiet)
            logger.info("==== stage %s: %s -> %s", st.name, src, out_nb)
            t0 = time.perf_counter()
            try:
                pm.execute_notebook(
                    str(src),
                    str(out_nb),
                    parameters=params[st.name],
                    kernel_name=KERNEL_NAME,
                    progress_bar=progress_bar,
                    log_output=True,
                    execution_timeout=cell_timeout,
                    cwd=os.getcwd(),
                    config=_kernel_config(),
                )
            except PapermillExecutionError as e:
                secs = time.perf_counter() - t0
                run.update_state(st.name, status="failed", seconds=round(secs, 2), error=f"{e.ename}: {e.evalue}")
                if report:
                    _safe_report(run, stages, quiet=True)
                raise PipelineError(_failure_message(st, out_nb, e)) from None
            except Exception as e:  # kernel died, timeout, bad notebook JSON, ...
                secs = time.perf_counter() - t0
                run.update_state(st.name, status="failed", seconds=round(secs, 2), error=f"{type(e).__name__}: {e}")
                raise PipelineError(
                    f"stage {st.name!r} could not run {src} -> {out_nb}: {type(e).__name__}: {e}\n"
                    f"Earlier stages' outputs are kept; resume with --from {st.name}."
                ) from e
            secs = time.perf_counter() - t0
            missing = [o for o in st.outputs if not (run.path / o).exists()]
            if missing:
                run.update_state(st.name, status="failed", seconds=round(secs, 2), error=f"missing outputs {missing}")
                raise PipelineError(
                    f"stage {st.name!r}: {out_nb} ran but did not write {', '.join(str(run.path / m) for m in missing)}"
                )
            run.update_state(st.name, status="ok", seconds=round(secs, 2))
            run.update_metrics("timing", {st.name: round(secs, 2)})
            _say(f"      {st.name:<12} done in {secs:.1f} s", quiet)
    timing = run.read_metrics().get("timing", {})
    timing["total"] = round(sum(v for k, v in timing.items() if k in {s.name for s in stages}), 2)
    run.update_metrics("timing", timing)
    _say(f"pipeline finished in {time.perf_counter() - t_all:.1f} s", quiet)
    if report:
        try:
            path = _report.build_report(run.path, stages=stages)
        except Exception as e:
            raise PipelineError(f"every stage completed (outputs kept in {run.path}), but building report.html failed: "
                                f"{type(e).__name__}: {e}; rebuild it with `omnibench report {run.path}`") from e
        _say(f"\nreport: {path}", quiet)
        _say(_report.format_table(run.read_metrics(), skipped=run.skipped_counts()), quiet)
    return run


def _safe_report(run: RunFolder, stages: Sequence[Stage], quiet: bool = True) -> None:
    """Build the report after a failure; a report error must not hide the stage's own error."""
    try:
        _report.build_report(run.path, stages=stages)
    except Exception as e:  # noqa: BLE001 - best effort, after the real error
        _say(f"(report not rebuilt: {type(e).__name__}: {e})", quiet)


# --------------------------------------------------------------------------------------------------
# CLI (wired by omnibench/cli.py)
# --------------------------------------------------------------------------------------------------


def add_run_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Flags of ``omnibench run``."""
    parser.add_argument("--config", required=True, help="YAML recipe (e.g. configs/demo.yaml)")
    parser.add_argument("--name", required=True, help="run name; outputs go to RUNS_DIR/NAME/")
    parser.add_argument("--runs-dir", default="runs", help="parent folder of run folders (default: runs)")
    parser.add_argument(
        "--from", dest="from_stage", default=None, metavar="STAGE",
        help="re-run from this stage reusing earlier outputs: " + ", ".join(s.name for s in STAGES),
    )
    parser.add_argument("--to", dest="to_stage", default=None, metavar="STAGE", help="stop after this stage")
    parser.add_argument(
        "--set", "-o", dest="overrides", action="append", default=[], metavar="STAGE.KEY=VALUE",
        help="override a recipe value (YAML-parsed), repeatable: --set grpo.max_steps=10 --set seed=1",
    )
    parser.add_argument("--cell-timeout", type=int, default=None, help="seconds before one cell is interrupted")
    parser.add_argument("--no-report", action="store_true", help="skip report.html")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only errors")
    return parser


def cli_run(args: argparse.Namespace) -> int:
    """``omnibench run``: returns the exit status (1 with the error message on stderr)."""
    try:
        run_pipeline(
            args.config, args.name, runs_dir=args.runs_dir, from_stage=args.from_stage,
            overrides=args.overrides, to_stage=getattr(args, "to_stage", None),
            report=not getattr(args, "no_report", False), quiet=getattr(args, "quiet", False),
            cell_timeout=getattr(args, "cell_timeout", None),
        )
    except PipelineError as e:
        print(f"omnibench run: {e}", file=sys.stderr)
        return 1
    return 0
