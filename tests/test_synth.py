"""SynthEmo generator: determinism, balance, meta keys, faithful reasoning, decodable mp4s, CLI."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter

import decord
import numpy as np
import pytest

from omnibench.data import synth
from omnibench.data.manifest import read_manifest
from omnibench.data.synth import audio, cues, generation, plan, video
from omnibench.data.synth.cues import _words
from omnibench.labels import DFEW7

N_TRAIN, N_COLD, N_TEST = 21, 21, 7
SEED, DRAW_SEED = 3, 5


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthemo")
    path = synth.generate(out, n_train=N_TRAIN, n_cold_start=N_COLD, n_test=N_TEST, seed=SEED, workers=1,
                          n_draw=N_TEST, draw_seed=DRAW_SEED)
    return path, read_manifest(path, labels=DFEW7)


def test_manifest_counts_splits_and_ids(dataset):
    path, clips = dataset
    assert path.name == "manifest.jsonl"
    counts = Counter(c.split for c in clips)
    assert counts == {"train": N_TRAIN, "cold_start": N_COLD, "test_id": N_TEST, "test_actors": N_TEST,
                      "test_ood": N_TEST, "test_draw": N_TEST}
    assert list(dict.fromkeys(c.split for c in clips)) == list(synth.SPLITS)  # manifest in split order
    assert len({c.id for c in clips}) == len(clips)
    assert all(c.dataset == "synthemo" and c.audio is None for c in clips)


def test_labels_balanced_within_split_and_condition(dataset):
    _, clips = dataset
    for split in ("train", "cold_start"):
        for cond in synth.CONDITIONS:
            labels = Counter(c.label for c in clips if c.split == split and c.meta["condition"] == cond)
            assert set(labels) == set(DFEW7), (split, cond, labels)
            assert max(labels.values()) - min(labels.values()) == 0
    # any n: per split x condition the label counts differ by at most one
    plans = [synth.plan_clip(0, "train", i) for i in range(100)]
    for cond in synth.CONDITIONS:
        cnt = Counter(p["label"] for p in plans if p["condition"] == cond)
        assert max(cnt.values()) - min(cnt.values()) <= 1


def test_meta_keys_and_label_follows_informative_modality(dataset):
    _, clips = dataset
    for c in clips:
        m = c.meta
        for key in ("condition", "actor", "seed", "cues", "video_label", "audio_label"):
            assert key in m, (c.id, key)
        assert isinstance(m["seed"], int)
        assert set(m["cues"]) == set(synth.VIDEO_CUES) | set(synth.AUDIO_CUES)
        assert all(isinstance(v, float) for v in m["cues"].values())
        if m["condition"] == "both":
            assert m["video_label"] == m["audio_label"] == c.label
        elif m["condition"] == "video":
            assert (m["video_label"], m["audio_label"]) == (c.label, "neutral")
        else:
            assert (m["video_label"], m["audio_label"]) == ("neutral", c.label)
        assert ("reasoning" in m) == (c.split == "cold_start")
    # unseen actors in test_actors (nothing else shifted) and test_ood only
    actors = {s: {c.meta["actor"].split("+")[0] for c in clips if c.split == s} for s in synth.SPLITS}
    assert all(a.startswith("a") for s in ("train", "cold_start", "test_id", "test_draw") for a in actors[s])
    assert all(a.startswith("o") for s in ("test_actors", "test_ood") for a in actors[s])
    assert all(c.meta["shift"] == sorted(synth.OOD_FACTORS) for c in clips if c.split == "test_ood")
    assert all(c.meta["shift"] == ["actors"] for c in clips if c.split == "test_actors")


def test_cues_follow_the_expressed_labels():
    """Cue values move in the prototype's direction (e.g. happy smiles, sad voices are quiet)."""
    plans = [synth.plan_clip(0, "train", i) for i in range(420)]

    def mean(cue, label, key):
        return np.mean([p["cues"][cue] for p in plans if p[key] == label])

    assert mean("mouth_curve", "happy", "video_label") > mean("mouth_curve", "neutral", "video_label") + 0.4
    assert mean("eye_open", "surprise", "video_label") > mean("eye_open", "neutral", "video_label") + 0.2
    assert mean("loudness_db", "sad", "audio_label") < mean("loudness_db", "neutral", "audio_label") - 3
    assert mean("rough_depth", "angry", "audio_label") > 0.3
    assert mean("rough_rate", "angry", "audio_label") > 20 > mean("rough_rate", "disgust", "audio_label")
    # the uninformative modality stays neutral: a video-condition clip's voice carries no class cue
    for p in plans:
        if p["condition"] == "video":
            assert p["cues"]["rough_depth"] < 0.25 and abs(p["cues"]["pitch_slope"] + 1) < 5


