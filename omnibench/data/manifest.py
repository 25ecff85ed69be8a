"""Clip records and JSONL manifests.

A manifest is one JSON object per line::

    {"id": "dfew-00001", "video": "clips/00001.mp4", "audio": null, "label": "happy",
     "split": "test", "dataset": "dfew", "meta": {"fold": 1}}

Relative media paths are resolved against the manifest's folder, so a dataset folder can move.
Reading validates every line and raises :class:`ManifestError` naming the file and line.

Labels are canonical labels of the data cards (spellings go through their aliases), with one
exception kept per clip rather than per manifest, so that it survives merging manifests: a clip whose
``meta`` has ``"open_vocab": true`` (EMER / OV-MERD style explained data, see
:mod:`omnibench.data.indexers.r1omni`) may carry a label no card knows; it is kept as its case- and
space-folded text (:func:`omnibench.answers.fold`). Every other clip of the same manifest is still
checked against the cards, and an explicit ``labels=`` set applies to all clips.

Split names of a merged manifest are qualified by dataset (``dfew/test``, ``mafw/test``, see
:func:`omnibench.data.indexers.merge_sources`); ``read_manifest(path, split=[...])`` takes several.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omnibench.answers import fold
from omnibench.io import write_jsonl
from omnibench.labels import normalize_label


class ManifestError(ValueError):
    """A manifest line that cannot be used (unknown label, missing media, duplicate id, bad JSON)."""


@dataclass
class Clip:
    """One audio-visual clip. ``audio`` is a separate audio file; None means the video's own track."""

    id: str
    video: str | None
    label: str | None
    split: str
    dataset: str = "synthemo"
    audio: str | None = None
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


_FIELDS = {"id", "video", "audio", "label", "split", "dataset", "meta"}


def _relative_record(clip: Clip, root: Path) -> dict:
    d = clip.to_dict()
    for key in ("video", "audio"):
        if d[key]:
            p = Path(d[key])
            if p.is_absolute():
                try:
                    d[key] = os.path.relpath(p.resolve(), root)
                except ValueError:  # other drive (Windows)
                    d[key] = str(p)
    return d


def write_manifest(clips: Iterable[Clip], path: str | os.PathLike) -> Path:
    """Write clips as JSONL (atomically, through :mod:`omnibench.io`), media paths relative to the manifest folder."""
    path = Path(path)
    root = path.parent.resolve()
    return write_jsonl(path, [_relative_record(c, root) for c in clips])


def read_manifest(
    path: str | os.PathLike,
    labels: Sequence[str] | None = None,
    split: str | Sequence[str] | None = None,
    check_media: bool = True,
) -> list[Clip]:
    """Read and validate a manifest.

    Args:
        path: the JSONL file.
        labels: allowed canonical labels; a label is first normalised through the data cards' aliases.
            ``None`` accepts any label the cards know, and on a clip with ``meta["open_vocab"]``
            any label at all. A null label (unlabelled clip) is always allowed.
        split: keep only clips of this split, or of these splits (a list: ``["dfew/train", "mafw/train"]``).
        check_media: raise if a referenced video/audio file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} not found (write one with `omnibench synth` or `omnibench index`)")
    root = path.parent.resolve()
    allowed = tuple(labels) if labels is not None else None
    splits = {split} if isinstance(split, str) else (set(split) if split is not None else None)
    clips: list[Clip] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise ManifestError(f"{where}: not valid JSON ({e.msg})") from None
            if not isinstance(d, dict):
                raise ManifestError(f"{where}: expected a JSON object, got {type(d).__name__}")
            missing = {"id", "split"} - d.keys()
            if missing:
                raise ManifestError(f"{where}: missing field(s) {sorted(missing)}")
            extra = d.keys() - _FIELDS
            if extra:
                raise ManifestError(f"{where}: unknown field(s) {sorted(extra)}; allowed {sorted(_FIELDS)}")
            cid = str(d["id"])
            if cid in seen:
                raise ManifestError(f"{where}: duplicate id {cid!r} (first on line {seen[cid]})")
            seen[cid] = lineno
            raw = d.get("label")
            meta = d.get("meta") or {}
            if not isinstance(meta, dict):
                raise ManifestError(f"{where}: meta must be a JSON object, got {type(meta).__name__}")
            label = None
            if raw is not None:
                label = normalize_label(raw)
                if label is None and meta.get("open_vocab") is True and fold(raw):
                    label = fold(raw)  # an open-vocabulary label, kept as written (folded)
                if label is None or (allowed is not None and label not in allowed):
                    allowed_txt = (
                        sorted(allowed)
                        if allowed is not None
                        else "the labels of data_cards/*.md (or set meta open_vocab: true on an "
                        "open-vocabulary clip)"
                    )
                    raise ManifestError(f"{where}: unknown label {raw!r}; allowed: {allowed_txt}")
            media = {}
            for key in ("video", "audio"):
                value = d.get(key)
                if value:
                    p = Path(value)
                    p = p if p.is_absolute() else root / p
                    if check_media and not p.is_file():
                        raise ManifestError(f"{where}: {key} file {p} does not exist")
                    value = str(p)
                media[key] = value
            if not media["video"] and not media["audio"]:
                raise ManifestError(f"{where}: clip {cid!r} has neither a video nor an audio file")
            if splits is not None and d["split"] not in splits:
                continue
            clips.append(
                Clip(
                    id=cid,
                    video=media["video"],
                    audio=media["audio"],
                    label=label,
                    split=str(d["split"]),
                    dataset=str(d.get("dataset") or "synthemo"),
                    meta=dict(meta),
                )
            )
    return clips
