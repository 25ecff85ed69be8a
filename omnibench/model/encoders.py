"""Encode each distinct clip once per forward pass -- or once per step -- however many rows repeat it.

GRPO feeds every clip G times (one row per completion): in generation's prefill, in the reference
pass and in the loss pass, the vision and audio encoders would run G times on identical inputs.
:func:`share_encoders` wraps the thinker's ``get_video_features`` / ``get_audio_features`` so that
each distinct video and audio is encoded once and its embeddings repeated for every row that uses
it. Autograd sees the repetition, so the encoders' gradients are the same as with one encoder pass
per row.

Which rows repeat a clip is *known* by the caller (the GRPO trainer built the rows from clip ids),
so it says so instead of having the model find out by comparing tensors in every pass:

    share_encoders(model)                           # on (idempotent); share_encoders(model, False): off
    with encoders_shared(model):                    # on for a block, then back to what it was
    with clip_identity(model, video=["a", "a", "b"], audio=["a", "a"]):
        model(**batch)                              # the i-th video / audio of the batch is clip video[i] / audio[i]
    with clip_identity(model, video=..., audio=..., cache=EncoderCache()):
        ...                                         # frozen towers: each clip encoded once for all passes
    with clip_identity(model, video=keys, compact_video=True):
        model(pixel_values_videos=distinct_pixels, video_grid_thw=grid_of_every_row, ...)

``compact_video``: the batch's ``pixel_values_videos`` hold each distinct video once (in the order
of first appearance in ``video``) while ``video_grid_thw`` keeps one row per video as usual, so the
caller never concatenates G copies of a clip's patches only for the model to drop them again
(:func:`distinct_videos` builds that tensor from per-row media).

Without an identity (or when its length does not match the batch's videos / audios) the sharing
falls back to comparing content (shape, sum, then ``torch.equal``), as before.

With an :class:`EncoderCache`, a tower whose parameters are all frozen (LoRA on the language model,
``freeze_vision`` / ``freeze_audio``) and which has no active dropout keeps each clip's output for
as long as the cache lives (the trainer makes one per generation batch): generation's prefill, the
reference pass and the loss pass then run that tower once per clip per step. A cached output is
exactly what the tower would recompute (same weights, same input, no randomness), and it needs no
gradient (nothing upstream of a frozen tower trains). A tower that trains is never cached: it runs
once per distinct clip per pass, so its gradient flows as before.

:func:`reference_copy` is the frozen reference model GRPO needs, holding the policy's frozen
modules (its frozen towers) by reference instead of a second copy of their weights.

The results equal those of the unshared model up to floating-point rounding (the encoders see
smaller batches). Models other than the Qwen2.5-Omni thinker are left unchanged (the functions then
return False / do nothing).
"""

from __future__ import annotations

import contextlib
import copy
import types
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from omnibench.model.parts import QWEN2_5_THINKER, thinker

_ATTR = "_omnibench_shared_encoders"
_STATE = "_omnibench_clip_identity"


def _inner(model):
    """The thinker module whose ``get_video_features``/``get_audio_features`` are wrapped: the Qwen2.5-Omni
    thinker only (:func:`omnibench.model.parts.thinker`; the wrapped methods follow that class's outputs)."""
    return thinker(model, family=QWEN2_5_THINKER)


# ------------------------------------------------------------------------------------ identity + cache


class EncoderCache:
    """Frozen towers' outputs by (tower, modality, clip key), for the life of the object (one step).

    ``encoded`` counts the clips each modality's towers actually ran on, ``reused`` those served
    from the cache (both per modality), so a test or a benchmark can see what happened.
    """

    def __init__(self):
        self._store: dict[tuple, torch.Tensor] = {}
        self.encoded = {"video": 0, "audio": 0}
        self.reused = {"video": 0, "audio": 0}

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        self._store.clear()

    def get(self, tower, modality: str, key):
        return self._store.get((id(tower), modality, key))

    def put(self, tower, modality: str, key, value: torch.Tensor) -> None:
        self._store[(id(tower), modality, key)] = value.detach()


@dataclass
class _Identity:
    video: list | None
    audio: list | None
    cache: EncoderCache | None
    compact_video: bool = False


def _keys(state: _Identity | None, modality: str, n: int) -> list | None:
    keys = None if state is None else getattr(state, modality)
    return keys if keys is not None and len(keys) == n else None


