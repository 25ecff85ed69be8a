"""Batched generation and teacher-forced label scoring for omni thinkers.

:func:`generate` decodes completions (greedy or sampled) for clips under any modality set.
:func:`score_labels` returns, per clip and candidate label, ``log p("<answer>label</answer>" |
prompt [+ prefix])`` — the quantity attribution and fast evaluation are built on.  The prompt (with
its video and audio) is run once per clip; its key/value cache is then repeated for the candidate
labels, whose few remaining tokens are scored in one extra batched step.

:func:`generate_with_shared_prefill` (and the context manager :func:`shared_prefill`, which makes a
model's ``generate`` use it) runs ``model.generate`` for rows that repeat prompts -- GRPO's G
completions of a clip -- with the prompt prefilled once per distinct prompt: the prefill's
key/value cache and M-RoPE offsets are then repeated for the rows, and decoding continues for all
rows from the prompt's last token. Greedy outputs are identical to plain ``generate``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch

from omnibench.data.media import Media
from omnibench.model.encoders import encoders_shared
from omnibench.model.inputs import (
    ALL,
    DEFAULT_PROMPT,
    available_modalities,
    encode,
    end_of_turn_id,
    per_clip_modalities,
)
from omnibench.model.parts import thinker


def _batches(n: int, size: int):
    if size < 1:
        raise ValueError(f"batch_size must be >= 1, got {size}")
    for start in range(0, n, size):
        yield range(start, min(start + size, n))


def _progress(it, enabled: bool, total: int, desc: str):
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, total=total, desc=desc)


def model_device(model) -> torch.device:
    """Where inputs go: the token embedding's device (right for single-device and sharded models)."""
    try:
        return model.get_input_embeddings().weight.device
    except (AttributeError, NotImplementedError):
        return next(model.parameters()).device


def _rope_deltas(model) -> torch.Tensor | None:
    """The M-RoPE offsets the thinker (:func:`omnibench.model.parts.thinker`, through any wrapper) stored
    during the last prompt forward; None for a model without one."""
    inner = thinker(model)
    return getattr(inner, "rope_deltas", None)


def to_device(batch, device: torch.device, dtype: torch.dtype | None = None):
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device)
            if (
                dtype is not None
                and v.is_floating_point()
                and k in ("pixel_values_videos", "pixel_values", "input_features")
            ):
                v = v.to(dtype)
        out[k] = v
    return out


def _resolve(media: Sequence[Media], modalities) -> list[frozenset[str]]:
    return [s & available_modalities(m) for s, m in zip(per_clip_modalities(modalities, len(media)), media)]


