"""Prompt template, modality selection and processor calls: clips -> model inputs.

:func:`build_inputs` turns decoded clips (:class:`~omnibench.data.media.Media`) into a left-padded
batch for any modality subset; :func:`clip_row` / :func:`collate_rows` (and :class:`ClipInputs`, which
keeps each clip's row) build the same batch from per-clip processor outputs, and
:func:`split_media_rows` / :func:`collate_media` split a batch into per-row media and back (GRPO's
rows).  The user turn follows R1-Omni's layout — the video block, then the audio block, then the
instruction — written by the checkpoint's own chat template:

    <|im_start|>user
    <|vision_bos|><|VIDEO|>…<|vision_eos|><|audio_bos|><|AUDIO|>…<|audio_eos|>{prompt}<|im_end|>
    <|im_start|>assistant
    {completion}<|im_end|>

Audio and video are separate blocks (``use_audio_in_video`` off), so a modality left out is removed
entirely: its block disappears from the prompt and its tensors from the batch (nothing is zeroed).
A batch may mix modality sets and clip lengths; :func:`keep_modalities` leaves a clip's other
modalities out of its media.  The other ways of removing a modality (black frames / silence, noise,
another clip's) are attribution's (:mod:`omnibench.attribution.removal`).

Processor settings that differ from a plain ``processor(...)`` call, and why:

* video frames keep their decoded size, rounded to the patch grid within the video processor's own
  ``size`` range (the Omni processor's class default would upscale every frame to at least
  128·28·28 pixels); the decode size (``DecodeConfig.size``) therefore sets the video token budget;
* audio is padded to the longest clip of the batch plus one FFT window instead of Whisper's fixed
  30 s (300 s in the Qwen2.5-Omni config): the valid mel frames are identical, the work is not;
* video timing uses the processor's default 2 fps for every clip, so removing the audio never
  changes the video's positions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from transformers import BatchFeature

from omnibench.data.media import Media

#: R1-Omni's instruction (EMER / MAFW-DFEW training and inference prompt).
DEFAULT_PROMPT = (
    "As an emotional recognition expert; throughout the video, which emotion conveyed by the characters "
    "is the most obvious to you? Output the thinking process in <think> </think> and final emotion in "
    "<answer> </answer> tags."
)
#: both modalities; modality sets are frozensets of "video" / "audio"
ALL: frozenset[str] = frozenset({"video", "audio"})
NONE: frozenset[str] = frozenset()
#: order of the blocks in the user turn (R1-Omni: "<video>\n<audio>\n{prompt}")
BLOCK_ORDER: tuple[str, ...] = ("video", "audio")

_ALIASES = {"both": ALL, "all": ALL, "av": ALL, "none": NONE, "text": NONE, "": NONE,
            "video": frozenset({"video"}), "audio": frozenset({"audio"})}  # fmt: skip


def parse_modalities(spec: str | Iterable[str] | None) -> frozenset[str]:
    """``"video,audio"`` | ``"both"`` | ``"video"`` | ``"audio"`` | ``"none"`` | iterable -> frozenset."""
    if spec is None:
        return NONE
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in _ALIASES:
            return _ALIASES[key]
        parts = [p.strip() for p in key.replace("+", ",").split(",") if p.strip()]
    else:
        parts = [str(p).strip().lower() for p in spec]
    bad = sorted(set(parts) - ALL)
    if bad:
        raise ValueError(f"unknown modality {bad} in {spec!r}; use 'video', 'audio', 'both' or 'none'")
    return frozenset(parts)


def available_modalities(media: Media) -> frozenset[str]:
    """The modalities a clip actually has (``Media.frames`` / ``Media.audio`` not None)."""
    return frozenset(m for m, x in (("video", media.frames), ("audio", media.audio)) if x is not None)


def per_clip_modalities(modalities, n: int) -> list[frozenset[str]]:
    """One modality set per clip: a single spec is broadcast; a list/tuple of sets is taken per clip."""
    if (
        isinstance(modalities, (list, tuple))
        and modalities
        and not all(isinstance(m, str) and m.strip().lower() in ALL for m in modalities)
    ):
        if len(modalities) != n:
            raise ValueError(f"got {len(modalities)} modality sets for {n} clips")
        return [parse_modalities(m) for m in modalities]
    return [parse_modalities(modalities)] * n


def keep_modalities(media: Media, keep: Iterable[str] | str) -> tuple[Media, frozenset[str]]:
    """``media`` with the modalities not in ``keep`` absent (set to None), and the modalities it then
    has (``keep`` within :func:`available_modalities`: a modality the clip lacks is never invented).

    This is how a modality is left out of the input (its block and tensors then absent in
    :func:`build_inputs`): attribution's ``drop`` strategy and modality dropout in training."""
    keep = parse_modalities(keep)
    have = available_modalities(media)
    removed = have - keep
    frames = None if "video" in removed else media.frames
    audio = None if "audio" in removed else media.audio
    return Media(frames=frames, audio=audio, sr=media.sr, clip_id=media.clip_id), keep & have


