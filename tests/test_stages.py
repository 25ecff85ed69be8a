"""The stage layer: a notebook's parameters are its config's fields, recipes reach the lower configs,
``on_error`` reaches every stage, and the CLIs are the stages (``omnibench attribute`` = the notebook)."""

from __future__ import annotations

import ast
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from smoke_run import SMOKE, smoke_run

from omnibench.pipeline import notebook_parameters, notebooks_dir
from omnibench.run import STAGES, RunFolder
from omnibench.stages import STAGE_CONFIGS, AttributionStageConfig, EvaluateStageConfig
from omnibench.stages.config import field_default

CONFIGS = SMOKE.parent


@pytest.mark.parametrize("stage", [st.name for st in STAGES])
def test_notebook_parameters_are_the_configs_fields_with_their_help(stage):
    cls = STAGE_CONFIGS[stage]
    declared = notebook_parameters(notebooks_dir() / cls.notebook)
    assert next(iter(declared)) == "run_dir"
    assert list(declared)[1:] == cls.field_names(), f"{cls.notebook} and {cls.__name__} list different knobs"
    for f in dataclasses.fields(cls):
        info = declared[f.name]
        assert ast.literal_eval(info["default"]) == field_default(cls, f.name), (cls.notebook, f.name)
        assert info["help"] == f.metadata["help"], (cls.notebook, f.name)  # one help text per knob


@pytest.mark.parametrize("recipe", ["demo", "smoke", "r1omni"])
def test_every_recipe_section_builds_its_config_and_reaches_the_lower_configs(recipe):
    """``max_new_tokens`` and ``on_error`` of a recipe reach what each stage runs (the attribution notebook
    once dropped ``max_new_tokens``, so regenerated reasoning ran to 96 tokens while the recipe said 64)."""
    spec = yaml.safe_load((CONFIGS / f"{recipe}.yaml").read_text())
    shared = {k: v for k, v in spec.items() if k not in STAGE_CONFIGS}
    for name, cls in STAGE_CONFIGS.items():
        section = spec.get(name) or {}
        values = {**{k: v for k, v in shared.items() if k in cls.field_names()}, **section}
        cfg = cls.from_mapping(values, source=f"{recipe}.yaml {name}")
        assert cfg.on_error in ("skip", "error")
        if "max_new_tokens" in section:
            assert cfg.max_new_tokens == section["max_new_tokens"]
    ev = EvaluateStageConfig.from_mapping({**(spec.get("evaluate") or {})})
    assert ev.eval_config("video").max_new_tokens == ev.max_new_tokens and ev.eval_config("video").modalities == "video"
    at = AttributionStageConfig.from_mapping({**(spec.get("attribution") or {})})
    assert at.attribution_config().max_new_tokens == at.max_new_tokens
    assert at.attribution_config().batch_size == at.batch_size


def test_a_config_rejects_a_key_it_does_not_have():
    with pytest.raises(ValueError, match=r"demo.yaml attribution: \['max_new_token'\] are not AttributionStageConfig"):
        AttributionStageConfig.from_mapping({"max_new_token": 8}, source="demo.yaml attribution")
    with pytest.raises(NameError, match="parameters cell must declare"):
        EvaluateStageConfig.from_namespace({"seed": 0})


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory, tiny):
    """A run folder with a tiny checkpoint and a split of two good clips and one that does not decode."""
    from conftest import write_mp4

    from omnibench.data.manifest import Clip, write_manifest
    from omnibench.model import save_model

    root = tmp_path_factory.mktemp("broken")
    run = RunFolder(root / "run")
    model, proc = tiny
    save_model(model, proc, run.checkpoint("grpo"))
    bad = root / "bad.mp4"
    bad.write_bytes(b"not an mp4")
    clips = [Clip(id=f"ok{i}", video=str(write_mp4(root / f"ok{i}.mp4", seed=i)), label="happy", split="test_id",
                  meta={"condition": "both"}) for i in range(2)]
    clips.append(Clip(id="bad", video=str(bad), label="sad", split="test_id", meta={"condition": "both"}))
    write_manifest(clips, run.manifest)
    return run


