"""Evaluation: answer parsing, WAR/UAR known answers, bootstrap CIs, metrics.json schema and merging."""

from __future__ import annotations

import json

import numpy as np
import pytest

from omnibench.answers import resolve as resolve_prediction
from omnibench.evaluate import (
    EvalResult,
    eval_table,
    metrics,
    read_predictions,
    update_metrics_json,
    validate_eval_schema,
)
from omnibench.labels import DFEW7
from omnibench.stats import bootstrap_war_uar

LABELS = DFEW7


def test_resolve_prediction_statuses():
    assert resolve_prediction("<think>smile</think><answer>happy</answer>", LABELS) == ("happy", "ok")
    assert resolve_prediction("<answer> Happiness </answer>", LABELS) == ("happy", "alias")
    assert resolve_prediction("<answer>contempt</answer>", LABELS) == (None, "out_of_set")
    assert resolve_prediction("I think it is happy", LABELS) == (None, "unparseable")
    assert resolve_prediction("<answer></answer>", LABELS) == (None, "unparseable")
    assert resolve_prediction(None, LABELS) == (None, "unparseable")
    # the last answer wins
    assert resolve_prediction("<answer>sad</answer> <answer>angry</answer>", LABELS) == ("angry", "ok")


def test_war_uar_known_answer():
    # 4 happy (3 right), 2 sad (1 right), 2 angry (0 right) -> WAR 4/8, UAR (0.75+0.5+0)/3
    gold = ["happy"] * 4 + ["sad"] * 2 + ["angry"] * 2
    pred = ["happy", "happy", "happy", "sad", "sad", "happy", "sad", None]
    m = metrics(gold, pred, LABELS, n_boot=200, seed=0)
    assert m["war"] == pytest.approx(0.5)
    assert m["uar"] == pytest.approx((0.75 + 0.5 + 0.0) / 3)
    assert m["n"] == 8
    assert m["per_class_recall"]["happy"] == pytest.approx(0.75)
    assert m["per_class_recall"]["angry"] == 0.0
    assert m["per_class_recall"]["fear"] is None  # absent from gold: not in UAR
    assert m["unparseable"] == pytest.approx(1 / 8)
    conf = np.array(m["confusion"])
    assert conf.sum() == 8
    assert conf[m["classes"].index("angry"), m["columns"].index("<none>")] == 1
    assert conf[m["classes"].index("happy"), m["columns"].index("sad")] == 1
    lo, hi = m["war_ci"]
    assert 0 <= lo <= m["war"] <= hi <= 1


