"""3-D (M-RoPE) position ids computed once per clip, for batches whose rows repeat clips.

Qwen2.5-Omni's thinker computes a row's position ids in ``get_rope_index``, a Python loop over the
rows of the batch and over each row's media blocks. In a GRPO batch the G rows of a group share one
prompt (the same clip, the same media blocks), and their completions are text, whose positions just
continue from the prompt's last one. :func:`batch_position_ids` therefore runs ``get_rope_index`` on
one row per distinct clip, for the prompt only, and builds every row from it; ``cache`` keeps each
clip's prompt positions across the passes of a step (the reference and the loss pass). The result
is the model's own at every attended position, and also at the padded ones (where the model writes 1):
``tests/test_encoder_identity.py`` compares it with ``get_rope_index`` on the whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from omnibench.model.parts import thinker


def rope_module(model):
    """The module of ``model`` (through DDP / PEFT / accelerate wrappers) that computes its M-RoPE
    position ids (``get_rope_index``): its thinker (:func:`omnibench.model.parts.thinker`), or None
    when the model has none (a text-only model)."""
    inner = thinker(model)
    if inner is not None and hasattr(inner, "get_rope_index") and hasattr(inner, "compute_3d_position_ids"):
        return inner
    return None


def prompt_positions(rope, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, media: dict) -> torch.Tensor:
    """(3, n) position ids of one prompt's ``n`` attended tokens (``prompt_ids`` 1-D, its ``media`` the
    model keyword arguments of the row's video/audio blocks)."""
    fam = media.get("feature_attention_mask")
    pos, _ = rope.get_rope_index(
        prompt_ids[None],
        None,
        media.get("video_grid_thw"),
        prompt_mask[None],
        False,
        fam.sum(1) if fam is not None else None,
        media.get("video_second_per_grid"),
    )
    return pos[:, 0, prompt_mask.bool()]


def batch_position_ids(rope, input_ids: torch.Tensor, attention_mask: torch.Tensor, media: Sequence[dict],
                       prompt_width: int, cache: dict | None = None) -> torch.Tensor:
    """(3, rows, length) position ids of prompt + completion rows; ``input_ids[:, :prompt_width]`` are the
    prompts (each row's media in ``media``, naming its clip as ``clip_key``), the rest text completions.

    A clip's prompt positions are computed once (and kept in ``cache``, keyed by clip, media blocks
    and prompt length, when given); a completion's attended tokens continue from its prompt's last position."""
    rows, length = input_ids.shape
    out = torch.ones(3, rows, length, dtype=input_ids.dtype, device=input_ids.device)
    prompt_mask = attention_mask[:, :prompt_width].bool()
    comp_mask = attention_mask[:, prompt_width:]
    comp_steps = comp_mask.long().cumsum(-1) - 1
    local: dict = {}
    for i in range(rows):
        blocks = tuple(sorted(k for k in media[i] if k != "clip_key"))  # which media the prompt holds
        key = (media[i].get("clip_key"), blocks, int(prompt_mask[i].sum()))
        store = cache if cache is not None and key[0] is not None else local
        pos = store.get(key) if key[0] is not None else None
        if pos is None:
            pos = prompt_positions(rope, input_ids[i, :prompt_width], prompt_mask[i], media[i]).to(out.device)
            if key[0] is not None:
                store[key] = pos
        out[:, i, :prompt_width][:, prompt_mask[i]] = pos
        start = pos[0, -1] + 1 if pos.shape[1] else 0
        comp = torch.where(comp_mask[i].bool(), comp_steps[i] + start, torch.ones_like(comp_steps[i]))
        out[:, i, prompt_width:] = comp
    return out
