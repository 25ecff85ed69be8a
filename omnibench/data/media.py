"""Media decoding with decord, and an on-disk decode cache.

``decode_clip`` returns a :class:`Media`: ``frames`` — N frames sampled uniformly over the video
(uint8, THWC, optionally resized) — and ``audio`` — mono float32 at 16 kHz, read from the video's
own track (decord ``AudioReader``) or from the clip's separate audio file.

A clip without an audio track is never given silence in its place: ``DecodeConfig.missing_audio``
says what happens — ``"error"`` (default) raises :class:`MissingAudioError`, ``"skip"`` drops the clip
from :func:`decode_clips` and counts it in the :class:`DecodeReport`, ``"keep"`` returns
``Media.audio = None`` (the clip is then used without its audio block).

The cache keys an entry by the media file's identity (absolute path, size, mtime) and the decode
parameters, so a second epoch decodes nothing; an unreadable entry is detected, counted and rebuilt.

One decoding path: every consumer (SFT, GRPO, perception pre-training, evaluation, attribution, the
dashboard, the CLIs, the notebooks) decodes through a :class:`MediaStore`, with the settings the model
was trained on: :func:`decode_config_for` reads them from the checkpoint (``config.omnibench_decode``,
written by ``omnibench.model.save_model``), and an override that differs from them is a logged warning,
never a silent change of the model's inputs. ``add_decode_args`` / ``decode_overrides`` give the CLIs
their ``--num-frames``, ``--frame-size``, ``--max-audio-s`` and ``--missing-audio`` flags.

decord 0.6 fails on some valid files (H.264 frames 16, 24 or 48 pixels wide: "from_size == to_size");
those are decoded with PyAV instead, and the log says so. A decord error on the audio track is "no
audio" only when PyAV finds no audio stream in the container; a corrupt or empty audio track is a
:class:`MediaError` naming the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omnibench.data.manifest import Clip
from omnibench.io import atomic_write_bytes

SAMPLE_RATE = 16000

log = logging.getLogger("omnibench")


class MediaError(RuntimeError):
    """A media file is missing, corrupt or unreadable (the message names the file)."""


class MissingAudioError(MediaError):
    """The clip has no audio track and no separate audio file."""


@dataclass(frozen=True)
class DecodeConfig:
    num_frames: int = field(default=8, metadata={"help": "frames sampled uniformly over the whole video"})
    size: int | tuple[int, int] | None = field(default=112, metadata={"help": "resize to (h, w); int = square; None = native"})
    sr: int = field(default=SAMPLE_RATE, metadata={"help": "audio sample rate (Whisper features need 16 kHz)"})
    max_audio_s: float | None = field(default=None, metadata={"help": "truncate audio to this many seconds"})
    missing_audio: str = field(default="error", metadata={"help": "clip without audio: error | skip | keep"})

    def __post_init__(self):
        if self.missing_audio not in ("error", "skip", "keep"):
            raise ValueError(f"missing_audio must be 'error', 'skip' or 'keep', got {self.missing_audio!r}")
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")

    @property
    def hw(self) -> tuple[int, int] | None:
        if self.size is None:
            return None
        if isinstance(self.size, int):
            return (self.size, self.size)
        return (int(self.size[0]), int(self.size[1]))

    def key(self) -> dict:
        d = asdict(self)
        d.pop("missing_audio")  # the policy does not change what is decoded
        d["size"] = self.hw
        return d

    @classmethod
    def coerce(cls, value: DecodeConfig | Mapping | None = None) -> DecodeConfig:
        """``value`` as a DecodeConfig: None = defaults; a mapping of field names (a list ``size``, as
        JSON and YAML give it, becomes a tuple). Unknown keys are an error naming the valid fields."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(f"decode settings must be a DecodeConfig or a mapping, got {type(value).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"unknown decode setting(s) {unknown}; valid: {names}")
        d = dict(value)
        if isinstance(d.get("size"), list):
            d["size"] = tuple(d["size"])
        return cls(**d)

    def settings(self) -> dict:
        """What a checkpoint records: the fields that decide the decoded arrays (not the
        missing-audio policy), JSON-ready; a square size is written as one int."""
        h_w = self.hw
        size = None if h_w is None else (h_w[0] if h_w[0] == h_w[1] else list(h_w))
        return {"num_frames": self.num_frames, "size": size, "sr": self.sr, "max_audio_s": self.max_audio_s}

    def to_dict(self) -> dict:
        """All fields, JSON/YAML-ready (recipe.yaml, outputs)."""
        return {**self.settings(), "missing_audio": self.missing_audio}

    def describe(self) -> str:
        h_w = self.hw
        size = "native size" if h_w is None else f"{h_w[0]}x{h_w[1]} px"
        audio = f", audio <= {self.max_audio_s} s" if self.max_audio_s is not None else ""
        return f"{self.num_frames} frames at {size}, audio {self.sr} Hz{audio}, missing audio: {self.missing_audio}"


