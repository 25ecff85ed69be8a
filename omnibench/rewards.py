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

Two rewards go past R1-Omni and need no judge: they check the reasoning against facts the trainer
itself knows (HumanOmniV2 asks an LLM judge; ERV a trained classifier).

* :func:`grounding_reward` -- 1.0 when the reasoning cites cues only of the modalities the row was
  given (column ``modalities``, e.g. ``"video"`` after modality dropout removed the audio; the trainer
  passes it), 0.0 when it cites a modality that was absent ("The voice has a high pitch" on a
  video-only input). Cue words per modality come from the cue lexicons the faithfulness of the
  attribution reads too (:mod:`omnibench.data.lexicons`; default: its :data:`GROUNDING_FAMILIES`,
  SynthEmo's cue vocabulary plus a small documented list for real data); a recipe overrides it with
  ``reward_options: {grounding: {lexicon: {video: [...], audio: [...]}}}``.
* :func:`consistency_reward` -- 1.0 when the emotion the reasoning concludes with (the last label word
  or card alias of the clip's label set it names) is the emotion answered, 0.0 when it names another,
  names none, or no answer resolves.

Rewards are registered by name in :data:`REWARDS` (``@register("name")``); :func:`get_reward`
also resolves ``"package.module:function"`` so any TRL-style reward function can be named in a
recipe; :func:`resolve_rewards` turns a ``{name: weight}`` mapping into the function list and
weights GRPO uses (TRL sums the weighted rewards itself).
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from omnibench.answers import (
    completion_text,
    fold,
    is_correct,
    is_well_formed,
    parse_answer,
    parse_reasoning,
    resolve,
    words_pattern,
)
from omnibench.data.lexicons import GROUNDING_FAMILIES, cue_lexicon
from omnibench.labels import alias_table

__all__ = [
    "REWARDS",
    "accuracy_reward",
    "completion_text",
    "consistency_reward",
    "format_reward",
    "get_reward",
    "grounding_reward",
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


def _row_modalities(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.replace("+", ",").split(",")
    return frozenset(m.strip() for m in value if m and m.strip())


@register("grounding")
def grounding_reward(completions: Sequence[Any], modalities: Any = None, lexicon: Mapping | None = None,
                     **kwargs) -> list[float | None]:
    """1.0 if the reasoning cites no cue of a modality the row was not given, else 0.0.

    ``modalities``: per completion, the modalities its input had (``"video,audio"``, ``"video"`` or a list;
    one string is broadcast); None (column absent) gives None: nothing to check against. ``lexicon``: cue words
    per modality (default ``cue_lexicon(*GROUNDING_FAMILIES)``, :mod:`omnibench.data.lexicons`)."""
    rows = [_row_modalities(m) for m in _per_completion(modalities, len(completions), "modalities")]
    lex = {k: tuple(v) for k, v in (lexicon or cue_lexicon(*GROUNDING_FAMILIES)).items()}
    pats = {mod: words_pattern(words) for mod, words in lex.items()}
    out: list[float | None] = []
    for completion, present in zip(completions, rows):
        if present is None:
            out.append(None)
            continue
        text = parse_reasoning(completion)
        absent = [mod for mod, p in pats.items() if mod not in present and p is not None]
        out.append(0.0 if any(pats[mod].search(text) for mod in absent) else 1.0)
    return out


@functools.cache
def _emotion_pattern(labels: tuple[str, ...] | None) -> tuple[re.Pattern, dict[str, str]]:
    """A pattern over every spelling (labels + card aliases) of ``labels`` (None: all cards' labels) and
    spelling -> canonical label."""
    table = {k: v for k, v in alias_table().items() if labels is None or v in labels}
    for lab in labels or ():
        table.setdefault(fold(lab), lab)
    return words_pattern(tuple(table)), table


@register("consistency")
def consistency_reward(completions: Sequence[Any], label_set: Any = None, **kwargs) -> list[float]:
    """1.0 if the last emotion the reasoning names (a label of the row's ``label_set`` or a card alias of
    one) is the answer's label, else 0.0 (another emotion, none named, or no answer)."""
    sets = _label_sets(label_set, len(completions))
    out: list[float] = []
    for completion, labels in zip(completions, sets):
        answer = resolve(completion, labels).label
        pattern, table = _emotion_pattern(labels)
        named = pattern.findall(parse_reasoning(completion)) if pattern is not None else []
        concluded = table.get(fold(named[-1])) if named else None
        out.append(1.0 if answer is not None and concluded == answer else 0.0)
    return out


def with_options(fn: RewardFn, options: Mapping[str, Any] | None) -> RewardFn:
    """``fn`` with keyword ``options`` bound (e.g. the grounding lexicon from a recipe), keeping its name
    (TRL logs each reward under its function's ``__name__``)."""
    if not options:
        return fn
    bound = functools.partial(fn, **dict(options))
    functools.update_wrapper(bound, fn)
    return bound


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


def resolve_rewards(spec: Mapping[str, float] | Sequence[str],
                    options: Mapping[str, Mapping] | None = None) -> tuple[list[RewardFn], list[float]]:
    """``{name: weight}`` (or a list of names, weight 1) -> (reward functions, weights), in order.

    ``options``: reward name -> keyword arguments bound to that reward (:func:`with_options`)."""
    if isinstance(spec, Mapping):
        items = list(spec.items())
    else:
        items = [(name, 1.0) for name in spec]
    if not items:
        raise ValueError("no reward functions given; e.g. {'accuracy': 1.0, 'format': 1.0}")
    options = dict(options or {})
    unknown = sorted(set(options) - {n for n, _ in items})
    if unknown:
        raise ValueError(f"reward options for {unknown}, which are not among the rewards {[n for n, _ in items]}")
    return [with_options(get_reward(n), options.get(n)) for n, _ in items], [float(w) for _, w in items]
