"""The on-disk decode cache: an entry is keyed by the media file's identity (absolute path, size,
mtime) and the decode settings, so a second epoch decodes nothing; an unreadable entry is detected,
counted and rebuilt."""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from omnibench.data.manifest import Clip
from omnibench.data.media.decode import DecodeConfig, Media, MissingAudioError, _decode_uncached
from omnibench.io import atomic_write_bytes

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
