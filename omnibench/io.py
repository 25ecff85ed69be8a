"""Every file omnibench writes goes through here: atomic writes, JSON / JSONL, JSON-safe conversion.

Why one module: a run folder is read by later notebooks, the report, the dashboard and studies, and a
crash half-way through a write must never leave a truncated ``metrics.json`` or predictions file
behind. Each writer below writes a temporary file in the target's folder and renames it over the
target (``os.replace`` is atomic on POSIX and Windows), so a reader sees the old file or the new one,
never a mix. Appends (:func:`append_jsonl`) write whole lines and flush them, so a crash loses at most
the line being written.

:func:`json_safe` is the one conversion to JSON types: numpy scalars and arrays, tuples, sets and
``Path`` objects become lists, numbers and strings; NaN and infinities become ``null`` (JSON has no
NaN, and a reader in another language must not choke on one).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "append_jsonl",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "deep_merge",
    "json_safe",
    "read_json",
    "read_jsonl",
    "write_json",
    "write_jsonl",
]


def json_safe(x: Any) -> Any:
    """``x`` with every value converted to a JSON type (recursively); NaN / inf -> None."""
    if isinstance(x, Mapping):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in (sorted(x, key=str) if isinstance(x, (set, frozenset)) else x)]
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    if hasattr(x, "tolist") and callable(x.tolist):  # numpy scalar / array, torch tensor
        return json_safe(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary name next to ``path`` (same suffix) for a writer that must be given a file name
    (PyAV, matplotlib): renamed over ``path`` when the block succeeds, removed when it fails, so
    ``path`` is never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """``obj`` as JSON (through :func:`json_safe`), written atomically."""
    text = json.dumps(json_safe(obj), indent=indent, ensure_ascii=False, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def _jsonl(records: Iterable[Mapping]) -> str:
    return "".join(json.dumps(json_safe(r), ensure_ascii=False, allow_nan=False) + "\n" for r in records)


def write_jsonl(path: str | os.PathLike, records: Iterable[Mapping]) -> Path:
    """One JSON object per line, written atomically (the whole file at once)."""
    return atomic_write_text(path, _jsonl(records))


def append_jsonl(path: str | os.PathLike, records: Iterable[Mapping]) -> Path:
    """Append whole JSON lines to ``path`` and flush them (logs written as training goes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(_jsonl(records))
        f.flush()
    return path


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    """The JSON in ``path``; ``default`` when the file does not exist. Invalid JSON is an error naming the file."""
    path = Path(path)
    if not path.is_file():
        return default
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text) if text.strip() else default
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg}, line {e.lineno}); fix or delete it") from None


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The records of a JSONL file; a bad line is an error naming the file and the line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not valid JSON ({e.msg})") from None
    return out


def deep_merge(base: Mapping, new: Mapping, depth: int) -> dict:
    """``new`` merged into ``base`` through ``depth`` levels of keys; below that a value replaces the old
    one whole (``depth=1``: top-level keys replaced; ``depth=3``: ``eval -> checkpoint -> split``)."""
    out = dict(base)
    for k, v in new.items():
        if depth > 1 and isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v, depth - 1)
        else:
            out[k] = v
    return out
