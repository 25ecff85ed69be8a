"""Perception pre-training of the tiny base model: targets, tower read-outs, the description stage."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import make_media

pytestmark = pytest.mark.usefixtures("one_thread")

from omnibench.data.manifest import Clip
from omnibench.data.media import synth_media
from omnibench.data.synth import LABELS, description_text, plan_clip, present_cues
from omnibench.tiny import build_tiny
from omnibench.tiny.perception import (
    PerceptionConfig,
    description_targets,
    modality_targets,
    pretrain_describer,
    pretrain_encoders,
    pretrain_tiny_base,
)


def _clip(i, label="happy", video_label="happy", audio_label="neutral", **meta):
    return Clip(id=f"c{i}", video=f"c{i}.mp4", label=label, split="train",
                meta={"video_label": video_label, "audio_label": audio_label, **meta})


def test_modality_targets_use_each_modality_label_or_the_clip_label():
    clips = [_clip(0), _clip(1, label="sad", video_label="neutral", audio_label="sad")]
    t = modality_targets(clips, LABELS)
    assert [LABELS[i] for i in t["video"]] == ["happy", "neutral"]
    assert [LABELS[i] for i in t["audio"]] == ["neutral", "sad"]
    t = modality_targets(clips, LABELS, targets="label")
    assert [LABELS[i] for i in t["video"]] == [LABELS[i] for i in t["audio"]] == ["happy", "sad"]


def test_modality_targets_name_the_clip_and_the_fix():
    bare = Clip(id="real-7", video="x.mp4", label="happy", split="train", meta={})
    with pytest.raises(ValueError, match=r"real-7.*targets='label'"):
        modality_targets([bare], LABELS)
    with pytest.raises(ValueError, match=r"c0.*'joy'"):
        modality_targets([_clip(0, video_label="joy")], LABELS)
    with pytest.raises(ValueError, match="targets must be"):
        PerceptionConfig(targets="both")


def test_description_names_cues_but_never_an_emotion():
    for i in range(42):
        plan = plan_clip(0, "train", i)
        text = description_text(plan["cues"])
        words = set(text.lower().replace(".", " ").replace(",", " ").split())
        assert not words & set(LABELS), text
        assert text.startswith("The face ") and " The voice " in text
        for modality in ("video", "audio"):
            present = present_cues(plan["cues"], modality, top=3)
            assert all(p in text for p in present), (text, present)
            if not present:
                assert ("calm and still" if modality == "video" else "plain and steady") in text
    clip = _clip(0, description="A given description.")
    assert description_targets([clip]) == ["A given description."]
    with pytest.raises(ValueError, match=r"c0.*describe_steps: 0"):
        description_targets([_clip(0)])


def _params(model, part):
    return {n: p.detach().clone() for n, p in model.named_parameters() if part in n}


def test_tower_pretraining_changes_the_towers_only_and_logs_readout_accuracy(tmp_path):
    model, proc = build_tiny(seed=0)
    clips = [_clip(i, video_label=LABELS[i % 7], audio_label=LABELS[(i + 3) % 7]) for i in range(12)]
    media = make_media(12, audio="normal")
    before = {k: _params(model, k) for k in ("visual", "audio_tower", "language_model")}
    log = tmp_path / "p.jsonl"
    cfg = PerceptionConfig(steps=3, batch_size=4, eval_every=1, val_fraction=0.25, describe_steps=0)
    hist = pretrain_encoders(model, proc, media, modality_targets(clips, LABELS), len(LABELS), cfg,
                             progress=False, log_path=log)
    after = {k: _params(model, k) for k in before}
    for part in ("visual", "audio_tower"):
        assert any(not torch.equal(before[part][n], after[part][n]) for n in before[part]), part
    assert all(torch.equal(before["language_model"][n], after["language_model"][n]) for n in before["language_model"])
    assert [r["step"] for r in hist] == [1, 2, 3]
    # accuracy on the 3 held-out clips (val_fraction 0.25 of 12): multiples of 1/3
    assert all(abs(r[k] * 3 - round(r[k] * 3)) < 1e-9 for r in hist for k in ("video_accuracy", "audio_accuracy"))
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3]


def test_tower_pretraining_rejects_bad_input():
    model, proc = build_tiny(seed=0)
    media = make_media(4, audio="normal")
    t = {"video": np.zeros(4, np.int64), "audio": np.zeros(4, np.int64)}
    cfg = PerceptionConfig(steps=1, batch_size=2, val_fraction=0.0)
    with pytest.raises(ValueError, match="3 video targets for 4 clips"):
        pretrain_encoders(model, proc, media, {"video": t["video"][:3], "audio": t["audio"]}, 7, cfg)
    with pytest.raises(ValueError, match=r"label indices in \[0, 7\)"):
        pretrain_encoders(model, proc, media, {"video": t["video"] + 7, "audio": t["audio"]}, 7, cfg)
    silent = [synth_media(m.frames, None, clip_id=m.clip_id) for m in media]
    with pytest.raises(ValueError, match="needs video and audio"):
        pretrain_encoders(model, proc, silent, t, 7, cfg)


def test_description_stage_fits_the_descriptions_of_a_few_clips():
    model, proc = build_tiny(seed=0)
    media = make_media(4, audio="normal")
    texts = ["The face shows a smiling mouth. The voice is plain and steady.",
             "The face is calm and still. The voice has a high pitch.",
             "The face shows wide eyes. The voice has loud volume.",
             "The face is calm and still. The voice is plain and steady."]
    cfg = PerceptionConfig(describe_steps=40, describe_batch_size=4, eval_every=10, describe_learning_rate=1e-2)
    lm_before = _params(model, "language_model")
    hist = pretrain_describer(model, proc, media, texts, cfg, progress=False)
    assert hist[-1]["loss"] < 0.5 * hist[0]["loss"], hist
    assert any(not torch.equal(lm_before[n], p) for n, p in _params(model, "language_model").items())


def test_pretrain_tiny_base_records_its_settings_in_the_config():
    model, proc = build_tiny(seed=0)
    clips = [_clip(i, cues=plan_clip(0, "train", i)["cues"]) for i in range(8)]
    cfg = PerceptionConfig(steps=1, batch_size=4, describe_steps=1, describe_batch_size=4, eval_every=1)
    media = make_media(8, audio="normal")
    hist = pretrain_tiny_base(model, proc, clips, media, cfg, labels=LABELS, progress=False)
    assert [r["stage"] for r in hist] == ["towers", "describe"]
    rec = model.config.omnibench_perception
    assert rec["steps"] == 1 and rec["n_clips"] == 8 and rec["describe"]["step"] == 1
    with pytest.raises(ValueError, match="label set"):
        pretrain_tiny_base(model, proc, clips, make_media(8, audio="normal"), cfg, labels=(), progress=False)
    # description only: clips need no per-modality labels
    described = [Clip(id=f"d{i}", video="x.mp4", label="happy", split="train", meta={"description": "The face."})
                 for i in range(4)]
    only = PerceptionConfig(steps=0, describe_steps=1, describe_batch_size=4, eval_every=1)
    hist = pretrain_tiny_base(model, proc, described, make_media(4, audio="normal"), only, labels=LABELS,
                              progress=False)
    assert [r["stage"] for r in hist] == ["describe"]


@pytest.mark.slow
def test_cli_base_builds_a_loadable_pretrained_base(tmp_path):
    from omnibench.cli import main
    from omnibench.data.synth import generate
    from omnibench.model import load_model

    data = tmp_path / "synthemo"
    generate(data, n_train=9, n_cold_start=0, n_test=0, seed=0, workers=1)
    out = tmp_path / "base"
    assert main(["base", "--manifest", str(data / "manifest.jsonl"), "--out", str(out), "--steps", "2",
                 "--batch-size", "4", "--describe-steps", "2", "--describe-batch-size", "4", "--eval-every", "1",
                 "--learning-rate", "0.004", "--max-grad-norm", "0.5", "--targets", "label",
                 "--num-frames", "4", "--frame-size", "64", "--no-progress"]) == 0
    model, _ = load_model(out)
    from omnibench.data.media import DecodeConfig, decode_config_for

    assert decode_config_for(out) == DecodeConfig(num_frames=4, size=64)  # the base records its decode settings
    rec = model.config.omnibench_perception
    assert rec["steps"] == 2 and rec["describe_steps"] == 2 and rec["n_clips"] == 9
    assert rec["learning_rate"] == 0.004 and rec["max_grad_norm"] == 0.5 and rec["targets"] == "label"
    rows = [json.loads(line) for line in (out / "perception.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows] == ["towers", "towers", "describe", "describe"]
    assert all(r["seconds"] >= 0 for r in rows) and rows[1]["seconds"] >= rows[0]["seconds"]  # time per stage
    with pytest.raises(FileNotFoundError, match="omnibench synth"):
        main(["base", "--manifest", str(tmp_path / "none.jsonl"), "--out", str(out)])


def test_perception_plot_and_summary_read_the_log(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from omnibench.plots import plot_perception
    from omnibench.stages.train import perception_summary

    log = tmp_path / "perception.jsonl"
    rows = [{"stage": "towers", "step": s, "loss": 3.0 - s, "video_accuracy": 0.2 * s, "audio_accuracy": 0.1 * s}
            for s in (1, 2)] + [{"stage": "describe", "step": 5, "loss": 0.4, "learning_rate": 0.0}]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, ax = plot_perception(log)
    assert [line.get_label() for line in ax.get_lines()] == ["video", "audio"]
    assert list(ax.get_lines()[0].get_ydata()) == [0.2, 0.4]
    assert perception_summary(log) == {"towers": {"step": 2, "loss": 1.0, "video_accuracy": 0.4, "audio_accuracy": 0.2},
                                       "describe": {"step": 5, "loss": 0.4}}
    (tmp_path / "describe.jsonl").write_text(json.dumps({"stage": "describe", "step": 1, "loss": 1.0}) + "\n")
    _, ax = plot_perception(tmp_path / "describe.jsonl")  # towers not pre-trained: the description loss
    assert list(ax.get_lines()[0].get_ydata()) == [1.0]
    (tmp_path / "empty.jsonl").write_text(json.dumps({"stage": "other", "step": 1}) + "\n")
    with pytest.raises(KeyError, match="read-out accuracy or description loss"):
        plot_perception(tmp_path / "empty.jsonl")
