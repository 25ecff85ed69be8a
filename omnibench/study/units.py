"""Units of a study (a seed, a fold, or both), the recipe each unit runs, and the fair label-only budget."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from omnibench.run import STAGES

#: (A, B) pairs reported as A - B, per split
COMPARISONS: tuple[tuple[str, str], ...] = (("grpo", "cold_start"), ("grpo", "label_sft"), ("cold_start", "label_sft"))
#: where ``--folds`` writes the fold: every source of ``data.sources`` (the protocol issue's shape)
DEFAULT_FOLD_KEY = "data.sources.*.fold"
#: the splits in table order when present (others follow in first-seen order)
SPLIT_ORDER: tuple[str, ...] = ("test_id", "test_actors", "test_ood", "test_draw")
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
