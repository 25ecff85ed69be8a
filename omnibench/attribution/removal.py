"""Removal strategies: how a modality is taken away from a clip for attribution.

A coalition ``S`` of players is scored with the players outside ``S`` removed; how a modality is
removed is the attribution's *strategy* (:data:`STRATEGIES`, :func:`apply_removal`):

``drop`` (default)
    the modality is absent: its block and tensors are left out of the input
    (:func:`omnibench.model.inputs.keep_modalities`, the model layer's way of building an input
    without a modality) -- a clean measure of reliance only if the model has seen such inputs in
    training (modality dropout removes blocks the same way);
``black``
    frames all zero (black) / audio all zero (silence), same shapes; the block stays in the prompt;
``noise``
    Gaussian noise of the same shape (frames N(128, 64²) clipped to uint8; audio with the clip's own
    RMS, or 0.05 for a silent clip), drawn from a generator seeded by (seed, clip index);
``swap``
    the modality is taken from another clip (``donor``): a seeded derangement of the clips
    (:func:`derangement`), as in perceptual-score studies.

A clip without a modality (e.g. no audio track) always has it removed, whatever the strategy: that
player is a dummy, and no modality is ever invented. :func:`coalition_inputs` applies a strategy to
every clip for one coalition. The model layer is imported only when a function here runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from omnibench.attribution.shapley import MODALITIES

#: the removal strategies, in the order documented above
STRATEGIES: tuple[str, ...] = ("drop", "black", "noise", "swap")

__all__ = ["STRATEGIES", "apply_removal", "coalition_inputs", "derangement"]


def apply_removal(media, keep: Iterable[str] | str, strategy: str = "drop",
                  rng: np.random.Generator | int | None = None, donor=None):
    """Remove the modalities not in ``keep`` from one clip (:class:`~omnibench.data.media.Media`) by
    ``strategy`` (one of :data:`STRATEGIES`, see the module docstring); returns (media, modalities to feed).

    ``rng``: the generator (or its seed) of ``noise``; ``donor``: the clip lending its modality under
    ``swap``. Modalities the clip does not have are never invented: the returned set is within the
    clip's available modalities (or the donor's, for swap)."""
    from omnibench.data.media import Media
    from omnibench.model.inputs import available_modalities, keep_modalities, parse_modalities

    if strategy not in STRATEGIES:
        raise ValueError(f"unknown removal strategy {strategy!r}; use one of {STRATEGIES}")
    keep = parse_modalities(keep)
    have = available_modalities(media)
    removed = have - keep
    if strategy == "drop" or not removed:
        return keep_modalities(media, keep)
    frames, audio = media.frames, media.audio
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if strategy == "black":
        if "video" in removed:
            frames = np.zeros_like(frames)
        if "audio" in removed:
            audio = np.zeros_like(audio)
    elif strategy == "noise":
        if "video" in removed:
            frames = np.clip(gen.normal(128.0, 64.0, size=frames.shape), 0, 255).astype(np.uint8)
        if "audio" in removed:
            rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) or 0.05
            audio = gen.normal(0.0, rms, size=audio.shape).astype(np.float32)
    elif strategy == "swap":
        if donor is None:
            raise ValueError("strategy='swap' needs a donor clip (donor=Media of another clip)")
        if "video" in removed:
            if donor.frames is None:
                raise ValueError(f"donor {donor.clip_id!r} has no video to swap in")
            frames = donor.frames
        if "audio" in removed:
            if donor.audio is None:
                raise ValueError(f"donor {donor.clip_id!r} has no audio to swap in")
            if donor.sr != media.sr:
                raise ValueError(f"donor audio is at {donor.sr} Hz, clip {media.clip_id!r} at {media.sr} Hz")
            audio = donor.audio
    return Media(frames=frames, audio=audio, sr=media.sr, clip_id=media.clip_id), have


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of range(n) with no fixed point (identity for n < 2): the ``swap`` donors."""
    if n < 2:
        return np.arange(n)
    while True:
        p = rng.permutation(n)
        if not (p == np.arange(n)).any():
            return p


def coalition_inputs(media: Sequence, keep: frozenset, strategy: str = "drop", seed: int = 0,
                     donors: Sequence[int] | None = None) -> tuple[list, list[frozenset]]:
    """Media and modality sets of every clip for one coalition ``keep`` (a subset of video/audio).

    A modality the clip lacks is always absent (dropped). ``donors[i]`` is the clip whose modality
    replaces clip i's under ``swap``; ``noise`` draws from a generator seeded by (seed, i).
    """
    from omnibench.model.inputs import available_modalities

    out_media, out_mods = [], []
    for i, m in enumerate(media):
        avail = available_modalities(m)
        k = frozenset(keep) & avail
        if k == avail:
            out_media.append(m)
            out_mods.append(avail)
            continue
        donor = media[donors[i]] if (strategy == "swap" and donors is not None) else None
        if strategy == "swap" and donor is None:
            raise ValueError("strategy 'swap' needs donors (indices of the clips lending their modality)")
        rng = np.random.default_rng([seed, i])
        m2, mods = apply_removal(m, k | (frozenset(MODALITIES) - avail) if strategy != "drop" else k,
                                 strategy=strategy, rng=rng, donor=donor)
        out_media.append(m2)
        out_mods.append(frozenset(mods) & available_modalities(m2))
    return out_media, out_mods