def test_out_of_set_and_unparseable_counted_never_dropped():
    gold = ["happy", "happy", "Sadness", "contempt", None]
    pred = ["Happiness", "contempt", "sad", "happy", "happy"]
    m = metrics(gold, pred, LABELS, n_boot=0)
    # unlabelled clip left out (counted); the other four all kept
    assert m["n"] == 4 and m["n_unlabelled"] == 1
    assert m["n_alias"] == 1 and m["n_out_of_set"] == 1
    assert m["n_gold_out_of_set"] == 1
    # happy: 1/2 right, sad (alias gold) 1/1, contempt (gold outside the set): always wrong
    assert m["war"] == pytest.approx(2 / 4)
    assert m["uar"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert m["per_class_recall"]["contempt"] == 0.0
    # statuses from completions
    comps = ["<answer>happy</answer>", "no answer", "<answer>joy</answer>", "<answer>bored</answer>"]
    res = [resolve_prediction(c, LABELS) for c in comps]
    m2 = metrics(["happy"] * 4, [r[0] for r in res], LABELS, n_boot=0, status=[r[1] for r in res])
    assert (m2["n_unparseable"], m2["n_out_of_set"], m2["n_alias"]) == (1, 1, 1)
    assert m2["unparseable"] == pytest.approx(0.25)
    assert m2["war"] == pytest.approx(0.5)


def test_bootstrap_reproducible_and_seed_sensitive():
    rng = np.random.default_rng(1)
    gold = list(rng.choice(LABELS, 200))
    pred = [g if rng.random() < 0.6 else rng.choice(LABELS) for g in gold]
    a = metrics(gold, pred, LABELS, n_boot=500, seed=3)
    b = metrics(gold, pred, LABELS, n_boot=500, seed=3)
    c = metrics(gold, pred, LABELS, n_boot=500, seed=4)
    assert a["war_ci"] == b["war_ci"] and a["uar_ci"] == b["uar_ci"]
    assert a["war_ci"] != c["war_ci"]
    for key in ("war", "uar"):
        lo, hi = a[f"{key}_ci"]
        assert lo < a[key] < hi and hi - lo < 0.2


def test_bootstrap_ci_matches_normal_approximation():
    # WAR of 1000 coin flips with p=0.7: the 95% CI half-width is about 1.96*sqrt(.21/1000) = 0.028
    g = np.zeros(1000, dtype=np.int64)
    correct = np.r_[np.ones(700, bool), np.zeros(300, bool)]
    (lo, hi), _ = bootstrap_war_uar(g, correct, 1, n_boot=2000, seed=0)
    assert (hi - lo) / 2 == pytest.approx(1.96 * np.sqrt(0.21 / 1000), rel=0.1)


def _result(ck, split, mods="video,audio"):
    gold = ["happy", "sad", "angry", "happy"]
    pred = ["happy", "sad", None, "sad"]
    r = EvalResult(ids=[f"c{i}" for i in range(4)], gold=gold, prediction=pred,
                   completion=["<answer>happy</answer>", "<answer>sad</answer>", "??", "<answer>sad</answer>"],
                   status=["ok", "ok", "unparseable", "ok"], labels=LABELS, modalities=mods, checkpoint=ck, split=split)
    r.metrics = metrics(gold, pred, LABELS, n_boot=100, seed=0, status=r.status)
    return r


def test_metrics_json_schema_and_merge(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"timing": {"sft": 12.5}, "eval": {"base": {"test_id": {"keep": 1}}}}))
    results = [_result(ck, sp) for ck in ("base", "cold_start", "label_sft", "grpo") for sp in ("test_id", "test_ood")]
    results.append(_result("grpo", "test_id", mods="video"))
    table = eval_table(results)
    validate_eval_schema(table)
    assert set(table["eval"]) == {"base", "cold_start", "label_sft", "grpo"}
    assert set(table["eval"]["grpo"]) == {"test_id", "test_ood"}
    assert "grpo/video" in table["eval_modalities"]
    cell = table["eval"]["grpo"]["test_id"]
    assert cell["war"] == pytest.approx(0.5) and cell["n"] == 4 and cell["unparseable"] == pytest.approx(0.25)
    merged = update_metrics_json(path, table)
    on_disk = json.loads(path.read_text())
    assert on_disk == merged
    assert on_disk["timing"] == {"sft": 12.5}  # other keys survive
    validate_eval_schema(on_disk)  # the stale cell was replaced by a full one
    # a second merge adds without losing
    update_metrics_json(path, {"attribution": {"validation": {"video": {"n": 3, "share_ok": 1.0}}}})
    again = json.loads(path.read_text())
    assert again["eval"] == on_disk["eval"] and again["timing"] == {"sft": 12.5} and "attribution" in again
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ValueError, match="keys"):
        validate_eval_schema({"eval": {"base": {"test_id": {"war": 0.5}}}})


def test_predictions_jsonl_roundtrip(tmp_path):
    r = _result("grpo", "test_id")
    path = r.write_predictions(tmp_path / "pred.jsonl")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == 4
    assert set(lines[0]) >= {"id", "gold", "prediction", "completion", "parsed", "modalities", "checkpoint"}
    assert lines[2]["parsed"] is False and lines[2]["prediction"] is None
    back = read_predictions(path, LABELS, n_boot=100, seed=0)
    assert back.summary() == r.summary()
    assert read_predictions(path, n_boot=100, seed=0).labels == tuple(LABELS)  # the file records its label set
    bare = tmp_path / "old.jsonl"
    bare.write_text("".join(json.dumps({k: v for k, v in x.items() if k != "labels"}) + "\n" for x in lines))
    with pytest.raises(ValueError, match="do not record the label set"):
        read_predictions(bare)
    df = back.to_frame()
    assert list(df["correct"]) == [True, True, False, False]


