"""Modality dropout: training examples shown without their video or their audio block.

Why: attribution and single-modality evaluation remove a modality; if the model never saw such
inputs in training, what they measure is partly the shock of a new input. Dropout removes a block
exactly as attribution's ``drop`` strategy does (:func:`omnibench.model.inputs.keep_modalities`), with a
seed that is the same in every process for the same clip (:func:`stable_seed`), so every rank of a
multi-process run makes the same choice for the same clip.
"""

from __future__ import annotations

import random
import zlib

__all__ = ["DROPOUT_POLICIES", "droppable_modalities", "modality_dropout", "stable_seed"]

DROPOUT_POLICIES = ("any", "consistent")


def droppable_modalities(clip, policy: str = "any") -> frozenset[str]:
    """The modalities modality dropout may remove from ``clip`` under ``policy``.

    ``any``: video or audio. ``consistent``: only a modality whose removal leaves the clip's label
    supported by the modality kept (``meta["video_label"]`` / ``meta["audio_label"]``): a SynthEmo
    ``video`` clip may lose its (neutral) voice but not its face. With ``any``, a clip whose emotion
    is in the face is also trained, 15% of the time, to answer that emotion from its neutral voice
    alone -- label noise that teaches the model to read emotions into neutral inputs."""
    from omnibench.model.inputs import ALL

    if policy == "any":
        return ALL
    if policy != "consistent":
        raise ValueError(f"modality_dropout_policy must be one of {DROPOUT_POLICIES}, got {policy!r}")
    meta = getattr(clip, "meta", None) or {}
    if "video_label" not in meta or "audio_label" not in meta:
        raise ValueError(f"clip {getattr(clip, 'id', clip)!r} has no meta video_label/audio_label; "
                         "modality_dropout_policy: consistent needs per-modality labels (use 'any')")
    return frozenset(drop for drop, keep in (("video", "audio"), ("audio", "video"))
                     if meta[f"{keep}_label"] == clip.label)


def modality_dropout(media, p: float, rng: random.Random, droppable: frozenset[str] | None = None):
    """With probability ``p``, drop the video or the audio block (50/50, among ``droppable``, default
    both) exactly as attribution's ``drop`` does (:func:`~omnibench.model.inputs.keep_modalities`). Returns
    ``(media, modalities)``; a clip lacking a modality is never left with none."""
    from omnibench.model.inputs import ALL, available_modalities, keep_modalities

    present = available_modalities(media)
    if p <= 0 or present != ALL or rng.random() >= p:
        return media, present
    drop = "video" if rng.random() < 0.5 else "audio"
    allowed = ALL if droppable is None else droppable
    if drop not in allowed:
        if not allowed:
            return media, present
        drop = next(iter(allowed))
    return keep_modalities(media, ALL - {drop})


def stable_seed(*parts) -> int:
    """A seed that is the same in every process for the same parts (clip id, step, seed)."""
    return zlib.crc32("|".join(map(str, parts)).encode())