def _lexicon_hits(text: str, modality: str) -> set[str]:
    words = set(re.findall(r"\w+", text.lower()))
    return words & set(synth.CUE_LEXICON[modality])


def test_reasoning_cites_only_present_cues(dataset):
    _, clips = dataset
    cold = [c for c in clips if c.split == "cold_start"]
    assert len(cold) == N_COLD
    for c in cold:
        text, m = c.meta["reasoning"], c.meta
        assert re.fullmatch(r"<think>[^<>]+</think><answer>(\w+)</answer>", text), text
        assert text.endswith(f"<answer>{c.label}</answer>")
        n_words = len(re.findall(r"\w+", text.split("<answer>")[0].replace("think", "")))
        assert 12 <= n_words <= 32, (n_words, text)
        video_hits, audio_hits = _lexicon_hits(text, "video"), _lexicon_hits(text, "audio")
        if c.label == "neutral":
            assert not video_hits and not audio_hits, text
        elif m["condition"] == "video":
            assert video_hits and not audio_hits, text
            assert synth.NEUTRAL_PHRASES["audio"] in text
        elif m["condition"] == "audio":
            assert audio_hits and not video_hits, text
            assert synth.NEUTRAL_PHRASES["video"] in text
        else:
            assert video_hits and audio_hits, text
        # every cited phrase is a cue actually present in this clip's cue values
        present = set(synth.present_cues(m["cues"], "video", 3)) | set(
            synth.present_cues(m["cues"], "audio", 3)
        )
        cited = {
            p for p in list(synth.VIDEO_PHRASES.values()) + list(synth.AUDIO_PHRASES.values()) if p in text
        }
        assert cited <= present, (cited - present, text)


def test_present_cues_reads_the_values_not_the_label():
    cues = dict(synth.VIDEO_NEUTRAL, **synth.AUDIO_NEUTRAL)
    assert synth.present_cues(cues, "video") == [] and synth.present_cues(cues, "audio") == []
    cues.update(mouth_curve=0.9, rough_depth=0.7, rough_rate=26.0)
    assert synth.present_cues(cues, "video") == ["a smiling mouth"]
    assert synth.present_cues(cues, "audio") == ["a harsh growl"]
    cues["rough_rate"] = 11.0
    assert synth.present_cues(cues, "audio") == ["a creaky rasp"]


def test_vocabulary_covers_reasoning_and_lexicons_are_disjoint(dataset):
    _, clips = dataset
    vocab = set(synth.VOCABULARY)
    for c in clips:
        if c.split == "cold_start":
            assert set(_words(c.meta["reasoning"])) <= vocab, c.meta["reasoning"]
    assert set(DFEW7) <= vocab and {"<think>", "</think>", "<answer>", "</answer>"} <= vocab
    assert not set(synth.CUE_LEXICON["video"]) & set(synth.CUE_LEXICON["audio"])
    neutral_words = {w.lower() for t in synth.NEUTRAL_PHRASES.values() for w in re.findall(r"\w+", t)}
    assert not neutral_words & (set(synth.CUE_LEXICON["video"]) | set(synth.CUE_LEXICON["audio"]))
    assert all(set(_words(t)) <= vocab for t in synth.corpus())
    for i in range(0, 1500, 2):  # many clips, including rare weak ones ("faint signs")
        p = synth.plan_clip(1, "cold_start", i)
        text = synth.reasoning_text(p["label"], p["condition"], p["cues"])
        assert set(_words(text)) <= vocab, text


def test_files_decode_with_decord_video_and_audio(dataset):
    _, clips = dataset
    for c in [clips[0], clips[-1]]:  # a train clip and an OOD clip
        vr = decord.VideoReader(c.video)
        assert len(vr) >= 8
        frames = vr.get_batch(list(np.linspace(0, len(vr) - 1, 8).round().astype(int))).asnumpy()
        assert frames.shape == (8, 112, 112, 3) and frames.dtype == np.uint8
        assert frames.std() > 10  # a drawn face, not a blank frame
        assert abs(vr.get_avg_fps() - 8) < 0.5
        audio = decord.AudioReader(c.video, sample_rate=16000, mono=True)[:].asnumpy().reshape(-1)
        assert 1.4 * 16000 <= audio.size <= 1.6 * 16000
        assert np.sqrt(np.mean(audio**2)) > 0.005  # a voice, not silence


