"""Studies over seeds: aggregation checked against a hand computation on hand-made run folders, the
paired two-level bootstrap against a plain re-derivation, the runner's units / reuse / folds, and the
fair label-only budget."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from omnibench.io import read_json, write_jsonl
from omnibench.run import RunFolder, merge_metrics
from omnibench.stats import bootstrap_seeds_clips, mean_ci_over_seeds, paired_bootstrap_seeds_clips
from omnibench.study import (
    StudyError,
    Unit,
    aggregate_study,
    label_only_budget,
    parse_list,
    run_study,
    set_path,
    study_units,
    unit_recipe,
)

REPO = Path(__file__).resolve().parents[1]
T_975_DF1 = 12.706204736174698  # Student t, 97.5% quantile, 1 degree of freedom

GOLD = ["happy", "sad", "happy", "sad"]
# seed -> checkpoint -> which of the four clips are right
CORRECT = {
    0: {"cold_start": [1, 0, 0, 1], "grpo": [1, 1, 0, 1], "label_sft": [0, 0, 0, 1]},
    1: {"cold_start": [1, 1, 1, 0], "grpo": [1, 1, 1, 1], "label_sft": [1, 1, 1, 1]},
}


def _uar(correct, gold=GOLD):
    classes = sorted(set(gold))
    return float(np.mean([np.mean([c for c, g in zip(correct, gold) if g == k]) for k in classes]))


def _fake_unit(study_dir, seed, splits=("test_id", "test_actors"), war_offset=0.0):
    run = RunFolder(study_dir / f"seed{seed}")
    for ck, right in CORRECT[seed].items():
        for sp in splits:
            ids = [f"{sp}-{seed}-{i}" for i in range(len(GOLD))]
            wrong = {"happy": "sad", "sad": "happy"}
            write_jsonl(run.predictions_path(ck, sp), [
                {"id": i, "gold": g, "prediction": g if r else wrong[g], "status": "ok", "checkpoint": ck, "split": sp}
                for i, g, r in zip(ids, GOLD, right)])
            war = float(np.mean(right)) + war_offset
            merge_metrics(run.metrics_path, {"eval": {ck: {sp: {
                "war": war, "uar": _uar(right), "war_ci": [0, 1], "uar_ci": [0, 1], "n": 4, "unparseable": 0.0}}}})
    return run


def test_two_seed_aggregation_matches_a_hand_computation(tmp_path):
    for seed in (0, 1):
        run = _fake_unit(tmp_path, seed)
        if seed == 0:  # the base model's last tower read-outs; seed1 has none and is left out
            merge_metrics(run.metrics_path, {"training": {"base": {"towers": {
                "step": 1500, "loss": 0.1, "video_accuracy": 0.9, "audio_accuracy": 0.7}}}})
    study = aggregate_study(tmp_path, n_boot=200, seed=0)
    assert study["towers"] == {"seed0": {"video": 0.9, "audio": 0.7}}
    assert [u["name"] for u in study["units"]] == ["seed0", "seed1"]
    assert study["checkpoints"] == ["cold_start", "label_sft", "grpo"]  # table order
    assert study["splits"] == ["test_id", "test_actors"]
    assert study["missing"] == [] and study["consistency"] == []
    # cell: mean over seeds with a Student-t interval (1 df)
    grpo = study["cells"]["grpo"]["test_id"]["war"]
    assert grpo["values"] == [0.75, 1.0] and grpo["mean"] == pytest.approx(0.875)
    half = T_975_DF1 * np.std([0.75, 1.0], ddof=1) / math.sqrt(2)
    assert grpo["ci"] == pytest.approx([0.875 - half, 0.875 + half])
    assert study["cells"]["cold_start"]["test_id"]["uar"]["values"] == pytest.approx([0.5, _uar([1, 1, 1, 0])])
    # paired comparisons: per-seed differences, their mean, the share of seeds above zero
    comp = study["comparisons"]
    assert comp["grpo - cold_start"]["test_id"]["war"]["per_seed"] == pytest.approx([0.25, 0.25])
    assert comp["grpo - cold_start"]["test_id"]["war"]["frac_positive"] == 1.0
    g_l = comp["grpo - label_sft"]["test_actors"]["war"]
    assert g_l["per_seed"] == pytest.approx([0.5, 0.0]) and g_l["mean"] == pytest.approx(0.25)
    assert g_l["frac_positive"] == 0.5  # a tie is not a win
    c_l = comp["cold_start - label_sft"]["test_id"]
    assert c_l["war"]["per_seed"] == pytest.approx([0.25, -0.25]) and c_l["war"]["mean"] == pytest.approx(0.0)
    assert c_l["uar"]["per_seed"] == pytest.approx([_uar([1, 0, 0, 1]) - _uar([0, 0, 0, 1]),
                                                    _uar([1, 1, 1, 0]) - 1.0])
    assert c_l["n_clips"] == [4, 4] and c_l["units"] == ["seed0", "seed1"]
    # grpo - cold_start: each seed's clips flip the same way, so no resample can go below 0
    assert comp["grpo - cold_start"]["test_id"]["war"]["ci"][0] >= 0.0
    # written to disk, the html names every comparison
    on_disk = read_json(tmp_path / "study.json")
    assert on_disk["comparisons"]["grpo - label_sft"]["test_actors"]["war"]["frac_positive"] == 0.5
    page = (tmp_path / "study.html").read_text()
    assert all(k in page for k in ("grpo - cold_start", "grpo - label_sft", "cold_start - label_sft", "test_actors"))
    assert "Tower read-outs" in page


def test_aggregation_flags_missing_cells_and_a_table_that_disagrees_with_its_predictions(tmp_path):
    _fake_unit(tmp_path, 0, splits=("test_id", "test_actors"))
    _fake_unit(tmp_path, 1, splits=("test_id",), war_offset=0.25)
    study = aggregate_study(tmp_path, n_boot=50)
    assert "seed1: eval grpo/test_actors" in study["missing"]
    assert study["cells"]["grpo"]["test_actors"]["war"]["n"] == 1
    assert any(x.startswith("seed1: grpo/test_id WAR") for x in study["consistency"])
    (tmp_path / "nothing").mkdir()
    with pytest.raises(StudyError, match="no unit folders"):
        aggregate_study(tmp_path / "nothing")


def _naive_two_level(groups, n_boot, seed):
    """The paired two-level bootstrap of WAR written out plainly, in the documented draw order."""
    rng = np.random.default_rng(seed)
    idx = [rng.integers(0, len(g), size=(n_boot, len(g))) for g, _, _ in groups]
    sidx = rng.integers(0, len(groups), size=(n_boot, len(groups)))
    out = []
    for b in range(n_boot):
        diffs = []
        for s in sidx[b]:
            _, ca, cb = groups[s]
            diffs.append(ca[idx[s][b]].mean() - cb[idx[s][b]].mean())
        out.append(np.mean(diffs))
    return np.array(out)


def test_paired_bootstrap_over_seeds_and_clips_equals_its_plain_derivation():
    rng = np.random.default_rng(5)
    groups = [(rng.integers(0, 3, n), rng.random(n) < 0.7, rng.random(n) < 0.5) for n in (9, 12, 7)]
    res = paired_bootstrap_seeds_clips(groups, 3, n_boot=300, seed=11)
    boot = _naive_two_level(groups, 300, 11)
    assert res["war"]["ci"] == pytest.approx(list(np.percentile(boot, [2.5, 97.5])))
    assert res["war"]["p_le_0"] == pytest.approx(float(np.mean(boot <= 0)))
    assert res["war"]["per_seed"] == pytest.approx([a.mean() - b.mean() for _, a, b in groups])
    # one seed: the ordinary paired bootstrap over clips; identical arms: exactly zero
    same = paired_bootstrap_seeds_clips([(groups[0][0], groups[0][1], groups[0][1])], 3, n_boot=100)
    assert same["war"]["ci"] == [0.0, 0.0] and same["uar"]["ci"] == [0.0, 0.0]
    single = bootstrap_seeds_clips([(g, a) for g, a, _ in groups], 3, n_boot=300, seed=11)
    assert single["war"]["per_seed"] == pytest.approx([a.mean() for _, a, _ in groups])
    assert single["war"]["ci"][0] <= single["war"]["mean"] <= single["war"]["ci"][1]
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap_seeds_clips([(np.zeros(3, int), np.ones(3, bool), np.ones(2, bool))], 1)


def test_mean_ci_over_seeds():
    r = mean_ci_over_seeds([0.4, 0.5, 0.9])
    sd = np.std([0.4, 0.5, 0.9], ddof=1)
    assert r["mean"] == pytest.approx(0.6) and r["sd"] == pytest.approx(sd)
    assert r["ci"] == pytest.approx([0.6 - 4.302652729911275 * sd / math.sqrt(3), 0.6 + 4.302652729911275 * sd / math.sqrt(3)])
    one = mean_ci_over_seeds([0.3, None, float("nan")])
    assert one["n"] == 1 and one["mean"] == 0.3 and all(math.isnan(x) for x in one["ci"])


def test_units_seed_and_fold_overrides():
    assert parse_list("0,1,2") == [0, 1, 2] and parse_list("0-2,5") == [0, 1, 2, 5] and parse_list("") == []
    with pytest.raises(StudyError, match="twice"):
        parse_list("1,1")
    with pytest.raises(StudyError, match="integers"):
        parse_list("a")
    assert [u.name for u in study_units([0, 1], [])] == ["seed0", "seed1"]
    assert [u.name for u in study_units([], [1, 2])] == ["fold1", "fold2"]
    assert [u.name for u in study_units([0], [1, 2])] == ["seed0_fold1", "seed0_fold2"]
    recipe = {"seed": 0, "data": {"sources": [{"dataset": "dfew", "fold": 1}, {"dataset": "mafw", "fold": 1}]},
              "grpo": {"max_steps": 3}}
    out = unit_recipe(recipe, Unit(seed=2, fold=4))
    assert out["seed"] == 2 and [s["fold"] for s in out["data"]["sources"]] == [4, 4]
    assert recipe["seed"] == 0 and recipe["data"]["sources"][0]["fold"] == 1  # the study's recipe untouched
    assert unit_recipe({"data": {}}, Unit(fold=3), fold_key="data.fold")["data"]["fold"] == 3
    with pytest.raises(StudyError, match="fold-key"):
        unit_recipe({"data": {}}, Unit(fold=3))  # no data.sources list to set it on
    assert set_path({"a": [{"b": 1}, {"b": 2}]}, "a.*.b", 0) == 2


def test_run_study_runs_each_seed_once_and_reuses_completed_units(tmp_path):
    calls = []

    def fake_runner(recipe_path, unit, study_dir, from_stage, quiet):
        recipe = yaml.safe_load(recipe_path.read_text())
        calls.append((unit, recipe["seed"], from_stage))
        run = _fake_unit(study_dir, recipe["seed"])
        from omnibench.run import STAGES

        for st in STAGES:
            run.update_state(st.name, status="ok", seconds=0.0)

    study = run_study(REPO / "configs" / "smoke.yaml", "st", [0, 1], runs_dir=tmp_path, runner=fake_runner, n_boot=20,
                      quiet=True)
    assert calls == [("seed0", 0, None), ("seed1", 1, None)]
    assert study["n_units"] == 2 and study["data_pinned"] is None
    assert yaml.safe_load((tmp_path / "st" / "recipes" / "seed1.yaml").read_text())["seed"] == 1
    calls.clear()
    run_study(REPO / "configs" / "smoke.yaml", "st", [0, 1], runs_dir=tmp_path, runner=fake_runner, n_boot=20, quiet=True)
    assert calls == []  # both completed with the same recipe
    state = RunFolder(tmp_path / "st" / "seed1", create=False)
    state.update_state("attribution", status="failed", seconds=0.0)
    run_study(REPO / "configs" / "smoke.yaml", "st", [0, 1], runs_dir=tmp_path, runner=fake_runner, n_boot=20, quiet=True)
    assert calls == [("seed1", 1, "attribution")]  # resumed where it stopped
    calls.clear()
    run_study(REPO / "configs" / "smoke.yaml", "st", [0], runs_dir=tmp_path, runner=fake_runner, n_boot=20, quiet=True,
              overrides=["grpo.max_steps=1"])
    assert calls == [("seed0", 0, None)]  # another recipe: run again


def test_label_only_budget_equals_cold_start_plus_grpo_visits():
    demo = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    b = label_only_budget(demo)
    # 10 epochs x 140 cold_start clips + 100 GRPO steps x (64 completions / G 4) clips
    assert (b["cold_start_visits"], b["grpo_visits"], b["budget_visits"]) == (1400, 1600, 3000)
    assert b["label_sft_max_steps"] == 375 and b["label_sft_visits"] == 3000  # 3000 / batch 8 on 1400 clips
    smoke = label_only_budget(yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text()))
    # 6 steps of 4 over 14 clips = 14 + 8 visits; 2 GRPO steps x 2 clips; 21 train clips in batches of 4:
    # one epoch (6 steps) = 21, then 4 a step -> 8 steps = 29 >= 26 (7 steps = 25 fall short)
    assert (smoke["cold_start_visits"], smoke["grpo_visits"], smoke["label_sft_max_steps"]) == (22, 4, 8)
    with pytest.raises(StudyError, match="n_cold_start"):
        label_only_budget({**demo, "data": {"manifest": "x.jsonl"}})


def test_the_demo_and_smoke_label_only_baselines_get_the_fair_budget():
    """The label-only SFT row trains on as many example visits as cold start + GRPO together."""
    import yaml

    from omnibench.study import label_only_budget

    root = Path(__file__).resolve().parents[1]
    for name in ("demo", "smoke"):
        recipe = yaml.safe_load((root / "configs" / f"{name}.yaml").read_text())
        assert recipe["cold_start"]["label_sft_max_steps"] == label_only_budget(recipe)["label_sft_max_steps"], name
