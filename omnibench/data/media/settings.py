"""The decode settings a checkpoint was trained with: recorded in its config, read back by every
consumer (:func:`decode_config_for`), overridden from the command line (:func:`add_decode_args`)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omnibench.data.media.decode import DecodeConfig, log

# ----------------------------------------------------------------------------------------------- settings

#: name under which a checkpoint's config records its decode settings (next to ``omnibench_labels``)
CONFIG_KEY = "omnibench_decode"
_said_no_settings: set[str] = set()


def saved_decode_settings(model_or_dir: Any) -> dict | None:
    """The decode settings a checkpoint was trained with (``config.omnibench_decode``), or None when
    it records none (a model saved before they were recorded, or a real release).

    ``model_or_dir``: a model (its ``config``; a PEFT wrapper forwards it), a model config, a
    checkpoint folder or its ``config.json``. A hub id is not resolved here: load the model first."""
    if model_or_dir is None:
        return None
    if isinstance(model_or_dir, (str, os.PathLike)):
        path = Path(model_or_dir).expanduser()
        cfg_path = path / "config.json" if path.is_dir() else path
        if not cfg_path.is_file():
            raise FileNotFoundError(
                f"decode_config_for: {path} is not a checkpoint folder with config.json (for a hub id, "
                "load the model and pass it)"
            )
        try:
            raw = json.loads(cfg_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"decode_config_for: {cfg_path} is not valid JSON: {e}") from e
        settings = raw.get(CONFIG_KEY)
    else:
        config = getattr(model_or_dir, "config", model_or_dir)
        settings = getattr(config, CONFIG_KEY, None)
        if settings is None and isinstance(config, Mapping):
            settings = config.get(CONFIG_KEY)
    return dict(settings) if settings else None


def _source_name(model_or_dir: Any) -> str:
    if isinstance(model_or_dir, (str, os.PathLike)):
        return str(model_or_dir)
    config = getattr(model_or_dir, "config", model_or_dir)
    return str(getattr(config, "_name_or_path", "") or f"in-memory {type(model_or_dir).__name__}")


def decode_config_for(model_or_dir: Any, overrides: Mapping | None = None, *, warn: bool = True) -> DecodeConfig:
    """The decode settings to feed ``model_or_dir``: those saved in its checkpoint, overridden by
    ``overrides`` (DecodeConfig fields; a key present overrides, ``{"size": None}`` means native size).

    An override that differs from the checkpoint's setting is a warning on the ``omnibench`` logger
    (the model is then given inputs it was not trained on); a checkpoint that records no settings
    uses the DecodeConfig defaults and says so once per checkpoint. ``warn=False`` silences both."""
    overrides = dict(overrides or {})
    DecodeConfig.coerce(overrides)  # unknown keys / bad values are an error here, not later
    saved = saved_decode_settings(model_or_dir)
    source = _source_name(model_or_dir)
    if saved is None:
        if warn and source not in _said_no_settings:
            _said_no_settings.add(source)
            log.warning("%s records no decode settings (config.%s); using the DecodeConfig defaults%s",
                        source, CONFIG_KEY, f" with overrides {overrides}" if overrides else "")
        return DecodeConfig.coerce(overrides)
    trained = DecodeConfig.coerce(saved)
    effective = DecodeConfig.coerce({**dataclasses.asdict(trained), **overrides})
    if warn:
        was, now = trained.key(), effective.key()
        changed = {k: (was[k], now[k]) for k in was if was[k] != now[k]}
        if changed:
            log.warning("decode settings differ from those %s was trained with: %s; the model gets inputs it "
                        "was not trained on", source,
                        ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items()))
    return effective


def add_decode_args(parser) -> None:
    """``--num-frames``, ``--frame-size``, ``--max-audio-s``, ``--missing-audio`` (default: the
    checkpoint's settings; see :func:`decode_overrides`)."""
    group = parser.add_argument_group("decoding (default: the settings the model was trained with)")
    group.add_argument("--num-frames", type=int, default=None, help="frames sampled uniformly per video")
    group.add_argument("--frame-size", type=_parse_size, default=None,
                       help="frame size: N (square), HxW, or 'native'")
    group.add_argument("--max-audio-s", type=float, default=None, help="truncate audio to this many seconds")
    group.add_argument("--missing-audio", choices=("error", "skip", "keep"), default=None,
                       help="a clip without an audio track: error | skip | keep (default: error)")


def _parse_size(text: str):
    text = str(text).strip().lower()
    if text in ("native", "none"):
        return "native"
    try:
        if "x" in text:
            h, w = text.split("x", 1)
            return (int(h), int(w))
        return int(text)
    except ValueError:
        raise ValueError(f"--frame-size must be N, HxW or 'native', got {text!r}") from None


def decode_overrides(args) -> dict:
    """The decode settings given on the command line (:func:`add_decode_args`), for
    :func:`decode_config_for`; flags left out are absent, so the checkpoint's settings stay."""
    out: dict[str, Any] = {}
    for flag, name in (("num_frames", "num_frames"), ("frame_size", "size"), ("max_audio_s", "max_audio_s"),
                       ("missing_audio", "missing_audio")):
        value = getattr(args, flag, None)
        if value is not None:  # a flag left out is absent; --frame-size native is size None
            out[name] = None if value == "native" else value
    return out