# --------------------------------------------------------------------------------------------- prompts


def conversation(
    modalities: frozenset[str], prompt: str = DEFAULT_PROMPT, system: str | None = None
) -> list[dict]:
    """Chat messages for one clip: the present blocks (video, audio) then the instruction text."""
    content = [{"type": m} for m in BLOCK_ORDER if m in modalities]
    content.append({"type": "text", "text": prompt})
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": content}]


def render_prompt(
    processor,
    modalities: frozenset[str],
    prompt: str = DEFAULT_PROMPT,
    add_generation_prompt: bool = True,
    system: str | None = None,
) -> str:
    """The prompt text (with one placeholder per block) written by the checkpoint's chat template."""
    template = getattr(processor, "chat_template", None) or processor.tokenizer.chat_template
    if template is None:
        raise ValueError(
            "the processor has no chat template (chat_template.jinja missing from the checkpoint)"
        )
    return processor.tokenizer.apply_chat_template(
        conversation(modalities, prompt, system),
        chat_template=template,
        tokenize=False,
        add_generation_prompt=add_generation_prompt,
    )


# --------------------------------------------------------------------------------------------- encoding


def _video_kwargs(processor) -> dict:
    vp = processor.video_processor
    size = vp.size
    kwargs = {"size": {"shortest_edge": size["shortest_edge"], "longest_edge": size["longest_edge"]}}
    valid = getattr(getattr(vp, "valid_kwargs", None), "__annotations__", {})
    if "cap_pixels_per_frame" in valid:
        kwargs["cap_pixels_per_frame"] = bool(getattr(vp, "cap_pixels_per_frame", None))
    if "do_sample_frames" in valid:
        kwargs["do_sample_frames"] = (
            False  # frames were already sampled at decode time (Qwen3-VL would resample)
        )
    kwargs["input_data_format"] = "channels_last"
    return kwargs


def _audio_kwargs(processor, audios: list[np.ndarray]) -> dict:
    fe = processor.feature_extractor
    longest = max(len(a) for a in audios)
    # one FFT window of zeros after the longest clip: every clip's valid mel frames then see the same
    # zero tail whatever the batch, and no clip is padded to Whisper's fixed 30 s
    return {
        "padding": "max_length",
        "max_length": int(min(fe.n_samples, longest + fe.n_fft)),
        "sampling_rate": fe.sampling_rate,
    }


def _check_media(processor, media: Media, mods: frozenset[str]) -> None:
    name = media.clip_id or "<unnamed clip>"
    if "video" in mods:
        f = media.frames
        if (
            not isinstance(f, np.ndarray)
            or f.ndim != 4
            or f.shape[-1] != 3
            or f.dtype != np.uint8
            or len(f) == 0
        ):
            got = f"{f.dtype} {f.shape}" if isinstance(f, np.ndarray) else type(f).__name__
            raise ValueError(f"clip {name}: frames must be uint8 (T, H, W, 3) with T >= 1, got {got}")
    if "audio" in mods:
        a = media.audio
        if not isinstance(a, np.ndarray) or a.ndim != 1:
            raise ValueError(
                f"clip {name}: audio must be a mono float32 array (n,), got {getattr(a, 'shape', a)}"
            )
        fe = processor.feature_extractor
        if media.sr != fe.sampling_rate:
            raise ValueError(
                f"clip {name}: audio at {media.sr} Hz but the feature extractor needs {fe.sampling_rate} Hz; "
                f"decode with DecodeConfig(sr={fe.sampling_rate})"
            )
        if len(a) < 3 * fe.hop_length + 1:
            raise ValueError(f"clip {name}: audio of {len(a)} samples is too short to give one audio token")


