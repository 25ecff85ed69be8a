"""OmniGRPOTrainer: media reach generation and the loss, parameters move, resume, CLI, TRL API drift."""

from __future__ import annotations

import copy
import inspect
import json

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")
import torch
import trl
from conftest import make_media

from omnibench.data.manifest import Clip
from omnibench.data.media import synth_media
from omnibench.grpo import GRPORecipe, OmniGRPOTrainer, build_trainer
from omnibench.recipes import MediaStore, load_recipe, read_metrics
from omnibench.rewards import REWARDS, register

REWARDS.pop("test_length", None)


#: make_media's settings here: a dict of clips with distinct frames, and tones of distinct pitch and
#: loudness under a little noise
MEDIA_KW = {"as_dict": True, "audio": "tone", "scale": lambda i: 0.9 ** i, "hiss": 0.01}


def _clips(n: int) -> list[Clip]:
    labels = ["happy", "sad", "angry", "fear"]
    return [Clip(id=f"c{i}", video=f"c{i}.mp4", label=labels[i % 4], split="train") for i in range(n)]


@register("test_length")
def length_reward(completions, **kwargs):
    """Written exactly like a reward for trl.GRPOTrainer (conversational completions, columns in kwargs)."""
    assert "label" in kwargs and "clip_id" in kwargs and "trainer_state" in kwargs
    return [float(len(c[0]["content"])) for c in completions]


def _recipe(tmp_path, **kw) -> GRPORecipe:
    base = {"out": str(tmp_path / "run"), "max_steps": 1, "num_generations": 4, "per_device_train_batch_size": 8,
                "max_completion_length": 12, "learning_rate": 1e-2, "beta": 0.0, "progress": False, "threads": 1,
                "rewards": {"test_length": 1.0}}
    base.update(kw)
    return load_recipe(GRPORecipe, base)


def _trainer(tiny, tmp_path, media=None, **kw) -> OmniGRPOTrainer:
    model, processor = copy.deepcopy(tiny[0]), tiny[1]
    media = media or make_media(4, **MEDIA_KW)
    recipe = _recipe(tmp_path, **kw)
    clips = _clips(len(media))
    return build_trainer(recipe, model, processor, MediaStore.from_media(media), clips)


def _snapshot(model) -> dict:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _changed(before: dict, model, part: str) -> bool:
    return any(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters() if part in n)


# ------------------------------------------------------------------------------------ TRL API drift


def test_overridden_trl_methods_keep_their_signatures():
    """The TRL internals OmniGRPOTrainer overrides or relies on: fail loudly if an upgrade moves them."""
    from trl.trainer import grpo_trainer

    assert trl.__version__.startswith("1.16."), "omnibench.grpo was written against TRL 1.16; re-check the overrides"
    G = trl.GRPOTrainer

    def params(name):
        return list(inspect.signature(getattr(G, name)).parameters)

    assert params("_generate_and_score_completions") == ["self", "inputs"]
    assert params("_tokenize_prompts") == ["self", "prompts"]
    assert params("_compute_loss") == ["self", "model", "inputs"]
    logps = params("_get_per_token_logps_and_entropies")
    assert logps[:8] == ["self", "model", "input_ids", "attention_mask", "logits_to_keep", "batch_size",
                         "compute_entropy", "compute_aux_loss"]
    assert params("_generate_single_turn")[:5] == ["self", "prompt_ids", "images", "multimodal_fields",
                                                   "num_generations"]
    # the call chain the overrides hook into
    assert "self._tokenize_prompts(prompts)" in inspect.getsource(G._generate)
    assert "self._get_per_token_logps_and_entropies(" in inspect.getsource(G._compute_loss)
    assert "self._get_per_token_logps_and_entropies(" in inspect.getsource(G._generate_and_score_completions)
    assert "fused_lm_head=True" in inspect.getsource(G._get_per_token_logps_and_entropies)
    single = inspect.getsource(G._generate_single_turn)
    assert "multimodal_fields.items()" in single and "generate_inputs[k] = v" in single
    # the reference model is built through this module-level function (patched for in-memory models)
    assert callable(grpo_trainer.create_model_from_path)
    assert "create_model_from_path(get_config_model_id(self.model.config)" in inspect.getsource(G.__init__)