@dataclass
class Media:
    """Decoded media of one clip: frames (T, H, W, 3) uint8 and mono float32 audio at ``sr``."""

    frames: np.ndarray | None
    audio: np.ndarray | None
    sr: int = SAMPLE_RATE
    clip_id: str = ""

    @property
    def has_video(self) -> bool:
        return self.frames is not None

    @property
    def has_audio(self) -> bool:
        return self.audio is not None


def synth_media(frames: np.ndarray | None, audio: np.ndarray | None, sr: int = SAMPLE_RATE, clip_id: str = "") -> Media:
    """Wrap in-memory arrays as :class:`Media` (checks dtypes and shapes)."""
    if frames is not None:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if audio is not None:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"audio must be mono (n,), got shape {audio.shape}")
    return Media(frames=frames, audio=audio, sr=sr, clip_id=clip_id)


# ----------------------------------------------------------------------------------------------- decoding


def _decord():
    try:
        import decord
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise ImportError("decord is required for media decoding: pip install decord") from e
    decord.bridge.set_bridge("native")
    return decord


def sample_indices(n_total: int, n: int) -> np.ndarray:
    """``n`` frame indices spread uniformly over ``n_total`` frames (centres of n equal segments)."""
    if n_total <= 0:
        raise ValueError("video has no frames")
    return np.minimum((np.arange(n) + 0.5) * n_total / n, n_total - 1).astype(np.int64)