def encode(
    processor,
    media: Sequence[Media],
    modalities: Sequence[frozenset[str]],
    prompt: str = DEFAULT_PROMPT,
    assistant_ids: Sequence[Sequence[int]] | None = None,
    add_generation_prompt: bool = True,
    return_labels: bool = False,
    system: str | None = None,
) -> BatchFeature:
    """Processor call for clips with resolved modality sets (each within the clip's available ones).

    ``assistant_ids``: token ids appended after the prompt (the assistant turn); with
    ``return_labels`` only they are labelled (everything else -100).  Left padding throughout.
    """
    if len(media) != len(modalities):
        raise ValueError(f"{len(media)} clips but {len(modalities)} modality sets")
    if not media:
        raise ValueError("build_inputs needs at least one clip")
    for m, mods in zip(media, modalities):
        _check_media(processor, m, mods)
    texts = [render_prompt(processor, mods, prompt, add_generation_prompt, system) for mods in modalities]
    videos = [m.frames for m, mods in zip(media, modalities) if "video" in mods]
    audios = [np.asarray(m.audio, dtype=np.float32) for m, mods in zip(media, modalities) if "audio" in mods]
    kwargs: dict = {
        "text": texts,
        "return_tensors": "pt",
        "text_kwargs": {"padding": True, "padding_side": "left"},
    }
    if videos:
        kwargs["videos"] = videos
        kwargs["videos_kwargs"] = _video_kwargs(processor)
    if audios:
        kwargs["audio"] = audios
        kwargs["audio_kwargs"] = _audio_kwargs(processor, audios)
    enc = processor(**kwargs)
    if assistant_ids is None:
        if return_labels:
            raise ValueError("return_labels=True needs completions (the assistant text to label)")
        return enc
    if len(assistant_ids) != len(media):
        raise ValueError(f"{len(assistant_ids)} completions for {len(media)} clips")
    return _append_left_padded(enc, assistant_ids, processor.tokenizer.pad_token_id, return_labels)


def end_of_turn_id(tokenizer) -> int:
    """Id of ``<|im_end|>`` (Qwen's end of a chat turn), else the tokenizer's eos id."""
    tid = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if tid is None or tid == tokenizer.unk_token_id:
        tid = tokenizer.eos_token_id
    if tid is None:
        raise ValueError("the tokenizer has neither <|im_end|> nor an eos token")
    return int(tid)


def _append_left_padded(
    enc: BatchFeature, extra: Sequence[Sequence[int]], pad_id: int, labels: bool
) -> BatchFeature:
    ids, mask = enc["input_ids"], enc["attention_mask"]
    rows = [
        torch.cat([ids[i][mask[i].bool()], torch.as_tensor(list(e), dtype=ids.dtype)])
        for i, e in enumerate(extra)
    ]
    n_extra = [len(e) for e in extra]
    width = max(len(r) for r in rows)
    new_ids = torch.full((len(rows), width), pad_id, dtype=ids.dtype)
    new_mask = torch.zeros((len(rows), width), dtype=mask.dtype)
    new_labels = torch.full((len(rows), width), -100, dtype=ids.dtype)
    for i, r in enumerate(rows):
        new_ids[i, width - len(r) :] = r
        new_mask[i, width - len(r) :] = 1
        if n_extra[i]:
            new_labels[i, width - n_extra[i] :] = r[len(r) - n_extra[i] :]
    enc["input_ids"], enc["attention_mask"] = new_ids, new_mask
    if labels:
        enc["labels"] = new_labels
    return enc


def completion_ids(tokenizer, completions: Sequence[str], close_turn: bool = True) -> list[list[int]]:
    """Token ids of assistant texts appended after a prompt (``close_turn``: ended by ``<|im_end|>``)."""
    suffix = [end_of_turn_id(tokenizer)] if close_turn else []
    return [tokenizer(c, add_special_tokens=False)["input_ids"] + suffix for c in completions]


