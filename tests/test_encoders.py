"""Encoder sharing (omnibench.model.encoders): same outputs, log-probs and gradients, fewer encoder rows."""

from __future__ import annotations

import copy

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")
import torch
from conftest import make_media

from omnibench.model import ALL, build_inputs, generate
from omnibench.model.encoders import encoders_are_shared, encoders_shared, share_encoders
from omnibench.tiny import build_tiny

VIDEO, AUDIO = frozenset({"video"}), frozenset({"audio"})


def _grouped_batch(processor):
    """Rows as GRPO builds them: each clip repeated, mixed modality sets, one clip of another length."""
    media = make_media(2) + make_media(1, seed=5, frames=4, seconds=0.6)
    rows = [media[i] for i in (0, 0, 0, 1, 1, 2, 2, 0)]
    mods = [ALL, ALL, ALL, VIDEO, VIDEO, AUDIO, ALL, ALL]
    return build_inputs(processor, rows, mods, completions=["<answer>happy</answer>"] * len(rows),
                        return_labels=True)


class EncoderRows:
    """Counts the videos and audios the towers actually encode."""

    def __init__(self, model):
        self.videos = self.audios = 0
        inner = model.model
        self.handles = [
            inner.visual.register_forward_pre_hook(self._video, with_kwargs=True),
            inner.audio_tower.register_forward_pre_hook(self._audio, with_kwargs=True),
        ]

    def _video(self, module, args, kwargs):
        self.videos += int(kwargs["grid_thw"].shape[0])

    def _audio(self, module, args, kwargs):
        self.audios += int(kwargs["feature_lens"].shape[0])

    def remove(self):
        for h in self.handles:
            h.remove()


def test_shared_forward_equals_unshared_and_encodes_each_clip_once(tiny):
    model, processor = copy.deepcopy(tiny[0]), tiny[1]
    batch = _grouped_batch(processor)
    model.eval()
    counter = EncoderRows(model)
    with torch.no_grad():
        plain = model(**batch).logits
        assert (counter.videos, counter.audios) == (7, 6)
        counter.videos = counter.audios = 0
        with encoders_shared(model):
            shared = model(**batch).logits
        # distinct: videos of clip 0, clip 1, clip 2; audios of clip 0 and clip 2
        assert (counter.videos, counter.audios) == (3, 2)
    counter.remove()
    assert torch.allclose(plain, shared, atol=1e-6, rtol=0)
    assert not encoders_are_shared(model)


def test_shared_gradients_equal_unshared(tiny):
    batch = _grouped_batch(tiny[1])
    grads = []
    for shared in (False, True):
        model = copy.deepcopy(tiny[0])
        model.train()
        share_encoders(model, shared)
        model(**batch).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    plain, shared = grads
    assert plain.keys() == shared.keys()
    assert any("visual" in n for n in plain) and any("audio_tower" in n for n in plain)
    for name in plain:
        assert torch.allclose(plain[name], shared[name], atol=1e-6, rtol=1e-4), name


def test_sampled_group_generation_is_unchanged(tiny):
    model, processor = copy.deepcopy(tiny[0]), tiny[1]
    media = make_media(2)
    batch = build_inputs(processor, [media[i] for i in (0, 0, 0, 1, 1, 1)], ALL)
    tok = processor.tokenizer
    kw = {"max_new_tokens": 8, "do_sample": True, "top_k": 0, "pad_token_id": tok.pad_token_id}
    model.eval()
    outs = []
    for shared in (False, True):
        torch.manual_seed(7)
        with torch.no_grad(), encoders_shared(model, shared):
            outs.append(model.generate(**batch, **kw))
    assert torch.equal(outs[0], outs[1])
    # generate() shares for num_return_sequences > 1 and leaves the model as it found it
    texts = generate(model, processor, media, ALL, max_new_tokens=8, do_sample=True, num_return_sequences=3, seed=7)
    assert len(texts) == 6 and not encoders_are_shared(model)


def test_switching_off_restores_the_class_methods_and_copies_bind_to_themselves(tiny):
    model = copy.deepcopy(tiny[0])
    assert share_encoders(model) is True and encoders_are_shared(model)
    assert share_encoders(model) is True  # idempotent
    copied = copy.deepcopy(model)  # e.g. GRPO's reference model
    assert encoders_are_shared(copied)
    assert copied.model.get_video_features.__self__ is copied.model
    assert copied.model.get_audio_features.__self__ is copied.model
    share_encoders(model, False)
    assert not encoders_are_shared(model)
    assert "get_video_features" not in vars(model.model) and "get_audio_features" not in vars(model.model)
    assert encoders_are_shared(copied)


def test_grpo_completion_logprobs_equal_with_and_without_sharing(tiny, tmp_path):
    from omnibench.data.manifest import Clip
    from omnibench.grpo import GRPORecipe, build_trainer
    from omnibench.recipes import MediaStore, load_recipe

    media = make_media(2, as_dict=True)
    clips = [Clip(id=c, video=f"{c}.mp4", label="happy", split="train") for c in media]
    recipe = load_recipe(GRPORecipe, {"out": str(tmp_path / "run"), "max_steps": 1, "num_generations": 2,
                                      "per_device_train_batch_size": 4, "beta": 0.0, "progress": False,
                                      "threads": 1})
    trainer = build_trainer(recipe, copy.deepcopy(tiny[0]), tiny[1], MediaStore.from_media(media), clips)
    ids = ["c0", "c0", "c0", "c1", "c1"]
    texts = ["<think>smiling mouth</think><answer>happy</answer>"] * 3 + ["<answer>sad</answer>"] * 2
    share_encoders(trainer.model, False)
    plain = trainer.completion_logps(ids, texts)
    share_encoders(trainer.model, True)
    shared = trainer.completion_logps(ids, texts)
    for a, b in zip(plain, shared):
        assert torch.allclose(a, b, atol=1e-6, rtol=0)


def test_models_without_the_qwen2_5_thinker_are_left_alone():
    model, _ = build_tiny(seed=0, arch="qwen3_omni")
    assert share_encoders(model) is False
    assert not encoders_are_shared(model)
    assert share_encoders(torch.nn.Linear(2, 2)) is False
