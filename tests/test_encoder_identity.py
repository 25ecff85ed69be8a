"""Encoder sharing by clip identity and frozen-tower reuse (omnibench.model.encoders): same logits and
gradients as the plain model, no tensor comparison when the rows are named, one encoder pass per
distinct clip per GRPO step when the towers are frozen, and a reference model that shares them."""

from __future__ import annotations

import copy

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")
import torch
from conftest import make_media

from omnibench.model import ALL, build_inputs
from omnibench.model.encoders import (
    EncoderCache,
    clip_identity,
    distinct_videos,
    encoders_shared,
    reference_copy,
    row_keys,
    share_encoders,
)

VIDEO, AUDIO = frozenset({"video"}), frozenset({"audio"})


#: rows as GRPO builds them: each clip repeated, mixed modality sets, one clip of another length
ROWS = (0, 0, 0, 1, 1, 2, 2, 0)
MODS = (ALL, ALL, ALL, VIDEO, VIDEO, AUDIO, ALL, ALL)
VIDEO_KEYS = [f"c{c}" for c, m in zip(ROWS, MODS) if "video" in m]  # c0 c0 c0 c1 c1 c2 c0
AUDIO_KEYS = [f"c{c}" for c, m in zip(ROWS, MODS) if "audio" in m]  # c0 c0 c0 c2 c2 c0


def _batch(processor):
    media = make_media(2) + make_media(1, seed=5, frames=4, seconds=0.6)
    return build_inputs(processor, [media[i] for i in ROWS], list(MODS),
                        completions=["<answer>happy</answer>"] * len(ROWS), return_labels=True)


class Towers:
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

    def reset(self):
        self.videos = self.audios = 0

    def remove(self):
        for h in self.handles:
            h.remove()


def _no_comparison(*args, **kwargs):
    raise AssertionError("a tensor comparison ran although the rows were named")


def _freeze_towers(model):
    model.model.visual.requires_grad_(False)
    model.model.audio_tower.requires_grad_(False)
    return model


def test_named_rows_give_the_plain_logits_without_comparing_tensors(tiny, monkeypatch):
    model, processor = copy.deepcopy(tiny[0]).eval(), tiny[1]
    batch = _batch(processor)
    towers = Towers(model)
    with torch.no_grad():
        plain = model(**batch).logits
        assert (towers.videos, towers.audios) == (7, 6)
        towers.reset()
        monkeypatch.setattr(torch, "equal", _no_comparison)
        with encoders_shared(model, video=VIDEO_KEYS, audio=AUDIO_KEYS):
            named = model(**batch).logits
        assert (towers.videos, towers.audios) == (3, 2)  # c0, c1, c2 videos; c0, c2 audios
        # a wrong length is no identity: the pass compares content (here: the patched torch.equal)
        with pytest.raises(AssertionError, match="tensor comparison"), encoders_shared(model, video=VIDEO_KEYS[:-1]):
            model(**batch)
    towers.remove()
    assert torch.allclose(plain, named, atol=1e-6, rtol=0)


def test_named_rows_give_the_plain_gradients(tiny):
    batch = _batch(tiny[1])
    grads = []
    for named in (False, True):
        model = copy.deepcopy(tiny[0]).train()
        ctx = encoders_shared(model, video=VIDEO_KEYS, audio=AUDIO_KEYS) if named else encoders_shared(model, False)
        with ctx:
            model(**batch).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    plain, named = grads
    assert set(plain) == set(named)
    towers = [n for n in plain if ".visual." in n or ".audio_tower." in n]
    assert towers and any(plain[n].abs().sum() > 0 for n in towers)  # the towers do receive gradient
    for n, g in plain.items():
        assert torch.allclose(g, named[n], atol=1e-5, rtol=1e-4), n