def resize_frames(frames: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Bilinear, antialiased resize of uint8 (T, H, W, 3) frames to ``hw``."""
    if frames.shape[1:3] == tuple(hw):
        return frames
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=hw, mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


#: decord 0.6's frame copy fails on valid H.264 files of some widths (16, 24, 48 px) with this check
DECORD_SIZE_CHECK = "from_size == to_size"
_fallback_logged: set[str] = set()


def _frames_with_pyav(path: str, n: int) -> np.ndarray:
    """The same uniformly sampled frames as decord gives, decoded with PyAV (every frame is decoded,
    then ``sample_indices`` picks them: used only for files decord cannot read)."""
    import av

    with av.open(path) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack([frames[i] for i in sample_indices(len(frames), n)])


def decode_frames(path: str, cfg: DecodeConfig) -> np.ndarray:
    """``cfg.num_frames`` frames sampled uniformly, resized after decoding.

    (Resizing after decoding touches only the sampled frames; decord 0.6's own resize also fails
    for some widths, e.g. 16, 24 and 48. A file whose native width decord cannot copy is decoded with
    PyAV instead, and the log says so once per file.)
    """
    decord = _decord()
    if not Path(path).is_file():
        raise MediaError(f"video file {path} does not exist")
    try:
        vr = decord.VideoReader(path, num_threads=1)
        frames = vr.get_batch(sample_indices(len(vr), cfg.num_frames).tolist()).asnumpy()
    except Exception as e:  # decord raises its own DECORDError / RuntimeError
        if DECORD_SIZE_CHECK not in str(e):
            raise MediaError(f"cannot decode video {path}: {e}".splitlines()[0]) from e
        if path not in _fallback_logged:
            _fallback_logged.add(path)
            log.warning("decord cannot copy the frames of %s (a valid file; decord 0.6 fails on some widths: "
                        "%s); decoding it with PyAV", path, str(e).splitlines()[0].strip())
        try:
            frames = _frames_with_pyav(path, cfg.num_frames)
        except Exception as e2:
            raise MediaError(f"cannot decode video {path}: decord fails on its frame width ({DECORD_SIZE_CHECK}) "
                             f"and PyAV too: {e2}".splitlines()[0]) from e2
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    return resize_frames(frames, cfg.hw) if cfg.hw else frames


def audio_stream_count(path: str) -> int:
    """How many audio streams the container at ``path`` holds (PyAV); MediaError if it cannot be opened."""
    import av

    try:
        with av.open(path) as container:
            return len(container.streams.audio)
    except Exception as e:
        raise MediaError(f"cannot open {path} to read its streams: {e}".splitlines()[0]) from e


def decode_audio(path: str, cfg: DecodeConfig, is_video: bool) -> np.ndarray:
    """Mono float32 audio at ``cfg.sr``.

    Raises MissingAudioError only when the container has no audio stream (checked with PyAV); an
    audio stream that is corrupt, or empty, is a MediaError naming the file."""
    decord = _decord()
    if not Path(path).is_file():
        raise MediaError(f"audio file {path} does not exist")
    try:
        ar = decord.AudioReader(path, sample_rate=cfg.sr, mono=True)
        audio = ar[:].asnumpy()
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if is_video and audio_stream_count(path) == 0:
            raise MissingAudioError(f"{path} has no audio track") from e
        raise MediaError(f"cannot decode the audio track of {path} (corrupt or empty audio stream): {msg}") from e
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size == 0:
        if is_video and audio_stream_count(path) == 0:
            raise MissingAudioError(f"{path} has no audio track")
        raise MediaError(f"the audio track of {path} is empty (0 samples); re-encode the file or drop the clip")
    if cfg.max_audio_s is not None:
        audio = audio[: int(cfg.max_audio_s * cfg.sr)]
    return np.ascontiguousarray(audio)


def _decode_uncached(clip: Clip, cfg: DecodeConfig) -> Media:
    frames = decode_frames(clip.video, cfg) if clip.video else None
    source = clip.audio or clip.video
    try:
        audio = decode_audio(source, cfg, is_video=clip.audio is None)
    except MissingAudioError as e:
        if cfg.missing_audio == "keep":
            audio = None
        else:
            raise MissingAudioError(f"clip {clip.id}: {e}") from e
    return Media(frames=frames, audio=audio, sr=cfg.sr, clip_id=clip.id)


# ----------------------------------------------------------------------------------------------- cache


class DecodeCache:
    """Decoded media on disk as ``.npz``, keyed by file identity + decode parameters.

    ``hits``, ``misses`` and ``rebuilt`` (corrupt entries detected and decoded again) are counted.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.hits = self.misses = self.rebuilt = 0

    @staticmethod
    def _identity(path: str | None) -> list | None:
        if not path:
            return None
        st = os.stat(path)
        return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]

    def key(self, clip: Clip, cfg: DecodeConfig) -> str:
        ident = {
            "video": self._identity(clip.video),
            "audio": self._identity(clip.audio),
            "cfg": cfg.key(),
            "v": 1,
        }
        return hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def _load(self, path: Path, clip: Clip, cfg: DecodeConfig) -> Media | None:
        try:
            with np.load(path, allow_pickle=False) as z:
                frames = z["frames"] if "frames" in z.files else None
                audio = z["audio"] if "audio" in z.files else None
            if frames is not None and (frames.dtype != np.uint8 or frames.ndim != 4 or len(frames) != cfg.num_frames):
                raise ValueError("frames have the wrong shape")
            if audio is not None and (audio.dtype != np.float32 or audio.ndim != 1):
                raise ValueError("audio has the wrong shape")
            if (frames is None) != (clip.video is None):
                raise ValueError("video presence differs from the clip")
        except Exception:  # noqa: BLE001 - any unreadable entry (zip, pickle, shape) is rebuilt
            return None
        return Media(frames=frames, audio=audio, sr=cfg.sr, clip_id=clip.id)

    def get(self, clip: Clip, cfg: DecodeConfig) -> Media:
        key = self.key(clip, cfg)
        path = self.path(key)
        if path.exists():
            media = self._load(path, clip, cfg)
            if media is not None:
                if media.audio is None and cfg.missing_audio != "keep":
                    raise MissingAudioError(f"clip {clip.id}: {clip.audio or clip.video} has no audio track (cached)")
                self.hits += 1
                return media
            self.rebuilt += 1
        else:
            self.misses += 1
        # Decode with "keep" so that a clip without audio is cached once and the policy applied after.
        media = _decode_uncached(clip, DecodeConfig(**{**asdict(cfg), "missing_audio": "keep"}))
        arrays = {k: v for k, v in (("frames", media.frames), ("audio", media.audio)) if v is not None}
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(path, buf.getvalue())
        if media.audio is None and cfg.missing_audio != "keep":
            raise MissingAudioError(f"clip {clip.id}: {clip.audio or clip.video} has no audio track")
        return media

    def stats(self) -> dict:
        return {"hits": self.hits, "misses": self.misses, "rebuilt": self.rebuilt}


