"""The towers' attention in one call per run of equal-length chunks, not one call per chunk.

The vision and audio towers of Qwen2.5-Omni and Qwen3-Omni pack every frame (vision: each temporal
patch of each clip, and each window) and every audio chunk of a batch into one sequence and attend
within each chunk only (``cu_seqlens`` marks the chunks). With ``sdpa`` or ``eager`` transformers
splits the sequence and calls attention once per chunk: a batch of 32 tiny-model clips makes 160
calls per tower layer on 64-token chunks, and on two CPU cores those calls were about half of a
perception pre-training step (``torch.profiler``: ``_scaled_dot_product_flash_attention_for_cpu``
forward and backward 48% of self CPU time).

:func:`batch_tower_attention` routes the towers to :func:`chunked_sdpa` instead: transformers hands
the whole packed sequence and ``cu_seqlens`` to an attention function whose name contains "flash"
(its variable-length branch), and :func:`chunked_sdpa` reshapes each run of consecutive chunks of
one length into a batch and calls ``scaled_dot_product_attention`` once per run. Each chunk still
attends only to itself, through the same kernel: outputs and gradients are bitwise those of the
per-chunk loop (``tests/test_attention.py`` checks both towers of both architectures).

Only towers set to ``sdpa`` are switched; ``flash_attention_2`` (which already takes the packed
sequence) and ``eager`` are left alone. The setting is not written to ``config.json``.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface

from omnibench.model.parts import towers

#: the attention-function name of the towers' batched chunks ("flash" in it selects transformers'
#: packed-sequence branch; the function itself is plain SDPA)
CHUNKED_SDPA = "omnibench_flash_chunked_sdpa"


def chunked_sdpa(module, query, key, value, attention_mask=None, scaling=None, dropout=0.0, cu_seq_lens_q=None,
                 cu_seq_lens_k=None, is_causal=False, **_):
    """Attention within each ``cu_seq_lens_q`` chunk of ``query/key/value`` (1, heads, tokens, head_dim);
    returns ``(output (1, tokens, heads, head_dim), None)`` as transformers' packed attention does."""
    if attention_mask is not None or is_causal:
        raise ValueError("chunked_sdpa serves the towers' bidirectional chunk attention (no mask, not causal)")
    if query.shape[0] != 1:
        raise ValueError(f"chunked_sdpa expects one packed sequence, got a batch of {query.shape[0]}")
    heads, total, dim = query.shape[1:]
    if cu_seq_lens_q is None:
        lengths = [total]
    else:
        if (cu_seq_lens_k is not None and cu_seq_lens_k is not cu_seq_lens_q  # the towers pass one tensor for both
                and cu_seq_lens_k.tolist() != cu_seq_lens_q.tolist()):
            raise ValueError("chunked_sdpa: query and key chunks differ (self-attention only)")
        lengths = (cu_seq_lens_q[1:] - cu_seq_lens_q[:-1]).tolist()
    if sum(lengths) != total:
        raise ValueError(f"chunked_sdpa: chunks cover {sum(lengths)} tokens of {total}")
    outs, start, i = [], 0, 0
    while i < len(lengths):
        j = i
        while j < len(lengths) and lengths[j] == lengths[i]:
            j += 1
        n, length = j - i, lengths[i]
        if length:
            span = slice(start, start + n * length)
            q, k, v = (t[0, :, span].reshape(heads, n, length, dim).transpose(0, 1) for t in (query, key, value))
            out = torch.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=dropout, scale=scaling)
            outs.append(out.transpose(1, 2).reshape(1, n * length, heads, dim))
        start += n * length
        i = j
    return (torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]), None


AttentionInterface.register(CHUNKED_SDPA, chunked_sdpa)


def batch_tower_attention(model, enable: bool = True) -> list[str]:
    """Switch ``model``'s towers (:func:`omnibench.model.parts.towers`, through any wrapper) from per-chunk
    ``sdpa`` to :func:`chunked_sdpa` (``enable=False``: back); returns the towers switched (class names).
    Idempotent; other attention settings are left as they are."""
    changed = []
    old, new = ("sdpa", CHUNKED_SDPA) if enable else (CHUNKED_SDPA, "sdpa")
    for tower in towers(model):
        if getattr(tower.config, "_attn_implementation", None) == old:
            tower.config._attn_implementation = new
            changed.append(type(tower).__name__)
    return changed


def tower_attention(model) -> dict[str, str | None]:
    """The attention implementation of each tower (class name -> name)."""
    return {type(t).__name__: getattr(t.config, "_attn_implementation", None) for t in towers(model)}