def test_on_error_reaches_evaluation_and_attribution(broken_run):
    from omnibench.stages import attribution_stage, evaluate_stage

    run = broken_run
    quick = {"splits": ["test_id"], "max_new_tokens": 4, "n_boot": 10, "batch_size": 2}
    for stage, cfg in ((evaluate_stage, EvaluateStageConfig(checkpoints=["grpo"], mode="score",
                                                            single_modality_checkpoints=[], **quick)),
                       (attribution_stage, AttributionStageConfig(n_perm=0, generate=False, **quick))):
        with pytest.raises(Exception, match="bad"):
            stage(run, dataclasses.replace(cfg, on_error="error"))
        stage(run, cfg)  # skip: counted, the two good clips used
        name = "evaluate" if stage is evaluate_stage else "attribution"
        assert [r["id"] for r in run.read_skipped(name, "test_id")] == ["bad"]
    metrics = run.read_metrics()
    assert metrics["eval"]["grpo"]["test_id"]["n"] == 2 and metrics["skipped"]["evaluate"] == {"test_id": 1}
    assert metrics["attribution"]["method"]["n"] == 2


def test_on_error_reaches_the_training_stages(tmp_path, monkeypatch):
    """The training stages hand ``on_error`` to the clip check before training (training itself stubbed)."""
    from omnibench import grpo, sft
    from omnibench.stages import ColdStartStageConfig, GRPOStageConfig, cold_start_stage, grpo_stage, train

    seen = []
    monkeypatch.setattr(train, "usable_manifest", lambda run, stage, splits, model=None, decode=None, on_error="skip",
                        **kw: seen.append((stage, on_error)) or run.manifest)
    monkeypatch.setattr(train, "training_summary", lambda *a, **k: {})
    monkeypatch.setattr(sft, "run_sft", lambda recipe: Path(recipe["out"]) / "model")
    monkeypatch.setattr(grpo, "run_grpo", lambda recipe: Path(recipe["out"]) / "model")
    run = RunFolder(tmp_path / "r")
    cold_start_stage(run, ColdStartStageConfig(on_error="error"), base=tmp_path)
    grpo_stage(run, GRPOStageConfig(on_error="error"))
    assert seen == [("cold_start", "error"), ("label_sft", "error"), ("grpo", "error")]


def test_cli_modules_do_not_import_torch_or_trl(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.update_metrics("eval", {"grpo": {"test_id": {"war": 0.5, "uar": 0.5, "war_ci": [0.4, 0.6],
                                                     "uar_ci": [0.4, 0.6], "n": 10, "unparseable": 0.0}}})
    code = (
        "import sys\nfrom omnibench.cli import main\n"
        "for argv in (['index', '--help'], ['--help'], ['report', sys.argv[1]]):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('torch', 'trl', 'transformers', 'peft') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code, str(run.path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-2000:]
    assert run.report_path.is_file()


@pytest.mark.slow
def test_omnibench_attribute_equals_the_attribution_notebook(tmp_path_factory, tmp_path):
    """`omnibench attribute` on the smoke run's checkpoint and splits, with the smoke recipe's knobs, writes the
    notebook's metrics.json attribution section and the same per-clip shares."""
    from omnibench.attribution import AttributionResult
    from omnibench.cli import main

    smoke = smoke_run(tmp_path_factory)
    knobs = yaml.safe_load(smoke.params_path.read_text())["stages"]["attribution"]
    out = RunFolder(tmp_path / "cli")
    shutil.copytree(smoke.predictions, out.predictions, dirs_exist_ok=True)  # the evaluation stage's completions
    assert main(["attribute", "--model", str(smoke.checkpoint(knobs["checkpoint"])), "--manifest", str(smoke.manifest),
                 "--split", ",".join(knobs["splits"]), "--max-new-tokens", str(knobs["max_new_tokens"]),
                 "--perceptual", str(knobs["n_perm"]), "--n-boot", str(knobs["n_boot"]),
                 "--batch-size", str(knobs["batch_size"]), "--seed", str(knobs["seed"]), "--no-progress",
                 "--out", str(out.path)]) == 0

    def section(run):
        a = json.loads(run.metrics_path.read_text())["attribution"]
        a["method"].pop("seconds")
        return a

    assert section(out) == section(smoke)
    for split in knobs["splits"]:
        name = f"{split.replace('/', '.')}.jsonl"
        mine, theirs = (AttributionResult.load(r.path / "attribution" / name) for r in (out, smoke))
        assert mine.ids == theirs.ids
        np.testing.assert_array_equal(mine.share, theirs.share)
        np.testing.assert_array_equal(mine.phi, theirs.phi)