def test_decoded_media_match_rendering():
    """What decord returns is what was drawn (lossy codec, small error) and the voice survives AAC."""
    import tempfile
    from pathlib import Path

    cfg = synth.SynthConfig()
    plan = synth.plan_clip(0, "test_id", 4, (), cfg)
    frames, audio = synth.render_frames(plan, cfg), synth.render_audio(plan, cfg)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.mp4"
        synth.write_mp4(path, frames, audio, cfg.fps, cfg.sr)
        dec = decord.VideoReader(str(path)).get_batch(list(range(len(frames)))).asnumpy()
        back = decord.AudioReader(str(path), sample_rate=cfg.sr, mono=True)[:].asnumpy().reshape(-1)
    assert dec.shape == frames.shape
    assert np.abs(dec.astype(int) - frames).mean() < 6
    rms_in, rms_out = np.sqrt(np.mean(audio**2)), np.sqrt(np.mean(back**2))
    assert 0.7 < rms_out / rms_in < 1.3


def test_same_seed_same_manifest_and_frames(tmp_path):
    kw = {"n_train": 3, "n_cold_start": 3, "n_test": 1, "seed": 7, "workers": 1}
    a = synth.generate(tmp_path / "a", **kw)
    b = synth.generate(tmp_path / "b", **kw)
    c = synth.generate(tmp_path / "c", **{**kw, "seed": 8})
    assert a.read_text() == b.read_text()
    assert a.read_text() != c.read_text()
    for ca, cb in zip(read_manifest(a), read_manifest(b)):
        fa = decord.VideoReader(ca.video).get_batch([0, 5, 11]).asnumpy()
        fb = decord.VideoReader(cb.video).get_batch([0, 5, 11]).asnumpy()
        assert np.array_equal(fa, fb), ca.id
    # parallel workers give the same result, and a second run resumes (files untouched)
    d = synth.generate(tmp_path / "d", **{**kw, "workers": 2, "n_train": 9})
    first = read_manifest(d, split="train")[0]
    mtime = (tmp_path / "d" / "media" / "train" / "train-00000.mp4").stat().st_mtime_ns
    assert next(c.to_dict() for c in read_manifest(a, split="train"))["meta"] == first.meta
    synth.generate(tmp_path / "d", **{**kw, "workers": 1, "n_train": 9})
    assert (tmp_path / "d" / "media" / "train" / "train-00000.mp4").stat().st_mtime_ns == mtime


def test_shifting_one_factor_changes_only_that_factor():
    base = synth.plan_clip(0, "test_ood", 5, ())
    lit = synth.plan_clip(0, "test_ood", 5, ["lighting"])
    voice = synth.plan_clip(0, "test_ood", 5, ["voice"])
    assert base["cues"] == lit["cues"] == voice["cues"] and base["label"] == lit["label"]
    assert base["nuisance"]["gain"] != lit["nuisance"]["gain"]
    assert base["voice"] == lit["voice"] and base["face"]["rx"] == lit["face"]["rx"]
    assert (
        voice["voice"]["f0"] != base["voice"]["f0"] and voice["nuisance"]["gain"] == base["nuisance"]["gain"]
    )
    with pytest.raises(ValueError, match="unknown OOD factor"):
        synth.plan_clip(0, "test_ood", 5, ["colour"])


