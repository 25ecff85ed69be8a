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
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from omnibench.data.manifest import Clip

SAMPLE_RATE = 16000


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


def decode_frames(path: str, cfg: DecodeConfig) -> np.ndarray:
    """``cfg.num_frames`` frames sampled uniformly, resized after decoding.

    (Resizing after decoding touches only the sampled frames; decord 0.6's own resize also fails
    for some widths, e.g. 16, 24 and 48.)
    """
    decord = _decord()
    if not Path(path).is_file():
        raise MediaError(f"video file {path} does not exist")
    try:
        vr = decord.VideoReader(path, num_threads=1)
        frames = vr.get_batch(sample_indices(len(vr), cfg.num_frames).tolist()).asnumpy()
    except Exception as e:  # decord raises its own DECORDError / RuntimeError
        raise MediaError(f"cannot decode video {path}: {e}".splitlines()[0]) from e
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    return resize_frames(frames, cfg.hw) if cfg.hw else frames


def decode_audio(path: str, cfg: DecodeConfig, is_video: bool) -> np.ndarray:
    """Mono float32 audio at ``cfg.sr``; raises MissingAudioError when ``path`` has no audio stream."""
    decord = _decord()
    if not Path(path).is_file():
        raise MediaError(f"audio file {path} does not exist")
    try:
        ar = decord.AudioReader(path, sample_rate=cfg.sr, mono=True)
        audio = ar[:].asnumpy()
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if is_video and ("audio" in msg.lower() or "stream" in msg.lower()):
            raise MissingAudioError(f"{path} has no audio track ({msg})") from e
        raise MediaError(f"cannot decode audio of {path}: {msg}") from e
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size == 0:
        raise MissingAudioError(f"{path} has an empty audio track")
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
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
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
    cfg: DecodeConfig | None = None,
    cache: DecodeCache | None = None,
    progress: bool = True,
) -> tuple[list[Media], DecodeReport]:
    """Decode clips in order; with ``missing_audio="skip"`` clips without audio are left out and counted."""
    from tqdm.auto import tqdm

    cfg = cfg or DecodeConfig()
    report = DecodeReport()
    out: list[Media] = []
    for clip in tqdm(clips, desc="decode", disable=not progress, leave=False):
        try:
            media = decode_clip(clip, cfg, cache)
        except MissingAudioError:
            if cfg.missing_audio == "skip":
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
