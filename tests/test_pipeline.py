"""Pipeline mechanics on tiny stand-in notebooks: parameters, params.yaml, --from, failures, report."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from omnibench import pipeline
from omnibench.pipeline import PipelineError, run_pipeline
from omnibench.report import build_report, format_table
from omnibench.run import RunFolder, Stage

STAGES = (
    Stage("make", "01_make.ipynb", ("made.txt",)),
    Stage("use", "02_use.ipynb", ("used.txt",)),
    Stage("last", "03_last.ipynb", ()),
)


def _nb(params_src: str, *cells: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell(params_src)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p] + [nbformat.v4.new_code_cell(c) for c in cells]
    return nb


@pytest.fixture
def nbdir(tmp_path: Path) -> Path:
    d = tmp_path / "nbs"
    d.mkdir()
    nbformat.write(_nb(
        'run_dir = "../runs/x"  # run folder\nseed = 0  # seed\nword = "hi"  # text to write',
        "from omnibench.run import open_run\nrun = open_run(run_dir)",
        "(run / 'made.txt').write_text(f'{word} {seed} {time.time()}') if (time := __import__('time')) else None",
    ), d / "01_make.ipynb")
    nbformat.write(_nb(
        'run_dir = "../runs/x"  # run folder\nseed = 0  # seed\nrepeat = 2  # times',
        "from omnibench.run import open_run\nrun = open_run(run_dir)\nrun.require('made.txt')",
        "text = (run / 'made.txt').read_text()",
        "(run / 'used.txt').write_text(text * repeat)",
        "run.update_metrics('eval', {'grpo': {'test_id': {'war': 0.5, 'uar': 0.25, 'war_ci': [0.4, 0.6], "
        "'uar_ci': [0.2, 0.3], 'n': 10, 'unparseable': 0.0}}})",
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots()\nax.plot([0, 1])\nrun.savefig(fig, 'evaluate_table')",
    ), d / "02_use.ipynb")
    nbformat.write(_nb(
        'run_dir = "../runs/x"  # run folder\nfail = False  # raise on purpose',
        "x = 1",
        "if fail:\n    raise ValueError('deliberate failure for the test')",
        "from omnibench.run import open_run\nopen_run(run_dir).update_metrics('attribution', {'faithfulness': "
        "{'agreement': 0.75, 'correlation': 0.5}})",
    ), d / "03_last.ipynb")
    return d


def _recipe(tmp_path: Path, **sections) -> Path:
    recipe = {"seed": 3, "make": {"word": "hello"}, "use": {"repeat": 3}, "last": {"fail": False}}
    for k, v in sections.items():
        recipe[k] = v
    p = tmp_path / "recipe.yaml"
    p.write_text(yaml.safe_dump(recipe))
    return p


def _run(tmp_path, nbdir, **kw):
    kw.setdefault("overrides", None)
    config = kw.pop("config", None) or _recipe(tmp_path)
    return run_pipeline(config, "r1", runs_dir=tmp_path / "runs",
                        stages=STAGES, nb_dir=nbdir, quiet=True, **kw)


@pytest.mark.slow
def test_full_run_params_metrics_report_and_from(tmp_path, nbdir):
    run = _run(tmp_path, nbdir, overrides=["use.repeat=2"])
    # executed notebooks, outputs, parameters passed (shared seed + section + override)
    for st in STAGES:
        assert (run.notebooks / st.notebook).is_file()
        assert (run.notebooks / st.notebook).with_suffix(".html").is_file()
    made = (run / "made.txt").read_text()
    assert made.startswith("hello 3 ")
    assert (run / "used.txt").read_text() == made * 2
    params = yaml.safe_load(run.params_path.read_text())
    assert params["stages"]["make"] == {"run_dir": str(run.path), "seed": 3, "word": "hello"}
    assert params["stages"]["use"]["repeat"] == 2 and params["stages"]["last"] == {"run_dir": str(run.path), "fail": False}
    assert params["overrides"] == ["use.repeat=2"]
    metrics = json.loads(run.metrics_path.read_text())
    assert set(metrics) >= {"eval", "attribution", "timing"}
    assert set(metrics["timing"]) == {"make", "use", "last", "total"}
    assert all(v > 0 for v in metrics["timing"].values())
    assert metrics["attribution"]["faithfulness"]["agreement"] == 0.75
    html = run.report_path.read_text()
    assert "50.0" in html and "[40.0, 60.0]" in html  # WAR and its CI, in %
    assert "data:image/png;base64," in html  # key figure embedded
    assert "notebooks/02_use.html" in html
    assert "50.0 [40.0, 60.0]" in format_table(metrics)

    # --from use: the first stage is not re-executed (its output is untouched), later ones are
    time.sleep(0.05)
    before = (run / "made.txt").stat().st_mtime_ns
    used_before = (run / "used.txt").stat().st_mtime_ns
    run2 = _run(tmp_path, nbdir, from_stage="02_use", overrides=["use.repeat=1"])
    assert (run2 / "made.txt").stat().st_mtime_ns == before
    assert (run2 / "used.txt").stat().st_mtime_ns != used_before
    assert (run2 / "used.txt").read_text() == made
    params2 = yaml.safe_load(run2.params_path.read_text())
    assert params2["stages"]["use"]["repeat"] == 1
    assert params2["stages"]["make"] == params["stages"]["make"]  # reused stage keeps its parameters
    assert set(json.loads(run2.metrics_path.read_text())["timing"]) == {"make", "use", "last", "total"}


@pytest.mark.slow
def test_failing_notebook_names_notebook_and_cell_and_keeps_earlier_outputs(tmp_path, nbdir):
    with pytest.raises(PipelineError) as ei:
        _run(tmp_path, nbdir, config=_recipe(tmp_path, last={"fail": True}))
    msg = str(ei.value)
    out_nb = tmp_path / "runs" / "r1" / "notebooks" / "03_last.ipynb"
    assert str(out_nb.resolve()) in msg
    assert "ValueError: deliberate failure for the test" in msg
    assert "cell 4 (In [4])" in msg and "raise ValueError" in msg  # parameters + injected cells come first
    assert "--from last" in msg
    run = RunFolder(tmp_path / "runs" / "r1", create=False)
    assert (run / "made.txt").is_file() and (run / "used.txt").is_file()  # nothing earlier lost
    state = run.read_state()
    assert state["make"]["status"] == "ok" and state["last"]["status"] == "failed"
    nb = nbformat.read(out_nb, as_version=4)  # the executed notebook holds the traceback
    assert any(o.get("ename") == "ValueError" for c in nb.cells for o in c.get("outputs", []))
    assert "failed" in run.report_path.read_text()  # report rebuilt with the failure shown

    # resume from the failed stage once fixed: earlier stages are not re-run
    mtime = (run / "made.txt").stat().st_mtime_ns
    _run(tmp_path, nbdir, from_stage="last")
    assert (run / "made.txt").stat().st_mtime_ns == mtime
    assert run.read_state()["last"]["status"] == "ok"


def test_from_without_earlier_outputs_is_a_clear_error(tmp_path, nbdir):
    with pytest.raises(PipelineError, match=r"(?s)cannot start from 'use'.*made\.txt.*01_make\.ipynb"):
        _run(tmp_path, nbdir, from_stage="use")


@pytest.mark.parametrize(
    "sections, pattern",
    [
        ({"make": {"wrod": "x"}}, r"section 'make': \['wrod'\] not among the parameters of 01_make.ipynb"),
        ({"sed": 1}, r"\['sed'\] are not parameters of any notebook"),
        ({"run_dir": "/tmp/x"}, r"recipe sets run_dir"),
        ({"use": [1, 2]}, r"section 'use' must be a mapping"),
    ],
)
def test_recipe_errors(tmp_path, nbdir, sections, pattern):
    with pytest.raises(PipelineError, match=pattern):
        _run(tmp_path, nbdir, config=_recipe(tmp_path, **sections))


def test_unknown_stage_and_bad_override(tmp_path, nbdir):
    with pytest.raises(PipelineError, match="unknown stage 'nope'"):
        _run(tmp_path, nbdir, from_stage="nope")
    with pytest.raises(PipelineError, match="expected KEY=VALUE"):
        _run(tmp_path, nbdir, overrides=["use.repeat"])
    with pytest.raises(PipelineError, match="recipe .* not found"):
        _run(tmp_path, nbdir, config=tmp_path / "missing.yaml")


def test_find_stage_accepts_name_stem_and_number():
    assert pipeline.find_stage("grpo") == 2
    assert pipeline.find_stage("03_grpo") == 2
    assert pipeline.find_stage("03_grpo.ipynb") == 2
    assert pipeline.find_stage("3") == 2


def test_run_folder_metrics_merge_and_require(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.update_metrics("eval", {"base": {"test_id": {"war": 0.1}}})
    run.update_metrics("eval", {"grpo": {"test_id": {"war": 0.9}}})
    import numpy as np

    run.update_metrics("timing", {"data": np.float32(1.5)})
    run.update_metrics("attribution", {"validation": {"video": {"n": 0, "share_ok": float("nan")}}})
    m = run.read_metrics()
    assert set(m["eval"]) == {"base", "grpo"} and m["timing"]["data"] == 1.5
    assert m["attribution"]["validation"]["video"]["share_ok"] is None  # NaN is written as null (valid JSON)
    assert "NaN" not in run.metrics_path.read_text()
    with pytest.raises(FileNotFoundError, match=r"checkpoints/grpo/model \(made by 03_grpo.ipynb\)"):
        run.require("checkpoints/grpo/model")
    assert build_report(run.path, render_notebooks=False).is_file()


def test_cli_run_returns_1_with_message(tmp_path, nbdir, capsys, monkeypatch):
    import argparse

    monkeypatch.setenv("OMNIBENCH_NOTEBOOKS", str(nbdir))
    parser = pipeline.add_run_args(argparse.ArgumentParser())
    args = parser.parse_args(["--config", str(tmp_path / "nope.yaml"), "--name", "x", "--runs-dir", str(tmp_path)])
    assert pipeline.cli_run(args) == 1
    assert "nope.yaml not found" in capsys.readouterr().err


def test_report_tables_from_metrics_only(tmp_path):
    run = RunFolder(tmp_path / "r")
    cell = {"war": 0.8, "uar": 0.75, "war_ci": [0.7, 0.9], "uar_ci": [0.6, 0.85], "n": 70, "unparseable": 0.05}
    run.update_metrics("eval", {"base": {"test_id": {**cell, "war": 0.1}}, "grpo": {"test_id": cell, "test_ood": cell}})
    run.update_metrics("eval_modalities", {"grpo/video": {"test_id": {**cell, "war": 0.4}}})
    run.update_metrics("attribution", {"validation": {"video": {"n": 0, "share_ok": None},
                                                      "audio": {"n": 12, "share_ok": 0.9166}},
                                       "faithfulness": {"agreement": 0.5, "correlation": None},
                                       "by_condition": [{"group": "audio", "n": 5, "share_video": 0.1, "share_video_lo": 0.0,
                                                         "share_video_hi": 0.2, "share_audio": 0.9, "accuracy": 1.0}]})
    html = build_report(run.path, render_notebooks=False).read_text()
    assert "cold-start SFT + GRPO" in html and "80.0</b> <small>[70.0, 90.0]" in html
    assert "video only (audio removed)" in html and "40.0" in html
    assert "91.7%" in html and not re.search(r"\bnan\b", html, flags=re.IGNORECASE)
    assert "[0.00, 0.20]" in html  # a share with its CI
    text = format_table(run.read_metrics())
    lines = text.splitlines()
    assert lines[0].split() == ["checkpoint", "test_id", "WAR", "test_id", "UAR", "test_ood", "WAR", "test_ood", "UAR"]
    assert lines[2].startswith("base") and lines[3].startswith("grpo") and "80.0 [70.0, 90.0]" in lines[3]


def test_metrics_merge_rule_replaces_cells_and_keeps_the_rest(tmp_path):
    from omnibench.run import merge_metrics

    path = tmp_path / "metrics.json"
    merge_metrics(path, {"eval": {"grpo": {"test_id": {"war": 0.1, "stale": 1}, "test_ood": {"war": 0.2}}},
                         "training": {"grpo": {"steps": 4, "reward": {"first": 0, "last": 1}}, "base": {"steps": 2}},
                         "timing": {"data": 1.0}})
    # eval: three levels (eval -> checkpoint -> split), the split cell replaced whole
    merge_metrics(path, {"eval": {"grpo": {"test_id": {"war": 0.5}}}})
    # other sections: two levels, the entry (a training run's summary) replaced whole
    merged = merge_metrics(path, {"training": {"grpo": {"steps": 8}}, "timing": {"grpo": 2.0}})
    assert merged["eval"]["grpo"] == {"test_id": {"war": 0.5}, "test_ood": {"war": 0.2}}
    assert merged["training"] == {"grpo": {"steps": 8}, "base": {"steps": 2}}
    assert merged["timing"] == {"data": 1.0, "grpo": 2.0}
    assert json.loads(path.read_text()) == merged
    # a section replaced whole when asked (05_attribution writes its summary so)
    run = RunFolder(tmp_path)
    run.update_metrics("attribution", {"validation": {"video": {"n": 1}}, "faithfulness": {"agreement": 0.5}})
    run.update_metrics("attribution", {"perceptual": [{"drop": 0.1}]})
    assert set(run.read_metrics()["attribution"]) == {"validation", "faithfulness", "perceptual"}
    run.update_metrics("attribution", {"validation": {"audio": {"n": 2}}}, merge=False)
    assert run.read_metrics()["attribution"] == {"validation": {"audio": {"n": 2}}}
    assert run.read_metrics()["eval"]["grpo"]["test_ood"] == {"war": 0.2}  # other sections untouched
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"metrics\.json: holds a JSON list"):
        merge_metrics(path, {"timing": {}})


def test_locate_checkpoint_gives_the_run_folder_and_the_checkpoint_name(tmp_path):
    from omnibench.run import locate_checkpoint

    run = tmp_path / "runs" / "demo"
    assert locate_checkpoint(run / "checkpoints" / "grpo" / "model") == (run, "grpo")
    assert locate_checkpoint(run / "checkpoints" / "grpo") == (run, "grpo")
    assert locate_checkpoint(tmp_path / "sft" / "model") == (tmp_path / "sft", "model")


def test_run_folder_state_params_completions_and_attribution(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.update_state("data", status="ok", seconds=1.5)
    assert run.read_state()["data"]["status"] == "ok" and "finished_at" in run.read_state()["data"]
    run.write_params({"name": "r", "stages": {"data": {"seed": 0}}})
    assert run.read_params()["stages"] == {"data": {"seed": 0}}
    assert run.load_completions("grpo", "test_id", ["a"]) is None  # no predictions yet
    run.predictions_path("grpo", "test_id").write_text(
        json.dumps({"id": "a", "completion": "x"}) + "\n" + json.dumps({"id": "b", "completion": "y"}) + "\n")
    assert run.load_completions("grpo", "test_id", ["b", "a"]) == ["y", "x"]
    assert run.load_completions("grpo", "test_id", ["a", "zz"]) is None  # an id missing

    class Result:  # what save_attribution needs of an AttributionResult
        def __init__(self, line):
            self.line = line

        def save(self, path):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(self.line + "\n")
            return Path(path)

    out = run.save_attribution({"test_id": Result('{"id": 1}'), "test_ood": Result('{"id": 2}')})
    assert out == run.attribution and out.read_text() == '{"id": 1}\n{"id": 2}\n'
    assert (run / "attribution" / "test_ood.jsonl").read_text() == '{"id": 2}\n'


def test_one_per_class_orders_by_the_clips_label_set(tmp_path):
    from omnibench.data.manifest import Clip
    from omnibench.data.summary import count_table, one_per_class
    from omnibench.labels import label_set

    def clip(i, label, dataset, cond="both", split="train"):
        return Clip(id=f"c{i}", video=str(tmp_path / f"c{i}.mp4"), label=label, split=split, dataset=dataset,
                    meta={"condition": cond})

    mafw = label_set("mafw")
    picked = list(reversed(mafw))  # first seen in reverse card order
    clips = [clip(i, lab, "mafw") for i, lab in enumerate(picked)]
    clips.append(clip(99, mafw[0], "mafw", cond="video"))
    examples = one_per_class(clips, split="train")
    assert list(examples) == list(mafw)  # the card's order, not first seen, not DFEW's
    assert examples[mafw[0]].id == f"c{len(mafw) - 1}"  # the 'both' clip preferred over the 'video' one
    with pytest.raises(ValueError, match="no labelled clips in split 'test_id'"):
        one_per_class(clips, split="test_id")
    table = count_table(clips + [clip(100, mafw[1], "mafw", split="test_id")])
    assert list(table.index.get_level_values("split").unique()) == ["train", "test_id"]
    assert int(table["total"].sum()) == len(clips) + 1


def test_report_groups_columns_per_dataset_and_keeps_synthemo_reading(tmp_path):
    cell = {"war": 0.5, "uar": 0.4, "war_ci": [0.4, 0.6], "uar_ci": [0.3, 0.5], "n": 9, "unparseable": 0.0}
    synth = RunFolder(tmp_path / "synth")
    synth.update_metrics("eval", {"grpo": {"test_id": cell, "test_ood": cell}})
    synth.update_metrics("splits", {"test_id": {"dataset": "synthemo", "n_labels": 7, "distribution": "in"},
                                    "test_ood": {"dataset": "synthemo", "n_labels": 7, "distribution": "out"}})
    html = build_report(synth.path, render_notebooks=False).read_text()
    assert "in-distribution (test_id)" in html and "out-of-distribution (test_ood)" in html
    assert format_table(synth.read_metrics()).splitlines()[0].split()[:3] == ["checkpoint", "test_id", "WAR"]

    real = RunFolder(tmp_path / "real")
    real.update_metrics("eval", {"grpo": {"dfew/test": cell, "ravdess/test": {**cell, "n": 10}}})
    real.update_metrics("splits", {"dfew/test": {"dataset": "dfew", "n_labels": 7, "fold": 2, "distribution": "in"},
                                   "ravdess/test": {"dataset": "ravdess", "n_labels": 8, "distribution": "out"}})
    real.update_metrics("eval_subset", {"grpo": {"ravdess/test": {**cell, "n": 8, "n_outside_subset": 2}}})
    real.record_skipped("evaluate", "dfew/test", {"dfew-00007": "MediaError: cannot decode video 00007.mp4"})
    html = build_report(real.path, render_notebooks=False).read_text()
    assert "dfew/test · fold 2 · 7 labels · in-distribution" in html
    assert "ravdess/test · 8 labels · out-of-distribution" in html
    assert "(+1 skipped)" in html and "dfew-00007" in html and "(+2 outside)" in html
    text = format_table(real.read_metrics(), skipped=real.skipped_counts())
    assert "dfew/test=9 (+1 skipped)" in text and "SKIPPED (media do not decode, not in n): dfew/test 1" in text
    assert "grpo ravdess/test WAR 50.0 UAR 40.0 n 8 (+2 outside)" in text
