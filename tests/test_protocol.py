"""R1-Omni's protocol on real dataset layouts: configs/r1omni.yaml end to end, and its parts.

The end-to-end test builds DFEW, MAFW, RAVDESS and an R1-Omni JSON in their real layouts with tiny
generated media and real file names (``tests/fixtures_layouts.make_r1omni_protocol``; DFEW clip 2 is
corrupt), runs ``configs/r1omni.yaml`` through the pipeline runner with the tiny model and tiny step
counts (everything set on the command line, as a user would), and checks the table: one column group per
evaluated dataset, each scored against its own label set, in/out of distribution by what was trained
on, the corrupt clip skipped, counted and listed. The other tests check the pieces without a model.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import yaml
from fixtures_layouts import make_r1omni_protocol, media

from omnibench.data.manifest import Clip, read_manifest, write_manifest
from omnibench.data.media import MediaError, MediaStore
from omnibench.data.summary import label_union, resolve_sources, split_info
from omnibench.evaluate import EvalResult, metrics, validate_eval_schema
from omnibench.labels import DFEW7, label_set
from omnibench.pipeline import PipelineError, load_recipe, run_pipeline
from omnibench.run import RunFolder
from omnibench.stages.evaluate import subset_table
from omnibench.stages.train import usable_manifest

REPO = Path(__file__).resolve().parents[1]
R1OMNI = REPO / "configs" / "r1omni.yaml"
CHECKPOINTS = ("base", "cold_start", "label_sft", "grpo")
EVAL_SPLITS = {"dfew/test": ("dfew", 7, "in"), "mafw/test": ("mafw", 11, "in"), "ravdess/test": ("ravdess", 8, "out")}

#: Everything tiny: the protocol's structure, not its training budget.
TINY = [
    "model=tiny",
    "data.examples_split=dfew/test",  # holds the corrupt clip: the examples pass over it
    "cold_start.perception={steps: 1, describe_steps: 0, batch_size: 4, eval_every: 1, targets: label}",
    "cold_start.max_steps=2", "cold_start.batch_size=2", "cold_start.learning_rate=0.003",
    "cold_start.label_sft_max_steps=1", "cold_start.n_samples=1", "cold_start.max_new_tokens=8",
    "grpo.max_steps=1", "grpo.num_generations=2", "grpo.per_device_train_batch_size=2", "grpo.max_clips=4",
    "grpo.max_completion_length=8", "grpo.learning_rate=0.0003", "grpo.n_samples=1",
    "evaluate.max_new_tokens=8", "evaluate.n_boot=20", "evaluate.batch_size=16", "evaluate.single_modality=[]",
    "attribution.max_clips=3", "attribution.max_new_tokens=8", "attribution.n_perm=1", "attribution.n_boot=20",
    "attribution.n_examples=1", "attribution.batch_size=16",
]


@pytest.fixture(scope="module")
def protocol(tmp_path_factory):
    root = tmp_path_factory.mktemp("r1omni")
    fx = make_r1omni_protocol(root / "datasets")
    roots = [f"data.roots.{k}={v}" for k, v in fx["roots"].items()]  # the README's command shape
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run = run_pipeline(R1OMNI, "r1omni", runs_dir=root / "runs", overrides=TINY + roots, quiet=False)
    return run, fx, out.getvalue()


@pytest.mark.slow
def test_r1omni_table_has_each_dataset_with_its_own_label_set(protocol):
    run, _fx, printed = protocol
    m = run.read_metrics()
    validate_eval_schema(m)
    assert set(m["eval"]) == set(CHECKPOINTS)
    for ck in CHECKPOINTS:
        assert set(m["eval"][ck]) == set(EVAL_SPLITS), ck  # eval.<checkpoint>.<dataset>/<split>
    for split, (dataset, n_labels, dist) in EVAL_SPLITS.items():
        info = m["splits"][split]
        assert info["dataset"] == dataset and info["distribution"] == dist
        assert tuple(info["labels"]) == label_set(dataset) and info["n_labels"] == n_labels
    assert m["splits"]["dfew/test"]["fold"] == 1 and m["splits"]["mafw/test"]["fold"] == 1
    assert "calm" in m["splits"]["ravdess/test"]["labels"] and "contempt" in m["splits"]["mafw/test"]["labels"]
    # n: DFEW fold 1 tests clips 1..3 (clip 2 corrupt), MAFW 3, RAVDESS 2 actors x 5 emotions
    assert [m["eval"]["grpo"][s]["n"] for s in EVAL_SPLITS] == [2, 3, 10]
    # each split was scored against its own label set: the confusion columns of the predictions' scoring
    preds = {s: [json.loads(x) for x in run.predictions_path("grpo", s).read_text().splitlines()] for s in EVAL_SPLITS}
    assert [len(p) for p in preds.values()] == [2, 3, 10]
    assert "dfew-00002" not in {r["id"] for r in preds["dfew/test"]}
    # the 7-class subset beside the full-label figures: RAVDESS calm (2 clips) counted outside, never dropped
    sub = m["eval_subset"]["grpo"]
    assert set(sub) == {"mafw/test", "ravdess/test"}  # DFEW's label set is the subset itself
    assert sub["ravdess/test"]["n"] == 8 and sub["ravdess/test"]["n_outside_subset"] == 2
    assert m["eval"]["grpo"]["ravdess/test"]["n"] == 10
    # the model's output vocabulary: the union it was trained on (DFEW 7 + MAFW 11), not RAVDESS's calm
    cfg = json.loads((run.checkpoint("grpo") / "config.json").read_text())
    assert set(cfg["omnibench_labels"]) == set(label_set("dfew")) | set(label_set("mafw"))
    # the sources and the fold used are stated
    sources = {s["dataset"]: s for s in m["data"]["sources"]}
    assert sources["dfew"]["fold"] == 1 and sources["mafw"]["fold"] == 1 and sources["r1omni"]["indexed"] == 5
    assert "dfew/test: dfew, fold 1 · 7 labels · in-distribution" in printed
    assert "ravdess/test: ravdess, 8 labels · out-of-distribution" in printed


@pytest.mark.slow
def test_r1omni_corrupt_clip_is_skipped_counted_and_listed(protocol):
    run, fx, printed = protocol
    rows = run.read_skipped()
    by_stage = {(r["stage"], r["split"]): r for r in rows}
    assert {r["id"] for r in rows} == {"dfew-00002"}
    assert ("evaluate", "dfew/test") in by_stage and ("data", "dfew/test") in by_stage
    assert ("attribution", "dfew/test") in by_stage
    assert str(fx["corrupt"]["path"].name) in by_stage[("evaluate", "dfew/test")]["reason"]
    assert run.read_metrics()["skipped"]["evaluate"] == {"dfew/test": 1}
    # impossible to miss: printed at the end of the run, in the table's n, and in the report
    assert "dfew/test=2 (+1 skipped)" in printed and "SKIPPED (media do not decode, not in n): dfew/test 1" in printed
    html = run.report_path.read_text()
    assert "(+1 skipped)" in html and "Skipped clips: 1 (media do not decode; 3 stage entries)" in html and "dfew-00002" in html
    assert "dfew/test · fold 1 · 7 labels · in-distribution" in html
    assert "mafw/test · fold 1 · 11 labels · in-distribution" in html
    assert "ravdess/test · 8 labels · out-of-distribution" in html
    assert "7-class subset" in html and "(+2 outside)" in html
    params = yaml.safe_load(run.params_path.read_text())
    assert params["stages"]["cold_start"]["split"] == "emer/cold_start"
    assert params["stages"]["grpo"]["split"] == ["dfew/train", "mafw/train"]


# ------------------------------------------------------------------------------------------ pieces


def test_nested_overrides_set_keys_inside_sections(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump({"data": {"roots": {"dfew": ""}}, "grpo": {"max_steps": 3}}))
    r = load_recipe(p, ["data.roots.dfew=/data/DFEW", "data.roots.mafw=/data/MAFW & co", "grpo.split=[a/train, b/train]",
                        "model=tiny"])
    assert r["data"]["roots"] == {"dfew": "/data/DFEW", "mafw": "/data/MAFW & co"}
    assert r["grpo"] == {"max_steps": 3, "split": ["a/train", "b/train"]} and r["model"] == "tiny"
    with pytest.raises(PipelineError, match=r"'grpo.max_steps' is a int"):
        load_recipe(p, ["grpo.max_steps.x=1"])


def test_r1omni_config_is_the_protocol():
    cfg = yaml.safe_load(R1OMNI.read_text())
    assert set(cfg["data"]["roots"]) == {"dfew", "mafw", "ravdess", "r1omni"}
    assert [s["dataset"] for s in cfg["data"]["sources"]] == ["r1omni", "dfew", "mafw", "ravdess"]
    assert cfg["cold_start"]["split"] == "emer/cold_start"
    assert cfg["grpo"]["split"] == ["dfew/train", "mafw/train"] == cfg["cold_start"]["label_sft_split"]
    assert cfg["evaluate"]["splits"] == ["dfew/test", "mafw/test", "ravdess/test"]
    with pytest.raises(ValueError, match=r"-o data\.roots\.r1omni=PATH -o data\.roots\.dfew=PATH -o data\.roots\.mafw=PATH -o data\.roots\.ravdess=PATH"):
        resolve_sources(cfg["data"]["sources"], cfg["data"]["roots"])
    specs = resolve_sources(cfg["data"]["sources"], {**cfg["data"]["roots"], "dfew": "/d", "mafw": "/m",
                                                     "ravdess": "/r", "r1omni": "/e.json"})
    assert [s["root"] for s in specs] == ["/e.json", "/d", "/m", "/r"] and specs[0]["name"] == "emer"


def _clip(i, split, dataset, label, video):
    return Clip(id=f"{dataset}-{i}", video=str(video), label=label, split=split, dataset=dataset)


def test_media_store_skips_and_records_or_raises(tmp_path):
    good = media(tmp_path / "a.mp4", "mp4")
    bad = tmp_path / "b.mp4"
    bad.write_bytes(b"not a video at all")
    clips = [_clip(1, "dfew/test", "dfew", "happy", good), _clip(2, "dfew/test", "dfew", "sad", bad)]
    store = MediaStore([], None, None, on_error="skip")
    assert [c.id for c in store.usable(clips)] == ["dfew-1"]
    assert list(store.skipped) == ["dfew-2"] and "b.mp4" in store.skipped["dfew-2"]
    assert [c.id for c in store.usable(clips)] == ["dfew-1"]  # the second pass does not retry, nor double-count
    with pytest.raises(MediaError, match=r"dfew-2.*on_error='skip'"):
        MediaStore([], None, None).usable(clips)
    with pytest.raises(ValueError, match="on_error"):
        MediaStore([], None, None, on_error="ignore")


def test_usable_manifest_drops_undecodable_training_clips(tmp_path):
    run = RunFolder(tmp_path / "run")
    good = [media(tmp_path / f"m{i}.mp4", "mp4") for i in range(3)]
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 64)
    clips = [_clip(0, "mafw/train", "mafw", "contempt", good[0]), _clip(1, "mafw/train", "mafw", "anxiety", bad),
             _clip(2, "dfew/train", "dfew", "happy", good[1]), _clip(3, "dfew/test", "dfew", "sad", good[2])]
    write_manifest(clips, run.manifest)
    assert usable_manifest(run, "grpo", ["dfew/train"], None) == run.manifest  # nothing lost: the run's manifest
    path = usable_manifest(run, "grpo", ["dfew/train", "mafw/train"], None)
    assert path == run.data / "grpo.jsonl"
    assert [c.id for c in read_manifest(path)] == ["mafw-0", "dfew-2", "dfew-3"]
    assert [(r["stage"], r["split"], r["id"]) for r in run.read_skipped()] == [("grpo", "mafw/train", "mafw-1")]
    usable_manifest(run, "grpo", ["dfew/train", "mafw/train"], None)  # a re-run replaces, does not add
    assert run.skipped_counts() == {"grpo": {"mafw/train": 1}}
    with pytest.raises(MediaError, match="mafw-1"):
        usable_manifest(run, "label_sft", "mafw/train", None, on_error="error")


def test_label_union_and_split_info():
    clips = [Clip(id="a", video="x", label="contempt", split="mafw/train", dataset="mafw"),
             Clip(id="b", video="x", label="happy", split="dfew/train", dataset="dfew", meta={"fold": 2}),
             Clip(id="c", video="x", label="bemused", split="emer/cold_start", dataset="emer", meta={"open_vocab": True}),
             Clip(id="d", video="x", label="calm", split="ravdess/test", dataset="ravdess"),
             Clip(id="e", video="x", label="sad", split="dfew/test", dataset="dfew", meta={"fold": 2}),
             Clip(id="f", video="x", label="sad", split="test_ood", dataset="synthemo"),
             Clip(id="g", video="x", label="sad", split="test_id", dataset="synthemo")]
    union = label_union(clips[:3], base=DFEW7)
    assert union[:7] == DFEW7 and union[7:] == ("contempt", "anxiety", "helplessness", "disappointment", "bemused")
    assert label_union([clips[5]], base=DFEW7) == DFEW7  # SynthEmo: the tiny model's labels, unchanged
    info = split_info(clips, ["dfew/test", "ravdess/test", "test_id", "test_ood"], ["dfew/train", "mafw/train"])
    assert info["dfew/test"]["distribution"] == "in" and info["dfew/test"]["fold"] == 2
    assert info["ravdess/test"]["distribution"] == "out" and info["ravdess/test"]["n_labels"] == 8
    assert (info["test_id"]["distribution"], info["test_ood"]["distribution"]) == ("in", "out")


def test_subset_table_counts_mafw_contempt_outside_the_seven():
    labels = label_set("mafw")
    gold = ["contempt", "happy", "sad", "anxiety"]
    pred = ["contempt", "happy", "angry", "anxiety"]
    res = EvalResult(ids=list("abcd"), gold=gold, prediction=pred, completion=[f"<answer>{p}</answer>" for p in pred],
                     status=["ok"] * 4, labels=labels, modalities="video,audio", checkpoint="grpo", split="mafw/test")
    res.metrics = metrics(gold, pred, labels, n_boot=10, status=res.status)
    assert res.metrics["war"] == 0.75  # contempt and anxiety right in the full-label figure
    cell = subset_table([res], n_boot=10)["eval_subset"]["grpo"]["mafw/test"]
    assert cell["n"] == 2 and cell["n_outside_subset"] == 2 and cell["war"] == 0.5
    assert cell["subset"] == list(DFEW7) or set(cell["subset"]) == set(DFEW7)


def test_grpo_rows_carry_their_clips_label_set():
    from omnibench.grpo import _dataset

    clips = [Clip(id="a", video="x", label="contempt", split="mafw/train", dataset="mafw"),
             Clip(id="b", video="x", label="happy", split="dfew/train", dataset="dfew"),
             Clip(id="c", video="x", label="bemused", split="emer/train", dataset="emer")]
    model_vocab = ["happy", "sad", "contempt"]
    rows = _dataset(clips, "prompt", model_vocab).to_list()
    assert rows[0]["label_set"] == list(label_set("mafw")) and rows[1]["label_set"] == list(label_set("dfew"))
    # no card: the model's labels, the set evaluation scores such a clip with (evaluate.model_labels)
    assert rows[2]["label_set"] == model_vocab
    from omnibench.evaluate import eval_labels

    assert tuple(rows[2]["label_set"]) == eval_labels([clips[2]], default=tuple(model_vocab))


def test_readme_command_shape_sets_every_root_and_the_model():
    import argparse

    from omnibench.pipeline import add_run_args

    cmd = ("--config configs/r1omni.yaml --name NAME -o data.roots.dfew=/d/DFEW -o data.roots.mafw=/d/MAFW "
           "-o data.roots.ravdess=/d/RAVDESS -o data.roots.r1omni=/d/emer.json -o model=/models/Qwen2.5-Omni-7B")
    args = add_run_args(argparse.ArgumentParser()).parse_args(cmd.split())
    recipe = load_recipe(REPO / args.config, args.overrides)
    assert recipe["data"]["roots"] == {"dfew": "/d/DFEW", "mafw": "/d/MAFW", "ravdess": "/d/RAVDESS",
                                       "r1omni": "/d/emer.json"}
    assert recipe["model"] == "/models/Qwen2.5-Omni-7B"
    specs = resolve_sources(recipe["data"]["sources"], recipe["data"]["roots"])
    assert {s["dataset"]: s["root"] for s in specs} == {"r1omni": "/d/emer.json", "dfew": "/d/DFEW",
                                                         "mafw": "/d/MAFW", "ravdess": "/d/RAVDESS"}