# ------------------------------------------------------------------------------------ training moves parameters


@pytest.mark.slow
def test_one_step_updates_language_model_and_both_towers(tiny, tmp_path):
    trainer = _trainer(tiny, tmp_path, beta=0.04)
    assert trainer.ref_model is not None and trainer.ref_model is not trainer.model
    ref_before, before = _snapshot(trainer.ref_model), _snapshot(trainer.model)
    trainer.train()
    model = trainer.model
    assert _changed(before, model, "language_model")
    assert _changed(before, model, "visual"), "video tensors did not reach the loss"
    assert _changed(before, model, "audio_tower"), "audio tensors did not reach the loss"
    assert not any(_changed(ref_before, trainer.ref_model, part) for part in ("language_model", "visual"))
    row = read_metrics(tmp_path / "run")[0]
    assert row["rewards/length_reward/std"] > 0 and "kl" in row and row["step"] == 1


@pytest.mark.slow
def test_frozen_towers_stay_fixed(tiny, tmp_path):
    trainer = _trainer(tiny, tmp_path, freeze_vision=True, freeze_audio=True)
    before = _snapshot(trainer.model)
    trainer.train()
    assert _changed(before, trainer.model, "language_model")
    assert not _changed(before, trainer.model, "visual") and not _changed(before, trainer.model, "audio_tower")


@pytest.mark.slow
def test_lora_adapts_the_language_model_only(tiny, tmp_path):
    trainer = _trainer(tiny, tmp_path, lora={"r": 4, "alpha": 8, "dropout": 0.0}, beta=0.04)
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and "language_model" in n for n in trainable)
    before = _snapshot(trainer.model)
    trainer.train()
    assert _changed(before, trainer.model, "lora_B")
    assert not _changed(before, trainer.model, "base_layer") and not _changed(before, trainer.model, "visual")


# ------------------------------------------------------------------------------------ media reach the log-probs


@pytest.mark.slow
def test_completion_logprobs_depend_on_the_clips_video_and_audio(tiny, tmp_path):
    media = make_media(2, **MEDIA_KW)
    a, b = media["c0"], media["c1"]
    media["video_swapped"] = synth_media(b.frames, a.audio, clip_id="video_swapped")
    media["audio_swapped"] = synth_media(a.frames, b.audio, clip_id="audio_swapped")
    trainer = _trainer(tiny, tmp_path, media=media)
    text = "<think>The face shows a smiling mouth.</think><answer>happy</answer>"
    ids = ["c0", "c0", "video_swapped", "audio_swapped"]
    ref, again, video, audio = trainer.completion_logps(ids, [text] * 4)
    assert torch.allclose(ref, again, atol=1e-6)
    assert not torch.allclose(ref, video, atol=1e-4), "replacing the video left the log-probs unchanged"
    assert not torch.allclose(ref, audio, atol=1e-4), "replacing the audio left the log-probs unchanged"


class CountingStore:
    """Media by clip id; each call is recorded in this process (``calls``) and in ``log``, a file every
    process appends to (a dataloader worker's calls show there)."""

    def __init__(self, media, log):
        self.media, self.calls, self.log = media, [], log

    def __call__(self, clip_id):
        self.calls.append(clip_id)
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(clip_id + "\n")
        return self.media[clip_id]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 1])
def test_each_clip_is_decoded_once_per_step_and_dropout_is_per_group(tiny, tmp_path, workers):
    model, processor = copy.deepcopy(tiny[0]), tiny[1]
    store = CountingStore(make_media(4, **MEDIA_KW), tmp_path / "calls.txt")
    recipe = _recipe(tmp_path, max_steps=2, modality_dropout=1.0, media_workers=workers)
    trainer = build_trainer(recipe, model, processor, store, _clips(4))
    trainer.train()
    everywhere = store.log.read_text().split()
    assert len(everywhere) == 2 * 2  # 2 steps x 2 distinct clips (8 completions = 2 groups of 4)
    # with a worker, it decoded every clip: none on the training step's path
    assert len(store.calls) == (0 if workers else 4)
    rows = trainer.encode_clips(["c0"] * 4 + ["c1"] * 4, train=True)
    for group in (rows[:4], rows[4:]):
        assert len({r.modalities for r in group}) == 1 and len(group[0].modalities) == 1
        assert all(r.media is group[0].media for r in group)  # one processed tensor set per clip
    assert {r.modalities for r in trainer.encode_clips(["c0", "c1"], train=False)} == {frozenset({"video", "audio"})}


