"""Verifiable rewards for GRPO, with TRL's reward-function signature.

Every reward is a plain function ``fn(completions, **kwargs) -> list[float | None]``, exactly what
``trl.GRPOTrainer`` calls: ``completions`` is one entry per generated completion, either a string or
TRL's conversational form ``[{"role": "assistant", "content": "..."}]``; dataset columns (here
``label``) arrive as keyword arguments holding one value per completion; TRL also passes
``prompts``, ``completion_ids``, ``trainer_state``, ``log_extra`` and ``log_metric``, which these
functions accept and ignore. ``None`` means "no reward applies" (TRL turns it into NaN and leaves
it out of the means).

Two rewards reproduce R1-Omni:

* :func:`accuracy_reward` -- 1.0 when the completion's answer is the gold label, as
  :func:`omnibench.answers.is_correct` decides it (the very rule the evaluation uses, so a reward is
  never paid for an answer the table counts wrong): the text of the **last** ``<answer>…</answer>``
  resolved against the clip's label set (column ``label_set``: one list of labels per completion, or
  one list for all; without it, an open vocabulary: any spelling the data cards know, else the
  case- and space-folded text). 0.0 otherwise, including no answer tags, an empty answer, an answer
  outside the label set and a gold label outside it; ``None`` when the clip has no gold label.
* :func:`format_reward` -- 1.0 when the completion is exactly ``<think>…</think>`` followed by
  ``<answer>…</answer>`` (:func:`omnibench.answers.is_well_formed`): whitespace between (and around)
  the two blocks is allowed, nothing else is, each tag appears once, neither block contains another
  tag (no nesting), and neither block is empty or whitespace only. R1-Omni's
  ``fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>")`` accepts ``<think></think>``; here GRPO
  on the tiny model learned exactly that within 100 steps (dropping the reasoning the project exists
  to study), so an empty block earns no format reward. Tags are case-sensitive.

Rewards are registered by name in :data:`REWARDS` (``@register("name")``); :func:`get_reward`
also resolves ``"package.module:function"`` so any TRL-style reward function can be named in a
recipe; :func:`resolve_rewards` turns a ``{name: weight}`` mapping into the function list and
weights GRPO uses, and :func:`combined_reward` gives their weighted sum as one reward function.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from omnibench.answers import completion_text, is_correct, is_well_formed, parse_answer

__all__ = [
    "REWARDS",
    "accuracy_reward",
    "combined_reward",
    "completion_text",
    "format_reward",
    "get_reward",
    "is_well_formed",
    "parse_answer",
    "register",
    "resolve_rewards",
]

RewardFn = Callable[..., list]

#: name -> reward function (the names recipes use).
REWARDS: dict[str, RewardFn] = {}


def register(name: str) -> Callable[[RewardFn], RewardFn]:
    """Decorator: add a reward function to :data:`REWARDS` under ``name``."""

    def deco(fn: RewardFn) -> RewardFn:
        if name in REWARDS and REWARDS[name] is not fn:
            raise ValueError(f"reward name {name!r} is already registered to {REWARDS[name].__name__}")
        REWARDS[name] = fn
        return fn

    return deco


def _per_completion(value: Any, n: int, name: str) -> list:
    if value is None or isinstance(value, str):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(f"reward got {len(values)} values of {name!r} for {n} completions; pass one per completion")
    return values


def _label_sets(value: Any, n: int) -> list:
    """One label set (or None: open vocabulary) per completion, from a ``label_set`` column."""
    if value is None:
        return [None] * n
    values = list(value)
    if values and all(isinstance(v, str) for v in values):  # one label set for every completion
        return [tuple(values)] * n
    if len(values) != n:
        raise ValueError(f"reward got {len(values)} label sets for {n} completions; pass one per completion")
    return [tuple(v) if v is not None else None for v in values]


@register("accuracy")
def accuracy_reward(completions: Sequence[Any], label: Any = None, label_set: Any = None,
                    **kwargs) -> list[float | None]:
    """1.0 if the last ``<answer>`` is the gold ``label`` under the clip's ``label_set``, else 0.0.

    ``label`` holds one gold label per completion (a single string is broadcast); a completion whose
    gold label is None or empty gets None (no accuracy applies). ``label_set`` holds the label set of
    each completion's clip (or one list for all; None: open vocabulary).
    """
    golds = _per_completion(label, len(completions), "label")
    sets = _label_sets(label_set, len(completions))
    rewards: list[float | None] = []
    for completion, gold, labels in zip(completions, golds, sets):
        ok = is_correct(completion, gold, labels)
        rewards.append(None if ok is None else float(ok))
    return rewards


@register("format")
def format_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """1.0 for ``<think>…</think>`` + ``<answer>…</answer>`` and nothing else, else 0.0."""
    return [1.0 if is_well_formed(c) else 0.0 for c in completions]


def get_reward(name: str | RewardFn) -> RewardFn:
    """A reward function by registry name (``"accuracy"``, ``"accuracy_reward"``) or ``"module:function"``.

    A callable is returned unchanged, so TRL-style reward functions can be passed directly.
    """
    if callable(name):
        return name
    key = str(name).strip()
    if key in REWARDS:
        return REWARDS[key]
    if key.endswith("_reward") and key[: -len("_reward")] in REWARDS:
        return REWARDS[key[: -len("_reward")]]
    if ":" in key:
        module, _, attr = key.partition(":")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise KeyError(f"reward {key!r}: cannot import {attr!r} from module {module!r} ({e})") from e
        if not callable(fn):
            raise TypeError(f"reward {key!r} is not callable")
        return fn
    raise KeyError(f"unknown reward {key!r}; registered: {sorted(REWARDS)} (or give 'package.module:function')")


def resolve_rewards(spec: Mapping[str, float] | Sequence[str]) -> tuple[list[RewardFn], list[float]]:
    """``{name: weight}`` (or a list of names, weight 1) -> (reward functions, weights), in order."""
    if isinstance(spec, Mapping):
        items = list(spec.items())
    else:
        items = [(name, 1.0) for name in spec]
    if not items:
        raise ValueError("no reward functions given; e.g. {'accuracy': 1.0, 'format': 1.0}")
    return [get_reward(n) for n, _ in items], [float(w) for _, w in items]


def combined_reward(spec: Mapping[str, float]) -> RewardFn:
    """One reward function returning the weighted sum of ``spec``'s rewards (None terms are skipped;
    None when every term is None), as TRL combines them before computing advantages."""
    funcs, weights = resolve_rewards(spec)

    def combined(completions: Sequence[Any], **kwargs) -> list[float | None]:
        columns = [fn(completions, **kwargs) for fn in funcs]
        out: list[float | None] = []
        for row in zip(*columns):
            terms = [w * r for w, r in zip(weights, row) if r is not None]
            out.append(sum(terms) if terms else None)
        return out

    combined.__name__ = "combined_reward"
    return combined
