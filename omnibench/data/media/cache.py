"""The on-disk decode cache: an entry is keyed by the media file's identity (absolute path, size,
mtime) and the decode settings, so a second epoch decodes nothing; an unreadable entry is detected,
counted and rebuilt.

**Size cap.** The cache holds at most ``max_bytes`` of entries (default: ``$OMNIBENCH_DECODE_CACHE_GB``
GiB, else :data:`DEFAULT_MAX_GB` = 20 GiB: a decoded clip at the default settings, 8 frames of
112 x 112 plus a few seconds of 16 kHz audio, is 0.3-0.5 MB, so 20 GiB holds some 40 000 clips, the
protocol's test sets under several decode settings, while bounding what a run leaves on a shared
disk; ``OMNIBENCH_DECODE_CACHE_GB=inf`` or ``max_bytes=math.inf``: no cap). When a write takes the
cache over the cap, the least recently used entries are removed until it is at
:data:`LOW_WATER` of the cap (so the folder is listed once per tenth of the cap written, not at every
write). "Used" is the entry's mtime: set when it is written and touched on every hit (atime is
unreliable: ``noatime``/``relatime`` mounts), so recency survives across processes and runs.

**Several processes** (torchrun ranks, dataloader workers, two runs) may share a folder. Entries are
written atomically (temporary file + rename), an entry another process removed between our listing
and our read is a miss (decoded again), never an error, and an open entry removed by an eviction
stays readable (POSIX). Each process keeps a running estimate of the folder's size and lists the
folder again when its estimate crosses the cap or after it has written a tenth of the cap, so the
size seen by all processes together can overshoot the cap by at most what the others wrote since
that listing.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from omnibench.data.manifest import Clip
from omnibench.data.media.decode import DecodeConfig, Media, MissingAudioError, _decode_uncached
from omnibench.io import atomic_write_bytes

__all__ = ["DEFAULT_MAX_GB", "ENV_MAX_GB", "LOW_WATER", "DecodeCache", "default_max_bytes"]

#: environment variable: the cap in GiB (a float; ``inf``, ``none`` or ``unlimited``: no cap)
ENV_MAX_GB = "OMNIBENCH_DECODE_CACHE_GB"
#: the cap without the environment variable, GiB
DEFAULT_MAX_GB = 20.0
#: an eviction removes least recently used entries until the cache is at this fraction of the cap
LOW_WATER = 0.9
GIB = 1024**3

# ----------------------------------------------------------------------------------------------- cache


def default_max_bytes() -> float:
    """The cap in bytes from ``$OMNIBENCH_DECODE_CACHE_GB`` (GiB), else :data:`DEFAULT_MAX_GB` GiB."""
    text = os.environ.get(ENV_MAX_GB, "").strip().lower()
    if not text:
        return DEFAULT_MAX_GB * GIB
    if text in ("inf", "none", "unlimited"):
        return math.inf
    try:
        gb = float(text)
    except ValueError:
        raise ValueError(f"{ENV_MAX_GB}={text!r}: give the decode cache's cap in GiB (e.g. 20, 0.5) or inf") from None
    if not gb > 0:
        raise ValueError(f"{ENV_MAX_GB}={text!r}: the cap must be > 0 GiB (inf: no cap)")
    return gb * GIB


class DecodeCache:
    """Decoded media on disk as ``.npz``, keyed by file identity + decode parameters, at most
    ``max_bytes`` on disk (None: :func:`default_max_bytes`; ``math.inf``: no cap), least recently
    used entries evicted first.

    ``hits``, ``misses`` (a vanished entry is one), ``rebuilt`` (corrupt entries detected and
    decoded again), ``evicted`` / ``evicted_bytes`` (entries this process removed for the cap) and
    ``uncached`` (entries larger than the cap itself, not written) are counted.
    """

    def __init__(self, root: str | os.PathLike, max_bytes: float | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = default_max_bytes() if max_bytes is None else max_bytes
        if not self.max_bytes > 0:
            raise ValueError(f"DecodeCache max_bytes must be > 0 (math.inf: no cap), got {max_bytes!r}")
        self.hits = self.misses = self.rebuilt = 0
        self.evicted = self.evicted_bytes = self.uncached = 0
        self._size: int | None = None  # estimate of the folder's bytes (None: not listed yet)
        self._written_since_scan = 0

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
        """The entry's media; None when it is unreadable. FileNotFoundError: it is not there (or
        another process evicted it since)."""
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
        except FileNotFoundError:
            raise
        except Exception:  # noqa: BLE001 - any unreadable entry (zip, pickle, shape) is rebuilt
            return None
        return Media(frames=frames, audio=audio, sr=cfg.sr, clip_id=clip.id)

    def get(self, clip: Clip, cfg: DecodeConfig) -> Media:
        key = self.key(clip, cfg)
        path = self.path(key)
        try:
            media = self._load(path, clip, cfg)
        except FileNotFoundError:  # never written, or evicted (by any process) before we could read it
            self.misses += 1
        else:
            if media is not None:
                self._touch(path)
                if media.audio is None and cfg.missing_audio != "keep":
                    raise MissingAudioError(f"clip {clip.id}: {clip.audio or clip.video} has no audio track (cached)")
                self.hits += 1
                return media
            self.rebuilt += 1
        # Decode with "keep" so that a clip without audio is cached once and the policy applied after.
        media = _decode_uncached(clip, DecodeConfig(**{**asdict(cfg), "missing_audio": "keep"}))
        arrays = {k: v for k, v in (("frames", media.frames), ("audio", media.audio)) if v is not None}
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        self._write(path, buf.getvalue())
        if media.audio is None and cfg.missing_audio != "keep":
            raise MissingAudioError(f"clip {clip.id}: {clip.audio or clip.video} has no audio track")
        return media

    # ------------------------------------------------------------------------------- size cap

    @staticmethod
    def _touch(path: Path) -> None:
        """Mark an entry as just used (its mtime is the recency the eviction goes by)."""
        try:
            os.utime(path)
        except OSError:  # evicted by another process meanwhile, or a read-only cache: the read stands
            pass

    def _write(self, path: Path, data: bytes) -> None:
        n = len(data)
        if n > self.max_bytes:  # an entry larger than the whole cache is not kept
            self.uncached += 1
            return
        try:
            old = path.stat().st_size  # a rebuilt (corrupt) entry is replaced, not added
        except OSError:
            old = 0
        atomic_write_bytes(path, data)
        if math.isinf(self.max_bytes):
            return
        if self._size is None:
            self._size = self._scan_total()  # the first write lists the folder (this entry included)
        else:
            self._size += n - old
            self._written_since_scan += n
        if self._size > self.max_bytes or self._written_since_scan > (1 - LOW_WATER) * self.max_bytes:
            self.evict(keep=path)

    def _entries(self) -> list[tuple[float, int, Path]]:
        """(mtime, bytes, path) of every entry on disk now (entries vanishing meanwhile are left out)."""
        out = []
        try:
            subdirs = [d for d in os.scandir(self.root) if d.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return out
        for d in subdirs:
            try:
                files = list(os.scandir(d.path))
            except FileNotFoundError:
                continue
            for f in files:
                if not f.name.endswith(".npz"):  # temporary files of writes in flight are not entries
                    continue
                try:
                    st = f.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                out.append((st.st_mtime, st.st_size, Path(f.path)))
        return out

    def _scan_total(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def evict(self, keep: Path | None = None, target: float | None = None) -> int:
        """List the folder; if it holds more than the cap, remove least recently used entries (never
        ``keep``) until it holds at most ``target`` bytes (default :data:`LOW_WATER` of the cap).
        Returns the number of entries removed here. Another process's concurrent removal of an entry
        is no error."""
        entries = self._entries()
        total = sum(size for _, size, _ in entries)
        removed = 0
        if total > self.max_bytes:
            target = LOW_WATER * self.max_bytes if target is None else target
            entries.sort(key=lambda e: (e[0], e[2].name))  # oldest use first; name: a stable tie-break
            for _, size, p in entries:
                if total <= target:
                    break
                if keep is not None and p == keep:
                    continue
                try:
                    p.unlink()
                except FileNotFoundError:  # another process removed it first: it is gone all the same
                    total -= size
                    continue
                except OSError:  # a read-only or otherwise protected entry: leave it
                    continue
                total -= size
                removed += 1
                self.evicted += 1
                self.evicted_bytes += size
        self._size = total
        self._written_since_scan = 0
        return removed

    def disk_bytes(self) -> int:
        """Bytes of the entries on disk now (every process's)."""
        return self._scan_total()

    def stats(self) -> dict:
        return {"hits": self.hits, "misses": self.misses, "rebuilt": self.rebuilt, "evicted": self.evicted,
                "evicted_bytes": self.evicted_bytes, "uncached": self.uncached}