@pytest.mark.slow
def test_decoding_in_a_worker_trains_exactly_as_decoding_in_the_step(tiny, tmp_path):
    """Over two epochs (sampling, dropout and updates on): the same weights with media_workers 1 and 0
    (the dataloader's workers must not change what torch's RNG draws)."""
    before = _snapshot(tiny[0])
    weights = []
    for workers in (0, 1):
        model, processor = copy.deepcopy(tiny[0]), tiny[1]
        recipe = _recipe(tmp_path / str(workers), max_steps=4, modality_dropout=0.5, temperature=1.0, seed=3,
                         media_workers=workers)
        store = MediaStore.from_media(make_media(4, **MEDIA_KW))
        trainer = build_trainer(recipe, model, processor, store, _clips(4))
        trainer.train()  # 4 clips, 2 per step: 2 epochs
        assert _changed(before, trainer.model, "language_model")  # it trained
        weights.append(_snapshot(trainer.model))
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


class BrokenStore(CountingStore):
    def __call__(self, clip_id):
        if clip_id == "c1":
            raise RuntimeError(f"cannot decode clip {clip_id}: /data/c1.mp4 is truncated")
        return super().__call__(clip_id)


def test_a_clip_a_worker_cannot_decode_stops_training_naming_it(tiny, tmp_path):
    model, processor = copy.deepcopy(tiny[0]), tiny[1]
    store = BrokenStore(make_media(4, **MEDIA_KW), tmp_path / "calls.txt")
    trainer = build_trainer(_recipe(tmp_path, media_workers=1), model, processor, store, _clips(4))
    with pytest.raises(RuntimeError, match=r"c1\.mp4 is truncated"):
        trainer.train()


@pytest.mark.slow
def test_encoders_run_once_per_distinct_clip(tiny, tmp_path):
    trainer = _trainer(tiny, tmp_path, beta=0.04)
    videos_per_call = []
    hook = trainer.model.model.visual.register_forward_pre_hook(
        lambda module, args, kwargs: videos_per_call.append(int((kwargs.get("grid_thw", args[1] if len(args) > 1
                                                                                    else None)).shape[0])),
        with_kwargs=True)
    trainer.train()
    hook.remove()
    # 8 completions of 2 clips: generation prefill and the loss pass each encode 2 videos, not 8
    assert videos_per_call and max(videos_per_call) == 2