@pytest.mark.slow
def test_cli_eval_on_tiny_checkpoint(tmp_path, mp4_factory):
    """`omnibench eval` end to end: saved tiny model, real mp4 manifest, predictions + metrics.json."""
    import argparse

    from omnibench.data.manifest import Clip, write_manifest
    from omnibench.model import save_model
    from omnibench.stages.commands import add_eval_args, cli_eval
    from omnibench.tiny import build_tiny

    model, proc = build_tiny(seed=0)
    save_model(model, proc, tmp_path / "run" / "grpo")
    clips = [Clip(id=f"c{i}", video=str(mp4_factory(f"c{i}.mp4", seed=i)), label=lab, split="test_id")
             for i, lab in enumerate(["happy", "sad", "Anger"])]
    write_manifest(clips, tmp_path / "manifest.jsonl")
    (tmp_path / "run" / "metrics.json").write_text(json.dumps({"timing": {"sft": 1.0}}))
    parser = add_eval_args(argparse.ArgumentParser())
    for extra, mode in (([], "generate"), (["--mode", "score", "--modalities", "audio"], "score")):
        args = parser.parse_args(["--model", str(tmp_path / "run" / "grpo"), "--manifest", str(tmp_path / "manifest.jsonl"),
                                  "--split", "test_id", "--max-new-tokens", "6", "--n-boot", "50", *extra])
        assert cli_eval(args) == 0
    merged = json.loads((tmp_path / "run" / "metrics.json").read_text())
    validate_eval_schema(merged)
    cell = merged["eval"]["grpo"]["test_id"]
    assert cell["n"] == 3 and 0 <= cell["war"] <= 1
    assert merged["timing"] == {"sft": 1.0}
    assert merged["eval_modalities"]["grpo/audio"]["test_id"]["unparseable"] == 0.0  # score mode always answers
    preds = tmp_path / "run" / "predictions" / "grpo__test_id__video+audio.jsonl"
    rows = [json.loads(x) for x in preds.read_text().splitlines()]
    assert [r["gold"] for r in rows] == ["happy", "sad", "angry"]  # alias-normalised by the manifest
    assert all(r["checkpoint"] == "grpo" and r["modalities"] == "video,audio" for r in rows)
    audio_rows = [json.loads(x) for x in (tmp_path / "run" / "predictions" / "grpo__test_id__audio.jsonl").read_text().splitlines()]
    assert all(r["prediction"] in DFEW7 for r in audio_rows)


def _manifest(tmp_path, rows, dataset="ravdess", split="test"):
    from omnibench.data.manifest import Clip, write_manifest

    video = tmp_path / "v.mp4"
    video.write_bytes(b"\0")  # never decoded: external predictions only read ids and gold labels
    clips = [Clip(id=cid, video=str(video), label=lab, split=split, dataset=dataset) for cid, lab in rows]
    return write_manifest(clips, tmp_path / "manifest.jsonl")


def test_eval_scores_external_predictions_like_a_hand_computation(tmp_path, capsys):
    """`omnibench eval --predictions`: a hand-written JSONL scored against RAVDESS's 8 labels."""
    import argparse

    from omnibench.stages.commands import add_eval_args, cli_eval

    rows = [("a", "happy"), ("b", "happy"), ("c", "calm"), ("d", "sad"), ("e", "angry")]
    manifest = _manifest(tmp_path, rows)
    preds = tmp_path / "other_model.jsonl"
    preds.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "completion": "<think>smile</think><answer>Happiness</answer>"},  # alias: right
        {"id": "b", "completion": "<answer>sad</answer>"},                            # wrong
        {"id": "c", "completion": "<answer>calm</answer>"},                           # calm is in RAVDESS: right
        {"id": "d", "completion": "no tags at all"},                                  # unparseable: wrong
        {"id": "zz", "completion": "<answer>happy</answer>"},                         # not in the split: skipped
    ]) + "\n")  # clip e has no prediction: counted, wrong
    args = add_eval_args(argparse.ArgumentParser()).parse_args(
        ["--predictions", str(preds), "--manifest", str(manifest), "--split", "test", "--n-boot", "20"])
    assert cli_eval(args) == 0
    out = capsys.readouterr().out
    assert "1 clip(s) of the split have no prediction" in out and "1 id(s) not in the split" in out
    cell = json.loads((tmp_path / "metrics.json").read_text())["eval"]["other_model"]["test"]
    # WAR = 2 right of 5; UAR over the gold classes present: happy 1/2, calm 1, sad 0, angry 0 -> 1.5 / 4
    assert cell["n"] == 5 and cell["war"] == pytest.approx(2 / 5) and cell["uar"] == pytest.approx(1.5 / 4)
    assert cell["unparseable"] == pytest.approx(2 / 5)  # d (no tags) and e (no prediction)
    rows_out = [json.loads(x) for x in (tmp_path / "predictions" / "other_model__test__video+audio.jsonl").read_text().splitlines()]
    assert [r["prediction"] for r in rows_out] == ["happy", "sad", "calm", None, None]