def test_summarize_and_cli(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    synth.add_synth_args(parser)
    args = parser.parse_args(["--out", str(tmp_path / "s"), "--n-train", "6", "--n-cold-start", "3", "--n-test", "3",
                              "--seed", "1", "--workers", "1"])  # fmt: skip
    assert synth.cli_synth(args) == 0
    out = capsys.readouterr().out
    manifest = tmp_path / "s" / "manifest.jsonl"
    lines = [json.loads(x) for x in manifest.read_text().splitlines()]
    assert len(lines) == 18
    assert "test_ood" in out and "test_actors" in out and "wrote 18 clips" in out
    table = synth.summarize(manifest)
    assert table.loc[("train", "both"), "happy"] == 1 and table["total"].sum() == 18
    assert list(table.columns[:-1]) == [lab for lab in DFEW7 if lab in table.columns]


def test_difficulty_knobs_default_to_the_standard_set_and_strengthen_cues():
    """min/max_intensity and max_onset: defaults draw exactly as before; the easy set has strong, early cues."""
    std = synth.plan_clip(0, "train", 4)
    same = synth.plan_clip(0, "train", 4, cfg=synth.SynthConfig(min_intensity=0.5, max_onset=0.3))
    assert (std["cues"], std["intensity"], std["timing"]) == (same["cues"], same["intensity"], same["timing"])
    assert std["intensity"]["video"] < 1.0 or std["intensity"]["audio"] < 1.0
    easy_cfg = synth.SynthConfig(min_intensity=1.0, max_intensity=1.5, max_onset=0.0)
    for i in range(21):
        plan = synth.plan_clip(0, "train", i, cfg=easy_cfg)
        assert plan["timing"]["onset"] == 0.0
        assert 1.0 <= plan["intensity"]["video"] <= 1.5 and 1.0 <= plan["intensity"]["audio"] <= 1.5
        assert plan["label"] == synth.plan_clip(0, "train", i)["label"]


def test_test_draw_is_drawn_with_its_own_seed_and_never_with_the_training_one(dataset, tmp_path):
    """test_draw's clips are the plans of the draw seed (same distribution, nothing shifted): its actors'
    faces and voices are new draws, unlike test_id's, which are train's; a draw seed equal to the training
    seed (or none) is refused."""
    _, clips = dataset
    draw = [c for c in clips if c.split == "test_draw"]
    assert [c.meta["seed"] for c in draw] == [synth.plan_clip(DRAW_SEED, "test_draw", i)["clip_seed"]
                                              for i in range(N_TEST)]
    assert all("shift" not in c.meta for c in draw)
    f0 = {c.meta["actor"]: c.meta["nuisance"]["f0_hz"] for c in clips if c.split == "train"}
    for c in clips:
        if c.split == "test_id" and c.meta["actor"] in f0:  # the training actor's own voice
            assert c.meta["nuisance"]["f0_hz"] == f0[c.meta["actor"]]
    redrawn = [c for c in draw if c.meta["actor"] in f0]
    assert redrawn and all(c.meta["nuisance"]["f0_hz"] != f0[c.meta["actor"]] for c in redrawn)
    for bad in (SEED, None):
        with pytest.raises(ValueError, match="draw_seed"):
            synth.generate(tmp_path, n_train=0, n_cold_start=0, n_test=0, seed=SEED, n_draw=1, draw_seed=bad)


def test_default_shift_comes_from_the_split_table():
    """test_ood shifts every factor by default, test_actors the actors only; an explicit shift (even none)
    overrides it."""
    assert synth.default_shift("test_ood") == synth.OOD_FACTORS
    assert synth.default_shift("test_actors") == ("actors",)
    assert all(synth.default_shift(s) == () for s in synth.SPLITS if s not in ("test_ood", "test_actors"))
    assert synth.default_shift("not_a_split") == ()
    ood = synth.plan_clip(0, "test_ood", 2, synth.default_shift("test_ood"))
    assert ood["shift"] == sorted(synth.OOD_FACTORS)
    # a split outside the table is seeded by its name, not by another split's code
    assert synth.clip_seed(0, "not_a_split", 0) not in {synth.clip_seed(0, s, 0) for s in synth.SPLITS}


def test_package_exports_every_name_of_its_modules():
    """``synth.X`` is the object defined in the module that owns X (functions, not submodules)."""
    owners = {name: mod for mod in (cues, plan, video, audio, generation) for name in vars(mod)}
    for name in synth.__all__:
        assert getattr(synth, name) is getattr(owners[name], name), name
        assert name in dir(synth)
    from omnibench.data.synth import generate

    assert callable(generate) and generate is generation.generate
    assert synth._meta is generation._meta  # used by benchmarks/gpu_check.py
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        synth.nope  # noqa: B018


def test_cue_language_loads_without_the_renderers():
    """The tokenizer and the attribution read the cue module; it pulls in no numpy, PyAV or renderer."""
    renderers = [f"omnibench.data.synth.{m}" for m in ("plan", "video", "audio", "generation")] + ["av"]
    code = (
        f"import sys; import omnibench.data.synth.cues; heavy = {renderers!r}; "
        "print(sorted(m for m in heavy + ['numpy', 'pandas'] if m in sys.modules)); "
        "import omnibench.tiny.tokenizer; "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "[]"], out


def test_write_mp4_leaves_nothing_behind_when_encoding_fails(tmp_path):
    path = tmp_path / "x.mp4"
    bad_frames = np.zeros((2, 16, 16), np.uint8)  # no colour axis: PyAV refuses the frame
    with pytest.raises(ValueError, match="ndim"):
        synth.write_mp4(path, bad_frames, np.zeros(1600, np.float32), 8, 16000)
    assert list(tmp_path.iterdir()) == []
