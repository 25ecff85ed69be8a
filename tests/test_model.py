"""Model layer: tiny thinker, tokenizer, inputs per modality set, removal, generation, scoring, loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from omnibench.attribution import apply_removal
from omnibench.data.media import Media, synth_media
from omnibench.labels import DFEW7
from omnibench.model import (
    ALL,
    NONE,
    ModelLoadError,
    build_inputs,
    generate,
    load_model,
    parse_modalities,
    save_model,
    score_labels,
)
from omnibench.tiny import build_tiny
from omnibench.tiny.tokenizer import TAG_TOKENS, build_tokenizer, check_label_tokens

VIDEO, AUDIO = frozenset({"video"}), frozenset({"audio"})
MODALITY_SETS = [ALL, VIDEO, AUDIO, NONE]


def make_clip(
    seed: int, n_frames: int = 8, seconds: float = 1.5, size: int = 112, clip_id: str = ""
) -> Media:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n_frames, size, size, 3), dtype=np.uint8)
    audio = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
    return synth_media(frames, audio, clip_id=clip_id or f"clip{seed}")


@pytest.fixture(scope="module")
def clips():
    return [make_clip(1), make_clip(2, n_frames=6, seconds=1.2), make_clip(3, seconds=1.0)]


def ids_of(processor, *tokens):
    return [processor.tokenizer.convert_tokens_to_ids(t) for t in tokens]


def forward_logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


# --------------------------------------------------------------------------------------------- tokenizer


def test_tokenizer_labels_and_tags_are_single_decodable_tokens(tiny):
    _, processor = tiny
    tok = processor.tokenizer
    for label in DFEW7:
        ids = tok("<answer>" + label + "</answer>", add_special_tokens=False)["input_ids"]
        assert len(ids) == 3, (label, tok.convert_ids_to_tokens(ids))
    for tag in TAG_TOKENS:
        assert len(tok(tag, add_special_tokens=False)["input_ids"]) == 1
    text = "<think>The face shows wide eyes.</think><answer>fear</answer>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids + [tok.eos_token_id], skip_special_tokens=True) == text
    # other label sets work too, and a label that cannot be one token is reported
    tok2 = build_tokenizer(("calm", "contempt", "anxious"), "Which emotion?")
    check_label_tokens(tok2, ("calm", "contempt", "anxious"))
    with pytest.raises(ValueError, match="not single tokens"):
        check_label_tokens(tok2, ("supercalifragilistic",))


def test_processor_and_config_wiring(tiny):
    model, processor = tiny
    assert processor.feature_extractor.feature_size == 128
    assert type(processor.video_processor).__name__ == "Qwen2VLVideoProcessor"
    assert type(processor.image_processor).__name__.startswith("Qwen2VLImageProcessor")
    cfg = model.config
    audio_id, video_id, abos, vbos = ids_of(
        processor, "<|AUDIO|>", "<|VIDEO|>", "<|audio_bos|>", "<|vision_bos|>"
    )
    assert (cfg.audio_token_id, cfg.video_token_id) == (audio_id, video_id)
    assert (cfg.audio_start_token_id, cfg.vision_start_token_id) == (abos, vbos)
    assert cfg.text_config.vocab_size == len(processor.tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    assert 150_000 < n_params < 500_000


def test_build_tiny_is_seeded_and_leaves_global_rng(tiny):
    model, _ = tiny
    state = torch.random.get_rng_state()
    again, _ = build_tiny(seed=0)
    other, _ = build_tiny(seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    w = "model.language_model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(model.state_dict()[w], again.state_dict()[w])
    assert not torch.equal(model.state_dict()[w], other.state_dict()[w])
    with pytest.raises(TypeError, match="unknown size option"):
        build_tiny(hidden=3)


# --------------------------------------------------------------------------------------------- inputs


def test_parse_modalities():
    assert (
        parse_modalities("both")
        == ALL
        == parse_modalities("video,audio")
        == parse_modalities(["audio", "video"])
    )
    assert parse_modalities("none") == NONE == parse_modalities([])
    assert parse_modalities("video") == VIDEO
    with pytest.raises(ValueError, match="unknown modality"):
        parse_modalities("video,smell")


def test_token_counts_for_default_clip(tiny, clips):
    _, processor = tiny
    batch = build_inputs(processor, clips[:1], ALL)
    audio_id, video_id = ids_of(processor, "<|AUDIO|>", "<|VIDEO|>")
    assert int((batch["input_ids"] == video_id).sum()) == 64  # 8 frames of 112 px
    assert int((batch["input_ids"] == audio_id).sum()) == 37  # 1.5 s
    text = processor.tokenizer.decode(batch["input_ids"][0])
    assert text.index("<|vision_bos|>") < text.index("<|audio_bos|>") < text.index("As an emotional")
    assert text.endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize("mods", MODALITY_SETS, ids=["both", "video", "audio", "none"])
def test_removed_modality_is_absent_and_forward_generate_work(tiny, clips, mods):
    model, processor = tiny
    batch = build_inputs(processor, clips, mods)
    ids = batch["input_ids"]
    blocks = {"video": ("<|VIDEO|>", "<|vision_bos|>", "<|vision_eos|>"),
              "audio": ("<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>")}  # fmt: skip
    tensors = {
        "video": ("pixel_values_videos", "video_grid_thw"),
        "audio": ("input_features", "feature_attention_mask"),
    }
    for m in ("video", "audio"):
        present = any(bool((ids == t).any()) for t in ids_of(processor, *blocks[m]))
        assert present == (m in mods)
        assert all((k in batch) == (m in mods) for k in tensors[m])
    logits = forward_logits(model, batch)
    assert logits.shape[:2] == ids.shape and torch.isfinite(logits).all()
    texts = generate(model, processor, clips[:2], mods, max_new_tokens=5)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_mixed_modality_batch_matches_single_examples(tiny, clips):
    model, processor = tiny
    mods = [ALL, AUDIO, VIDEO]
    batch = build_inputs(processor, clips, mods)
    last = forward_logits(model, batch)[:, -1]
    for i, (clip, m) in enumerate(zip(clips, mods)):
        single = forward_logits(model, build_inputs(processor, [clip], m))[:, -1]
        torch.testing.assert_close(last[i : i + 1], single, atol=1e-4, rtol=1e-4)


def test_labels_cover_completion_and_end_of_turn_only(tiny, clips):
    _, processor = tiny
    tok = processor.tokenizer
    comps = ["<think>The voice has a high pitch.</think><answer>happy</answer>", "<answer>sad</answer>", ""]
    batch = build_inputs(processor, clips, [ALL, VIDEO, NONE], completions=comps, return_labels=True)
    for row, comp in zip(batch["labels"], comps):
        kept = row[row != -100].tolist()
        assert tok.decode(kept) == comp + "<|im_end|>"
    # the labelled tokens are the last tokens of each (left-padded) row
    assert torch.equal(batch["labels"][:, -1], torch.full((3,), tok.convert_tokens_to_ids("<|im_end|>")))
    with pytest.raises(ValueError, match="completions"):
        build_inputs(processor, clips, ALL, return_labels=True)


def test_media_errors_name_the_clip(tiny, clips):
    _, processor = tiny
    bad_sr = Media(frames=clips[0].frames, audio=clips[0].audio, sr=8000, clip_id="x8k")
    with pytest.raises(ValueError, match="x8k.*8000 Hz"):
        build_inputs(processor, [bad_sr], ALL)
    bad_frames = Media(frames=clips[0].frames.astype(np.float32), audio=None, clip_id="xf")
    with pytest.raises(ValueError, match="xf.*uint8"):
        build_inputs(processor, [bad_frames], ALL)


def test_clip_without_audio_uses_video_only(tiny, clips):
    _, processor = tiny
    no_audio = Media(frames=clips[0].frames, audio=None, clip_id="silent")
    a = build_inputs(processor, [no_audio], ALL)
    b = build_inputs(processor, [clips[0]], VIDEO)
    assert torch.equal(a["input_ids"], b["input_ids"]) and "input_features" not in a


# --------------------------------------------------------------------------------------------- removal


def test_removal_strategies_really_remove(clips):
    clip, donor = clips[0], clips[1]
    out, keep = apply_removal(clip, VIDEO, "drop")
    assert keep == VIDEO and out.audio is None and out.frames is clip.frames
    out, keep = apply_removal(clip, AUDIO, "black")
    assert keep == ALL and out.frames.shape == clip.frames.shape and not out.frames.any()
    assert np.array_equal(out.audio, clip.audio)
    out, keep = apply_removal(clip, VIDEO, "black")
    assert keep == ALL and not out.audio.any() and out.audio.shape == clip.audio.shape
    out, keep = apply_removal(clip, NONE, "noise", rng=0)
    assert keep == ALL and out.frames.dtype == np.uint8 and out.frames.shape == clip.frames.shape
    assert not np.array_equal(out.frames, clip.frames) and out.frames.std() > 30
    rms = lambda x: float(np.sqrt(np.mean(x**2)))
    assert not np.array_equal(out.audio, clip.audio) and abs(rms(out.audio) - rms(clip.audio)) < 0.02
    again, _ = apply_removal(clip, NONE, "noise", rng=0)
    assert np.array_equal(again.frames, out.frames)  # seeded
    out, keep = apply_removal(clip, VIDEO, "swap", donor=donor)
    assert keep == ALL and out.audio is donor.audio and out.frames is clip.frames
    with pytest.raises(ValueError, match="donor"):
        apply_removal(clip, VIDEO, "swap")
    with pytest.raises(ValueError, match="unknown removal strategy"):
        apply_removal(clip, VIDEO, "blur")


def test_dropped_and_blacked_inputs_differ_as_expected(tiny, clips):
    _model, processor = tiny
    dropped, keep = apply_removal(clips[0], VIDEO, "drop")
    assert (
        build_inputs(processor, [dropped], keep)["input_ids"].shape[1]
        < build_inputs(processor, [clips[0]], ALL)["input_ids"].shape[1]
    )
    black, keep = apply_removal(clips[0], AUDIO, "black")
    batch = build_inputs(processor, [black], keep)
    assert "pixel_values_videos" in batch  # black frames still go in, normalised constant patches
    pv = batch["pixel_values_videos"]
    assert torch.allclose(pv, pv[0:1, 0:1].expand_as(pv)) or pv.std(dim=0).max() < 1e-5


# --------------------------------------------------------------------------------------------- scoring


def _direct_logp(model, processor, clip, mods, completions):
    """Sum of completion-token log-probs from a plain forward over prompt + completion (one row each)."""
    batch = build_inputs(
        processor,
        [clip] * len(completions),
        mods,
        completions=completions,
        return_labels=True,
        close_turn=False,
    )
    logp = torch.log_softmax(forward_logits(model, batch).double(), dim=-1)
    out = []
    for r, labels in enumerate(batch["labels"]):
        pos = (labels != -100).nonzero().flatten()
        out.append(float(sum(logp[r, p - 1, labels[p]] for p in pos)))
    return np.array(out)


def test_score_labels_matches_per_label_forward(tiny, clips):
    model, processor = tiny
    mods = [ALL, AUDIO, NONE]
    scores = score_labels(model, processor, clips, mods, DFEW7, batch_size=2)
    assert scores.shape == (3, 7) and scores.dtype == np.float64
    direct = [
        _direct_logp(model, processor, c, m, [f"<answer>{lab}</answer>" for lab in DFEW7])
        for c, m in zip(clips, mods)
    ]
    np.testing.assert_allclose(scores, np.array(direct), atol=2e-4)
    # with a per-clip reasoning prefix: log p(prefix + answer) - log p(prefix)
    prefixes = [
        "<think>The face shows wide eyes.</think>",
        "<think>The voice is plain and steady.</think>",
        "",
    ]
    scores = score_labels(model, processor, clips, mods, DFEW7, prefix=prefixes)
    for i, (c, m, pre) in enumerate(zip(clips, mods, prefixes)):
        rows = _direct_logp(
            model, processor, c, m, [pre + f"<answer>{lab}</answer>" for lab in DFEW7] + [pre]
        )
        want = rows[:-1] - (rows[-1] if pre else 0.0)
        np.testing.assert_allclose(scores[i], want, atol=2e-4)


def test_score_labels_multi_token_labels(tiny, clips):
    model, processor = tiny
    labels = ["happy", "happiness", "not sure"]  # shared first token, unequal lengths
    scores = score_labels(model, processor, clips[:2], ALL, labels)
    direct = [
        _direct_logp(model, processor, c, ALL, [f"<answer>{lab}</answer>" for lab in labels])
        for c in clips[:2]
    ]
    np.testing.assert_allclose(scores, np.array(direct), atol=2e-4)


def test_scoring_and_generation_through_a_lora_wrapper(clips):
    from peft import LoraConfig, get_peft_model

    model, processor = build_tiny(seed=3)
    lora = LoraConfig(r=4, target_modules=r".*language_model.*\.(q_proj|v_proj)", init_lora_weights=False)
    peft_model = get_peft_model(model, lora)
    scores = score_labels(peft_model, processor, clips[:1], ALL, DFEW7)
    direct = _direct_logp(peft_model, processor, clips[0], ALL, [f"<answer>{lab}</answer>" for lab in DFEW7])
    np.testing.assert_allclose(scores[0], direct, atol=2e-4)
    assert len(generate(peft_model, processor, clips[:1], AUDIO, max_new_tokens=3)) == 1


def test_parts_find_the_thinker_and_its_towers_through_wrappers(tiny):
    from peft import LoraConfig, get_peft_model

    from omnibench.model import parts

    model, _ = tiny
    inner = model.model
    wrapped = torch.nn.Module()
    wrapped.module = model  # as DDP / accelerate wrap a model
    for m in (model, inner, wrapped):
        assert parts.thinker(m) is inner and parts.thinker(m, family=parts.QWEN2_5_THINKER) is inner
        assert parts.towers(m) == [parts.vision_tower(m), parts.audio_tower(m)] == [inner.visual, inner.audio_tower]
    peft_model = get_peft_model(build_tiny(seed=3)[0], LoraConfig(r=2, target_modules=["q_proj"]))
    assert type(parts.thinker(peft_model)).__name__ == parts.QWEN2_5_THINKER  # the registered module, not the wrapper
    assert parts.thinker(model, family="Qwen3OmniMoeThinkerModel") is None
    lin = torch.nn.Linear(2, 2)
    assert parts.thinker(lin) is None and parts.towers(lin) == [] and parts.vision_tower(lin) is None


# --------------------------------------------------------------------------------------------- generation


def test_generate_sampling_groups_and_seed(tiny, clips):
    model, processor = tiny
    kw = {"do_sample": True, "num_return_sequences": 3, "max_new_tokens": 6, "seed": 7, "batch_size": 2}
    a = generate(model, processor, clips, ALL, **kw)
    b = generate(model, processor, clips, ALL, **kw)
    assert len(a) == 9 and a == b
    greedy = generate(model, processor, clips, ALL, max_new_tokens=6, num_return_sequences=2)
    assert greedy[0::2] == greedy[1::2]  # greedy copies of one clip agree
    assert model.training is False


# --------------------------------------------------------------------------------------------- loading


def test_save_load_round_trip_identical_logits(tiny, clips, tmp_path):
    model, processor = tiny
    save_model(model, processor, tmp_path / "ckpt")
    model2, processor2 = load_model(tmp_path / "ckpt")
    b1 = build_inputs(processor, clips, [ALL, VIDEO, AUDIO])
    b2 = build_inputs(processor2, clips, [ALL, VIDEO, AUDIO])
    assert b1.keys() == b2.keys() and all(torch.equal(b1[k], b2[k]) for k in b1)
    assert torch.equal(forward_logits(model, b1), forward_logits(model2, b2))
    assert processor2.tokenizer.decode(b2["input_ids"][0]) == processor.tokenizer.decode(b1["input_ids"][0])
    assert model2.generation_config.pad_token_id == processor.tokenizer.pad_token_id


def test_save_model_records_the_decode_settings_and_consumers_read_them(tmp_path, caplog):
    from omnibench.data.media import DecodeConfig, decode_config_for
    from omnibench.tiny import build_tiny

    model, processor = build_tiny(labels=("happy", "sad"), seed=0)
    save_model(model, processor, tmp_path / "ckpt", decode={"num_frames": 4, "size": 64})
    loaded, _ = load_model(tmp_path / "ckpt")
    assert loaded.config.omnibench_decode == {"num_frames": 4, "size": 64, "sr": 16000, "max_audio_s": None}
    for source in (tmp_path / "ckpt", loaded):
        assert decode_config_for(source) == DecodeConfig(num_frames=4, size=64)
    with caplog.at_level("WARNING", logger="omnibench"):
        assert decode_config_for(loaded, {"size": 112}).hw == (112, 112)
    assert any("size (64, 64) -> (112, 112)" in r.getMessage() for r in caplog.records)
    save_model(loaded, processor, tmp_path / "again")  # decode=None keeps what the config records
    assert decode_config_for(tmp_path / "again").num_frames == 4


def _tiny_full_layout(thinker):
    """A full Qwen2_5OmniForConditionalGeneration (thinker + tiny talker + tiny token2wav) around ``thinker``."""
    from transformers import Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration

    tc = thinker.config
    vocab = tc.text_config.vocab_size
    talker = {
        "vocab_size": vocab, "embedding_size": tc.text_config.hidden_size, "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        "tts_codec_start_token_id": vocab - 7, "tts_codec_end_token_id": vocab - 6, "tts_codec_pad_token_id": vocab - 5,
        "tts_codec_mask_token_id": vocab - 4, "tts_text_start_token_id": vocab - 3, "tts_text_end_token_id": vocab - 2,
        "tts_text_pad_token_id": vocab - 1, "audio_token_index": tc.audio_token_index, "image_token_index": tc.image_token_index,
        "video_token_index": tc.video_token_index, "vision_start_token_id": tc.vision_start_token_id,
        "vision_end_token_id": tc.vision_end_token_id, "audio_start_token_id": tc.audio_start_token_id,
        "audio_end_token_id": tc.audio_end_token_id,
    }  # fmt: skip
    dit = {
        "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "head_dim": 16, "ff_mult": 1, "emb_dim": 16, "num_embeds": 64,
        "mel_dim": 8, "enc_emb_dim": 8, "enc_dim": 16, "enc_channels": [16, 16, 16, 16, 32], "enc_attention_channels": 8,
        "enc_se_channels": 8, "look_ahead_layers": [1], "look_backward_layers": [0],
    }  # fmt: skip
    bigvgan = {"mel_dim": 8, "upsample_initial_channel": 16, "resblock_kernel_sizes": [3],
                   "resblock_dilation_sizes": [[1, 3, 5]], "upsample_rates": [2], "upsample_kernel_sizes": [4]}  # fmt: skip
    cfg = Qwen2_5OmniConfig(
        thinker_config=tc.to_dict(),
        talker_config=talker,
        token2wav_config={"dit_config": dit, "bigvgan_config": bigvgan},
    )
    full = Qwen2_5OmniForConditionalGeneration(cfg)
    full.thinker.load_state_dict(thinker.state_dict())
    return full


@pytest.mark.slow
def test_full_qwen2_5_omni_layout_loads_thinker_only(tiny, clips, tmp_path):
    model, processor = tiny
    full = _tiny_full_layout(model)
    full.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "qwen2_5_omni"
    loaded, proc = load_model(tmp_path)
    assert type(loaded).__name__ == "Qwen2_5OmniThinkerForConditionalGeneration"
    assert not hasattr(loaded, "talker") and not hasattr(loaded, "token2wav")
    batch = build_inputs(proc, clips, ALL)
    assert torch.equal(forward_logits(model, batch), forward_logits(loaded, batch))


def test_bad_paths_give_clear_errors(tiny, tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist.*config.json"):
        load_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(ModelLoadError, match=r"no config.json \(found: \['notes.txt'\]"):
        load_model(tmp_path / "empty")
    other = tmp_path / "llama"
    other.mkdir()
    (other / "config.json").write_text(
        json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]})
    )
    with pytest.raises(ModelLoadError, match="model_type='llama'.*supported.*qwen2_5_omni"):
        load_model(other)
    noweights = tmp_path / "noweights"
    noweights.mkdir()
    tiny[0].config.save_pretrained(noweights)
    with pytest.raises(ModelLoadError, match="no weights"):
        load_model(noweights)
    with pytest.raises(ModelLoadError, match="is a file"):
        load_model(other / "config.json")


# --------------------------------------------------------------------------------------------- Qwen3-Omni


@pytest.mark.slow
def test_tiny_qwen3_omni_thinker_through_the_same_interface(tmp_path):
    model, processor = build_tiny(arch="qwen3_omni", seed=0)
    assert type(model).__name__ == "Qwen3OmniMoeThinkerForConditionalGeneration"
    clips = [make_clip(5, size=128), make_clip(6, seconds=1.1, size=128)]
    mods = [ALL, AUDIO]
    batch = build_inputs(processor, clips, mods)
    assert int((batch["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<|VIDEO|>")).sum()) == 64
    last = forward_logits(model, batch)[:, -1]
    for i in range(2):
        single = forward_logits(model, build_inputs(processor, [clips[i]], mods[i]))[:, -1]
        torch.testing.assert_close(last[i : i + 1], single, atol=1e-4, rtol=1e-4)
    scores = score_labels(model, processor, clips, mods, DFEW7)
    direct = [
        _direct_logp(model, processor, c, m, [f"<answer>{lab}</answer>" for lab in DFEW7])
        for c, m in zip(clips, mods)
    ]
    np.testing.assert_allclose(scores, np.array(direct), atol=2e-4)
    assert len(generate(model, processor, clips, VIDEO, max_new_tokens=3)) == 2
    save_model(model, processor, tmp_path)
    loaded, proc2 = load_model(tmp_path)
    assert type(proc2).__name__ == "Qwen3OmniMoeProcessor"
    assert torch.equal(forward_logits(loaded, build_inputs(proc2, clips, mods)), forward_logits(model, batch))