def test_frozen_towers_are_encoded_once_across_passes_with_the_same_gradients(tiny):
    batch = _batch(tiny[1])
    plain_model = _freeze_towers(copy.deepcopy(tiny[0])).train()
    plain_model(**batch).loss.backward()
    plain = {n: p.grad.clone() for n, p in plain_model.named_parameters() if p.grad is not None}

    model = _freeze_towers(copy.deepcopy(tiny[0])).train()
    share_encoders(model)
    towers, cache = Towers(model), EncoderCache()
    with clip_identity(model, VIDEO_KEYS, AUDIO_KEYS, cache), torch.no_grad():
        first = model(**batch).logits  # e.g. generation's prefill
    assert (towers.videos, towers.audios) == (3, 2)
    towers.reset()
    with clip_identity(model, VIDEO_KEYS, AUDIO_KEYS, cache):
        out = model(**batch)  # e.g. the loss pass: both towers served from the cache
        out.loss.backward()
    assert (towers.videos, towers.audios) == (0, 0)
    assert cache.encoded == {"video": 3, "audio": 2} and cache.reused == {"video": 3, "audio": 2}
    towers.remove()
    assert torch.allclose(first, out.logits.detach(), atol=1e-6, rtol=0)
    named = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert set(named) == set(plain) and not any(".visual." in n or ".audio_tower." in n for n in named)
    for n, g in plain.items():
        assert torch.allclose(g, named[n], atol=1e-5, rtol=1e-4), n


def test_a_training_tower_is_never_served_from_the_cache(tiny):
    batch = _batch(tiny[1])
    model = copy.deepcopy(tiny[0]).train()
    model.model.audio_tower.requires_grad_(False)  # audio frozen, vision trains
    share_encoders(model)
    towers, cache = Towers(model), EncoderCache()
    for _ in range(2):
        with clip_identity(model, VIDEO_KEYS, AUDIO_KEYS, cache):
            model(**batch).loss.backward()
    assert (towers.videos, towers.audios) == (6, 2)  # vision once per pass, audio once in all
    towers.remove()


def test_compact_video_pixels_give_the_plain_logits(tiny, monkeypatch):
    model, processor = copy.deepcopy(tiny[0]).eval(), tiny[1]
    batch = _batch(processor)
    grid = batch["video_grid_thw"]
    chunks = torch.split(batch["pixel_values_videos"], grid.prod(-1).tolist())
    rows = [{"pixel_values_videos": c, "clip_key": k} for c, k in zip(chunks, VIDEO_KEYS)]
    compact = distinct_videos(rows)  # c0, c1, c2 once each
    assert compact.shape[0] == sum(int(grid[i].prod()) for i in (0, 3, 5))
    assert torch.equal(compact, torch.cat([chunks[0], chunks[3], chunks[5]]))
    with torch.no_grad():
        plain = model(**batch).logits
        monkeypatch.setattr(torch, "equal", _no_comparison)
        with encoders_shared(model, video=VIDEO_KEYS, audio=AUDIO_KEYS, compact_video=True):
            named = model(**{**batch, "pixel_values_videos": compact}).logits
        with pytest.raises(ValueError, match="compact"), encoders_shared(model, video=VIDEO_KEYS, audio=AUDIO_KEYS,
                                                                          compact_video=True):
            model(**batch)  # all rows' patches where the distinct ones were promised: a clear error
    assert torch.allclose(plain, named, atol=1e-6, rtol=0)


def test_distinct_videos_of_consecutive_slices_is_a_view_not_a_copy():
    base = torch.arange(24.0).reshape(12, 2)
    a, b, c = base[0:4], base[4:10], base[10:12]
    view = distinct_videos([{"pixel_values_videos": t, "clip_key": k} for t, k in ((a, 0), (a, 0), (b, 1), (c, 2))])
    assert torch.equal(view, base) and view.data_ptr() == base.data_ptr()  # no copy
    out_of_order = distinct_videos([{"pixel_values_videos": t, "clip_key": k} for t, k in ((b, 1), (a, 0))])
    assert torch.equal(out_of_order, torch.cat([b, a]))


def test_row_keys_follow_the_collation_order():
    rows = [{"pixel_values_videos": 1, "input_features": 1, "clip_key": "a"},
            {"pixel_values_videos": 1, "clip_key": "b"}, {"input_features": 1, "clip_key": "c"}, {}]
    assert row_keys(rows) == (["a", "b"], ["a", "c"])
    assert row_keys([{"pixel_values_videos": 1}]) == (None, [])  # a row without a key: no identity


