"""R1-Omni training JSON: import it as clips (EMER-style explained data, RLVR label data) and export clips to it.

Format, verified against R1-Omni's README::

    [{"video": "rel/path.mp4",
      "conversations": [{"from": "human", "value": "<video>\\n<audio>\\n<instruction>"},
                        {"from": "gpt", "value": "<think>..</think>\\n<answer>label</answer>"}]}]

(cold start), or a bare label as the gpt value (RLVR data). The answer and the reasoning are read
with :mod:`omnibench.answers`, the same parser the rewards and the evaluation use, so an imported
label is the label a reward would see. A gpt value with a ``<think>`` block is kept whole in
``meta["reasoning"]`` (the cold-start SFT target), the human value in ``meta["prompt"]``.

EMER / OV-MERD answers are often outside every data card (open vocabulary). Such records are never
silently dropped: each label is counted in the :class:`IndexReport`, and the records are skipped,
or kept with ``open_vocab=True`` as clips with ``meta["open_vocab"] = True`` and the answer's
case/space-folded text as label (the manifest accepts exactly those clips' out-of-card labels).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from omnibench.answers import fold as fold_text
from omnibench.answers import parse_answer, parse_reasoning
from omnibench.data.indexers.common import (
    DatasetLayoutError,
    IndexContext,
    check_root,
    no_fold,
    nothing_found,
)
from omnibench.data.manifest import Clip
from omnibench.io import write_json
from omnibench.labels import normalize_label

#: R1-Omni's instruction (its README's training JSON), used when exporting.
R1OMNI_PROMPT = (
    "As an emotional recognition expert; throughout the video, which emotion conveyed by the "
    "characters is the most obvious to you? Output the thinking process in <think> </think> and "
    "final emotion in <answer> </answer> tags."
)
#: R1-Omni's RLVR (label-only) instruction.
R1OMNI_RL_PROMPT = (
    "As an emotional recognition expert; throughout the video, which emotion conveyed by the "
    "characters is the most obvious to you?"
)
R1OMNI_MEDIA_TAGS = "<video>\n<audio>\n"

#: Default split names of imported records: with reasoning (what explained SFT reads) / without.
COLD_START_SPLIT = "cold_start"
LABEL_SPLIT = "train"


def _has_reasoning(gpt: str) -> bool:
    return "<think>" in gpt and bool(parse_reasoning(gpt))


def index_r1omni(
    root,
    fold: int | None = None,
    *,
    split: str | None = None,
    open_vocab: bool = False,
    video_root: str | None = None,
    dataset: str = "r1omni",
    ctx: IndexContext,
) -> list[Clip]:
    """Import R1-Omni's training JSON (``root`` is the .json file, or a folder holding exactly one).

    Args:
        split: split name of every record; ``None`` (default): ``"cold_start"`` for a record whose
            gpt turn has reasoning (``<think>…</think>``), ``"train"`` for a label-only record, so
            explained SFT reads the explained records and GRPO the others.
        open_vocab: keep records whose label no data card knows, as open-vocabulary clips
            (``meta["open_vocab"] = True``, label = the answer folded to lower case); default: skip
            them. Either way each such label is counted in ``IndexReport.unknown_labels``.
        video_root: folder the JSON's media paths are relative to (default: the JSON file's folder).
        dataset: the clips' dataset name (e.g. ``"emer"``).

    The label is the last ``<answer>…</answer>`` of the gpt turn (:func:`omnibench.answers.parse_answer`),
    or the whole gpt value when it has no ``<answer>`` tag (R1-Omni's RLVR data); a record whose
    ``<answer>`` is empty or unclosed is skipped and listed in ``IndexReport.unparseable``.
    """
    no_fold("r1omni", fold)
    path = Path(root)
    check_root("r1omni", path)
    if path.is_dir():
        found = sorted(path.glob("*.json"))
        if len(found) != 1:
            raise nothing_found(
                "r1omni", path, f"{len(found)} .json files (give the JSON file itself as root)"
            )
        path = found[0]
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DatasetLayoutError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(items, list) or not items:
        raise nothing_found("r1omni", path, "no items (expected a non-empty JSON list)")
    base = Path(video_root) if video_root else path.parent
    report = ctx.report
    report.open_vocab = bool(open_vocab)
    clips, seen = [], set()
    for i, item in enumerate(items):
        where = f"{path}: item {i}"
        if (
            not isinstance(item, dict)
            or "conversations" not in item
            or not (item.get("video") or item.get("audio"))
        ):
            raise DatasetLayoutError(f"{where}: expected {{'video': ..., 'conversations': [...]}}")
        human = next((c.get("value", "") for c in item["conversations"] if c.get("from") == "human"), None)
        gpt = next((c.get("value", "") for c in item["conversations"] if c.get("from") == "gpt"), None)
        if gpt is None:
            raise DatasetLayoutError(f"{where}: no turn with from='gpt'")
        raw = parse_answer(gpt) if "<answer>" in gpt else gpt.strip()
        if not raw:
            report.unparseable.append(f"{where}: no readable <answer> in {gpt[-60:]!r}")
            continue
        label = normalize_label(raw)
        meta: dict = {"source": str(item.get("video") or item.get("audio"))}
        if label is None:
            key = fold_text(raw)
            report.unknown_labels[key] = report.unknown_labels.get(key, 0) + 1
            if not open_vocab:
                continue
            label, meta["open_vocab"] = key, True
        media = {}
        for key in ("video", "audio"):
            if item.get(key):
                p = Path(item[key])
                media[key] = p if p.is_absolute() else base / p
        if any(not p.is_file() for p in media.values()):
            ctx.missing(", ".join(str(p) for p in media.values() if not p.is_file()))
            continue
        stem = Path(str(item.get("video") or item.get("audio"))).stem
        cid = f"{dataset}-{stem}"
        if cid in seen:
            cid = f"{dataset}-{i:06d}-{stem}"
        seen.add(cid)
        if human is not None:
            meta["prompt"] = human
        explained = _has_reasoning(gpt)
        if explained:
            meta["reasoning"] = gpt
        clips.append(
            Clip(
                id=cid,
                video=str(media["video"]) if "video" in media else None,
                audio=str(media["audio"]) if "audio" in media else None,
                label=label,
                split=split if split is not None else (COLD_START_SPLIT if explained else LABEL_SPLIT),
                dataset=dataset,
                meta=meta,
            )
        )
    if split is None:
        n_cold = sum(c.split == COLD_START_SPLIT for c in clips)
        ctx.note(
            f"split not given: {n_cold} records with reasoning -> {COLD_START_SPLIT!r}, "
            f"{len(clips) - n_cold} label-only -> {LABEL_SPLIT!r} (pass --split NAME for one split)"
        )
    return clips


def export_r1omni(
    clips: Iterable[Clip],
    path,
    *,
    style: str = "auto",
    prompt: str | None = None,
    video_root: str | None = None,
) -> Path:
    """Write clips as R1-Omni training JSON (atomically).

    Args:
        style: ``"cold_start"`` — gpt turn = ``meta["reasoning"]`` (``<think>…</think>\\n<answer>…</answer>``),
            an error if a clip has none; ``"rl"`` — gpt turn = the bare label, as in R1-Omni's RLVR
            data; ``"auto"`` — cold_start when every clip has reasoning, else rl.
        prompt: the instruction after ``<video>\\n<audio>\\n`` (default: R1-Omni's, per style).
        video_root: media paths are written relative to this folder (default: the JSON's folder).
    """
    clips = list(clips)
    if style not in ("auto", "cold_start", "rl"):
        raise ValueError(f"style must be 'auto', 'cold_start' or 'rl', got {style!r}")
    if style == "auto":
        style = "cold_start" if clips and all(c.meta.get("reasoning") for c in clips) else "rl"
    if style == "cold_start":
        lacking = [c.id for c in clips if not c.meta.get("reasoning")]
        if lacking:
            raise ValueError(
                f"style='cold_start' needs meta['reasoning'] on every clip; missing on {len(lacking)}: "
                f"{lacking[:5]} (use style='rl' for label-only data)"
            )
    if prompt is None:
        prompt = R1OMNI_PROMPT if style == "cold_start" else R1OMNI_RL_PROMPT
    path = Path(path)
    base = Path(video_root).resolve() if video_root else path.parent.resolve()
    items = []
    for c in clips:
        if c.label is None:
            raise ValueError(f"clip {c.id} has no label; R1-Omni training data needs one")
        item: dict = {}
        for key in ("video", "audio"):
            value = getattr(c, key)
            if value:
                p = Path(value)
                item[key] = os.path.relpath(p.resolve(), base) if p.is_absolute() else str(p)
        answer = c.meta["reasoning"] if style == "cold_start" else c.label
        item["conversations"] = [
            {"from": "human", "value": R1OMNI_MEDIA_TAGS + prompt},
            {"from": "gpt", "value": answer},
        ]
        items.append(item)
    return write_json(path, items, indent=2)
