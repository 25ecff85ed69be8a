"""The vision towers' patch embedding as one matrix product instead of a 3-D convolution.

Qwen2.5-Omni's and Qwen3-Omni's vision towers embed each (temporal x spatial) patch with a
``Conv3d`` whose kernel is its stride, on input already cut into patches: every output is one dot
product of a flattened patch with a flattened filter, i.e. ``patches @ weight.view(out, -1).T``.
On the CPU the convolution (oneDNN) was the largest single cost of the tiny model's vision step:
``torch.profiler`` gave ``convolution_backward`` 29% and ``mkldnn_convolution`` 14% of self CPU
time of a perception pre-training step's vision forward and backward (2 AMD EPYC cores,
2026-12-02); with the matrix product a whole perception step of 32 clips is 1.25x faster
(``benchmarks/bench_tower_attention.py --feature patch_embed``, ``benchmarks/results/patch_embed.json``).

:func:`matmul_patch_embed` swaps the patch embedding's ``forward`` on the module (the weights stay
the ``Conv3d``'s, so checkpoints load and save unchanged). The result is the convolution's up to
float rounding (summation order differs; ``tests/test_attention.py`` checks closeness and equal
gradients to the same tolerance), not bitwise.
"""

from __future__ import annotations

import types

import torch

__all__ = ["matmul_patch_embed", "patch_embeds"]


def _matmul_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
    weight = self.proj.weight
    flat = weight.reshape(weight.shape[0], -1)
    return torch.nn.functional.linear(hidden_states.reshape(-1, flat.shape[1]).to(weight.dtype), flat, self.proj.bias)


def patch_embeds(model) -> list[torch.nn.Module]:
    """The modules of ``model`` that embed patches with a stride-equals-kernel ``Conv3d`` ``proj``."""
    out = []
    for module in model.modules():
        conv = getattr(module, "proj", None)
        if (isinstance(conv, torch.nn.Conv3d) and tuple(conv.kernel_size) == tuple(conv.stride)
                and tuple(conv.padding) == (0, 0, 0) and tuple(conv.dilation) == (1, 1, 1) and conv.groups == 1):
            out.append(module)
    return out


def matmul_patch_embed(model, enable: bool = True) -> int:
    """Route ``model``'s patch embeddings through :func:`_matmul_forward` (``enable=False``: back to the
    convolution). Returns how many modules were switched; idempotent."""
    changed = 0
    for module in patch_embeds(model):
        patched = "forward" in vars(module)
        if enable and not patched:
            module.forward = types.MethodType(_matmul_forward, module)
            changed += 1
        elif not enable and patched:
            del module.forward
            changed += 1
    return changed
