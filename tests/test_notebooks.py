"""The notebooks: committed stripped with one literal parameters cell each, and all of them executed
through papermill with the smoke recipe, checking metrics.json keys and value ranges, the figures,
params.yaml and report.html."""

from __future__ import annotations

import ast
import json
import math

import nbformat
import pytest
import yaml
from smoke_run import SMOKE, smoke_run

from omnibench.pipeline import notebook_parameters, notebooks_dir
from omnibench.run import STAGES

NOTEBOOKS = [notebooks_dir() / st.notebook for st in STAGES]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stripped_with_one_literal_parameters_cell(path):
    assert path.is_file(), f"{path} missing"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert "widgets" not in nb.metadata, "saved widget state: strip it"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} cell {i} has outputs"
        assert "papermill" not in cell.metadata and "execution" not in cell.metadata, f"{path.name} cell {i} metadata"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    src = tagged[0].source
    tree = ast.parse(src)
    names = []
    for stmt, line in zip(tree.body, src.strip().splitlines()):
        # one assignment per line: NAME = literal  # comment
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name), line
        ast.literal_eval(stmt.value)  # literal, nothing derived
        assert stmt.lineno == stmt.end_lineno, f"{path.name}: multi-line parameter {line!r}"
        assert "  # " in line and line.split("  # ", 1)[1].strip(), f"{path.name}: {line!r} lacks a trailing comment"
        names.append(stmt.targets[0].id)
    assert len(tree.body) == len(src.strip().splitlines()), f"{path.name}: parameters cell holds non-assignments"
    assert names[0] == "run_dir" and len(set(names)) == len(names)
    # papermill reads the same names (with the comments as help)
    assert list(notebook_parameters(path)) == names


@pytest.mark.parametrize("config", ["smoke", "demo", "r1omni"])
def test_recipe_only_names_declared_parameters(config):
    recipe = yaml.safe_load((SMOKE.parent / f"{config}.yaml").read_text())
    declared = {st.name: set(notebook_parameters(notebooks_dir() / st.notebook)) for st in STAGES}
    for st in STAGES:
        assert set(recipe.get(st.name) or {}) <= declared[st.name], (config, st.name)
    shared = set(recipe) - {st.name for st in STAGES}
    assert shared <= set().union(*declared.values()), (config, shared)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return smoke_run(tmp_path_factory)


def _in01(x) -> bool:
    return isinstance(x, (int, float)) and 0.0 <= x <= 1.0


@pytest.mark.slow
def test_smoke_pipeline_metrics_keys_and_ranges(run):
    m = json.loads(run.metrics_path.read_text())
    assert {"eval", "attribution", "timing"} <= set(m)
    # eval: every checkpoint x split, with the schema of the issue
    assert set(m["eval"]) == {"base", "cold_start", "label_sft", "grpo"}
    for ck, splits in m["eval"].items():
        assert set(splits) == {"test_id", "test_actors", "test_ood"}, ck
        for sp, c in splits.items():
            assert set(c) == {"war", "uar", "war_ci", "uar_ci", "n", "unparseable"}, (ck, sp)
            assert _in01(c["war"]) and _in01(c["uar"]) and _in01(c["unparseable"])
            for k in ("war", "uar"):
                lo, hi = c[f"{k}_ci"]
                assert _in01(lo) and _in01(hi) and lo <= c[k] + 1e-9 and c[k] <= hi + 1e-9
            assert isinstance(c["n"], int) and c["n"] == 7
    # single-modality evaluation
    assert {"grpo/video", "grpo/audio"} <= set(m["eval_modalities"])
    # attribution: validation per modality (share_ok null only without any eligible clip), faithfulness
    a = m["attribution"]
    for mod in ("video", "audio"):
        v = a["validation"][mod]
        assert isinstance(v["n"], int) and v["n"] <= 7  # eligible clips of the 7-clip split
        assert _in01(v["share_ok"]) if v["n"] > 0 else v["share_ok"] is None
    f = a["faithfulness"]
    assert set(f) >= {"agreement", "correlation"}
    assert f["agreement"] is None or _in01(f["agreement"])
    assert f["correlation"] is None or -1.0 <= f["correlation"] <= 1.0
    # timing: one positive number per stage, and the total
    assert set(m["timing"]) == {st.name for st in STAGES} | {"total"}
    assert all(isinstance(t, (int, float)) and t > 0 for t in m["timing"].values())
    assert math.isclose(m["timing"]["total"], sum(m["timing"][st.name] for st in STAGES), abs_tol=0.05)
    # training summary
    assert {"cold_start", "label_sft", "grpo"} <= set(m["training"])


@pytest.mark.slow
def test_smoke_pipeline_outputs(run):
    # executed notebooks (+ their HTML renderings), without errors
    for st in STAGES:
        nb = nbformat.read(run.notebooks / st.notebook, as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{st.notebook}: {errors[:1]}"
        assert (run.notebooks / st.notebook).with_suffix(".html").is_file()
    # figures of every stage
    figures = {p.stem for p in run.figures.glob("*.png")}
    expected = {
        "data_counts", "data_frames_per_class", "data_audio_per_class", "data_durations", "cold_start_loss",
        "grpo_rewards", "evaluate_table", "evaluate_confusion", "evaluate_confusion_grpo", "evaluate_single_modality",
        "attribution_shares_by_class", "attribution_shares_by_condition", "attribution_validation",
        "attribution_perceptual_score", "attribution_faithfulness", "attribution_examples",
    }
    assert expected <= figures, expected - figures
    # checkpoints, predictions, attribution
    assert set(run.checkpoints_available()) == {"base", "cold_start", "label_sft", "grpo"}
    assert run.predictions_path("grpo", "test_ood").is_file()
    assert len(run.attribution.read_text().splitlines()) == 21  # 7 clips x 3 splits
    # params.yaml: the recipe's values reached the notebooks
    params = yaml.safe_load(run.params_path.read_text())
    assert params["stages"]["data"]["n_train"] == 21 and params["stages"]["grpo"]["max_steps"] == 2
    assert params["stages"]["attribution"]["interactive"] is False
    assert all(p["run_dir"] == str(run.path) for p in params["stages"].values())
    # report: the table, embedded figures and links to the rendered notebooks
    html = run.report_path.read_text()
    assert "R1-Omni table" in html and "cold-start SFT + GRPO" in html
    assert html.count("data:image/png;base64,") >= 5
    for st in STAGES:
        assert f"notebooks/{st.stem}.html" in html
