"""Decoding one media file: frames with decord (PyAV where decord fails on a valid file), mono 16 kHz
audio, and the settings that decide the arrays (:class:`DecodeConfig`).

See :mod:`omnibench.data.media` for the whole decoding path."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from omnibench.data.manifest import Clip

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