def _by_key(keys: Sequence) -> tuple[list[int], list[int]]:
    """(representatives, index of each row's representative) for rows named by ``keys``."""
    first: dict = {}
    reps: list[int] = []
    owner: list[int] = []
    for i, k in enumerate(keys):
        j = first.get(k)
        if j is None:
            j = first[k] = len(reps)
            reps.append(i)
        owner.append(j)
    return reps, owner


def _cacheable(tower) -> bool:
    """A tower whose output may be reused across passes: every parameter frozen, no active dropout."""
    if any(p.requires_grad for p in tower.parameters()):
        return False
    if not tower.training:
        return True
    cfg = getattr(tower, "config", None)
    if any(float(getattr(cfg, k, 0.0) or 0.0) > 0 for k in ("dropout", "attention_dropout", "activation_dropout")):
        return False
    return not any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in tower.modules())


@contextlib.contextmanager
def clip_identity(model, video: Sequence | None = None, audio: Sequence | None = None,
                  cache: EncoderCache | None = None, compact_video: bool = False):
    """Within the block, the model's forward passes know which clip each video and audio row is.

    ``video[i]`` / ``audio[i]`` is a hashable key (a clip id) of the i-th video / audio of the batch,
    in the batch's order; rows with the same key are the same clip and are encoded once. With
    ``cache``, frozen towers reuse outputs of clips encoded earlier under the same cache. Only has
    an effect while encoder sharing is on (:func:`share_encoders`); nested blocks replace the outer
    identity until they end. A pass whose number of videos (audios) differs from ``len(video)``
    (``len(audio)``) ignores that list and compares content instead -- except with
    ``compact_video`` (the pixels of each distinct video once, see the module docstring), where a
    mismatch is an error.
    """
    inner = _inner(model)
    if inner is None:
        yield model
        return
    before = inner.__dict__.get(_STATE)
    if compact_video and video is None:
        raise ValueError("clip_identity(compact_video=True) needs the video keys")
    setattr(inner, _STATE, _Identity(None if video is None else list(video),
                                     None if audio is None else list(audio), cache, compact_video))
    try:
        yield model
    finally:
        if before is None:
            inner.__dict__.pop(_STATE, None)
        else:
            setattr(inner, _STATE, before)


def row_keys(rows: Sequence[dict], key: str = "clip_key") -> tuple[list | None, list | None]:
    """(video keys, audio keys) of per-row media dicts (model keyword arguments plus ``key``), in the
    order their tensors are collated; None for a modality when some row with it lacks ``key``."""
    video = [r.get(key) for r in rows if "pixel_values_videos" in r]
    audio = [r.get(key) for r in rows if "input_features" in r]
    return (None if None in video else video), (None if None in audio else audio)


def distinct_videos(rows: Sequence[dict], key: str = "clip_key") -> torch.Tensor | None:
    """``pixel_values_videos`` holding each distinct video of ``rows`` once, in order of first
    appearance (for :func:`clip_identity` with ``compact_video``); None when no row has video."""
    seen: dict = {}
    for r in rows:
        if "pixel_values_videos" in r:
            k = r.get(key)
            if k is None:
                raise ValueError(f"distinct_videos: a row with video has no {key!r}")
            seen.setdefault(k, r["pixel_values_videos"])
    if not seen:
        return None
    parts = list(seen.values())
    if len(parts) == 1:
        return parts[0]
    view = _adjacent_view(parts)
    return torch.cat(parts) if view is None else view


def _adjacent_view(parts: list[torch.Tensor]) -> torch.Tensor | None:
    """``torch.cat(parts)`` without a copy when the parts are consecutive row slices of one tensor
    (per-row media split from one processor batch are, in clip order); None otherwise."""
    first = parts[0]
    if first.dim() < 1 or not first.is_contiguous():
        return None
    storage, row = first.untyped_storage().data_ptr(), first[0].numel() if first.shape[0] else 0
    offset = first.storage_offset()
    for t in parts:
        if (t.dtype != first.dtype or t.device != first.device or t.shape[1:] != first.shape[1:]
                or not t.is_contiguous() or t.untyped_storage().data_ptr() != storage
                or t.storage_offset() != offset):
            return None
        offset += t.shape[0] * row
    n = sum(t.shape[0] for t in parts)
    return first.as_strided((n, *first.shape[1:]), first.stride(), first.storage_offset())