def test_reference_copy_shares_the_frozen_towers_and_copies_the_rest(tiny):
    model = _freeze_towers(copy.deepcopy(tiny[0]))
    ref = reference_copy(model)
    assert ref.model.visual is model.model.visual and ref.model.audio_tower is model.model.audio_tower
    assert ref.model.language_model is not model.model.language_model
    assert not any(p.requires_grad for p in ref.parameters())
    assert all(p.requires_grad for p in model.model.language_model.parameters())  # the policy still trains
    shared = {id(p) for p in model.parameters()} & {id(p) for p in ref.parameters()}
    towers = sum(1 for _ in model.model.visual.parameters()) + sum(1 for _ in model.model.audio_tower.parameters())
    assert len(shared) == towers
    batch = _batch(tiny[1])
    with torch.no_grad():
        assert torch.equal(model.eval()(**batch).logits, ref.eval()(**batch).logits)
    trained = copy.deepcopy(tiny[0])  # nothing frozen: a full copy
    assert not ({id(p) for p in trained.parameters()} & {id(p) for p in reference_copy(trained).parameters()})


# ------------------------------------------------------------------------------------ shared prefill


def test_shared_prefill_generates_what_plain_generate_does_with_one_prefill_per_prompt(tiny):
    from omnibench.model.generation import shared_prefill

    model, processor = copy.deepcopy(tiny[0]).eval(), tiny[1]
    media = make_media(3)
    keys = ["c0", "c0", "c1", "c1", "c2", "c2"]  # G = 2
    batch = build_inputs(processor, [media[int(k[1])] for k in keys], [ALL] * len(keys))
    distinct = build_inputs(processor, media, [ALL] * 3)
    fields = {k: v for k, v in batch.items() if k not in ("input_ids", "attention_mask")}
    prefill = {k: v for k, v in distinct.items() if k not in ("input_ids", "attention_mask")}
    tok = processor.tokenizer
    kw = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": tok.pad_token_id}
    rows = []
    hook = model.model.language_model.register_forward_pre_hook(
        lambda m, a, k: rows.append(tuple(k["inputs_embeds"].shape[:2])), with_kwargs=True)
    with torch.no_grad():
        plain = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **fields, **kw)
        width = batch["input_ids"].shape[1]
        assert rows[0] == (6, width)  # plain: every row's prompt is prefilled
        rows.clear()
        with shared_prefill(model, [0, 0, 1, 1, 2, 2], prefill, media_keys=list(fields)):
            shared = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                    **fields, **kw)
    hook.remove()
    assert "generate" not in vars(model)  # the block restored the class's generate
    assert rows[0] == (3, width - 1) and rows[1] == (6, 1)  # one prefill per prompt, then all rows decode
    assert torch.equal(plain, shared)


# ------------------------------------------------------------------------------------ GRPO


def _grpo_trainer(tiny, tmp_path, **kw):
    from test_grpo import MEDIA_KW, _clips

    from omnibench.grpo import GRPORecipe, build_trainer
    from omnibench.recipes import MediaStore, load_recipe

    base = {"out": str(tmp_path / "run"), "max_steps": 2, "num_generations": 4, "per_device_train_batch_size": 8,
            "max_completion_length": 6, "learning_rate": 1e-2, "beta": 0.04, "progress": False, "threads": 1,
            "rewards": {"test_length": 1.0}, "freeze_vision": True, "freeze_audio": True}
    base.update(kw)
    recipe = load_recipe(GRPORecipe, base)
    media = make_media(4, **MEDIA_KW)
    return build_trainer(recipe, copy.deepcopy(tiny[0]), tiny[1], MediaStore.from_media(media), _clips(4))


