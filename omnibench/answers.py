"""Reading a completion: its answer, its reasoning, its format, and the label it resolves to.

One place, because the rewards, the evaluation, the importers and the attribution must agree on
every answer: if GRPO rewards ``<answer>calm</answer>`` that evaluation then counts as wrong, the
policy is trained towards answers the table punishes. :func:`resolve` is that single verdict.

* :func:`completion_text` -- the text of a completion: a string, or TRL's conversational form
  ``[{"role": "assistant", "content": ...}]``.
* :func:`parse_answer` -- the stripped text of the **last complete** ``<answer>…</answer>``
  (``<answer>a</answer><answer>b</answer>`` -> ``"b"``; an unclosed trailing ``<answer>c`` is
  ignored); None when there is none or it is empty.
* :func:`parse_reasoning` -- the text of the ``<think>`` block (up to ``</think>`` or, if unclosed, the
  end), or the text before any ``<answer>`` when there is no think block.
* :func:`is_well_formed` -- exactly one non-empty ``<think>…</think>`` then one non-empty
  ``<answer>…</answer>``, nothing else but whitespace, no nested tags (the format reward).
* :func:`resolve` -- ``(label, status)`` of a completion against a label set; :func:`resolve_label`
  the same for an answer already extracted (a bare label, e.g. from another model's CSV);
  :func:`resolve_gold` for a gold label.

Statuses (:data:`STATUSES`): ``ok`` (a label of the set, as written), ``alias`` (mapped to one through
the data cards' aliases, or the same label in another case / spacing), ``out_of_set`` (an answer that
is no label of the set: wrong, counted), ``unparseable`` (no usable ``<answer>``: wrong, counted).
A gold label outside the set keeps its own text with status ``out_of_set`` (such a clip can only be
answered wrongly, and is counted, never dropped); a missing gold label has status ``missing``.

``labels=None`` means an open vocabulary (EMER / OV-MERD style): every answer resolves, to its
canonical label when the cards know the spelling and to its case- and space-folded text otherwise.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from omnibench.labels import fold, normalize_label

__all__ = [
    "STATUSES",
    "Resolved",
    "completion_text",
    "fold",
    "is_correct",
    "is_well_formed",
    "parse_answer",
    "parse_reasoning",
    "resolve",
    "resolve_gold",
    "resolve_label",
    "words_pattern",
]

STATUSES: tuple[str, ...] = ("ok", "alias", "out_of_set", "unparseable")
TAGS: tuple[str, ...] = ("<think>", "</think>", "<answer>", "</answer>")

_ANSWER_RE = re.compile(r"<answer>((?:(?!<answer>).)*?)</answer>", re.DOTALL)
_FORMAT_RE = re.compile(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", re.DOTALL)
_THINK_RE = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)


class Resolved(NamedTuple):
    """A resolved answer: the canonical label (None when there is none) and its status."""

    label: str | None
    status: str


def completion_text(completion: Any) -> str:
    """The text of one completion: a string, or TRL's conversational list of messages.

    For a message list, the last assistant message is used (its ``content`` may itself be a list of
    ``{"type": "text", "text": ...}`` parts, which are joined). ``None`` reads as the empty string.
    """
    if completion is None:
        return ""
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


def parse_answer(completion: Any) -> str | None:
    """Stripped text inside the last complete ``<answer>…</answer>``; None when there is none or it is empty."""
    matches = _ANSWER_RE.findall(completion_text(completion))
    return (matches[-1].strip() or None) if matches else None


def parse_reasoning(completion: Any) -> str:
    """The reasoning of a completion: the ``<think>`` block's text, else the text before ``<answer>``."""
    text = completion_text(completion)
    m = _THINK_RE.search(text)
    if m:
        return m.group(1).strip()
    return text.split("<answer>", 1)[0].strip()


def is_well_formed(completion: Any) -> bool:
    """True when the text is exactly one non-empty ``<think>…</think>`` then one non-empty ``<answer>…</answer>``."""
    m = _FORMAT_RE.fullmatch(completion_text(completion))
    if m is None:
        return False
    return all(block.strip() and not any(tag in block for tag in TAGS) for block in m.groups())


@functools.cache
def words_pattern(words: tuple[str, ...]) -> re.Pattern | None:
    """One case-insensitive pattern matching any of ``words`` as whole words (a multi-word phrase across
    any whitespace), longest first so "high pitch" is not also counted as "pitch"; None for no words.
    The cue counting of attribution and the grounding / consistency rewards read reasoning with it."""
    words = tuple(sorted({w.strip().lower() for w in words if w and w.strip()}, key=len, reverse=True))
    if not words:
        return None
    alts = "|".join(r"\s+".join(map(re.escape, w.split())) for w in words)
    return re.compile(rf"(?<![\w-])(?:{alts})(?![\w-])", flags=re.IGNORECASE)


def resolve_label(answer: str | None, labels: Sequence[str] | None) -> Resolved:
    """Resolve an already-extracted answer (a bare label) against ``labels`` (None: open vocabulary)."""
    if answer is None or not fold(answer):
        return Resolved(None, "unparseable")
    answer = str(answer).strip()
    if labels is None:
        canon = normalize_label(answer) or fold(answer)
        return Resolved(canon, "ok" if canon == answer else "alias")
    if answer in labels:
        return Resolved(answer, "ok")
    canon = normalize_label(answer)
    if canon is not None and canon in labels:
        return Resolved(canon, "alias")
    folded = fold(answer)
    for lab in labels:  # a label of the set in another case / spacing, unknown to the cards
        if fold(lab) == folded:
            return Resolved(lab, "alias")
    return Resolved(None, "out_of_set")


def resolve(completion: Any, labels: Sequence[str] | None) -> Resolved:
    """The label a completion answers, and its status (see the module docstring)."""
    return resolve_label(parse_answer(completion), labels)


def resolve_gold(gold: str | None, labels: Sequence[str] | None) -> Resolved:
    """A gold label against ``labels``: ``ok`` | ``alias`` | ``out_of_set`` (its own text kept) | ``missing``."""
    if gold is None or not fold(gold):
        return Resolved(None, "missing")
    r = resolve_label(gold, labels)
    if r.status == "out_of_set":
        return Resolved(str(gold).strip(), "out_of_set")
    return r


def is_correct(completion: Any, gold: str | None, labels: Sequence[str] | None) -> bool | None:
    """Whether ``completion`` answers ``gold`` under ``labels``; None for an unlabelled clip.

    The one definition of a correct answer: the accuracy reward and the evaluation both use it.
    A gold label outside the set is never answered correctly."""
    g = resolve_gold(gold, labels)
    if g.status == "missing":
        return None
    if g.status == "out_of_set":
        return False
    p = resolve(completion, labels)
    return p.label is not None and p.label == g.label
