"""Cold-start SFT: targets, the multimodal collator (labels, modality dropout), a run and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.usefixtures("one_thread")

from omnibench.data.manifest import Clip
from omnibench.data.media import synth_media
from omnibench.model import load_model
from omnibench.recipes import MediaStore, read_metrics
from omnibench.sft import OmniSFTCollator, SFTRecipe, target_text

REASONING = "<think>The face shows a smiling mouth.</think><answer>happy</answer>"


@pytest.fixture(scope="module")
def store():
    rng = np.random.default_rng(0)
    return MediaStore.from_media({
        f"c{i}": synth_media(rng.integers(0, 256, (8, 56, 56, 3), dtype=np.uint8),
                             rng.normal(0, 0.1, 16000).astype(np.float32), clip_id=f"c{i}")
        for i in range(4)
    })


def test_targets_per_mode():
    clip = Clip(id="a", video="a.mp4", label="happy", split="cold_start", meta={"reasoning": REASONING})
    assert target_text(clip, "explained") == REASONING
    assert target_text(clip, "label_only") == "<answer>happy</answer>"
    bare = Clip(id="b", video="b.mp4", label="sad", split="train")
    with pytest.raises(ValueError, match="meta\\['reasoning'\\].*label_only"):
        target_text(bare, "explained")
    with pytest.raises(ValueError, match="unknown SFT mode"):
        target_text(clip, "chatty")


def test_collator_labels_only_the_answer_tokens(tiny, store):
    processor = tiny[1]
    batch = OmniSFTCollator(processor, store)([{"clip_id": "c0", "target": REASONING},
                                               {"clip_id": "c1", "target": "<answer>sad</answer>"}])
    tok = processor.tokenizer
    for row, target in zip(batch["labels"], (REASONING, "<answer>sad</answer>")):
        labelled = row[row != -100].tolist()
        assert tok.decode(labelled) == target + "<|im_end|>"
    assert batch["video_grid_thw"].shape[0] == 2 and batch["input_features"].shape[0] == 2


def test_collator_modality_dropout_removes_one_block(tiny, store):
    processor = tiny[1]
    feats = [{"clip_id": f"c{i}", "target": REASONING} for i in range(4)]
    always = OmniSFTCollator(processor, store, modality_dropout=1.0, seed=1)
    batch = always(feats * 4)
    assert sum(always.seen.values()) == 16 and set(always.seen) <= {"video", "audio"} and len(always.seen) == 2
    n_video, n_audio = always.seen.get("video", 0), always.seen.get("audio", 0)
    assert batch["video_grid_thw"].shape[0] == n_video and batch["input_features"].shape[0] == n_audio
    vid = processor.tokenizer.convert_tokens_to_ids("<|VIDEO|>")
    assert int((batch["input_ids"] == vid).any(dim=1).sum()) == n_video  # block gone from the prompt too
    never = OmniSFTCollator(processor, store, modality_dropout=0.0)
    never(feats)
    assert never.seen == {"audio,video": 4}


def test_recipe_routes_training_arguments():
    from omnibench.recipes import load_recipe

    recipe = load_recipe(SFTRecipe, {"mode": "label_only", "weight_decay": 0.1, "batch_size": 2})
    args = recipe.training_args()
    assert args.weight_decay == 0.1 and args.per_device_train_batch_size == 2
    assert args.remove_unused_columns is False
    with pytest.raises(ValueError, match="mode must be one of"):
        load_recipe(SFTRecipe, {"mode": "chatty"})


@pytest.fixture(scope="module")
def synthemo(tmp_path_factory):
    from omnibench.data.synth import generate

    return generate(tmp_path_factory.mktemp("synthemo"), n_train=4, n_cold_start=8, n_test=0, seed=0, workers=1)


@pytest.mark.slow
def test_cli_sft_trains_and_saves_a_loadable_model(synthemo, tmp_path):
    from omnibench.cli import main

    cfg = tmp_path / "sft.yaml"
    cfg.write_text(json.dumps({"manifest": str(synthemo), "model": "tiny", "batch_size": 4, "learning_rate": 3e-3,
                                   "max_steps": 6, "modality_dropout": 0.3, "progress": False, "decode": {"size": 56}}))
    out = tmp_path / "run"
    assert main(["sft", "--config", str(cfg), "--out", str(out)]) == 0
    rows = [r for r in read_metrics(out) if "loss" in r]
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert rows[-1]["loss"] < rows[0]["loss"]
    model, processor = load_model(out / "model")
    assert model.config.text_config.hidden_size == 64 and processor.tokenizer is not None
    # the decode settings trained with are recorded in the model and in recipe.yaml
    assert model.config.omnibench_decode == {"num_frames": 8, "size": 56, "sr": 16000, "max_audio_s": None}
    assert yaml.safe_load((out / "recipe.yaml").read_text())["decode"] == {**model.config.omnibench_decode,
                                                                            "missing_audio": "error"}
    out2 = tmp_path / "label_only"
    assert main(["sft", "--config", str(cfg), "--out", str(out2), "--mode", "label_only", "--max-steps", "1"]) == 0
    assert (out2 / "model" / "config.json").is_file()


@pytest.mark.slow
def test_sft_from_a_checkpoint_keeps_its_decode_settings_and_warns_on_a_recipe_override(synthemo, tmp_path,
                                                                                         caplog):
    from omnibench.data.media import DecodeConfig, decode_config_for
    from omnibench.model import save_model
    from omnibench.sft import run_sft
    from omnibench.tiny import build_tiny

    base = save_model(*build_tiny(seed=0), tmp_path / "base", decode={"num_frames": 4, "size": 64})
    recipe = {"manifest": str(synthemo), "model": str(base), "batch_size": 4, "max_steps": 1, "progress": False}
    with caplog.at_level("WARNING", logger="omnibench"):
        kept = run_sft({**recipe, "out": str(tmp_path / "kept")})
    assert not [r for r in caplog.records if "decode" in r.getMessage()]
    assert decode_config_for(kept) == DecodeConfig(num_frames=4, size=64)
    with caplog.at_level("WARNING", logger="omnibench"):
        over = run_sft({**recipe, "out": str(tmp_path / "over"), "decode": {"num_frames": 2}})
    assert any("num_frames 4 -> 2" in r.getMessage() for r in caplog.records)
    assert decode_config_for(over) == DecodeConfig(num_frames=2, size=64)  # the override, over the checkpoint's
    assert yaml.safe_load((tmp_path / "over" / "recipe.yaml").read_text())["decode"]["num_frames"] == 2


def test_consistent_dropout_never_removes_the_modality_that_carries_the_label(tiny, store):
    from omnibench.recipes import droppable_modalities

    def clip(i, cond):
        labels = {"both": ("sad", "sad"), "video": ("sad", "neutral"), "audio": ("neutral", "sad")}[cond]
        return Clip(id=f"c{i}", video="x.mp4", label="sad", split="train",
                    meta={"video_label": labels[0], "audio_label": labels[1]})

    clips = [clip(0, "both"), clip(1, "video"), clip(2, "audio"), clip(3, "video")]
    assert [sorted(droppable_modalities(c, "consistent")) for c in clips] == [
        ["audio", "video"], ["audio"], ["video"], ["audio"]]
    assert all(droppable_modalities(c, "any") == {"video", "audio"} for c in clips)
    collator = OmniSFTCollator(tiny[1], store, modality_dropout=1.0, seed=3,
                               droppable={c.id: droppable_modalities(c, "consistent") for c in clips})
    seen = []
    for _ in range(10):
        before = dict(collator.seen)
        collator([{"clip_id": "c1", "target": REASONING}, {"clip_id": "c2", "target": REASONING}])
        seen.append({k: collator.seen[k] - before.get(k, 0) for k in collator.seen if collator.seen[k] != before.get(k, 0)})
    assert all(s == {"video": 1, "audio": 1} for s in seen)  # c1 keeps its face, c2 its voice, every time
    neutral = Clip(id="n", video="x.mp4", label="sad", split="train", meta={"video_label": "neutral", "audio_label": "neutral"})
    assert droppable_modalities(neutral, "consistent") == frozenset()
    with pytest.raises(ValueError, match=r"'real-1'.*per-modality labels"):
        droppable_modalities(Clip(id="real-1", video="x.mp4", label="sad", split="train", meta={}), "consistent")
    with pytest.raises(ValueError, match="one of"):
        droppable_modalities(clips[0], "sometimes")


SYNTH_CUES = {"mouth_curve": 0.85, "mouth_open": 0.3, "mouth_width": 1.0, "mouth_asym": 0.0, "brow_tilt": 0.0,
              "brow_raise": 0.0, "eye_open": 1.0, "nod": 2.5, "shake": 0.0, "tremor": 0.0, "drift": 0.0,
              "tilt": 0.0, "pitch_st": 3.0, "pitch_slope": 0.0, "pitch_arch": 2.9, "loudness_db": 0.0,
              "syllable_rate": 5.5, "rough_depth": 0.0, "rough_rate": 0.0, "vibrato": 0.0}


def test_explained_targets_under_dropout_describe_only_the_modality_kept(tiny, store):
    """Cold start with modality dropout: the reasoning target never describes the removed modality."""
    from omnibench.data.synth.cues import reasoning_text
    from omnibench.rewards import grounding_reward
    from omnibench.sft import SFTDataset, droppable_for_targets

    full = reasoning_text("happy", "both", SYNTH_CUES)
    clips = [Clip(id=f"c{i}", video=f"c{i}.mp4", label="happy", split="cold_start",
                  meta={"reasoning": full, "condition": "both", "cues": SYNTH_CUES}) for i in range(4)]
    ds = SFTDataset(clips, "explained")
    assert set(ds[0]["targets"]) == {"video", "audio"}
    assert "voice" not in ds[0]["targets"]["video"] and "face" not in ds[0]["targets"]["audio"]
    collator = OmniSFTCollator(tiny[1], store, modality_dropout=1.0, seed=3)
    feats = [ds[i] for i in range(4)] * 3
    batch = collator(feats)
    tok = tiny[1].tokenizer
    vid = tok.convert_tokens_to_ids("<|VIDEO|>")
    for row, ids in zip(batch["labels"], batch["input_ids"]):
        text = tok.decode(row[row != -100].tolist()).removesuffix("<|im_end|>")
        kept = "video" if bool((ids == vid).any()) else "audio"
        assert text == ds[0]["targets"][kept]
        assert grounding_reward([text], modalities=[kept]) == [1.0]
    assert set(collator.seen) == {"video", "audio"}
    # reasoning that cannot be restated (one text per clip, as in real data) is never dropped
    real = Clip(id="r", video="r.mp4", label="happy", split="cold_start", dataset="dfew", meta={"reasoning": REASONING})
    assert target_text(real, "explained", frozenset({"video"})) is None
    assert droppable_for_targets(real, "explained", frozenset({"video", "audio"})) == frozenset()
    assert droppable_for_targets(real, "label_only", frozenset({"video", "audio"})) == {"video", "audio"}
