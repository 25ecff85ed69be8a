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
``training`` sections into the same file through :class:`RunFolder`), renders the executed notebooks
to HTML and writes ``report.html``. ``from_stage`` re-runs from a stage, reusing the earlier stages'
outputs. A failing notebook stops the run with a :class:`PipelineError` naming the executed notebook
and the failing cell; earlier outputs stay in place.

The run-folder layout (shared by the notebooks, the report and the dashboard) lives in
:class:`RunFolder`::

    runs/<name>/params.yaml          resolved parameters, per stage
    runs/<name>/metrics.json         {"eval": ..., "attribution": ..., "training": ..., "timing": ...}
    runs/<name>/state.json           per-stage status (ok / failed), seconds, finish time
    runs/<name>/pipeline.log         the notebooks' outputs, as papermill streamed them
    runs/<name>/notebooks/*.ipynb    executed notebooks (+ .html renderings)
    runs/<name>/data/manifest.jsonl  the clips (SynthEmo generated here, or a real manifest re-rooted)
    runs/<name>/checkpoints/<ck>/    base, cold_start, label_sft, grpo: model/, metrics.jsonl, recipe.yaml
    runs/<name>/predictions/         evaluation predictions (JSONL)
    runs/<name>/attribution.jsonl    per-clip Shapley values and stated cue shares (all attributed splits)
    runs/<name>/figures/*.png        every figure the notebooks draw
    runs/<name>/report.html          the summary page
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

__all__ = [
    "STAGES",
    "PipelineError",
    "RunFolder",
    "Stage",
    "add_report_args",
    "add_run_args",
    "cli_report",
    "cli_run",
    "clip_durations",
    "count_table",
    "import_manifest",
    "load_completions",
    "load_recipe",
    "model_labels",
    "notebooks_dir",
    "one_per_class",
    "open_run",
    "pick_examples",
    "resolve_params",
    "run_pipeline",
    "save_attribution",
    "save_base_model",
    "training_summary",
]

KERNEL_NAME = "python3"


# --------------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: a notebook and the run-folder paths later stages read from it."""

    name: str = field(metadata={"help": "stage name, also the recipe section holding its parameters"})
    notebook: str = field(metadata={"help": "notebook file name in notebooks/"})
    outputs: tuple[str, ...] = field(
        default=(), metadata={"help": "run-folder paths this stage must leave for the later stages"}
    )

    @property
    def stem(self) -> str:
        return Path(self.notebook).stem


STAGES: tuple[Stage, ...] = (
    Stage("data", "01_data.ipynb", ("data/manifest.jsonl",)),
    Stage("cold_start", "02_cold_start.ipynb", ("checkpoints/cold_start/model",)),
    Stage("grpo", "03_grpo.ipynb", ("checkpoints/grpo/model",)),
    Stage("evaluate", "04_evaluate.ipynb", ("predictions",)),
    Stage("attribution", "05_attribution.ipynb", ("attribution.jsonl",)),
)


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
# Run folder (used by the notebooks, the report and the dashboard)
# --------------------------------------------------------------------------------------------------


class RunFolder:
    """Paths and small read/write helpers for ``runs/<name>/`` (see the module docstring for the layout)."""

    def __init__(self, path: str | os.PathLike, create: bool = True):
        self.path = Path(path).expanduser().resolve()
        if create:
            for sub in ("figures", "checkpoints", "predictions", "notebooks", "data"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
        elif not self.path.is_dir():
            raise FileNotFoundError(f"run folder {self.path} not found; run `omnibench run --config ... --name NAME`")

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __truediv__(self, other: str) -> Path:
        return self.path / other

    # paths ---------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def manifest(self) -> Path:
        return self.path / "data" / "manifest.jsonl"

    @property
    def predictions(self) -> Path:
        return self.path / "predictions"

    @property
    def notebooks(self) -> Path:
        return self.path / "notebooks"

    @property
    def attribution(self) -> Path:
        return self.path / "attribution.jsonl"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.json"

    @property
    def params_path(self) -> Path:
        return self.path / "params.yaml"

    @property
    def state_path(self) -> Path:
        return self.path / "state.json"

    @property
    def report_path(self) -> Path:
        return self.path / "report.html"

    def train_dir(self, name: str) -> Path:
        """``checkpoints/<name>/``: a training run's folder (model/, metrics.jsonl, recipe.yaml, checkpoints/)."""
        return self.path / "checkpoints" / name

    def checkpoint(self, name: str) -> Path:
        """The model folder of checkpoint ``name`` (base, cold_start, label_sft, grpo).

        ``checkpoints/<name>/model`` unless :meth:`register_checkpoint` recorded another folder
        (e.g. a real base model that is not copied into the run)."""
        index = self._checkpoint_index()
        return Path(index[name]) if name in index else self.train_dir(name) / "model"

    def register_checkpoint(self, name: str, path: str | os.PathLike) -> Path:
        """Record that checkpoint ``name`` lives at ``path`` (``checkpoints/index.json``)."""
        index = self._checkpoint_index()
        index[name] = str(Path(path).resolve())
        (self.path / "checkpoints").mkdir(parents=True, exist_ok=True)
        _write_json(self.path / "checkpoints" / "index.json", index)
        return Path(index[name])

    def _checkpoint_index(self) -> dict:
        p = self.path / "checkpoints" / "index.json"
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}

    def checkpoints_available(self, order: Iterable[str] = ("base", "cold_start", "label_sft", "grpo")) -> dict:
        """Name -> model folder of the saved checkpoints (a folder holding a config.json), in ``order``."""
        out = {}
        for n in order:
            p = self.checkpoint(n)
            if (p / "config.json").is_file():
                out[n] = p
        return out

    def predictions_path(self, checkpoint: str, split: str, modalities: str = "video,audio") -> Path:
        """``predictions/<checkpoint>__<split>__<video+audio>.jsonl`` (the name ``omnibench eval`` uses)."""
        tag = modalities.replace(",", "+")
        return self.predictions / f"{checkpoint}__{split}__{tag}.jsonl"

    @property
    def decode_cache(self):
        """The run's on-disk decode cache (``data/.decode_cache``, shared with SFT/GRPO's MediaStore)."""
        from omnibench.data.media import DecodeCache

        return DecodeCache(self.data / ".decode_cache")

    def require(self, *relpaths: str, hint: str = "") -> None:
        """Raise FileNotFoundError naming every missing path (and which stage makes it) if any is absent."""
        missing = [p for p in relpaths if not (self.path / p).exists()]
        if missing:
            made_by = {o: st for st in STAGES for o in st.outputs}
            parts = []
            for p in missing:
                st = made_by.get(p)
                parts.append(f"{self.path / p}" + (f" (made by {st.notebook})" if st else ""))
            raise FileNotFoundError(
                "missing in the run folder: " + "; ".join(parts) + (f". {hint}" if hint else
                ". Run the earlier notebooks against this run_dir, or `omnibench run` without --from.")
            )

    # figures -------------------------------------------------------------------------------------
    def savefig(self, fig, name: str, dpi: int = 100) -> Path:
        """Save a matplotlib figure as ``figures/<name>.png`` and return the path."""
        self.figures.mkdir(parents=True, exist_ok=True)
        stem = name.removesuffix(".png")
        path = self.figures / f"{stem}.png"
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        return path

    # metrics -------------------------------------------------------------------------------------
    def read_metrics(self) -> dict:
        if not self.metrics_path.is_file():
            return {}
        try:
            return json.loads(self.metrics_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{self.metrics_path}: not valid JSON ({e.msg}); delete it and re-run the stages") from None

    def update_metrics(self, key: str, value, merge: bool = True) -> dict:
        """Set ``metrics[key] = value`` (dicts merged one level deep when ``merge``), written atomically."""
        metrics = self.read_metrics()
        value = _jsonable(value)
        if merge and isinstance(value, dict) and isinstance(metrics.get(key), dict):
            metrics[key] = {**metrics[key], **value}
        else:
            metrics[key] = value
        _write_json(self.metrics_path, metrics)
        return metrics

    def read_state(self) -> dict:
        if not self.state_path.is_file():
            return {}
        return json.loads(self.state_path.read_text(encoding="utf-8"))

    def read_params(self) -> dict:
        if not self.params_path.is_file():
            return {}
        return yaml.safe_load(self.params_path.read_text(encoding="utf-8")) or {}


def open_run(run_dir: str | os.PathLike, create: bool = True) -> RunFolder:
    """The :class:`RunFolder` at ``run_dir`` (created with its sub-folders unless ``create=False``)."""
    return RunFolder(run_dir, create=create)


def _jsonable(x):
    """Convert numpy scalars/arrays, Paths and tuples to JSON types, NaN/inf to None (recursively)."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "tolist") and callable(x.tolist):  # numpy scalar or array
        return _jsonable(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None  # NaN / inf are not JSON: null
    return x


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_jsonable(obj), indent=2, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------
# Recipes and parameters
# --------------------------------------------------------------------------------------------------


def load_recipe(config_path: str | os.PathLike, overrides: Sequence[str] | None = None) -> dict:
    """Read a YAML recipe and apply ``overrides`` (``"grpo.max_steps=4"``, ``"seed=1"``; values parsed as YAML)."""
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
            raise PipelineError(f"override {ov!r}: expected KEY=VALUE or STAGE.KEY=VALUE")
        key, raw = ov.split("=", 1)
        value = yaml.safe_load(raw) if raw.strip() else ""
        parts = key.strip().split(".")
        if len(parts) == 1:
            recipe[parts[0]] = value
        elif len(parts) == 2:
            section = recipe.setdefault(parts[0], {})
            if not isinstance(section, dict):
                raise PipelineError(f"override {ov!r}: {parts[0]!r} is not a stage section in {path}")
            section[parts[1]] = value
        else:
            raise PipelineError(f"override {ov!r}: at most one dot (STAGE.KEY=VALUE)")
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


def _update_state(run: RunFolder, stage: str, **info) -> dict:
    state = run.read_state()
    state[stage] = {**info, "finished_at": _dt.datetime.now().isoformat(timespec="seconds")}
    _write_json(run.state_path, state)
    return state


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
    run.params_path.write_text(yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")

    if progress_bar is None:
        progress_bar = sys.stderr.isatty() and not quiet
    todo = list(enumerate(stages))[start : stop + 1]
    _say(f"omnibench run {name!r}: {len(todo)} stage(s) into {run.path}", quiet)
    t_all = time.perf_counter()
    with _PapermillLog(run.path / "pipeline.log") as logger:
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
                _update_state(run, st.name, status="failed", seconds=round(secs, 2), error=f"{e.ename}: {e.evalue}")
                if report:
                    _safe_report(run, stages, quiet=True)
                raise PipelineError(_failure_message(st, out_nb, e)) from None
            except Exception as e:  # kernel died, timeout, bad notebook JSON, ...
                secs = time.perf_counter() - t0
                _update_state(run, st.name, status="failed", seconds=round(secs, 2), error=f"{type(e).__name__}: {e}")
                raise PipelineError(
                    f"stage {st.name!r} could not run {src} -> {out_nb}: {type(e).__name__}: {e}\n"
                    f"Earlier stages' outputs are kept; resume with --from {st.name}."
                ) from e
            secs = time.perf_counter() - t0
            missing = [o for o in st.outputs if not (run.path / o).exists()]
            if missing:
                _update_state(run, st.name, status="failed", seconds=round(secs, 2), error=f"missing outputs {missing}")
                raise PipelineError(
                    f"stage {st.name!r}: {out_nb} ran but did not write {', '.join(str(run.path / m) for m in missing)}"
                )
            _update_state(run, st.name, status="ok", seconds=round(secs, 2))
            run.update_metrics("timing", {st.name: round(secs, 2)})
            _say(f"      {st.name:<12} done in {secs:.1f} s", quiet)
    timing = run.read_metrics().get("timing", {})
    timing["total"] = round(sum(v for k, v in timing.items() if k in {s.name for s in stages}), 2)
    run.update_metrics("timing", timing)
    _say(f"pipeline finished in {time.perf_counter() - t_all:.1f} s", quiet)
    if report:
        from omnibench import report as _report

        path = _report.build_report(run.path, stages=stages)
        _say(f"\nreport: {path}", quiet)
        _say(_report.format_table(run.read_metrics()), quiet)
    return run


def _safe_report(run: RunFolder, stages: Sequence[Stage], quiet: bool = True) -> None:
    """Build the report after a failure; a report error must not hide the stage's own error."""
    try:
        from omnibench import report as _report

        _report.build_report(run.path, stages=stages)
    except Exception as e:  # noqa: BLE001 - best effort, after the real error
        _say(f"(report not rebuilt: {type(e).__name__}: {e})", quiet)


# --------------------------------------------------------------------------------------------------
# Thin helpers the notebooks call (one step of a cell each; the heavy lifting is in the package)
# --------------------------------------------------------------------------------------------------


def import_manifest(src: str | os.PathLike, run: RunFolder) -> Path:
    """Copy a real dataset's manifest into ``run/data/manifest.jsonl`` (validated; media paths re-rooted
    so they still point at the dataset's files, which are not copied)."""
    from omnibench.data.manifest import read_manifest, write_manifest

    clips = read_manifest(src)  # validates labels and media; paths come back absolute
    if not clips:
        raise ValueError(f"manifest {src} holds no clips")
    return write_manifest(clips, run.manifest)


def count_table(clips: Sequence):
    """Clip counts: rows (split, condition), columns labels (in first-seen order) + total.

    Works for any manifest; clips without a SynthEmo ``condition`` are counted under ``-``."""
    import pandas as pd

    df = pd.DataFrame({
        "split": [c.split for c in clips],
        "condition": [str((c.meta or {}).get("condition") or "-") for c in clips],
        "label": [c.label or "<none>" for c in clips],
    })
    labels = list(dict.fromkeys(df["label"]))
    table = pd.crosstab([df["split"], df["condition"]], df["label"]).reindex(columns=labels, fill_value=0)
    split_order = {s: i for i, s in enumerate(("train", "cold_start", "test_id", "test_ood"))}
    table = table.sort_index(key=lambda idx: idx.map(lambda v: (split_order.get(v, 9), str(v))))
    table["total"] = table.sum(axis=1)
    return table


def one_per_class(clips: Sequence, split: str | None = None, prefer_condition: str = "both") -> dict:
    """Label -> one example clip (the first of ``split``, preferring ``prefer_condition``), labels sorted
    in the data cards' DFEW order when they belong to it."""
    from omnibench.labels import DFEW7

    pool = [c for c in clips if c.label and (split is None or c.split == split)]
    if not pool:
        raise ValueError(f"no labelled clips in split {split!r}")
    out: dict = {}
    for c in sorted(pool, key=lambda c: (c.meta or {}).get("condition") != prefer_condition):
        out.setdefault(c.label, c)
    order = {lab: i for i, lab in enumerate(DFEW7)}
    return dict(sorted(out.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))


def clip_durations(clips: Sequence) -> list[float]:
    """Duration in seconds of each clip's video (or audio) file, read from the container (PyAV)."""
    import av

    out = []
    for c in clips:
        path = c.video or c.audio
        try:
            with av.open(path) as f:
                if f.duration is not None:
                    out.append(f.duration / 1e6)
                    continue
                st = (f.streams.video or f.streams.audio)[0]
                out.append(float(st.duration * st.time_base) if st.duration else float("nan"))
        except Exception as e:
            raise RuntimeError(f"cannot read the duration of {path} (clip {c.id}): {e}") from e
    return out


def save_base_model(run: RunFolder, model: str = "tiny", seed: int = 0, tiny: Mapping | None = None,
                    labels: Sequence[str] | None = None, perception: Mapping | None = None,
                    decode: Mapping | None = None, split: str = "train", progress: bool = False) -> Path:
    """The base checkpoint of the run, saved to ``checkpoints/base/model``.

    ``model="tiny"``: the embedded tiny thinker, built from scratch, then pre-trained on the run's
    ``split`` (:func:`omnibench.model.perception.build_tiny_base`; ``perception`` holds
    :class:`~omnibench.model.perception.PerceptionConfig` fields, ``{"steps": 0, "describe_steps": 0}``
    skips it) so that the base model, like a real omni model, starts with working perception and no
    emotion answer. The history goes to ``checkpoints/base/perception.jsonl``. Any other ``model`` is a local model folder, registered
    without copying (its encoders are already trained)."""
    if model == "tiny":
        from omnibench.labels import DFEW7
        from omnibench.model import build_tiny, save_model
        from omnibench.model.perception import PerceptionConfig, build_tiny_base

        cfg = PerceptionConfig(**{"seed": seed, **dict(perception or {})})
        out = run.checkpoint("base")
        (run.train_dir("base") / "perception.jsonl").unlink(missing_ok=True)  # a re-run's old history
        if cfg.steps or cfg.describe_steps:
            return build_tiny_base(run.manifest, out, split=split, seed=seed, config=cfg, decode=decode, tiny=tiny,
                                   labels=labels, cache_dir=run.data / ".decode_cache", progress=progress,
                                   log_path=run.train_dir("base") / "perception.jsonl")
        m, processor = build_tiny(labels=tuple(labels or DFEW7), seed=seed, **dict(tiny or {}))
        save_model(m, processor, out)
        return out
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"base model folder {path} has no config.json; give a local Qwen2.5-Omni folder or 'tiny'")
    (run.train_dir("base") / "perception.jsonl").unlink(missing_ok=True)
    return run.register_checkpoint("base", path)


def model_labels(model, default: Sequence[str] | None = None) -> tuple[str, ...]:
    """The label set a model was built for (``config.omnibench_labels``), else ``default`` (DFEW7)."""
    from omnibench.labels import DFEW7

    labels = getattr(getattr(model, "config", None), "omnibench_labels", None)
    return tuple(labels or default or DFEW7)


def perception_summary(log: str | os.PathLike) -> dict:
    """Per stage of the tiny base model's pre-training (``towers``, ``describe``): steps and the last
    logged row's loss and read-out accuracies."""
    rows = [json.loads(line) for line in Path(log).read_text(encoding="utf-8").splitlines() if line.strip()]
    out: dict = {}
    for row in rows:
        stage = row.get("stage", "towers")
        out[stage] = {k: v for k, v in row.items() if k not in ("stage", "learning_rate")}
    return out


def training_summary(metrics_jsonl: str | os.PathLike, keys: Sequence[str] = ("loss",), frac: float = 0.1) -> dict:
    """Steps, and the mean of each key over the first and last ``frac`` of the logged steps."""
    import pandas as pd

    from omnibench.plots import read_metrics_jsonl

    df = read_metrics_jsonl(metrics_jsonl)
    out: dict = {"steps": int(df["step"].max()) if "step" in df and len(df) else 0}
    if "train_runtime" in df:
        out["seconds"] = float(df["train_runtime"].dropna().iloc[-1]) if df["train_runtime"].notna().any() else None
    for k in keys:
        if k not in df:
            continue
        col = pd.to_numeric(df[k], errors="coerce").dropna()
        if col.empty:
            continue
        m = max(1, round(len(col) * frac))
        out[k] = {"first": float(col.iloc[:m].mean()), "last": float(col.iloc[-m:].mean())}
    return out


def load_completions(run: RunFolder, checkpoint: str, split: str, ids: Sequence[str]) -> list | None:
    """The full-input completions ``04_evaluate`` wrote for ``ids`` (None when some are missing)."""
    path = run.predictions_path(checkpoint, split)
    if not path.is_file():
        return None
    by_id = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                by_id[r["id"]] = r.get("completion")
    if any(i not in by_id for i in ids):
        return None
    return [by_id[i] for i in ids]


def save_attribution(run: RunFolder, results: Mapping) -> Path:
    """Write each split's AttributionResult to ``attribution/<split>.jsonl`` and all of them, in split
    order, to ``attribution.jsonl`` (what the dashboard and the report read)."""
    parts = []
    for split, res in results.items():
        p = res.save(run.path / "attribution" / f"{split}.jsonl")
        parts.append(p.read_text(encoding="utf-8"))
    tmp = run.attribution.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(parts), encoding="utf-8")
    os.replace(tmp, run.attribution)
    return run.attribution


def pick_examples(res, n: int = 3, conditions: Sequence[str] = ("video", "audio", "both")) -> list[str]:
    """Up to ``n`` clip ids for the example figure: correctly answered clips, one per condition in
    turn (non-neutral gold first), then any clip."""
    correct = res.correct
    chosen: list[str] = []
    for cond in list(conditions) * n:
        for i, cid in enumerate(res.ids):
            if cid in chosen or not correct[i] or res.condition[i] != cond or res.gold[i] == "neutral":
                continue
            chosen.append(cid)
            break
        if len(chosen) >= n:
            return chosen
    for cid in res.ids:
        if len(chosen) >= n:
            break
        if cid not in chosen:
            chosen.append(cid)
    return chosen


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


def add_report_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Flags of ``omnibench report``."""
    parser.add_argument("run", help="run folder, or a run name under --runs-dir")
    parser.add_argument("--runs-dir", default="runs", help="parent folder of run folders (default: runs)")
    return parser


def cli_report(args: argparse.Namespace) -> int:
    """``omnibench report RUN``: (re)build report.html of a run folder and print the table."""
    from omnibench import report as _report

    path = Path(args.run)
    if not path.is_dir():
        path = Path(args.runs_dir) / args.run
    if not path.is_dir():
        print(f"omnibench report: no run folder {args.run!r} (nor {path})", file=sys.stderr)
        return 1
    out = _report.build_report(path)
    print(f"report: {out}")
    print(_report.format_table(RunFolder(path, create=False).read_metrics()))
    return 0
