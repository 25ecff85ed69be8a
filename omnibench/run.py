"""The run folder, ``runs/<name>/``: its layout, the pipeline's stages and the one ``metrics.json`` merge.

Why a module of its own: the pipeline writes the folder, the notebooks fill it, the report, the
dashboard and the ``eval`` / ``attribute`` CLIs (their default output place) read it. Each of them
used to know part of the layout, and two writers merged ``metrics.json`` to different depths. This
module is the one place that knows, and it sits low in the import graph (stdlib, yaml,
``omnibench.io``, and ``omnibench.data.media`` lazily for the decode cache) so that every layer above can
use it without a cycle.

Layout::

    runs/<name>/params.yaml          resolved parameters, per stage
    runs/<name>/metrics.json         {"data", "splits", "eval", "eval_modalities", "eval_subset", "skipped",
                                      "attribution", "training", "timing"}
    runs/<name>/skipped.jsonl        clips a stage left out because their media do not decode (stage, split, id, reason)
    runs/<name>/state.json           per-stage status (ok / failed), seconds, finish time
    runs/<name>/pipeline.log         the notebooks' outputs, as papermill streamed them
    runs/<name>/notebooks/*.ipynb    executed notebooks (+ .html renderings)
    runs/<name>/data/manifest.jsonl  the clips (SynthEmo generated here, or a real manifest re-rooted)
    runs/<name>/checkpoints/<ck>/    base, cold_start, label_sft, grpo: model/, metrics.jsonl, recipe.yaml
    runs/<name>/predictions/         evaluation predictions (JSONL)
    runs/<name>/attribution.jsonl    per-clip Shapley values and stated cue shares (all attributed splits)
    runs/<name>/attribution/<split>.jsonl   the same, one file per split
    runs/<name>/skipped.jsonl        clips a stage left out because their media do not decode (stage, split, id, reason)
    runs/<name>/figures/*.png        every figure the notebooks draw
    runs/<name>/report.html          the summary page

The ``metrics.json`` merge rule (:func:`merge_metrics`, the only writer of that file): an update
replaces **cells** and keeps everything else. A cell is

* in ``eval``, ``eval_modalities`` and ``eval_subset`` (the 7-class subset figures): one (row, split) pair, ``eval -> checkpoint -> split``
  (three levels of keys: ``omnibench eval`` writes one split of one checkpoint at a time, and an eval
  cell is never a mix of two runs);
* in every other section: one entry of the section (two levels: ``timing -> stage``,
  ``training -> run``, ``attribution -> validation``, ``data -> n_clips``), replaced whole.

A writer that means to replace a whole section says so (``replace=("attribution",)``). NaN and
infinities are written as ``null`` (:func:`omnibench.io.json_safe`).
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from omnibench.io import (
    atomic_write_text,
    deep_merge,
    json_safe,
    read_json,
    read_jsonl,
    write_json,
    write_jsonl,
)

__all__ = [
    "CHECKPOINTS",
    "METRICS_DEPTH",
    "STAGES",
    "RunFolder",
    "Stage",
    "locate_checkpoint",
    "merge_metrics",
    "open_run",
    "predictions_name",
]

#: The checkpoints of the R1-Omni-shaped table, in table order (``checkpoints/<name>/model``).
CHECKPOINTS: tuple[str, ...] = ("base", "cold_start", "label_sft", "grpo")

#: Levels of keys merged per ``metrics.json`` section, the section's own key included (see the module
#: docstring); a section not named here merges at :data:`DEFAULT_METRICS_DEPTH`.
METRICS_DEPTH: Mapping[str, int] = {"eval": 3, "eval_modalities": 3, "eval_subset": 3}
DEFAULT_METRICS_DEPTH = 2

_SUBFOLDERS = ("figures", "checkpoints", "predictions", "notebooks", "data")


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


# --------------------------------------------------------------------------------------------------
# metrics.json
# --------------------------------------------------------------------------------------------------


def merge_metrics(path: str | os.PathLike, update: Mapping, replace: Iterable[str] = ()) -> dict:
    """Merge ``update`` (``{section: ...}``) into the ``metrics.json`` at ``path`` by the module's rule
    (cells replaced, everything else kept; sections in ``replace`` replaced whole), write it atomically
    and return the merged object."""
    path = Path(path)
    current = read_json(path, default={})
    if not isinstance(current, dict):  # a bad file, not a bad argument: ValueError like io.read_json
        raise ValueError(  # noqa: TRY004
            f"{path}: holds a JSON {type(current).__name__}, expected an object; delete it and "
            "re-run the stages"
        )
    replace = set(replace)
    merged = dict(current)
    for section, value in json_safe(dict(update)).items():
        old = merged.get(section)
        if section in replace or not (isinstance(value, dict) and isinstance(old, dict)):
            merged[section] = value
        else:
            merged[section] = deep_merge(old, value, METRICS_DEPTH.get(section, DEFAULT_METRICS_DEPTH) - 1)
    write_json(path, merged)
    return merged


# --------------------------------------------------------------------------------------------------
# Default output places
# --------------------------------------------------------------------------------------------------


def locate_checkpoint(model_path: str | os.PathLike) -> tuple[Path, str]:
    """(run folder, checkpoint name) of a model folder: where a CLI writes without ``--out``.

    ``runs/N/checkpoints/grpo/model`` and ``runs/N/checkpoints/grpo`` -> (``runs/N``, ``grpo``); any
    other folder ``F`` -> (``F``'s parent, ``F``'s name)."""
    p = Path(model_path).expanduser().resolve()
    if p.name == "model" and p.parent.parent.name == "checkpoints":
        return p.parent.parent.parent, p.parent.name
    if p.parent.name == "checkpoints":
        return p.parent.parent, p.name
    return p.parent, p.name


# --------------------------------------------------------------------------------------------------
# The run folder
# --------------------------------------------------------------------------------------------------


def predictions_name(checkpoint: str, split: str, modalities: str = "video,audio") -> str:
    """The predictions file name of (checkpoint, split, modalities), the one ``omnibench eval`` and the
    notebooks write: ``<checkpoint>__<split>__<video+audio>.jsonl``; a qualified split's ``/`` becomes
    ``.`` (``grpo__dfew.test__video+audio.jsonl``: one flat folder)."""
    return f"{checkpoint}__{split.replace('/', '.')}__{modalities.replace(',', '+')}.jsonl"


class RunFolder:
    """Paths and small read/write helpers for ``runs/<name>/`` (see the module docstring for the layout)."""

    def __init__(self, path: str | os.PathLike, create: bool = True):
        self.path = Path(path).expanduser().resolve()
        if create:
            for sub in _SUBFOLDERS:
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
    def log_path(self) -> Path:
        return self.path / "pipeline.log"

    @property
    def report_path(self) -> Path:
        return self.path / "report.html"

    @property
    def skipped_path(self) -> Path:
        """``skipped.jsonl``: the clips each stage left out because their media do not decode."""
        return self.path / "skipped.jsonl"

    @property
    def decode_cache_dir(self) -> Path:
        """``data/.decode_cache``: the run's decode cache, shared by the notebooks and SFT/GRPO."""
        return self.data / ".decode_cache"

    @property
    def decode_cache(self):
        """The run's on-disk :class:`~omnibench.data.media.DecodeCache` (at :attr:`decode_cache_dir`)."""
        from omnibench.data.media import DecodeCache  # data.media imports nothing of the run layer

        return DecodeCache(self.decode_cache_dir)

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
        write_json(self._checkpoint_index_path, index)
        return Path(index[name])

    @property
    def _checkpoint_index_path(self) -> Path:
        return self.path / "checkpoints" / "index.json"

    def _checkpoint_index(self) -> dict:
        return read_json(self._checkpoint_index_path, default={})

    def checkpoints_available(self, order: Iterable[str] = CHECKPOINTS) -> dict:
        """Name -> model folder of the saved checkpoints (a folder holding a config.json), in ``order``."""
        out = {}
        for n in order:
            p = self.checkpoint(n)
            if (p / "config.json").is_file():
                out[n] = p
        return out

    def predictions_path(self, checkpoint: str, split: str, modalities: str = "video,audio") -> Path:
        """``predictions/<checkpoint>__<split>__<video+audio>.jsonl`` (:func:`predictions_name`)."""
        return self.predictions / predictions_name(checkpoint, split, modalities)

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
        path = self.figures / f"{name.removesuffix('.png')}.png"
        fig.savefig(path, dpi=dpi, bbox_inches="tight")  # matplotlib writes the file itself
        return path

    # metrics, state, params ----------------------------------------------------------------------
    def read_metrics(self) -> dict:
        return read_json(self.metrics_path, default={})

    def update_metrics(self, key: str, value, merge: bool = True) -> dict:
        """``metrics[key]`` updated by the module's merge rule (:func:`merge_metrics`); ``merge=False``
        replaces the whole section. Returns the merged metrics."""
        return merge_metrics(self.metrics_path, {key: value}, replace=() if merge else (key,))

    def read_state(self) -> dict:
        return read_json(self.state_path, default={})

    def update_state(self, stage: str, **info) -> dict:
        """Record a stage's status (``status``, ``seconds``, ``error``) with its finish time in ``state.json``."""
        state = self.read_state()
        state[stage] = {**info, "finished_at": _dt.datetime.now().isoformat(timespec="seconds")}
        write_json(self.state_path, state)
        return state

    def read_params(self) -> dict:
        if not self.params_path.is_file():
            return {}
        return yaml.safe_load(self.params_path.read_text(encoding="utf-8")) or {}

    def write_params(self, params: Mapping) -> Path:
        """``params.yaml`` (the resolved parameters of every stage), written atomically."""
        return atomic_write_text(self.params_path, yaml.safe_dump(json_safe(dict(params)), sort_keys=False))

    # skipped clips and the splits trained on ---------------------------------------------------
    #: what a run from its first stage writes again: cleared first, so no cell, checkpoint or skipped clip
    #: of an earlier run (another recipe) is read as part of the new one. ``data/`` is kept (SynthEmo
    #: regenerates it when its parameters change; the decode cache stays valid).
    OUTPUTS: tuple[str, ...] = ("metrics.json", "state.json", "skipped.jsonl", "report.html", "attribution.jsonl",
                                "attribution", "predictions", "checkpoints", "figures", "notebooks")

    def clear_outputs(self) -> list[str]:
        """Remove :attr:`OUTPUTS` (the sub-folders are recreated empty); returns what was there."""
        import shutil

        removed = []
        for rel in self.OUTPUTS:
            p = self.path / rel
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
            else:
                continue
            removed.append(rel)
        for sub in _SUBFOLDERS:
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        return removed

    def record_skipped(self, stage: str, split: str, skipped: Mapping[str, str]) -> Path:
        """Record the clips ``stage`` left out of ``split`` (clip id -> reason, e.g.
        :attr:`MediaStore.skipped <omnibench.data.media.MediaStore.skipped>`) in ``skipped.jsonl``,
        replacing that stage's earlier rows for the split (a re-run does not count a clip twice)."""
        rows = [r for r in self.read_skipped() if (r.get("stage"), r.get("split")) != (stage, split)]
        rows += [{"stage": stage, "split": split, "id": cid, "reason": str(why)} for cid, why in skipped.items()]
        write_jsonl(self.skipped_path, rows)
        return self.skipped_path

    def read_skipped(self, stage: str | None = None, split: str | None = None) -> list[dict]:
        """Rows of ``skipped.jsonl`` (``stage``, ``split``, ``id``, ``reason``), optionally of one stage / split."""
        if not self.skipped_path.is_file():
            return []
        return [r for r in read_jsonl(self.skipped_path)
                if (stage is None or r.get("stage") == stage) and (split is None or r.get("split") == split)]

    def skipped_counts(self) -> dict[str, dict[str, int]]:
        """Stage -> split -> number of clips left out (from ``skipped.jsonl``)."""
        out: dict[str, dict[str, int]] = {}
        for r in self.read_skipped():
            d = out.setdefault(str(r.get("stage")), {})
            d[str(r.get("split"))] = d.get(str(r.get("split")), 0) + 1
        return out

    def training_splits(self) -> list[str]:
        """The splits the run's training stages train on, from ``params.yaml`` (cold-start ``split``,
        ``label_sft_split`` when the label-only baseline runs, GRPO ``split``), in that order."""
        stages = self.read_params().get("stages") or {}
        cold, grpo = stages.get("cold_start") or {}, stages.get("grpo") or {}
        found: list = [cold.get("split", "cold_start")]
        if cold.get("label_sft", True):
            found.append(cold.get("label_sft_split", "train"))
        if grpo:
            found.append(grpo.get("split", "train"))
        out: list[str] = []
        for item in found:
            for s in [item] if isinstance(item, str) else list(item or []):
                if s not in out:
                    out.append(s)
        return out

    # predictions and attribution -----------------------------------------------------------------
    def load_completions(self, checkpoint: str, split: str, ids: Sequence[str]) -> list | None:
        """The full-input completions ``04_evaluate`` wrote for ``ids``, in that order (None when the
        predictions file or one of the ids is missing)."""
        path = self.predictions_path(checkpoint, split)
        if not path.is_file():
            return None
        by_id = {r["id"]: r.get("completion") for r in read_jsonl(path)}
        if any(i not in by_id for i in ids):
            return None
        return [by_id[i] for i in ids]

    def save_attribution(self, results: Mapping) -> Path:
        """Write each split's result (an object with ``.save(path)``, e.g. ``AttributionResult``) to
        ``attribution/<split>.jsonl`` and all of them, in split order, to ``attribution.jsonl`` (what
        the dashboard and the report read)."""
        parts = []
        for split, res in results.items():
            p = res.save(self.path / "attribution" / f"{split.replace('/', '.')}.jsonl")  # dfew/test -> dfew.test
            parts.append(Path(p).read_text(encoding="utf-8"))
        atomic_write_text(self.attribution, "".join(parts))
        return self.attribution


def open_run(run_dir: str | os.PathLike, create: bool = True) -> RunFolder:
    """The :class:`RunFolder` at ``run_dir`` (created with its sub-folders unless ``create=False``)."""
    return RunFolder(run_dir, create=create)
