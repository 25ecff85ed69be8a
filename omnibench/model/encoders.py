"""Encode each distinct clip once per forward pass, however many rows of the batch repeat it.

GRPO feeds every clip G times (one row per completion): in generation's prefill, in the reference
pass and in the loss pass, the vision and audio encoders would run G times on identical inputs.
:func:`share_encoders` wraps the thinker's ``get_video_features`` / ``get_audio_features`` so that
identical videos (same patch grid and pixels) and identical audios (same features and mask) are
encoded once and their embeddings repeated for every row that uses them. Autograd sees the
repetition, so the encoders' gradients are the same as with one encoder pass per row.

    share_encoders(model)          # on (idempotent); share_encoders(model, False) turns it off
    with encoders_shared(model):   # on for a block, then back to what it was

The results equal those of the unshared model up to floating-point rounding (the encoders see
smaller batches). Models other than the Qwen2.5-Omni thinker are left unchanged (the function then
returns False).
"""

from __future__ import annotations

import contextlib
import types

import torch

_ATTR = "_omnibench_shared_encoders"


def _inner(model):
    """The module that owns ``get_video_features``/``get_audio_features`` and calls them in forward."""
    for module in model.modules():
        if type(module).__name__ == "Qwen2_5OmniThinkerModel":
            return module
    return None


def _groups(chunks: list[tuple]) -> tuple[list[int], list[int]]:
    """(representatives, index of each chunk's representative): chunks equal in every tensor share one."""
    reps: list[int] = []
    owner: list[int] = []
    by_key: dict[tuple, list[int]] = {}
    for i, parts in enumerate(chunks):
        key = tuple((tuple(t.shape), float(t.float().sum())) for t in parts)
        for r in by_key.get(key, []):
            if all(torch.equal(a, b) for a, b in zip(parts, chunks[r])):
                owner.append(reps.index(r))
                break
        else:
            by_key.setdefault(key, []).append(i)
            owner.append(len(reps))
            reps.append(i)
    return reps, owner


def _video_features(self, pixel_values_videos, video_grid_thw=None, **kwargs):
    """``get_video_features`` encoding each distinct video once (bound to the thinker model)."""
    original = type(self).get_video_features.__get__(self)
    if video_grid_thw is None or video_grid_thw.shape[0] < 2:
        return original(pixel_values_videos, video_grid_thw, **kwargs)
    chunks = list(torch.split(pixel_values_videos, video_grid_thw.prod(-1).tolist()))
    reps, owner = _groups([(c, g) for c, g in zip(chunks, video_grid_thw)])
    if len(reps) == len(chunks):
        return original(pixel_values_videos, video_grid_thw, **kwargs)
    out = original(torch.cat([chunks[r] for r in reps]), video_grid_thw[reps], **kwargs)
    pooled = out.pooler_output if isinstance(out.pooler_output, (tuple, list)) else (out.pooler_output,)
    out.pooler_output = tuple(pooled[j] for j in owner)
    out.last_hidden_state = None  # window-ordered hidden states of the distinct videos only: not kept
    return out


def _audio_features(self, input_features, feature_attention_mask=None, audio_feature_lengths=None, **kwargs):
    """``get_audio_features`` encoding each distinct audio once (bound to the thinker model)."""
    original = type(self).get_audio_features.__get__(self)
    if feature_attention_mask is None or input_features.shape[0] < 2:
        return original(input_features, feature_attention_mask, audio_feature_lengths, **kwargs)
    reps, owner = _groups([(f, m) for f, m in zip(input_features, feature_attention_mask)])
    if len(reps) == input_features.shape[0]:
        return original(input_features, feature_attention_mask, audio_feature_lengths, **kwargs)
    mask = feature_attention_mask[reps]
    out = original(input_features[reps], mask, None, **kwargs)
    _, lengths = self.audio_tower._get_feat_extract_output_lengths(mask.sum(-1))
    per_audio = torch.split(out.last_hidden_state, lengths.tolist())
    out.last_hidden_state = torch.cat([per_audio[j] for j in owner])
    return out


def share_encoders(model, enabled: bool = True) -> bool:
    """Switch encoder sharing on or off for ``model`` (a thinker, possibly wrapped by PEFT).

    Returns True when the model supports it (the Qwen2.5-Omni thinker), False otherwise.
    """
    inner = _inner(model)
    if inner is None:
        return False
    on = bool(getattr(inner, _ATTR, False))
    if enabled and not on:
        # bound methods (not closures): a deep copy of the model (e.g. GRPO's reference model) gets
        # methods bound to the copy, never to the original's encoders
        inner.get_video_features = types.MethodType(_video_features, inner)
        inner.get_audio_features = types.MethodType(_audio_features, inner)
        setattr(inner, _ATTR, True)
    elif not enabled and on:
        del inner.get_video_features  # back to the class's methods
        del inner.get_audio_features
        setattr(inner, _ATTR, False)
    return True


def encoders_are_shared(model) -> bool:
    inner = _inner(model)
    return bool(inner is not None and getattr(inner, _ATTR, False))


@contextlib.contextmanager
def encoders_shared(model, enabled: bool = True):
    """Within the block, encoder sharing is ``enabled``; afterwards it is as it was."""
    before = encoders_are_shared(model)
    share_encoders(model, enabled)
    try:
        yield model
    finally:
        share_encoders(model, before)
