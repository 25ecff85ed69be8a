"""Verifiable rewards for GRPO, with TRL's reward-function signature.

Every reward is a plain function ``fn(completions, **kwargs) -> list[float | None]``, exactly what
``trl.GRPOTrainer`` calls: ``completions`` is one entry per generated completion, either a string or
TRL's conversational form ``[{"role": "assistant", "content": "..."}]``; dataset columns (here
``label``) arrive as keyword arguments holding one value per completion; TRL also passes
``prompts``, ``completion_ids``, ``trainer_state``, ``log_extra`` and ``log_metric``, which these
functions accept and ignore. ``None`` means "no reward applies" (TRL turns it into NaN and leaves
it out of the means).

Two rewards reproduce R1-Omni:

* :func:`accuracy_reward` -- 1.0 when the text in the **last** ``<answer>…</answer>`` is the gold
  label after alias normalisation (``omnibench.labels.normalize_label``: case, surrounding and
  repeated whitespace and data-card aliases such as "Happiness" do not matter); 0.0 otherwise,
  including no answer tags or an empty answer; ``None`` when the clip has no gold label.
* :func:`format_reward` -- 1.0 when the completion is exactly ``<think>…</think>`` followed by
  ``<answer>…</answer>``: whitespace between (and around) the two blocks is allowed, nothing else
  is, each tag appears once, neither block contains another tag (no nesting), and neither block
  is empty or whitespace only. R1-Omni's ``fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>")``
  accepts ``<think></think>``; here GRPO on the tiny model learned exactly that within 100 steps
  (dropping the reasoning the project exists to study), so an empty block earns no format reward.
  Tags are case-sensitive.

Rewards are registered by name in :data:`REWARDS` (``@register("name")``); :func:`get_reward`
also resolves ``"package.module:function"`` so any TRL-style reward function can be named in a
recipe; :func:`resolve_rewards` turns a ``{name: weight}`` mapping into the function list and
weights GRPO uses, and :func:`combined_reward` gives their weighted sum as one reward function.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from omnibench.labels import normalize_label

RewardFn = Callable[..., list]

#: name -> reward function (the names recipes use).
REWARDS: dict[str, RewardFn] = {}

_ANSWER_RE = re.compile(r"<answer>((?:(?!<answer>).)*?)</answer>", re.DOTALL)
_FORMAT_RE = re.compile(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", re.DOTALL)
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def register(name: str) -> Callable[[RewardFn], RewardFn]:
    """Decorator: add a reward function to :data:`REWARDS` under ``name``."""

    def deco(fn: RewardFn) -> RewardFn:
        if name in REWARDS and REWARDS[name] is not fn:
            raise ValueError(f"reward name {name!r} is already registered to {REWARDS[name].__name__}")
        REWARDS[name] = fn
        return fn

    return deco


def completion_text(completion: Any) -> str:
    """The text of one completion: a string, or TRL's conversational list of messages.

    For a message list, the last assistant message is used (its ``content`` may itself be a list of
    ``{"type": "text", "text": ...}`` parts, which are joined).
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    if isinstance(completion, Sequence) and completion and all(isinstance(m, Mapping) for m in completion):
        messages = [m for m in completion if m.get("role", "assistant") == "assistant"] or list(completion)
        content = messages[-1].get("content", "")
        if isinstance(content, str):
            return content
        if isinstance(content, Sequence):
            return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    raise TypeError(
        f"cannot read a completion of type {type(completion).__name__}: expected a string or a list of "
        '{"role": ..., "content": ...} messages'
    )


def parse_answer(text: Any) -> str | None:
    """Stripped text inside the last complete ``<answer>…</answer>``; None when there is none.

    "Last complete" means the last closing tag paired with the nearest opening tag before it, so
    ``<answer>a</answer><answer>b</answer>`` gives ``"b"``, ``<answer><answer>b</answer></answer>``
    gives ``"b"`` and an unclosed trailing ``<answer>c`` is ignored. Accepts completions in any form
    :func:`completion_text` reads.
    """
    if text is None:
        return None
    matches = _ANSWER_RE.findall(completion_text(text))
    return matches[-1].strip() if matches else None


def _canonical(text: str | None) -> str | None:
    """Canonical label when the data cards know the spelling, else the case/space-folded text."""
    if text is None:
        return None
    folded = re.sub(r"\s+", " ", str(text)).strip().lower()
    if not folded:
        return None
    return normalize_label(folded) or folded


def _per_completion(value: Any, n: int, name: str) -> list:
    if value is None or isinstance(value, str):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(f"reward got {len(values)} values of {name!r} for {n} completions; pass one per completion")
    return values


@register("accuracy")
def accuracy_reward(completions: Sequence[Any], label: Any = None, **kwargs) -> list[float | None]:
    """1.0 if the last ``<answer>`` equals the gold ``label`` after alias normalisation, else 0.0.

    ``label`` holds one gold label per completion (a single string is broadcast); a completion whose
    gold label is None or empty gets None (no accuracy applies).
    """
    golds = _per_completion(label, len(completions), "label")
    rewards: list[float | None] = []
    for completion, gold in zip(completions, golds):
        gold_c = _canonical(gold)
        if gold_c is None:
            rewards.append(None)
            continue
        pred_c = _canonical(parse_answer(completion))
        rewards.append(1.0 if pred_c is not None and pred_c == gold_c else 0.0)
    return rewards


def is_well_formed(text: Any) -> bool:
    """True when the text is exactly one non-empty ``<think>…</think>`` then one non-empty ``<answer>…</answer>``."""
    m = _FORMAT_RE.fullmatch(completion_text(text))
    if m is None:
        return False
    return all(block.strip() and not any(tag in block for tag in _TAGS) for block in m.groups())


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