def decode_clip(clip: Clip, cfg: DecodeConfig | None = None, cache: DecodeCache | None = None) -> Media:
    """Decode one clip (through ``cache`` when given). Errors name the file."""
    cfg = cfg or DecodeConfig()
    if cache is not None:
        return cache.get(clip, cfg)
    return _decode_uncached(clip, cfg)


@dataclass
class DecodeReport:
    """What :func:`decode_clips` did: decoded ids and the clips skipped for lack of audio."""

    decoded: list[str] = field(default_factory=list)
    skipped_no_audio: list[str] = field(default_factory=list)
    kept_without_audio: list[str] = field(default_factory=list)

    def summary(self) -> str:
        s = f"decoded {len(self.decoded)} clip(s)"
        if self.skipped_no_audio:
            s += f"; skipped {len(self.skipped_no_audio)} without audio (e.g. {self.skipped_no_audio[:3]})"
        if self.kept_without_audio:
            s += f"; {len(self.kept_without_audio)} kept without their audio block"
        return s


def decode_clips(
    clips: Sequence[Clip],
    cfg: DecodeConfig | Mapping | None = None,
    cache: DecodeCache | str | os.PathLike | None = None,
    progress: bool = True,
) -> tuple[list[Media], DecodeReport]:
    """Decode clips in order (through a :class:`MediaStore`); with ``missing_audio="skip"`` clips
    without audio are left out and counted in the report. (:meth:`MediaStore.decode` never leaves a
    clip out.)"""
    from tqdm.auto import tqdm

    store = MediaStore(clips, cfg, cache, max_items=max(len(clips), 1))
    report = DecodeReport()
    out: list[Media] = []
    for clip in tqdm(clips, desc="decode", disable=not progress, leave=False):
        try:
            media = store(clip.id)
        except MissingAudioError:
            if store.config.missing_audio == "skip":
                report.skipped_no_audio.append(clip.id)
                continue
            raise
        if media.audio is None:
            report.kept_without_audio.append(clip.id)
        report.decoded.append(clip.id)
        out.append(media)
    if report.skipped_no_audio and progress:
        print(report.summary())
    return out, report


# ----------------------------------------------------------------------------------------------- store