def build_inputs(
    processor,
    media: Sequence[Media],
    modalities: frozenset[str] | Sequence[frozenset[str]] | str = ALL,
    prompt: str = DEFAULT_PROMPT,
    completions: Sequence[str] | None = None,
    add_generation_prompt: bool = True,
    return_labels: bool = False,
    *,
    close_turn: bool = True,
    system: str | None = None,
) -> BatchFeature:
    """Left-padded model inputs for ``media`` with the chosen modality set(s).

    ``modalities``: one set for all clips or one per clip (a list of frozensets); a modality the clip
    lacks (``Media.audio is None``, e.g. decoded with ``missing_audio="keep"``) is left out for that clip.
    ``completions``: assistant texts appended after the prompt (SFT / teacher forcing); ``close_turn``
    ends each with the end-of-turn token (``<|im_end|>``) so the model learns to stop.  With
    ``return_labels`` the batch has ``labels``: the completion tokens, -100 elsewhere.
    Keys: input_ids, attention_mask and, when present in the batch, pixel_values_videos,
    video_grid_thw, video_second_per_grid, input_features, feature_attention_mask.
    """
    media = list(media)
    mods = [s & available_modalities(m) for s, m in zip(per_clip_modalities(modalities, len(media)), media)]
    assistant_ids = None
    if completions is not None:
        if isinstance(completions, str):
            raise TypeError("completions must be a sequence of strings (one per clip), not one string")
        if not add_generation_prompt:
            raise ValueError("completions follow the assistant header: use add_generation_prompt=True")
        assistant_ids = completion_ids(processor.tokenizer, completions, close_turn)
    return encode(processor, media, mods, prompt, assistant_ids, add_generation_prompt, return_labels, system)


# ------------------------------------------------------------------------------------ per-row media

VIDEO_KEYS = ("pixel_values_videos", "video_grid_thw", "video_second_per_grid")
AUDIO_KEYS = ("input_features", "feature_attention_mask")


def split_media_rows(batch, modalities: Sequence[frozenset]) -> list[tuple[list[int], dict]]:
    """Split a ``build_inputs`` batch into per-row ``(prompt_ids, media_tensors)``.

    Video tensors are flattened over patches, one ``video_grid_thw`` row per clip that has video;
    audio tensors have one row per clip that has audio; ``modalities[i]`` says which row has what.
    """
    ids, mask = batch["input_ids"], batch["attention_mask"]
    rows: list[tuple[list[int], dict]] = []
    v = a = offset = 0
    for r, mods in enumerate(modalities):
        media: dict[str, torch.Tensor] = {}
        if "video" in mods:
            n = int(batch["video_grid_thw"][v].prod())
            media["pixel_values_videos"] = batch["pixel_values_videos"][offset : offset + n]
            media["video_grid_thw"] = batch["video_grid_thw"][v : v + 1]
            if "video_second_per_grid" in batch:
                media["video_second_per_grid"] = batch["video_second_per_grid"][v : v + 1]
            offset, v = offset + n, v + 1
        if "audio" in mods:
            media["input_features"] = batch["input_features"][a : a + 1]
            media["feature_attention_mask"] = batch["feature_attention_mask"][a : a + 1]
            a += 1
        rows.append((ids[r][mask[r].bool()].tolist(), media))
    n_video = 0 if "pixel_values_videos" not in batch else batch["pixel_values_videos"].shape[0]
    n_audio = 0 if "input_features" not in batch else batch["input_features"].shape[0]
    if offset != n_video or a != n_audio:
        raise RuntimeError(
            f"build_inputs returned {n_video} video patches / {n_audio} audio rows, but the modalities "
            f"account for {offset} / {a}: the processor output and the modality sets disagree"
        )
    return rows


def collate_media(rows: Sequence[dict], device=None, dtype=None, distinct_video: bool = False) -> dict[str, torch.Tensor]:
    """Model keyword arguments for a batch of per-row media (audio features padded to the longest).

    ``distinct_video``: ``pixel_values_videos`` holds each distinct clip's patches once (rows name
    their clip by ``clip_key``), for a pass under ``clip_identity(..., compact_video=True)``.
    """
    out: dict[str, torch.Tensor] = {}
    videos = [r for r in rows if "pixel_values_videos" in r]
    if videos:
        for key in VIDEO_KEYS:
            if key == "pixel_values_videos" and distinct_video:
                from omnibench.model.encoders import distinct_videos

                out[key] = distinct_videos(videos)
            elif all(key in r for r in videos):
                out[key] = torch.cat([r[key] for r in videos])
    audios = [r for r in rows if "input_features" in r]
    if audios:
        width = max(r["input_features"].shape[-1] for r in audios)

        def pad(t):
            return torch.nn.functional.pad(t, (0, width - t.shape[-1]))

        out["input_features"] = torch.cat([pad(r["input_features"]) for r in audios])
        out["feature_attention_mask"] = torch.cat([pad(r["feature_attention_mask"]) for r in audios])
    for key, t in out.items():
        kw = {"device": device} if device is not None else {}
        if dtype is not None and t.is_floating_point():
            kw["dtype"] = dtype
        out[key] = t.to(**kw) if kw else t
    return out