@torch.no_grad()
def generate(
    model,
    processor,
    media: Sequence[Media],
    modalities=ALL,
    prompt: str = DEFAULT_PROMPT,
    max_new_tokens: int = 48,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    num_return_sequences: int = 1,
    batch_size: int = 8,
    progress: bool = False,
    *,
    seed: int | None = None,
    system: str | None = None,
) -> list[str]:
    """Decoded completions, ``len(media) * num_return_sequences`` strings grouped per clip.

    ``batch_size`` counts clips; each clip's ``num_return_sequences`` rows run in the same batch
    (the clip's inputs are repeated, since HF generation cannot expand video patch tensors).
    Special tokens are stripped; ``<think>``/``<answer>`` tags are kept.  ``seed`` seeds sampling.
    """
    media = list(media)
    mods = _resolve(media, modalities)
    tok = processor.tokenizer
    device, dtype = model_device(model), model.dtype
    eos = sorted({end_of_turn_id(tok), *([tok.eos_token_id] if tok.eos_token_id is not None else [])})
    gen_kwargs = {
        "max_new_tokens": max_new_tokens,
        "do_sample": do_sample,
        "eos_token_id": eos,
        "pad_token_id": tok.pad_token_id,
    }
    if do_sample:
        gen_kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
    if seed is not None:
        torch.manual_seed(seed)
    was_training = model.training
    model.eval()
    texts: list[str] = []
    n_batches = -(-len(media) // max(batch_size, 1))
    # repeated rows: encode each clip once, not num_return_sequences times (same outputs)
    shared = encoders_shared(model) if num_return_sequences > 1 else contextlib.nullcontext()
    try:
        with shared:
            for idx in _progress(_batches(len(media), batch_size), progress, n_batches, "generate"):
                rows = [i for i in idx for _ in range(num_return_sequences)]
                batch = encode(
                    processor, [media[i] for i in rows], [mods[i] for i in rows], prompt, system=system
                )
                batch = to_device(batch, device, dtype)
                out = model.generate(**batch, **gen_kwargs)
                new = out[:, batch["input_ids"].shape[1] :]
                texts += tok.batch_decode(new, skip_special_tokens=True)
    finally:
        model.train(was_training)
    return texts


# --------------------------------------------------------------------------------------------- shared prefill


@torch.no_grad()
def generate_with_shared_prefill(model, input_ids, attention_mask, owner: Sequence[int], prefill_fields: dict,
                                 fields: dict | None = None, prefill_context=None, generate=None, **kwargs):
    """``model.generate(input_ids, attention_mask, **fields, **kwargs)`` with each distinct prompt
    prefilled once.

    ``owner[i]``: the index of row i's prompt among the distinct prompts (numbered in order of first
    appearance); rows with the same owner must have the same ids and mask (checked: otherwise plain
    ``generate``). ``prefill_fields``: the media keyword arguments of the distinct prompts (one row
    each, in owner order); ``fields``: those of all rows, used only by the plain fallback.
    ``prefill_context``: a callable returning the context the prefill forward runs in (e.g.
    :func:`~omnibench.model.encoders.clip_identity` for the distinct rows). ``generate``: the
    function to continue with (default ``model.generate``; :func:`shared_prefill` passes the
    class's). The prompt minus its last token is run once per distinct prompt; its cache and the
    thinker's ``rope_deltas`` are repeated to the rows, and generation continues from the last
    prompt token (which carries no media), so decoding sees exactly the state of a plain call.
    """
    generate = generate or model.generate
    fields = dict(fields or {})
    owner_t = torch.as_tensor(list(owner), dtype=torch.long, device=input_ids.device)
    n = int(owner_t.max()) + 1 if owner_t.numel() else 0
    first: dict[int, int] = {}
    for i, o in enumerate(owner):
        first.setdefault(int(o), i)
    reps = [first[j] for j in range(n)] if len(first) == n else None
    inner = thinker(model)  # holds rope_deltas, repeated to the rows below
    plain = (reps is None or n == input_ids.shape[0] or input_ids.shape[1] < 2 or inner is None
             or "past_key_values" in kwargs)
    if not plain:
        ids_r, mask_r = input_ids[reps], attention_mask[reps]
        plain = not (torch.equal(ids_r[owner_t], input_ids) and torch.equal(mask_r[owner_t], attention_mask))
    if plain:
        return generate(input_ids=input_ids, attention_mask=attention_mask, **fields, **kwargs)
    device = input_ids.device
    media = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in prefill_fields.items()}
    ctx = prefill_context() if prefill_context is not None else contextlib.nullcontext()
    with ctx:
        out = model(input_ids=ids_r[:, :-1], attention_mask=mask_r[:, :-1], use_cache=True, **media)
    cache = out.past_key_values
    cache.batch_select_indices(owner_t)
    inner.rope_deltas = inner.rope_deltas[owner_t]
    return generate(input_ids=input_ids, attention_mask=attention_mask, past_key_values=cache, **kwargs)


@contextlib.contextmanager
def shared_prefill(model, owner: Sequence[int], prefill_fields: dict, media_keys: Sequence[str] = (),
                   prefill_context=None):
    """Within the block, ``model.generate(input_ids=..., attention_mask=..., **media, **kw)`` (as a
    trainer calls it) prefills each distinct prompt once (:func:`generate_with_shared_prefill`);
    ``media_keys``: the keyword arguments that are media (taken out of the continued call)."""
    original = type(model).generate.__get__(model)
    media_keys = set(media_keys)

    def generate(input_ids=None, attention_mask=None, **kwargs):
        fields = {k: kwargs.pop(k) for k in list(kwargs) if k in media_keys}
        return generate_with_shared_prefill(model, input_ids, attention_mask, owner, prefill_fields, fields,
                                            prefill_context=prefill_context, generate=original, **kwargs)

    model.generate = generate
    try:
        yield model
    finally:
        del model.generate


# --------------------------------------------------------------------------------------------- scoring


def _common_prefix(seqs: Sequence[Sequence[int]]) -> int:
    n = min(len(s) for s in seqs)
    for j in range(n):
        if any(s[j] != seqs[0][j] for s in seqs):
            return j
    return n


def _continuations(tok, labels: Sequence[str], prefix: str) -> tuple[int, list[list[int]]]:
    """Token ids of ``prefix + <answer>label</answer>`` per label and the number of prefix tokens in them."""
    full = [
        tok(prefix + "<answer>" + label + "</answer>", add_special_tokens=False)["input_ids"]
        for label in labels
    ]
    prefix_ids = tok(prefix, add_special_tokens=False)["input_ids"] if prefix else []
    k = 0
    while k < len(prefix_ids) and all(k < len(f) and f[k] == prefix_ids[k] for f in full):
        k += 1
    return k, full