def test_external_predictions_csv_with_bare_labels(tmp_path):
    from omnibench.data.manifest import read_manifest
    from omnibench.evaluate import read_external_predictions

    clips = read_manifest(_manifest(tmp_path, [("a", "contempt"), ("b", "anxiety")], dataset="mafw"))
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("id,prediction\na,Contemptuous\nb,fear\n")
    res = read_external_predictions(csv_path, clips, n_boot=0)
    assert res.labels == tuple(__import__("omnibench.labels", fromlist=["x"]).label_set("mafw"))
    assert res.prediction == ["contempt", "fear"] and res.status == ["alias", "ok"]
    assert res.metrics["war"] == 0.5


def test_external_predictions_errors_name_the_file(tmp_path):
    from omnibench.data.manifest import read_manifest
    from omnibench.evaluate import read_external_predictions

    clips = read_manifest(_manifest(tmp_path, [("a", "happy")]))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"clip": "a", "completion": "x"}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl: needs an 'id' column"):
        read_external_predictions(bad, clips)
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"id": "nope", "prediction": "happy"}) + "\n")
    with pytest.raises(ValueError, match="none of its 1 ids"):
        read_external_predictions(other, clips)


def test_each_dataset_is_scored_with_its_own_label_set():
    from omnibench.data.manifest import Clip
    from omnibench.evaluate import eval_labels
    from omnibench.labels import label_set

    def clips(ds):
        return [Clip(id="x", video="v.mp4", label="happy", split="test", dataset=ds)]

    assert eval_labels(clips("mafw")) == label_set("mafw") and len(label_set("mafw")) == 11
    assert eval_labels(clips("ravdess")) == label_set("ravdess") and "calm" in eval_labels(clips("ravdess"))
    assert eval_labels(clips("nocard"), default=("a", "b")) == ("a", "b")
    with pytest.raises(ValueError, match="mixes clips of several datasets"):
        eval_labels(clips("mafw") + clips("dfew"))


def test_seven_class_subset_reports_the_clips_outside_it():
    from omnibench.evaluate import subset_metrics
    from omnibench.labels import label_set

    mafw = label_set("mafw")
    gold = ["contempt", "happy", "sad", "anxiety"]
    pred = ["contempt", "happy", "happy", "fear"]
    full = metrics(gold, pred, mafw, n_boot=0)
    sub = subset_metrics(gold, pred, mafw, subset=DFEW7, n_boot=0)
    assert full["war"] == pytest.approx(2 / 4)  # contempt counted right in the 11-label figure
    assert sub["n"] == 2 and sub["n_outside_subset"] == 2 and sub["war"] == pytest.approx(1 / 2)
    assert set(sub["subset"]) == set(DFEW7)


@pytest.mark.slow
def test_cli_eval_uses_the_decode_settings_the_checkpoint_was_trained_with(tmp_path, mp4_factory, capsys):
    import argparse

    from omnibench.data.manifest import Clip, write_manifest
    from omnibench.data.media import CONFIG_KEY, DecodeConfig
    from omnibench.model import save_model
    from omnibench.stages.commands import add_eval_args, cli_eval
    from omnibench.tiny import build_tiny

    model, proc = build_tiny(seed=0)
    setattr(model.config, CONFIG_KEY, DecodeConfig(num_frames=4, size=64).settings())
    save_model(model, proc, tmp_path / "run" / "checkpoints" / "grpo" / "model")
    clips = [Clip(id=f"c{i}", video=str(mp4_factory(f"c{i}.mp4", seed=i)), label="happy", split="test_id")
             for i in range(2)]
    write_manifest(clips, tmp_path / "manifest.jsonl")
    parser = add_eval_args(argparse.ArgumentParser())
    base = ["--model", str(tmp_path / "run" / "checkpoints" / "grpo" / "model"), "--manifest",
            str(tmp_path / "manifest.jsonl"), "--split", "test_id", "--max-new-tokens", "4", "--n-boot", "10"]
    assert cli_eval(parser.parse_args(base)) == 0
    assert "; decode 4 frames at 64x64 px" in capsys.readouterr().out
    assert cli_eval(parser.parse_args(base + ["--num-frames", "2"])) == 0  # an override wins, and says so
    assert "; decode 2 frames at 64x64 px" in capsys.readouterr().out
    assert "grpo" in json.loads((tmp_path / "run" / "metrics.json").read_text())["eval"]