class MediaStore:
    """Decoded media by clip id, the one way every consumer decodes.

    Each clip is decoded once (through the on-disk :class:`DecodeCache` when ``cache`` is given: a
    DecodeCache or its folder) and kept in memory, least-recently-used, up to ``max_items``, so
    every training step and every checkpoint evaluated reuses the same arrays. ``store(clip_id)``
    gives one clip's :class:`Media`; :meth:`decode` gives a list in the order of the clips asked for.
    ``config``: the decode settings (a DecodeConfig or a mapping of its fields; for a trained model
    use :func:`decode_config_for`, which reads the ones it was trained on)."""

    def __init__(self, clips: Sequence[Clip] = (), config: DecodeConfig | Mapping | None = None,
                 cache: DecodeCache | str | os.PathLike | None = None, max_items: int = 4096):
        self.clips: dict[str, Clip] = {c.id: c for c in clips}
        self.config = DecodeConfig.coerce(config)
        self.cache = cache if isinstance(cache, DecodeCache) or cache is None else DecodeCache(cache)
        self.max_items = max_items
        self._mem: OrderedDict[str, Media] = OrderedDict()
        self._fixed = False  # from_media: holds what it was given, decodes nothing
        self.decoded = 0  # clips decoded (or read from the disk cache) by this store

    @property
    def cfg(self) -> DecodeConfig:  # the name recipes.MediaStore used
        return self.config

    @classmethod
    def from_media(cls, media: Mapping[str, Media] | Sequence[Media]) -> MediaStore:
        """An in-memory store over already-decoded media (a mapping by clip id, or Media objects
        carrying their ``clip_id``): it decodes nothing, and a clip it does not hold is an error."""
        items = dict(media) if isinstance(media, Mapping) else {m.clip_id: m for m in media}
        if "" in items and not isinstance(media, Mapping):
            raise ValueError("MediaStore.from_media: a Media without clip_id; pass a mapping clip id -> Media")
        store = cls((), None, None, max_items=max(len(items), 1))
        store._mem.update(items)
        store._fixed = True
        return store

    def __contains__(self, clip_id: str) -> bool:
        return clip_id in self._mem or clip_id in self.clips

    def __call__(self, clip_id: str) -> Media:
        if clip_id in self._mem:
            self._mem.move_to_end(clip_id)
            return self._mem[clip_id]
        if clip_id not in self.clips:
            raise KeyError(f"clip {clip_id!r} is not in this media store")
        media = decode_clip(self.clips[clip_id], self.config, self.cache)
        self.decoded += 1
        self._mem[clip_id] = media
        if len(self._mem) > self.max_items:
            self._mem.popitem(last=False)
        return media

    def decode(self, clips: Sequence[Clip], progress: bool = False) -> list[Media]:
        """The media of ``clips``, in their order (clips not yet known to the store are added).

        A clip that cannot be decoded, or that an in-memory store does not hold, is a
        :class:`MediaError` naming it and its file; no clip is ever left out (with
        ``missing_audio="skip"`` use :func:`decode_clips`, which reports what it leaves out)."""
        from tqdm.auto import tqdm

        missing = [c.id for c in clips if c.id not in self._mem] if self._fixed else []
        if missing:
            raise MediaError(
                f"{len(missing)} clip(s) have no decoded media (e.g. {missing[:3]}); decode them or drop them "
                "from the manifest explicitly (DecodeConfig.missing_audio='skip' in decode_clips reports which)"
            )
        if not self._fixed:
            for c in clips:
                self.clips.setdefault(c.id, c)
            self.max_items = max(self.max_items, len(clips))
        out: list[Media] = []
        for clip in tqdm(clips, desc="decode", disable=not progress, leave=False):
            try:
                out.append(self(clip.id))
            except MissingAudioError as e:
                hint = ("; missing_audio='skip' leaves such clips out only in decode_clips"
                        if self.config.missing_audio == "skip" else "; missing_audio='keep' uses the clip without it")
                raise MissingAudioError(f"{e}{hint}") from e
            except MediaError as e:
                raise MediaError(f"clip {clip.id}: {e}") from e
        return out

    def stats(self) -> dict:
        out = {"decoded": self.decoded, "in_memory": len(self._mem)}
        if self.cache is not None:
            out.update(self.cache.stats())
        return out


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