class RowCache:
    """Processed clip rows (:func:`clip_row`) by key, kept up to ``max_bytes`` of tensors; past the budget a
    row is processed again each time it is asked for (the same result, only slower), so a large training
    set at real frame sizes (about 20 MB a clip at 16 frames of 336 px) cannot exhaust memory."""

    DEFAULT_BYTES = 4 << 30

    def __init__(self, max_bytes: int = DEFAULT_BYTES):
        self.max_bytes, self.bytes, self._rows = int(max_bytes), 0, {}

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key, make):
        row = self._rows.get(key)
        if row is None:
            row = make()
            size = sum(t.numel() * t.element_size() for t in row[1].values() if isinstance(t, torch.Tensor))
            if self.bytes + size <= self.max_bytes:
                self._rows[key] = row
                self.bytes += size
        return row


class ClipInputs:
    """Each clip's processor output computed once, collated per batch: for training loops that draw
    batches of the same clips again and again (perception pre-training runs the processor on 32 clips
    per step otherwise, about as long as the towers' forward and backward on the CPU).

    ``batch(idx, completions=None, return_labels=False)`` is ``build_inputs(processor, [media[i] for i
    in idx], modalities, prompt, completions, return_labels=return_labels)`` at every position the
    model reads: the same input ids, attention mask, labels, video patches, grids and audio features
    on each clip's own frames (an audio clip shorter than the batch's longest is padded with zeros
    past its end, where the feature mask is 0 and the audio tower does not look;
    ``tests/test_encoder_identity.py`` checks the equality and that the model's logits are the same)."""

    def __init__(self, processor, media: Sequence[Media], modalities=ALL, prompt: str = DEFAULT_PROMPT,
                 system: str | None = None, max_bytes: int = RowCache.DEFAULT_BYTES):
        self.processor, self.media, self.prompt, self.system = processor, list(media), prompt, system
        self.modalities = [s & available_modalities(m) for s, m in
                           zip(per_clip_modalities(modalities, len(self.media)), self.media)]
        self._rows = RowCache(max_bytes)

    def __len__(self) -> int:
        return len(self.media)

    def row(self, i: int) -> tuple[list[int], dict]:
        """Clip ``i``'s prompt ids and media tensors (processed on first use; kept while the budget allows)."""
        return self._rows.get(i, lambda: clip_row(self.processor, self.media[i], self.modalities[i], self.prompt,
                                                  self.system))

    def batch(self, idx: Iterable[int], completions: Sequence[str] | None = None, return_labels: bool = False,
              close_turn: bool = True) -> BatchFeature:
        return collate_rows(self.processor.tokenizer, [self.row(int(i)) for i in idx], completions, return_labels,
                            close_turn)


def collate_rows(tokenizer, rows: Sequence[tuple[list[int], dict]], completions: Sequence[str] | None = None,
                 return_labels: bool = False, close_turn: bool = True) -> BatchFeature:
    """A ``build_inputs`` batch from per-clip ``(prompt_ids, media tensors)`` rows (:func:`split_media_rows`
    of a clip's own processor output), left-padded, with ``completions`` appended as ``build_inputs`` does."""
    if not rows:
        raise ValueError("collate_rows needs at least one row")
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (p, _) in enumerate(rows):
        ids[r, width - len(p):] = torch.as_tensor(p, dtype=torch.long)
        mask[r, width - len(p):] = 1
    enc = BatchFeature({"input_ids": ids, "attention_mask": mask, **collate_media([m for _, m in rows])})
    if completions is None:
        if return_labels:
            raise ValueError("return_labels=True needs completions (the assistant text to label)")
        return enc
    if isinstance(completions, str) or len(completions) != len(rows):
        raise ValueError(f"expected one completion per row ({len(rows)}), got {completions!r:.80}")
    return _append_left_padded(enc, completion_ids(tokenizer, completions, close_turn), tokenizer.pad_token_id,
                               return_labels)


def clip_row(processor, media: Media, modalities: frozenset[str], prompt: str = DEFAULT_PROMPT,
             system: str | None = None) -> tuple[list[int], dict]:
    """One clip's ``(prompt_ids, media tensors)``: its processor output on its own, for :func:`collate_rows`."""
    mods = modalities & available_modalities(media)
    (row,) = split_media_rows(encode(processor, [media], [mods], prompt, system=system), [mods])
    return row
