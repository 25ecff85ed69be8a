"""Attribution: exact Shapley properties, shares, value functions, cue lexicon, faithfulness, result I/O,
and (with the tiny model) that every removal strategy really removes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_media

from omnibench.attribution import (
    AttributionResult,
    coalitions,
    cue_counts,
    derangement,
    dominant,
    dominant_agreement,
    exact_shapley,
    faithfulness,
    perceptual_from_correct,
    shapley_matrix,
    shares,
    stated_shares,
    values_from_scores,
)
from omnibench.labels import DFEW7
from omnibench.stats import bootstrap_mean_ci

LEX = {"video": ["smile", "raised brows", "brows", "mouth"], "audio": ["pitch", "high pitch", "loud voice"]}


# ------------------------------------------------------------------------------ exact Shapley


def _counting(fn):
    calls = []

    def v(s):
        calls.append(s)
        return fn(s)

    return v, calls


def test_shapley_efficiency_and_single_evaluation_random_games():
    rng = np.random.default_rng(0)
    for n in (2, 3):
        players = ["video", "audio", "text"][:n]
        for _ in range(20):
            table = {s: rng.normal() for s in coalitions(players)}
            v, calls = _counting(lambda s, t=table: t[s])
            phi = exact_shapley(v, players)
            assert len(calls) == 2**n and len(set(calls)) == 2**n  # each coalition exactly once
            assert sum(phi.values()) == pytest.approx(table[frozenset(players)] - table[frozenset()], abs=1e-9)


def test_shapley_symmetry_dummy_and_known_values():
    # symmetric players get equal values; a dummy gets 0
    v = lambda s: float(("video" in s) + ("audio" in s)) ** 2
    phi = exact_shapley(v, ["video", "audio", "text"])
    assert phi["video"] == pytest.approx(phi["audio"]) and phi["text"] == pytest.approx(0.0, abs=1e-12)
    assert phi["video"] == pytest.approx(2.0)  # (1 + 3) / 2
    # additive game: phi = own contribution
    w = {"video": 0.7, "audio": -0.2, "text": 0.05}
    phi = exact_shapley(lambda s: sum(w[p] for p in s), list(w))
    for p, wp in w.items():
        assert phi[p] == pytest.approx(wp, abs=1e-12)
    # 2-player hand computation: v(∅)=0, v(V)=.6, v(A)=.1, v(VA)=.9 -> phi_V = (.6 + .8)/2, phi_A = (.1 + .3)/2
    t = {frozenset(): 0, frozenset({"video"}): 0.6, frozenset({"audio"}): 0.1, frozenset({"video", "audio"}): 0.9}
    phi = exact_shapley(t.__getitem__, ["video", "audio"])
    assert phi == pytest.approx({"video": 0.7, "audio": 0.2})
    # 3-player glove game: {a} owns left, {b, c} right gloves -> (2/3, 1/6, 1/6)
    glove = lambda s: float("a" in s and ("b" in s or "c" in s))
    assert exact_shapley(glove, "abc") == pytest.approx({"a": 2 / 3, "b": 1 / 6, "c": 1 / 6})


def test_shapley_matrix_matches_scalar_and_rejects_bad_shapes():
    rng = np.random.default_rng(1)
    vals = rng.normal(size=(50, 8))
    phi = shapley_matrix(vals, 3)
    players = ["video", "audio", "text"]
    for i in range(5):
        table = dict(zip(coalitions(players), vals[i]))
        ref = exact_shapley(table.__getitem__, players)
        assert phi[i] == pytest.approx([ref[p] for p in players], abs=1e-12)
    np.testing.assert_allclose(phi.sum(axis=1), vals[:, -1] - vals[:, 0], atol=1e-9)
    with pytest.raises(ValueError):
        shapley_matrix(vals, 2)
    with pytest.raises(ValueError):
        exact_shapley(lambda s: 0.0, ["a", "a"])


def test_shares_definition_and_zero_sum():
    s = shares(np.array([[0.6, 0.2], [0.3, -0.1], [0.0, 0.0], [-0.2, -0.2]]))
    assert s[0] == pytest.approx([0.75, 0.25])
    assert s[1] == pytest.approx([0.75, -0.25])  # negative contribution keeps its sign
    assert np.isnan(s[2]).all()  # no player matters: undefined
    assert s[3] == pytest.approx([-0.5, -0.5])
    assert dominant(np.array([[0.6, 0.2], [0.1, 0.1], [np.nan, 0.1], [-0.1, 0.0]])) == ["video", None, None, "audio"]


def test_values_from_scores():
    scores = np.log(np.array([[0.2, 0.6, 0.2], [0.5, 0.25, 0.25]])) + np.array([[-3.0], [5.0]])  # shifted
    v = values_from_scores(scores, np.array([1, -1]), "prob")
    assert v[0] == pytest.approx(0.6) and np.isnan(v[1])
    assert values_from_scores(scores, np.array([0, 0]), "logprob") == pytest.approx(scores[:, 0])
    with pytest.raises(ValueError):
        values_from_scores(scores, np.array([0, 0]), "accuracy")


# ------------------------------------------------------------------------------ bootstrap, perceptual


def test_bootstrap_mean_ci_reproducible():
    x = np.r_[np.random.default_rng(0).normal(0.3, 0.1, 100), np.nan]
    a, b = bootstrap_mean_ci(x, 500, seed=1), bootstrap_mean_ci(x, 500, seed=1)
    assert a == b and a[1] < a[0] < a[2]
    assert bootstrap_mean_ci(x, 500, seed=2) != a
    assert np.isnan(bootstrap_mean_ci(np.array([np.nan]))[0])


def test_perceptual_from_correct():
    correct = np.array([1, 1, 1, 1, 0, 1, 1, 1], bool)
    perm = np.array([[0, 1, 0, 1, 0, 1, 0, 1], [0, 0, 0, 1, 0, 1, 0, 1]], bool)
    r = perceptual_from_correct(correct, perm, n_boot=300, seed=0)
    assert r["acc"] == pytest.approx(7 / 8)
    assert r["acc_perm"] == pytest.approx((4 / 8 + 3 / 8) / 2)
    assert r["drop"] == pytest.approx(r["acc"] - r["acc_perm"])
    assert r["drop_ci"][0] <= r["drop"] <= r["drop_ci"][1]
    assert r["normalized"] == pytest.approx(r["drop"] / r["acc"])
    assert r == perceptual_from_correct(correct, perm, n_boot=300, seed=0)
    p = derangement(10, np.random.default_rng(0))
    assert sorted(p) == list(range(10)) and not (p == np.arange(10)).any()


# ------------------------------------------------------------------------------ reasoning cues


def test_cue_counts_and_stated_shares():
    text = "<think>A wide smile and raised brows; high pitch.</think><answer>happy</answer>"
    assert cue_counts(text, LEX) == {"video": 2, "audio": 1}  # "raised brows" once, not also "brows"
    assert cue_counts("<think>SMILE, smiles</think>", LEX) == {"video": 1, "audio": 0}  # whole words only
    assert cue_counts("no tags: loud   voice <answer>pitch</answer>", LEX) == {"video": 0, "audio": 1}
    s, nv, na = stated_shares([text, "<think>nothing</think>", "<think>pitch pitch mouth</think>"], LEX)
    assert s[0] == pytest.approx(2 / 3) and np.isnan(s[1]) and s[2] == pytest.approx(1 / 3)
    assert list(nv) == [2, 0, 1] and list(na) == [1, 0, 2]


def test_faithfulness_agreement_and_correlation():
    stated = np.array([0.9, 0.8, 0.1, 0.2, np.nan, 0.5])
    phi = np.array([[0.5, 0.1], [0.1, 0.4], [0.0, 0.3], [0.1, 0.5], [0.3, 0.1], [0.2, 0.1]])
    f = faithfulness(stated, phi)
    # defined for rows 0-3 (row 4 no cue, row 5 stated tie): agree on 0, 2, 3
    assert f["n_agreement"] == 4 and f["agreement"] == pytest.approx(0.75)
    sv = shares(phi)[:, 0]
    ok = ~np.isnan(stated)
    assert f["correlation"] == pytest.approx(np.corrcoef(stated[ok], sv[ok])[0, 1])
    assert f["n_no_cue"] == 1


def test_stated_shares_default_to_the_faithfulness_families_lexicon():
    from omnibench.data.lexicons import FAITHFULNESS_FAMILIES, cue_lexicon

    text = "<think>The face shows a smiling mouth. The voice is plain and steady.</think><answer>happy</answer>"
    assert cue_counts(text) == cue_counts(text, cue_lexicon(*FAITHFULNESS_FAMILIES)) == {"video": 2, "audio": 0}


# ------------------------------------------------------------------------------ the coalition loop


def test_one_coalition_loop_hands_each_coalition_its_inputs_and_prompt(capsys):
    from omnibench.attribution import over_coalitions

    media = make_media(2, frames=2, seconds=0.2, size=8)
    media[1].audio = None  # a clip without audio: its audio player is a dummy
    players = ("video", "audio", "text")
    seen = over_coalitions(media, lambda c: (c.index, c.players, c.modalities, c.prompt), players=players,
                           prompt="P", null_prompt="", report="done")
    assert [s[1] for s in seen] == coalitions(players) and [s[0] for s in seen] == list(range(8))
    for _, S, mods, prompt in seen:
        assert prompt == ("P" if "text" in S else "")
        assert mods == [frozenset(S) - {"text"}, frozenset(S) & {"video"}]
    assert capsys.readouterr().out.splitlines()[-1] == "  coalition audio+text+video: done"
    only = over_coalitions(media, lambda c: c.media, strategy="swap", coalition_list=[frozenset({"audio"})],
                           donors=[1, 0], prompt="P")
    assert len(only) == 1 and only[0][0].frames is media[1].frames and only[0][0].audio is media[0].audio


# ------------------------------------------------------------------------------ result object


def _toy_result(n=40, seed=0):
    rng = np.random.default_rng(seed)
    cond = list(rng.choice(["both", "video", "audio"], n))
    gold = list(rng.choice(["happy", "sad", "neutral"], n))
    pred = [g if rng.random() < 0.8 else "angry" for g in gold]
    vals = rng.uniform(0, 1, size=(n, 4))
    vals[:, 0] = 0.1
    for i, c in enumerate(cond):  # informative modality drives the value
        if c == "video":
            vals[i] = [0.1, 0.9, 0.15, 0.95]
        elif c == "audio":
            vals[i] = [0.1, 0.12, 0.8, 0.85]
    vals[0] = 0.5  # a clip where nothing matters
    phi = shapley_matrix(vals, 2)
    return AttributionResult(ids=[f"c{i}" for i in range(n)], gold=gold, prediction=pred, target=pred, condition=cond,
                             players=("video", "audio"), values=vals, phi=phi, share=shares(phi))


def test_result_summaries_validation_and_roundtrip(tmp_path):
    res = _toy_result()
    df = res.to_frame()
    assert len(df) == len(res) and {"v_none", "v_video", "v_audio", "v_video+audio", "phi_video", "share_audio",
                                    "dominant"} <= set(df.columns)
    val = res.validation()
    cond, gold, corr = np.array(res.condition), np.array(res.gold), res.correct
    for mod in ("video", "audio"):
        sel = (cond == mod) & (gold != "neutral") & corr
        assert val[mod]["n"] == sel.sum() > 0
        # informative modality dominates by construction, except clip 0 (nothing matters: NaN share = not ok)
        assert val[mod]["share_ok"] == pytest.approx(1.0 - sel[0] / sel.sum())
        # clip 0's answer does not depend on the media: left out of the media-relevant figure
        assert val[mod]["n_media_relevant"] == sel.sum() - sel[0]
        assert val[mod]["share_ok_media_relevant"] == 1.0
    bc = res.by_condition(n_boot=200)
    row = bc.set_index("group").loc["video"]
    assert row["share_video"] > 0.8 and row["share_video_lo"] <= row["share_video"] <= row["share_video_hi"]
    assert bc["n_undefined"].sum() == 1
    assert set(res.by_class(n_boot=50)["group"]) == set(res.gold)
    res.with_reasoning([("<think>smile</think>" if c == "video" else "<think>pitch</think>") + "<answer>x</answer>"
                        for c in res.condition], LEX)
    f = res.faithfulness()
    assert f["agreement"] > 0.6
    summ = res.summary(n_boot=50)
    assert set(summ["validation"]["video"]) == {"n", "share_ok"}
    assert set(summ["faithfulness"]) == {"agreement", "correlation"}
    path = res.save(tmp_path / "attribution.jsonl")
    back = AttributionResult.load(path)
    assert back.ids == res.ids and back.players == res.players and back.condition == res.condition
    np.testing.assert_allclose(back.values, res.values)
    np.testing.assert_allclose(back.share, res.share)  # NaN rows survive as NaN
    np.testing.assert_allclose(back.stated_video_share, res.stated_video_share)
    assert back.validation() == res.validation()
    assert dominant_agreement(res, back)["agreement"] == 1.0



def test_validation_mask_is_the_selection_validation_counts():
    res = _toy_result()
    cond, gold, corr = np.array(res.condition), np.array(res.gold), res.correct
    val = res.validation()
    for mod in ("video", "audio"):
        mask = res.validation_mask(mod)
        np.testing.assert_array_equal(mask, (cond == mod) & (gold != "neutral") & corr)
        assert val[mod]["n"] == mask.sum()
        assert val[mod]["share_ok"] == pytest.approx(np.mean(np.nan_to_num(res.share_of(mod)[mask], nan=-1) > 0.5))
    with pytest.raises(ValueError, match="validation is defined"):
        res.validation_mask("text")


def test_pick_examples_takes_correct_non_neutral_clips_one_condition_at_a_time():
    res = AttributionResult(
        ids=["n", "w", "v", "a", "b", "v2"], gold=["neutral", "sad", "sad", "happy", "angry", "happy"],
        prediction=["neutral", "happy", "sad", "happy", "angry", "happy"], target=["neutral"] * 6,
        condition=["video", "video", "video", "audio", "both", "video"], players=("video", "audio"),
        values=np.zeros((6, 4)), phi=np.zeros((6, 2)), share=np.zeros((6, 2)))
    # neutral gold ("n") and a wrong answer ("w") are passed over; conditions in turn, then again
    assert res.pick_examples(n=3) == ["v", "a", "b"]
    assert res.pick_examples(n=4) == ["v", "a", "b", "v2"]
    assert res.pick_examples(n=6) == ["v", "a", "b", "v2", "n", "w"]  # then any clip, in order
    assert res.pick_examples(n=2, conditions=("audio",)) == ["a", "n"]


def test_subset_keeps_every_parallel_array_aligned():
    res = _toy_result(n=10)
    res.with_reasoning(["<think>smile pitch pitch</think>"] * 10, LEX)
    mask = np.array([i % 3 == 0 for i in range(10)])
    sub = res.subset(mask)
    idx = np.flatnonzero(mask)
    assert sub.ids == [res.ids[i] for i in idx] and sub.condition == [res.condition[i] for i in idx]
    np.testing.assert_allclose(sub.phi, res.phi[idx])
    np.testing.assert_allclose(sub.values, res.values[idx])
    np.testing.assert_array_equal(sub.n_cues_audio, res.n_cues_audio[idx])
    assert sub.completion == [res.completion[i] for i in idx] and sub.players == res.players
    with pytest.raises(ValueError, match="mask has 3 entries"):
        res.subset(np.ones(3, bool))


# ------------------------------------------------------------------------------ with the tiny model


#: make_media's settings here: 112-pixel frames of values 0..254, 1.5 s of noise, louder for each clip
MEDIA_KW = {"size": 112, "high": 255, "seconds": 1.5, "audio": "normal", "scale": lambda i: 0.1 * (i + 1)}


def _clips(n=3):
    from omnibench.data.manifest import Clip

    conds = ["both", "video", "audio"]
    return [Clip(id=f"c{i}", video=f"c{i}.mp4", label=["happy", "sad", "angry"][i % 3], split="test_id",
                 meta={"condition": conds[i % 3]}) for i in range(n)]


@pytest.mark.slow
def test_removal_strategies_really_remove(tiny):
    from omnibench.attribution import coalition_inputs
    from omnibench.model import build_inputs

    model, proc = tiny
    vid, aud = model.config.video_token_index, model.config.audio_token_index
    media = make_media(2, **MEDIA_KW)
    donors = [1, 0]
    keep = frozenset({"audio"})
    # drop: no frames, no video tokens, no video tensors
    m, mods = coalition_inputs(media, keep, "drop")
    assert all(x.frames is None for x in m) and mods == [keep, keep]
    batch = build_inputs(proc, m, mods)
    assert not (batch["input_ids"] == vid).any() and (batch["input_ids"] == aud).any()
    assert "pixel_values_videos" not in batch
    m0, mods0 = coalition_inputs(media, frozenset(), "drop")
    b0 = build_inputs(proc, m0, mods0)
    assert not (b0["input_ids"] == vid).any() and not (b0["input_ids"] == aud).any() and "input_features" not in b0
    # black: all-zero frames, audio untouched, the block stays
    m, mods = coalition_inputs(media, keep, "black")
    assert all((x.frames == 0).all() for x in m) and all(mods_i == {"video", "audio"} for mods_i in mods)
    np.testing.assert_array_equal(m[0].audio, media[0].audio)
    assert (build_inputs(proc, m, mods)["input_ids"] == vid).any()
    m, _ = coalition_inputs(media, frozenset({"video"}), "black")
    assert all((x.audio == 0).all() for x in m)
    # noise: same shape, different content; seeded
    m, _ = coalition_inputs(media, keep, "noise", seed=1)
    m2, _ = coalition_inputs(media, keep, "noise", seed=1)
    assert m[0].frames.shape == media[0].frames.shape and not np.array_equal(m[0].frames, media[0].frames)
    np.testing.assert_array_equal(m[0].frames, m2[0].frames)
    # swap: the donor's modality
    m, _ = coalition_inputs(media, keep, "swap", donors=donors)
    np.testing.assert_array_equal(m[0].frames, media[1].frames)
    np.testing.assert_array_equal(m[0].audio, media[0].audio)
    with pytest.raises(ValueError, match="donors"):
        coalition_inputs(media, keep, "swap")


@pytest.mark.slow
def test_attribute_on_tiny_model_is_consistent(tiny):
    from omnibench.attribution import AttributionConfig, attribute
    from omnibench.model import ALL, score_labels

    model, proc = tiny
    media, clips = make_media(3, **MEDIA_KW), _clips(3)
    res = attribute(model, proc, clips, media, config=AttributionConfig(value="logprob", position="prompt", batch_size=4))
    assert res.position == "prompt"
    # full coalition = plain scoring with both modalities; target = its argmax
    direct = score_labels(model, proc, media, ALL, list(DFEW7), batch_size=4)
    assert res.prediction == [DFEW7[i] for i in direct.argmax(1)]
    np.testing.assert_allclose(res.values[:, -1], direct.max(1), atol=1e-6)
    # the empty coalition (no media) is the same text for every clip
    assert np.ptp(res.values[:, 0]) < 1e-6
    np.testing.assert_allclose(res.phi.sum(1), res.values[:, -1] - res.values[:, 0], atol=1e-9)
    # gold target, probability value, three players
    res3 = attribute(model, proc, clips[:2], media[:2], config=AttributionConfig(players=("video", "audio", "text"),
                                                                                 target="gold", position="prompt"))
    assert res3.values.shape == (2, 8) and res3.target == [c.label for c in clips[:2]]
    assert ((res3.values >= 0) & (res3.values <= 1)).all()
    np.testing.assert_allclose(res3.phi.sum(1), res3.values[:, -1] - res3.values[:, 0], atol=1e-9)



@pytest.mark.slow
def test_cli_attribute_writes_jsonl_summary_and_metrics(tiny, tmp_path, mp4_factory):
    import argparse
    import json

    from omnibench.data.manifest import Clip, write_manifest
    from omnibench.evaluate import update_metrics_json
    from omnibench.model import save_model
    from omnibench.stages.commands import add_attribute_args, cli_attribute

    model, proc = tiny
    save_model(model, proc, tmp_path / "run" / "checkpoints" / "grpo")
    conds = ["both", "video", "audio"]
    clips = [Clip(id=f"c{i}", video=str(mp4_factory(f"c{i}.mp4", seed=i)), label=lab, split="test_id",
                  meta={"condition": conds[i], "video_label": lab, "audio_label": "neutral"})
             for i, lab in enumerate(["happy", "sad", "angry"])]
    write_manifest(clips, tmp_path / "manifest.jsonl")
    update_metrics_json(tmp_path / "run" / "metrics.json", {"eval": {"grpo": {"test_id": {"war": 0.5}}}})
    args = add_attribute_args(argparse.ArgumentParser()).parse_args(
        ["--model", str(tmp_path / "run" / "checkpoints" / "grpo"), "--manifest", str(tmp_path / "manifest.jsonl"),
         "--split", "test_id", "--max-new-tokens", "4", "--cross-check", "2", "--batch-size", "3",
         "--position", "prompt"])
    assert cli_attribute(args) == 0
    run = tmp_path / "run"  # outputs go to the run folder above checkpoints/
    back = AttributionResult.load(run / "attribution.jsonl")
    assert back.ids == ["c0", "c1", "c2"] and back.condition == conds and back.stated_video_share is not None
    metrics_json = json.loads((run / "metrics.json").read_text())
    assert metrics_json["eval"] == {"grpo": {"test_id": {"war": 0.5}}}  # kept
    att = metrics_json["attribution"]
    assert set(att["validation"]) == {"video", "audio"} and set(att["validation"]["video"]) == {"n", "share_ok"}
    assert set(att["faithfulness"]) == {"agreement", "correlation"}
    assert att["cross_check"]["n_clips"] == 2 and att["cross_check"]["time_ratio"] > 0
    assert att["method"]["strategy"] == "drop" and att["checkpoint"] == "grpo" and att["split"] == "test_id"


@pytest.mark.slow
def test_cli_attribute_decodes_with_the_checkpoints_settings_and_writes_them(tiny, tmp_path, mp4_factory, capsys,
                                                                              monkeypatch, caplog):
    import argparse
    import json

    from omnibench.data import media as media_module
    from omnibench.data.manifest import Clip, write_manifest
    from omnibench.data.media import MediaStore
    from omnibench.model import save_model
    from omnibench.stages.commands import add_attribute_args, cli_attribute

    model, proc = tiny
    ckpt = tmp_path / "run" / "checkpoints" / "grpo"
    save_model(model, proc, ckpt)
    cfg_path = ckpt / "config.json" if (ckpt / "config.json").is_file() else ckpt / "model" / "config.json"
    config = json.loads(cfg_path.read_text())
    config["omnibench_decode"] = {"num_frames": 4, "size": 64, "sr": 16000, "max_audio_s": None}  # not the defaults
    cfg_path.write_text(json.dumps(config))
    clips = [Clip(id=f"c{i}", video=str(mp4_factory(f"c{i}.mp4", seed=i)), label="happy", split="test_id",
                  meta={"condition": "both"}) for i in range(2)]
    write_manifest(clips, tmp_path / "manifest.jsonl")
    decoded = []

    class Spy(MediaStore):
        def decode(self, clips, progress=False):
            out = super().decode(clips, progress)
            decoded.extend((m.frames.shape, self.config.to_dict()) for m in out)
            return out

    monkeypatch.setattr(media_module, "MediaStore", Spy)
    base = ["--model", str(ckpt), "--manifest", str(tmp_path / "manifest.jsonl"), "--split", "test_id",
            "--no-generate", "--batch-size", "2"]
    assert cli_attribute(add_attribute_args(argparse.ArgumentParser()).parse_args(base)) == 0
    assert decoded and {shape[:3] for shape, _ in decoded} == {(4, 64, 64)}  # the checkpoint's, not 8 x 112
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())["attribution"]
    assert summary["decode"] == {"num_frames": 4, "size": 64, "sr": 16000, "max_audio_s": None,
                                 "missing_audio": "error"}
    assert "decode 4 frames at 64x64 px" in capsys.readouterr().out
    # a flag overrides the checkpoint's setting, with a warning, and the summary says what was used
    decoded.clear()
    with caplog.at_level("WARNING", logger="omnibench"):
        assert cli_attribute(add_attribute_args(argparse.ArgumentParser()).parse_args(
            base + ["--num-frames", "2", "--out", str(tmp_path / "out")])) == 0
    assert decoded and {shape[0] for shape, _ in decoded} == {2}
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["attribution"]["decode"]["num_frames"] == 2
    assert any("num_frames" in r.getMessage() for r in caplog.records)
    assert "decode 2 frames at 64x64 px" in capsys.readouterr().out


def test_resolve_position():
    from omnibench.attribution import resolve_position

    think = "<think>The face shows a smiling mouth.</think><answer>happy</answer>"
    assert resolve_position([think, think, "<answer>sad</answer>"]) == "regenerate"
    assert resolve_position(["<answer>sad</answer>", " <answer>happy</answer>", think]) == "prompt"
    assert resolve_position(None) == "prompt"


@pytest.mark.slow
def test_regenerate_position_scores_after_own_reasoning(tiny):
    from omnibench.attribution import AttributionConfig, attribute
    from omnibench.model import ALL, score_labels

    model, proc = tiny
    media, clips = make_media(2, **MEDIA_KW), _clips(2)
    comps = ["<think>The face shows a smiling mouth.</think><answer>happy</answer>",
             "<think>The voice has a low pitch.</think><answer>sad</answer>"]
    cfg = AttributionConfig(position="auto", batch_size=2, max_new_tokens=4)
    res = attribute(model, proc, clips, media, config=cfg, completions=comps)
    assert res.position == "regenerate" and res.prediction == ["happy", "sad"] and res.target == ["happy", "sad"]
    # the full coalition is scored after the given reasoning; the others after freshly generated text
    direct = score_labels(model, proc, media, ALL, list(DFEW7), prefix=[c.split("<answer>")[0] for c in comps])
    np.testing.assert_allclose(res.label_scores[:, -1, :], direct, atol=1e-6)
    np.testing.assert_allclose(res.phi.sum(1), res.values[:, -1] - res.values[:, 0], atol=1e-9)
    assert res.stated_video_share[0] == 1.0 and res.stated_video_share[1] == 0.0
    # "reasoning" puts the same full-input reasoning in front of every coalition
    res_r = attribute(model, proc, clips, media, config=AttributionConfig(position="reasoning", batch_size=2),
                      completions=comps)
    np.testing.assert_allclose(res_r.label_scores[:, -1, :], direct, atol=1e-6)