def test_recipe_maps_yaml_onto_grpo_config(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("grpo:\n  loss_type: grpo\n  scale_rewards: batch\n  num_generations: 2\n"
                    "  per_device_train_batch_size: 4\n  rewards: {accuracy: 2.0, format: 0.5}\nseed: 7\n")
    recipe = load_recipe(GRPORecipe, path, section="grpo")
    config = recipe.grpo_config()
    assert (config.loss_type, config.scale_rewards, config.num_generations, config.seed) == ("grpo", "batch", 2, 7)
    assert config.reward_weights == [2.0, 0.5] and config.remove_unused_columns is False
    with pytest.raises(ValueError, match="did you mean 'num_generations'"):
        load_recipe(GRPORecipe, {"num_generation": 4})
    with pytest.raises(ValueError, match="multiple of num_generations"):
        load_recipe(GRPORecipe, {"num_generations": 3, "per_device_train_batch_size": 8})


# ------------------------------------------------------------------------------------ resume


class StopAt:
    """Stop training after ``step`` (as if the run were killed right after saving that checkpoint)."""

    def __new__(cls, step):
        from transformers import TrainerCallback

        class _Stop(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step >= step:
                    control.should_training_stop = True

        return _Stop()


@pytest.mark.slow
def test_resume_continues_the_same_schedule(tiny, tmp_path):
    common = {"max_steps": 4, "save_steps": 2, "learning_rate": 1e-2}
    full = _trainer(tiny, tmp_path / "full", **common)
    full.train()
    lr_full = [r["learning_rate"] for r in read_metrics(tmp_path / "full" / "run") if "learning_rate" in r]

    killed = _trainer(tiny, tmp_path / "resumed", **common)
    killed.add_callback(StopAt(3))  # checkpoint-2 is saved; step 3 runs and is then lost
    killed.train()
    ckpt = tmp_path / "resumed" / "run" / "checkpoints"
    assert (ckpt / "checkpoint-2").is_dir()
    import shutil

    shutil.rmtree(ckpt / "checkpoint-3", ignore_errors=True)
    from omnibench.recipes import last_checkpoint

    resumed = _trainer(tiny, tmp_path / "resumed", **common)
    start = last_checkpoint(tmp_path / "resumed" / "run")
    assert start.endswith("checkpoint-2")
    resumed.train(resume_from_checkpoint=start)
    assert resumed.state.global_step == 4
    rows = [r for r in read_metrics(tmp_path / "resumed" / "run") if "learning_rate" in r]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]  # the lost step 3 is logged once, from the resumed run
    assert [r["learning_rate"] for r in rows] == pytest.approx(lr_full)  # same schedule, not restarted


# ------------------------------------------------------------------------------------ CLI + run folder


@pytest.fixture(scope="module")
def synthemo(tmp_path_factory):
    from omnibench.data.synth import generate

    return generate(tmp_path_factory.mktemp("synthemo"), n_train=8, n_cold_start=4, n_test=0, seed=0, workers=1)


@pytest.mark.slow
def test_cli_grpo_runs_a_recipe_and_writes_metrics(synthemo, tmp_path):
    from omnibench.cli import main

    cfg = tmp_path / "grpo.yaml"
    cfg.write_text(json.dumps({"manifest": str(synthemo), "model": "tiny", "num_generations": 2, "beta": 0.04,
                                   "per_device_train_batch_size": 4, "max_completion_length": 8, "max_steps": 3,
                                   "progress": False, "decode": {"size": 56}}))
    out = tmp_path / "run"
    assert main(["grpo", "--config", str(cfg), "--out", str(out), "--max-steps", "1"]) == 0
    assert (out / "model" / "config.json").is_file() and (out / "recipe.yaml").is_file()
    from omnibench.data.media import DecodeConfig, decode_config_for

    assert decode_config_for(out / "model") == DecodeConfig(size=56)  # trained-with settings recorded
    rows = read_metrics(out / "metrics.jsonl")
    step = [r for r in rows if "loss" in r]
    assert [r["step"] for r in step] == [1]
    for key in ("accuracy", "format_rate", "completion_length", "kl", "loss", "learning_rate",
                "rewards/accuracy_reward/mean", "rewards/accuracy_reward/std", "rewards/format_reward/std"):
        assert key in step[0], key


@pytest.mark.slow
def test_the_trainer_hands_each_reward_the_modalities_its_row_had(tiny, tmp_path):
    """Rewards such as grounding read the ``modalities`` column: it is what the row's input really had."""
    seen = []

    def spy(completions, modalities=None, clip_id=None, **kwargs):
        seen.append(list(zip(clip_id, modalities)))
        return [0.0] * len(completions)

    REWARDS.pop("test_modalities_spy", None)
    register("test_modalities_spy")(spy)
    trainer = _trainer(tiny, tmp_path, max_steps=2, modality_dropout=1.0,
                       rewards={"test_modalities_spy": 1.0, "grounding": 1.0})
    built = []
    encode = trainer.encode_clips

    def recording(clip_ids, train, **kw):
        rows = encode(clip_ids, train, **kw)
        if train:
            built.append([(cid, ",".join(sorted(r.modalities))) for cid, r in zip(clip_ids, rows)])
        return rows

    trainer.encode_clips = recording
    trainer.train()
    assert len(seen) == 2 and seen == built  # per completion: the clip and exactly the modalities it was shown
    assert all(mods in ("video", "audio") for step in seen for _, mods in step)  # dropout 1.0: one modality each
    log = [r for r in trainer.state.log_history if "rewards/grounding_reward/mean" in r]
    assert log and all(0.0 <= r["rewards/grounding_reward/mean"] <= 1.0 for r in log)