def _encoder_rows_per_step(trainer):
    from transformers import TrainerCallback

    towers = Towers(trainer.accelerator.unwrap_model(trainer.model))
    steps = []

    class Count(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            towers.reset()

        def on_step_end(self, args, state, control, **kw):
            steps.append((towers.videos, towers.audios))

    trainer.add_callback(Count())
    trainer.train()
    towers.remove()
    return steps


@pytest.mark.parametrize("reuse", [True, False])
def test_grpo_with_frozen_towers_encodes_each_distinct_clip_once_per_step(tiny, tmp_path, reuse):
    trainer = _grpo_trainer(tiny, tmp_path / str(reuse))
    policy = trainer.accelerator.unwrap_model(trainer.model)
    assert trainer.ref_model.model.visual is policy.model.visual  # the reference holds no second copy
    trainer.reuse_frozen_encoders = reuse
    steps = _encoder_rows_per_step(trainer)
    assert len(steps) == 2
    distinct = 8 // 4  # clips per step: batch 8, G = 4, no modality dropout
    for videos, audios in steps:
        if reuse:  # generation, reference and loss passes: one encoder pass per clip in the step
            assert (videos, audios) == (distinct, distinct)
        else:  # once per pass (generation, reference, loss)
            assert videos == audios == 3 * distinct
    if reuse:
        assert trainer._encoder_cache.reused["video"] > 0


def test_grpo_logps_are_the_same_with_and_without_the_optimisations(tiny, tmp_path):
    trainer = _grpo_trainer(tiny, tmp_path)
    clips, comps = ["c0", "c0", "c1", "c2", "c1"], ["<answer>happy</answer>", "<think>x</think>", "a", "b", "c"]
    named = trainer.completion_logps(clips, comps)
    trainer.identify_clips = False
    content = trainer.completion_logps(clips, comps)
    share_encoders(trainer.accelerator.unwrap_model(trainer.model), False)
    plain = trainer.completion_logps(clips, comps)
    for a, b, c in zip(named, content, plain):
        assert torch.allclose(a, c, atol=1e-5) and torch.allclose(b, c, atol=1e-5)


def test_grpo_generation_prefills_each_clip_once(tiny, tmp_path):
    trainer = _grpo_trainer(tiny, tmp_path, max_steps=1, freeze_vision=False, freeze_audio=False)
    lm = trainer.accelerator.unwrap_model(trainer.model).model.language_model
    rows = []
    hook = lm.register_forward_pre_hook(lambda m, a, k: rows.append(tuple(k["inputs_embeds"].shape[:2])),
                                        with_kwargs=True)
    _generate = trainer._generate_single_turn

    def generation(*args, **kwargs):
        rows.append("generation")
        return _generate(*args, **kwargs)

    trainer._generate_single_turn = generation
    trainer.train()
    hook.remove()
    prefill = rows[rows.index("generation") + 1]
    assert prefill[0] == 2 and prefill[1] > 50  # 2 clips (8 rows, G = 4): their prompts only
    assert rows[rows.index("generation") + 2] == (8, 1)  # then every row decodes


def test_grpo_with_lora_encodes_each_distinct_clip_once_per_step(tiny, tmp_path):
    """LoRA on the language model: the towers are frozen, the reference is the policy without its
    adapters (same towers), so generation, reference and loss passes share one encoder pass per clip."""
    trainer = _grpo_trainer(tiny, tmp_path, lora={"r": 4, "alpha": 8, "dropout": 0.0},
                            freeze_vision=False, freeze_audio=False)
    policy = trainer.accelerator.unwrap_model(trainer.model)
    towers = Towers(policy.get_base_model())
    steps = []
    from transformers import TrainerCallback

    class Count(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            towers.reset()

        def on_step_end(self, args, state, control, **kw):
            steps.append((towers.videos, towers.audios))

    trainer.add_callback(Count())
    trainer.train()
    towers.remove()
    assert steps == [(2, 2), (2, 2)]


# ------------------------------------------------------------------------------------ positions


def test_position_ids_once_per_clip_are_the_models_own(tiny):
    """batch_position_ids (one get_rope_index per clip, prompt only) = get_rope_index over the whole
    batch, at every position: mixed modality sets, a shorter clip, left-padded prompts and completions
    of different lengths, right-padded; with a cache, a second pass computes nothing."""
    from omnibench.grpo import split_media_rows
    from omnibench.model.positions import batch_position_ids, rope_module

    model, processor = tiny
    media = make_media(2) + make_media(1, seed=5, frames=4, seconds=0.6)
    batch = build_inputs(processor, [media[i] for i in ROWS], list(MODS))
    rows = split_media_rows(batch, list(MODS))
    for (_, m), c in zip(rows, ROWS):
        m["clip_key"] = f"c{c}"
    width = max(len(ids) for ids, _ in rows)
    comp_lens = [5, 3, 0, 7, 7, 2, 6, 1]
    ids = torch.zeros(len(rows), width + 7, dtype=torch.long)
    mask = torch.zeros_like(ids)
    gen = torch.Generator().manual_seed(0)
    for i, ((p, _), n) in enumerate(zip(rows, comp_lens)):
        ids[i, width - len(p):width] = torch.tensor(p)
        ids[i, width:width + n] = torch.randint(100, 200, (n,), generator=gen)
        mask[i, width - len(p):width + n] = 1
    media_rows = [m for _, m in rows]
    rope = rope_module(model)
    video = [m for m in media_rows if "video_grid_thw" in m]
    audio = [m for m in media_rows if "feature_attention_mask" in m]
    want, _ = rope.get_rope_index(
        ids, None, torch.cat([m["video_grid_thw"] for m in video]), mask, False,
        torch.cat([m["feature_attention_mask"].sum(1) for m in audio]),
        torch.cat([m["video_second_per_grid"] for m in video]))
    cache = {}
    got = batch_position_ids(rope, ids, mask, media_rows, width, cache=cache)
    assert torch.equal(got, want)
    assert len(cache) == 4  # c0 (both), c1 (video), c2 (audio), c2 (both)
    rope.get_rope_index = _no_comparison  # the second pass (the loss pass after the reference's) reuses them
    try:
        assert torch.equal(batch_position_ids(rope, ids, mask, media_rows, width, cache=cache), want)
    finally:
        del rope.get_rope_index


# ------------------------------------------------------------------------------------ processed clips


def test_clip_inputs_batches_are_build_inputs_batches(tiny):
    """ClipInputs (each clip processed once, collated per batch) = build_inputs on the same clips: ids,
    mask, labels, video patches and grids, audio features on every frame the mask keeps; the logits
    and the loss are bit for bit the same. Clips of different lengths, one without video."""
    from omnibench.model.inputs import ClipInputs

    model, processor = tiny
    media = (make_media(2) + make_media(1, seed=5, frames=4, seconds=0.6)
             + make_media(1, seed=7, frames=8, seconds=1.4))
    mods = [ALL, ALL, AUDIO, ALL]
    cache = ClipInputs(processor, media, mods)
    texts = ["<answer>happy</answer>", "<think>a face</think><answer>sad</answer>", "x", "<answer>angry</answer>"]
    for idx in ([0, 1, 2, 3], [3, 2, 0], [2, 2, 1]):
        for comps in (None, [texts[i] for i in idx]):
            want = build_inputs(processor, [media[i] for i in idx], [mods[i] for i in idx],
                                completions=comps, return_labels=comps is not None)
            got = cache.batch(idx, completions=comps, return_labels=comps is not None)
            assert set(got.keys()) == set(want.keys())
            for key in want:
                if key == "input_features":
                    keep = want["feature_attention_mask"].bool()[:, None, :].expand_as(want[key])
                    assert got[key].shape == want[key].shape
                    assert torch.equal(got[key][keep], want[key][keep]), key
                else:
                    assert torch.equal(got[key], want[key]), key
            if comps is not None:
                model.eval()
                with torch.no_grad():
                    a, b = model(**want), model(**got)
                assert torch.equal(a.logits, b.logits) and torch.equal(a.loss, b.loss)
    assert len(cache._rows) == 4  # each clip processed once
    over_budget = ClipInputs(processor, media, mods, max_bytes=0)  # keeps nothing, gives the same batches
    assert torch.equal(over_budget.batch([3, 2, 0])["input_features"], cache.batch([3, 2, 0])["input_features"])
    assert len(over_budget._rows) == 0 and over_budget._rows.bytes == 0
