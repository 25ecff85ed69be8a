"""The towers' batched chunk attention (omnibench.model.attention): bitwise the per-chunk loop of
transformers' sdpa path, in outputs and gradients, on both tiny architectures and on chunks of
mixed lengths; never written to config.json; errors on what it does not serve."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_media

from omnibench.model import ALL, build_inputs, load_model
from omnibench.model.attention import CHUNKED_SDPA, batch_tower_attention, chunked_sdpa, tower_attention
from omnibench.tiny import build_tiny

pytestmark = pytest.mark.usefixtures("one_thread")


def _logits_and_grads(model, batch):
    model.zero_grad()
    logits = model(**batch).logits
    (logits.float() ** 2).mean().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return logits.detach(), grads


@pytest.mark.parametrize("arch", ["qwen2_5_omni", "qwen3_omni"])
def test_batched_towers_give_the_per_chunk_outputs_and_gradients_bitwise(arch):
    model, processor = build_tiny(seed=0, arch=arch)
    assert set(tower_attention(model).values()) == {CHUNKED_SDPA}  # build_tiny switches them on
    # clips of two frame counts and two audio lengths: tower chunks of several lengths in one batch
    media = make_media(5, frames=[8, 8, 4, 8, 4], seconds=[1.0, 1.0, 0.6, 1.0, 0.6])
    batch = build_inputs(processor, media, [ALL] * 5, completions=["<answer>happy</answer>"] * 5)
    calls = []
    from transformers import AttentionInterface

    AttentionInterface.register(CHUNKED_SDPA, lambda *a, **k: calls.append(1) or chunked_sdpa(*a, **k))
    try:
        batched, g_batched = _logits_and_grads(model, batch)
    finally:
        AttentionInterface.register(CHUNKED_SDPA, chunked_sdpa)
    assert calls, "the towers did not go through chunked_sdpa"
    assert batch_tower_attention(model, False)  # back to transformers' per-chunk loop
    assert set(tower_attention(model).values()) == {"sdpa"}
    plain, g_plain = _logits_and_grads(model, batch)
    assert torch.equal(batched, plain)
    assert g_batched.keys() == g_plain.keys()
    assert any("visual" in n for n in g_plain) and any("audio_tower" in n for n in g_plain)
    for name in g_plain:
        assert torch.equal(g_batched[name], g_plain[name]), name


def test_chunked_sdpa_equals_one_call_per_chunk_for_mixed_lengths():
    gen = torch.Generator().manual_seed(0)
    lengths = [5, 5, 5, 3, 3, 7, 5]
    q, k, v = (torch.randn(1, 2, sum(lengths), 8, generator=gen) for _ in range(3))
    cu = torch.tensor([0, *np.cumsum(lengths)], dtype=torch.int32)
    out, _ = chunked_sdpa(None, q, k, v, scaling=8**-0.5, cu_seq_lens_q=cu, cu_seq_lens_k=cu)
    ref = torch.cat([torch.nn.functional.scaled_dot_product_attention(a, b, c, scale=8**-0.5).transpose(1, 2)
                     for a, b, c in zip(*(t.split(lengths, dim=2) for t in (q, k, v)))], dim=1)
    assert out.shape == (1, sum(lengths), 2, 8)
    assert torch.equal(out, ref)


def test_chunked_sdpa_rejects_what_it_does_not_serve():
    q = torch.zeros(1, 2, 6, 4)
    cu = torch.tensor([0, 3, 6])
    with pytest.raises(ValueError, match="causal"):
        chunked_sdpa(None, q, q, q, is_causal=True, cu_seq_lens_q=cu)
    with pytest.raises(ValueError, match="cover 5 tokens of 6"):
        chunked_sdpa(None, q, q, q, cu_seq_lens_q=torch.tensor([0, 2, 5]))
    with pytest.raises(ValueError, match="self-attention"):
        chunked_sdpa(None, q, q, q, cu_seq_lens_q=cu, cu_seq_lens_k=torch.tensor([0, 2, 6]))


def test_the_setting_is_not_saved_and_loading_switches_it_on_again(tmp_path):
    model, processor = build_tiny(seed=0)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert CHUNKED_SDPA not in (tmp_path / "config.json").read_text()
    loaded, _ = load_model(tmp_path)
    assert set(tower_attention(loaded).values()) == {CHUNKED_SDPA}
    eager, _ = load_model(tmp_path, attn_implementation="eager")
    assert set(tower_attention(eager).values()) == {"eager"}  # an explicit other choice is left alone


@pytest.mark.parametrize("arch", ["qwen2_5_omni", "qwen3_omni"])
def test_matmul_patch_embedding_is_the_convolution_up_to_rounding(arch):
    from omnibench.model.patch_embed import matmul_patch_embed, patch_embeds

    model, processor = build_tiny(seed=0, arch=arch)
    (embed,) = patch_embeds(model)
    assert "forward" in vars(embed)  # build_tiny switches it on
    batch = build_inputs(processor, make_media(3), [ALL] * 3, completions=["<answer>happy</answer>"] * 3)
    fast, g_fast = _logits_and_grads(model, batch)
    assert matmul_patch_embed(model, False) == 1 and "forward" not in vars(embed)
    assert matmul_patch_embed(model, False) == 0  # idempotent
    conv, g_conv = _logits_and_grads(model, batch)
    torch.testing.assert_close(fast, conv, rtol=1e-4, atol=1e-5)
    assert not torch.equal(g_fast[f"{_visual(model)}.patch_embed.proj.weight"], torch.zeros(1))
    for name in g_conv:
        torch.testing.assert_close(g_fast[name], g_conv[name], rtol=1e-3, atol=1e-6, msg=name)
    assert matmul_patch_embed(model) == 1


def _visual(model) -> str:
    return next(n.rsplit(".patch_embed", 1)[0] for n, _ in model.named_modules() if n.endswith("patch_embed"))
