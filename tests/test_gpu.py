"""CUDA checks (marker ``gpu``; skipped without a CUDA device): the model layer and a GRPO step on the GPU.

Run by benchmarks/gpu_check.sh on a lent GPU machine (``pytest -m gpu tests/test_gpu.py``).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import make_media

from omnibench.labels import DFEW7
from omnibench.model import ALL, build_inputs, generate, score_labels
from omnibench.model.encoders import encoders_shared
from omnibench.model.generation import to_device

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_cuda_scores_match_the_cpu_and_bf16_stays_close(tiny):
    model, processor = copy.deepcopy(tiny[0]), tiny[1]
    media = make_media(4, size=112, seconds=1.5)
    cpu = score_labels(model, processor, media, ALL, DFEW7)
    model.to("cuda")
    gpu = score_labels(model, processor, media, ALL, DFEW7)
    assert np.abs(cpu - gpu).max() < 2e-2  # cuDNN may run the patch convolution in TF32
    model.to(torch.bfloat16)
    bf16 = score_labels(model, processor, media, ALL, DFEW7)
    assert np.isfinite(bf16).all() and np.abs(cpu - bf16).max() < 1.0
    texts = generate(model, processor, media, ALL, max_new_tokens=8, do_sample=True, num_return_sequences=2, seed=0)
    assert len(texts) == 8


def test_shared_encoders_on_cuda_bf16(tiny):
    model, processor = copy.deepcopy(tiny[0]), tiny[1]
    model.to("cuda", torch.bfloat16).eval()
    media = make_media(2, size=112, seconds=1.5)
    batch = build_inputs(processor, [media[i] for i in (0, 0, 0, 1, 1, 1)], ALL)
    batch = to_device(batch, torch.device("cuda"), torch.bfloat16)  # media tensors in bf16, as generate() does
    with torch.no_grad():
        plain = model(**batch).logits.float()
        with encoders_shared(model):
            shared = model(**batch).logits.float()
    assert torch.isfinite(plain).all()
    assert (plain - shared).abs().max() < 0.05 * plain.abs().max()


def test_grpo_step_on_cuda_in_bf16_moves_every_part(tiny, tmp_path):
    from omnibench.data.manifest import Clip
    from omnibench.grpo import GRPORecipe, build_trainer
    from omnibench.recipes import MediaStore, load_recipe
    from omnibench.rewards import REWARDS, register

    if "gpu_test_length" not in REWARDS:
        register("gpu_test_length")(lambda completions, **kw: [float(len(c[0]["content"])) for c in completions])
    media = make_media(2, size=112, seconds=1.5, as_dict=True)
    clips = [Clip(id=c, video=f"{c}.mp4", label="happy", split="train") for c in media]
    recipe = load_recipe(GRPORecipe, {"out": str(tmp_path / "run"), "max_steps": 1, "num_generations": 4,
                                      "per_device_train_batch_size": 8, "max_completion_length": 12,
                                      "learning_rate": 1e-2, "beta": 0.04, "bf16": True, "progress": False,
                                      "rewards": {"gpu_test_length": 1.0}})
    trainer = build_trainer(recipe, copy.deepcopy(tiny[0]), tiny[1], MediaStore.from_media(media), clips)
    before = {n: p.detach().float().cpu().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    assert next(trainer.model.parameters()).is_cuda and trainer.args.bf16
    for part in ("language_model", "visual", "audio_tower"):
        assert any(not torch.equal(before[n], p.detach().float().cpu())
                   for n, p in trainer.model.named_parameters() if part in n), part
    loss = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    assert loss and all(np.isfinite(loss))