# ------------------------------------------------------------------------------------ content fallback


def _groups(chunks: list[tuple]) -> tuple[list[int], list[int]]:
    """(representatives, index of each chunk's representative): chunks equal in every tensor share one.

    Only used when the caller did not say which rows are the same clip (:func:`clip_identity`).
    """
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


# ------------------------------------------------------------------------------------ wrapped methods


def _video_features(self, pixel_values_videos, video_grid_thw=None, **kwargs):
    """``get_video_features`` encoding each distinct video once (bound to the thinker model)."""
    original = type(self).get_video_features.__get__(self)
    if video_grid_thw is None:
        return original(pixel_values_videos, video_grid_thw, **kwargs)
    n = video_grid_thw.shape[0]
    state = self.__dict__.get(_STATE)
    keys = _keys(state, "video", n)
    if keys is None and state is not None and state.compact_video:
        raise ValueError(f"clip_identity(compact_video=True) names {len(state.video)} videos, the batch has {n}: "
                         "build the keys and the pixels from the same rows (row_keys, distinct_videos)")
    if keys is None:  # content comparison (no identity given)
        if n < 2:
            return original(pixel_values_videos, video_grid_thw, **kwargs)
        chunks = list(torch.split(pixel_values_videos, video_grid_thw.prod(-1).tolist()))
        reps, owner = _groups([(c, g) for c, g in zip(chunks, video_grid_thw)])
        if len(reps) == n:
            return original(pixel_values_videos, video_grid_thw, **kwargs)
        out = original(torch.cat([chunks[r] for r in reps]), video_grid_thw[reps], **kwargs)
        pooled = out.pooler_output if isinstance(out.pooler_output, (tuple, list)) else (out.pooler_output,)
        out.pooler_output = tuple(pooled[j] for j in owner)
        out.last_hidden_state = None  # window-ordered hidden states of the distinct videos only: not kept
        return out

    reps, owner = _by_key(keys)
    cache = state.cache if state.cache is not None and _cacheable(self.visual) else None
    per_rep: list = [None] * len(reps)
    if cache is not None:
        for j, r in enumerate(reps):
            per_rep[j] = cache.get(self.visual, "video", keys[r])
    todo = [j for j, x in enumerate(per_rep) if x is None]
    out = None
    if todo:
        sizes = video_grid_thw.prod(-1).tolist()
        rows = [reps[j] for j in todo]
        if state.compact_video:  # the pixels hold the distinct videos only, in key order
            expected = sum(sizes[r] for r in reps)
            if pixel_values_videos.shape[0] != expected:
                raise ValueError(f"compact pixel_values_videos has {pixel_values_videos.shape[0]} patches, "
                                 f"the {len(reps)} distinct videos need {expected}")
            if len(todo) == len(reps):
                pix = pixel_values_videos
            else:
                chunks = torch.split(pixel_values_videos, [sizes[r] for r in reps])
                pix = torch.cat([chunks[j] for j in todo])
            out = original(pix, video_grid_thw[rows], **kwargs)
        elif len(todo) == n:  # every row distinct and new: the plain call, no split or cat
            out = original(pixel_values_videos, video_grid_thw, **kwargs)
        else:
            chunks = torch.split(pixel_values_videos, sizes)
            pix = chunks[rows[0]] if len(rows) == 1 else torch.cat([chunks[r] for r in rows])
            out = original(pix, video_grid_thw[rows], **kwargs)
        pooled = out.pooler_output if isinstance(out.pooler_output, (tuple, list)) else (out.pooler_output,)
        for j, x in zip(todo, pooled):
            per_rep[j] = x
            if cache is not None:
                cache.put(self.visual, "video", keys[reps[j]], x)
        if cache is not None:
            cache.encoded["video"] += len(todo)
    if cache is not None:
        cache.reused["video"] += len(reps) - len(todo)
    if out is None:
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        out = BaseModelOutputWithPooling()
    out.pooler_output = tuple(per_rep[j] for j in owner)
    out.last_hidden_state = None  # window-ordered hidden states of the distinct videos only: not kept
    return out


