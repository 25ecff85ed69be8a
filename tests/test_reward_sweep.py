"""The reward-weight sweep's comparison (experiments/reasoning_rewards.py) on hand-made run folders: per-arm
figures, paired differences against the base, the paired WAR bootstrap and the choice rule."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from omnibench.io import read_json, write_json, write_jsonl
from omnibench.rewards import consistency_reward, grounding_reward
from omnibench.run import STAGES, RunFolder, merge_metrics

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import reasoning_rewards as rr

GOLD = ["happy", "sad", "happy", "sad"]
CLEAN = "<think>The face smiles.</think><answer>{}</answer>"
CITES_VOICE = "<think>The voice is loud and its pitch rises.</think><answer>{}</answer>"


def _unit(folder: Path, correct, cites: int, s_per_step: float = 1.0) -> None:
    """A finished seed unit: GRPO predictions on test_id (full input, video-only, audio-only), the eval
    table, attribution faithfulness and a GRPO training log; ``cites`` of the video-only completions
    cite the voice."""
    run = RunFolder(folder)
    wrong = {"happy": "sad", "sad": "happy"}
    preds = [g if c else wrong[g] for g, c in zip(GOLD, correct)]
    ids = [f"clip{i}" for i in range(len(GOLD))]
    write_jsonl(run.predictions_path("grpo", "test_id"), [
        {"id": i, "gold": g, "prediction": p, "completion": CLEAN.format(p)} for i, g, p in zip(ids, GOLD, preds)])
    write_jsonl(run.predictions_path("grpo", "test_id", "video"), [
        {"id": i, "gold": g, "prediction": p, "completion": (CITES_VOICE if k < cites else CLEAN).format(p)}
        for k, (i, g, p) in enumerate(zip(ids, GOLD, preds))])
    war = sum(correct) / len(correct)
    merge_metrics(run.metrics_path, {
        "eval": {"grpo": {"test_id": {"war": war, "uar": war, "n": len(GOLD)}}},
        "attribution": {"by_split": {"test_id": {"faithfulness": {"agreement": 0.5 + 0.1 * cites}}}}})
    write_jsonl(run.train_dir("grpo") / "metrics.jsonl", [{"step": 10, "train_runtime": 10 * s_per_step}])
    write_json(run.path / "state.json", {st.name: {"status": "ok"} for st in STAGES})


def _study(root: Path, name: str, per_seed: list[tuple[list[int], int]]) -> Path:
    for seed, (correct, cites) in enumerate(per_seed):
        _unit(root / name / f"seed{seed}", correct, cites)
    return root / name


def test_fixture_completions_are_what_the_rewards_say():
    assert grounding_reward([CITES_VOICE.format("happy")], modalities=["video"]) == [0.0]
    assert grounding_reward([CLEAN.format("happy")], modalities=["video"]) == [1.0]
    assert consistency_reward([CLEAN.format("happy")]) == [0.0]  # names no emotion in the reasoning


def test_sweep_compare_pairs_seeds_and_chooses_the_cheapest_truthful_arm(tmp_path):
    base = _study(tmp_path, "study", [([1, 1, 0, 1], 2), ([1, 0, 1, 1], 2)])
    light = _study(tmp_path, "study_rw0.1", [([1, 1, 0, 1], 1), ([1, 0, 1, 1], 1)])  # same WAR, cites less
    heavy = _study(tmp_path, "study_rw1", [([1, 0, 0, 1], 0), ([1, 0, 0, 1], 0)])  # cites none, -25 points
    assert rr.arm_path(base, 0.1) == light and rr.arm_path(base, 1.0) == heavy
    res = rr.compare(base, {"rw0.1": light, "rw1": heavy}, {"rw0.1": rr.arm_rewards(0.1)}, n_boot=50)
    assert res["units"] == ["seed0", "seed1"]
    figs = res["arms"]["rw1"]["figures"]
    assert figs["test_id.war"]["difference"]["values"] == pytest.approx([-0.25, -0.25])
    assert figs["test_id.war"]["difference"]["frac_positive"] == 0.0
    assert figs["test_id.absent_cite_video_only"]["base"]["mean"] == pytest.approx(0.5)
    assert figs["test_id.absent_cite_video_only"]["arm"]["mean"] == pytest.approx(0.0)
    assert figs["test_id.faithfulness_agreement"]["difference"]["mean"] == pytest.approx(-0.2)
    assert figs["s_per_step"]["arm"]["mean"] == pytest.approx(1.0)
    boot = res["arms"]["rw1"]["war_bootstrap"]["test_id"]["war"]
    assert boot["per_seed"] == pytest.approx([-0.25, -0.25]) and boot["ci"][1] <= 0.0
    assert res["arms"]["rw0.1"]["rewards"] == {"accuracy": 1.0, "format": 1.0, "grounding": 0.1, "consistency": 0.1}
    choice = res["choice"]
    assert choice["arm"] == "rw0.1" and choice["war_cost"] == pytest.approx(0.0)
    assert choice["absent_cite"] == pytest.approx(0.25) and choice["base_absent_cite"] == pytest.approx(0.5)


def test_sweep_choice_is_none_with_a_reason_when_every_arm_costs_accuracy(tmp_path):
    base = _study(tmp_path, "study", [([1, 1, 1, 1], 2), ([1, 1, 1, 1], 2)])
    arm = _study(tmp_path, "study_rw0.3", [([1, 1, 1, 0], 0), ([1, 1, 1, 1], 0)])  # -12.5 points on average
    metrics = read_json(arm / "seed1" / "metrics.json")
    write_json(arm / "seed1" / "metrics.json", {k: v for k, v in metrics.items() if k != "attribution"})
    res = rr.compare(base, {"rw0.3": arm}, n_boot=0)
    choice = res["choice"]
    assert choice["arm"] is None and "rw0.3 costs +12.5 WAR points" in choice["why"]
    # a figure one unit lacks is left out and named, not averaged over the units that have it
    assert res["arms"]["rw0.3"]["missing"] == ["test_id.faithfulness_agreement"]
    assert "test_id.faithfulness_agreement" not in res["arms"]["rw0.3"]["figures"]
    with pytest.raises(SystemExit, match="weights"):
        rr.parse_weights("0.1,-1")
