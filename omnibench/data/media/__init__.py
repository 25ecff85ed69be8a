"""Media decoding with decord, an on-disk decode cache, the one media store, and the decode settings
that travel with a checkpoint.

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

Modules: :mod:`~omnibench.data.media.decode` (one file -> arrays; :class:`DecodeConfig`),
:mod:`~omnibench.data.media.cache` (:class:`DecodeCache`), :mod:`~omnibench.data.media.store`
(:class:`MediaStore`, :func:`decode_clips`), :mod:`~omnibench.data.media.settings` (checkpoint
settings, CLI flags). Every public name is importable from ``omnibench.data.media``.
"""

from omnibench.data.media.cache import DecodeCache
from omnibench.data.media.decode import (
    DECORD_SIZE_CHECK,
    SAMPLE_RATE,
    DecodeConfig,
    Media,
    MediaError,
    MissingAudioError,
    audio_stream_count,
    decode_audio,
    decode_frames,
    resize_frames,
    sample_indices,
    synth_media,
)
from omnibench.data.media.settings import (
    CONFIG_KEY,
    add_decode_args,
    decode_config_for,
    decode_overrides,
    saved_decode_settings,
)
from omnibench.data.media.store import DecodeReport, MediaStore, decode_clip, decode_clips

__all__ = [
    "CONFIG_KEY", "DECORD_SIZE_CHECK", "SAMPLE_RATE", "DecodeCache", "DecodeConfig", "DecodeReport", "Media",
    "MediaError", "MediaStore", "MissingAudioError", "add_decode_args", "audio_stream_count", "decode_audio",
    "decode_clip", "decode_clips", "decode_config_for", "decode_frames", "decode_overrides", "resize_frames",
    "sample_indices", "saved_decode_settings", "synth_media",
]