@torch.no_grad()
def score_labels(
    model,
    processor,
    media: Sequence[Media],
    modalities=ALL,
    labels: Sequence[str] = (),
    prompt: str = DEFAULT_PROMPT,
    prefix: str | Sequence[str] | None = None,
    batch_size: int = 8,
    *,
    system: str | None = None,
) -> np.ndarray:
    """``log p("<answer>{label}</answer>" | prompt [+ prefix])`` per clip and label, shape (n_clips, n_labels).

    Teacher-forced: the sum of the log-probabilities of the answer tokens after the assistant header
    and the optional ``prefix`` (str for all clips, or one per clip), e.g. a generated ``<think>…</think>``.
    The shared part (prompt, prefix, ``<answer>`` and any common label tokens) runs once per clip; the
    cache is then repeated over the labels for the remaining tokens.  float64 array.
    """
    media = list(media)
    labels = list(labels)
    if not labels:
        raise ValueError("score_labels needs at least one label")
    if isinstance(prefix, str) or prefix is None:
        prefixes = [prefix or ""] * len(media)
    else:
        prefixes = [p or "" for p in prefix]
        if len(prefixes) != len(media):
            raise ValueError(f"{len(prefixes)} prefixes for {len(media)} clips")
    mods = _resolve(media, modalities)
    tok = processor.tokenizer
    device, dtype = model_device(model), model.dtype
    n_lab = len(labels)
    scores = np.zeros((len(media), n_lab), dtype=np.float64)
    cont_cache: dict[str, tuple[int, list[list[int]]]] = {}
    was_training = model.training
    model.eval()
    try:
        for idx in _batches(len(media), batch_size):
            idx = list(idx)
            plans = []
            for i in idx:
                if prefixes[i] not in cont_cache:
                    cont_cache[prefixes[i]] = _continuations(tok, labels, prefixes[i])
                k, full = cont_cache[prefixes[i]]
                shared = _common_prefix(full)
                if shared == min(len(f) for f in full):  # a label's ids are a prefix of another's
                    shared -= 1
                plans.append((k, shared, full))
            # 1) prompt + shared assistant tokens, once per clip
            batch = encode(
                processor, [media[i] for i in idx], [mods[i] for i in idx], prompt,
                assistant_ids=[full[0][:shared] for _, shared, full in plans], system=system,
            )  # fmt: skip
            batch = to_device(batch, device, dtype)
            out = model(**batch, use_cache=True)
            logp = torch.log_softmax(out.logits.float(), dim=-1)
            ids, mask = batch["input_ids"], batch["attention_mask"]
            width = ids.shape[1]
            base = torch.zeros(len(idx), dtype=torch.float64)
            for r, (k, shared, _) in enumerate(plans):
                # shared tokens after the prefix: positions width-shared+k .. width-1 are scored
                for j in range(k, shared):
                    pos = width - shared + j
                    base[r] += logp[r, pos - 1, ids[r, pos]].item()
            last = logp[:, -1, :]  # distribution of the first label-specific token
            # 2) label-specific tails: repeat the cache n_lab times, feed all but the last tail token
            tails = [[f[shared:] for f in full] for _, shared, full in plans]
            longest = max(len(t) for row in tails for t in row)
            tail_logp = None
            if longest > 1:
                cache = out.past_key_values
                cache.batch_repeat_interleave(n_lab)
                steps = longest - 1
                inp = torch.full((len(idx) * n_lab, steps), tok.pad_token_id, dtype=ids.dtype, device=device)
                tmask = torch.zeros_like(inp)
                for r in range(len(idx)):
                    for li, t in enumerate(tails[r]):
                        feed = t[:-1]
                        if feed:
                            inp[r * n_lab + li, : len(feed)] = torch.as_tensor(feed, device=device)
                            tmask[r * n_lab + li, : len(feed)] = 1
                full_mask = torch.cat([mask.repeat_interleave(n_lab, dim=0), tmask], dim=1)
                deltas = _rope_deltas(model)
                if deltas is None:
                    deltas = torch.zeros(len(idx), 1, dtype=torch.long, device=device)
                start = mask.sum(-1, keepdim=True) + deltas.to(device).view(len(idx), 1)
                pos = start.repeat_interleave(n_lab, dim=0) + torch.arange(steps, device=device)
                pos = pos.unsqueeze(0).expand(3, -1, -1)
                out2 = model(
                    input_ids=inp,
                    attention_mask=full_mask,
                    position_ids=pos,
                    past_key_values=cache,
                    use_cache=True,
                )
                tail_logp = torch.log_softmax(out2.logits.float(), dim=-1)
            for r, i in enumerate(idx):
                for li, t in enumerate(tails[r]):
                    s = base[r].item()
                    if t:
                        s += last[r, t[0]].item()
                    for j in range(1, len(t)):
                        s += tail_logp[r * n_lab + li, j - 1, t[j]].item()
                    scores[i, li] = s
    finally:
        model.train(was_training)
    return scores
