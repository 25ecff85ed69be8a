"""The one media store every consumer decodes through (:class:`MediaStore`), and :func:`decode_clips`
for inspection with a report of what it left out.

Bad media in large datasets: among thousands of real clips a few are corrupt or empty. A store's
``on_error`` says what an undecodable clip does: ``"error"`` (default) raises a :class:`MediaError`
naming the clip and its file; ``"skip"`` leaves it out of :meth:`MediaStore.usable` and records it,
with the reason, in :attr:`MediaStore.skipped`, so that a stage can list and count what it did not
use (the pipeline writes them to ``runs/<name>/skipped.jsonl`` and counts them in the table's n)."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from omnibench.data.manifest import Clip
from omnibench.data.media.cache import DecodeCache
from omnibench.data.media.decode import DecodeConfig, Media, MediaError, MissingAudioError, _decode_uncached


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

    #: What an undecodable clip does (``on_error``): raise, or be left out of :meth:`usable` and recorded.
    ON_ERROR = ("error", "skip")

    def __init__(self, clips: Sequence[Clip] = (), config: DecodeConfig | Mapping | None = None,
                 cache: DecodeCache | str | os.PathLike | None = None, max_items: int = 4096,
                 on_error: str = "error"):
        if on_error not in self.ON_ERROR:
            raise ValueError(f"MediaStore on_error must be one of {self.ON_ERROR}, got {on_error!r}")
        self.on_error = on_error
        #: clip id -> reason, for every clip :meth:`usable` left out (``on_error="skip"``)
        self.skipped: dict[str, str] = {}
        self.clips: dict[str, Clip] = {c.id: c for c in clips}
        self.config = DecodeConfig.coerce(config)
        self.cache = cache if isinstance(cache, DecodeCache) or cache is None else DecodeCache(cache)
        self.max_items = max_items
        self._mem: OrderedDict[str, Media] = OrderedDict()
        self._fixed = False  # from_media: holds what it was given, decodes nothing
        self.decoded = 0  # clips decoded (or read from the disk cache) by this store

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

    def usable(self, clips: Sequence[Clip], progress: bool = False, keep: bool = False) -> list[Clip]:
        """The clips of ``clips`` that decode, in order (each decoded once, through the disk cache when
        the store has one, and not kept in memory: a pass over a large split costs no memory).

        ``on_error="error"``: the first undecodable clip raises a :class:`MediaError` naming it and its
        file. ``on_error="skip"``: it is left out and recorded in :attr:`skipped` (id -> reason). A
        missing audio track follows ``DecodeConfig.missing_audio`` (``"skip"`` leaves the clip out here
        too, with that reason). ``keep=True``: the decoded clips are kept in memory (least-recently-used,
        up to ``max_items``), so a :meth:`decode` of the same chunk right after reads nothing again."""
        from tqdm.auto import tqdm

        out: list[Clip] = []
        for clip in tqdm(clips, desc="check media", disable=not progress, leave=False):
            self.clips.setdefault(clip.id, clip)
            if clip.id in self.skipped:
                continue
            if clip.id in self._mem:
                out.append(clip)
                continue
            try:
                self(clip.id) if keep else decode_clip(clip, self.config, self.cache)
            except MissingAudioError as e:
                if self.config.missing_audio != "skip" and self.on_error == "error":
                    raise MissingAudioError(f"clip {clip.id}: {e}") from e
                self.skipped[clip.id] = f"no audio: {e}"
                continue
            except (MediaError, OSError) as e:  # a bad file; a RuntimeError / ValueError is a bug or a setting: raised
                if self.on_error == "error":
                    raise MediaError(f"clip {clip.id}: {e} (on_error='skip' leaves such clips out and counts them)") from e
                self.skipped[clip.id] = f"{type(e).__name__}: {e}"
                continue
            out.append(clip)
        return out

    def stats(self) -> dict:
        out = {"decoded": self.decoded, "in_memory": len(self._mem), "skipped": len(self.skipped)}
        if self.cache is not None:
            out.update(self.cache.stats())
        return out