def _audio_features(self, input_features, feature_attention_mask=None, audio_feature_lengths=None, **kwargs):
    """``get_audio_features`` encoding each distinct audio once (bound to the thinker model)."""
    original = type(self).get_audio_features.__get__(self)
    if feature_attention_mask is None:
        return original(input_features, feature_attention_mask, audio_feature_lengths, **kwargs)
    n = input_features.shape[0]
    state = self.__dict__.get(_STATE)
    keys = _keys(state, "audio", n)
    if keys is None:  # content comparison (no identity given)
        if n < 2:
            return original(input_features, feature_attention_mask, audio_feature_lengths, **kwargs)
        reps, owner = _groups([(f, m) for f, m in zip(input_features, feature_attention_mask)])
        if len(reps) == n:
            return original(input_features, feature_attention_mask, audio_feature_lengths, **kwargs)
        mask = feature_attention_mask[reps]
        out = original(input_features[reps], mask, None, **kwargs)
        _, lengths = self.audio_tower._get_feat_extract_output_lengths(mask.sum(-1))
        per_audio = torch.split(out.last_hidden_state, lengths.tolist())
        out.last_hidden_state = torch.cat([per_audio[j] for j in owner])
        return out

    reps, owner = _by_key(keys)
    tower = self.audio_tower
    cache = state.cache if state.cache is not None and _cacheable(tower) else None
    per_rep: list = [None] * len(reps)
    if cache is not None:
        for j, r in enumerate(reps):
            per_rep[j] = cache.get(tower, "audio", keys[r])
    todo = [j for j, x in enumerate(per_rep) if x is None]
    out = None
    if todo:
        rows = [reps[j] for j in todo]
        if len(rows) == n:
            feats, mask = input_features, feature_attention_mask
        else:
            feats, mask = input_features[rows], feature_attention_mask[rows]
        out = original(feats, mask, None, **kwargs)
        _, lengths = tower._get_feat_extract_output_lengths(mask.sum(-1))
        for j, x in zip(todo, torch.split(out.last_hidden_state, lengths.tolist())):
            per_rep[j] = x
            if cache is not None:
                cache.put(tower, "audio", keys[reps[j]], x)
        if cache is not None:
            cache.encoded["audio"] += len(todo)
    if cache is not None:
        cache.reused["audio"] += len(reps) - len(todo)
    if out is None:
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        out = BaseModelOutputWithPooling()
    if len(todo) == n and owner == list(range(n)):
        return out  # nothing shared or reused: the tower's own output
    out.last_hidden_state = per_rep[owner[0]] if n == 1 else torch.cat([per_rep[j] for j in owner])
    return out


# ------------------------------------------------------------------------------------ switches


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
def encoders_shared(model, enabled: bool = True, *, video: Sequence | None = None,
                    audio: Sequence | None = None, cache: EncoderCache | None = None,
                    compact_video: bool = False):
    """Within the block, encoder sharing is ``enabled`` (with the clip identity ``video`` / ``audio``
    and ``cache`` of :func:`clip_identity` when given); afterwards it is as it was."""
    before = encoders_are_shared(model)
    share_encoders(model, enabled)
    try:
        if video is None and audio is None and cache is None:
            yield model
        else:
            with clip_identity(model, video, audio, cache, compact_video):
                yield model
    finally:
        share_encoders(model, before)


# ------------------------------------------------------------------------------------ reference model


def frozen_modules(model) -> list[torch.nn.Module]:
    """The largest submodules of ``model`` whose parameters are all frozen (each with parameters)."""
    out: list[torch.nn.Module] = []

    def visit(module):
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            out.append(module)
            return
        for child in module.children():
            visit(child)

    for child in model.children():
        visit(child)
    return out


def reference_copy(model):
    """A frozen deep copy of ``model`` that holds the policy's frozen modules by reference.

    GRPO's reference model is the policy at the start; a module the policy never trains (a frozen
    tower) stays equal to it, so the copy shares it rather than doubling its memory (the towers are
    ~1.3 B parameters at 3B/7B). The rest is copied and frozen. Sharing also makes both models' tower
    outputs one cache entry in :class:`EncoderCache`.
    """
    memo = {}
    for module in frozen_modules(model):
        memo[id(module)] = module
        for t in (*module.parameters(), *module.buffers()):
            memo[id(t)] = t
    ref = copy.deepcopy(model, memo)
    ref.requires_grad_(False)
    return ref
