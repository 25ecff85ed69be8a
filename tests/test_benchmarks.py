"""Benchmark harnesses: each runs with tiny sizes and prints one valid JSON line of figures;
run_all collects them; gpu_check.sh's dry mode (CPU, tiny dims) runs every stage."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module", autouse=True)
def bench_env(tmp_path_factory):
    """Harnesses importable, their clips and model in a temporary cache, one torch thread."""
    cache = tmp_path_factory.mktemp("bench_cache")
    old_env, old_threads = os.environ.get("OMNIBENCH_BENCH_CACHE"), torch.get_num_threads()
    os.environ["OMNIBENCH_BENCH_CACHE"] = str(cache)
    sys.path.insert(0, str(BENCH))
    torch.set_num_threads(1)
    yield cache
    sys.path.remove(str(BENCH))
    torch.set_num_threads(old_threads)
    if old_env is None:
        os.environ.pop("OMNIBENCH_BENCH_CACHE", None)
    else:
        os.environ["OMNIBENCH_BENCH_CACHE"] = old_env


def _run(capsys, module: str, argv: list[str], tmp_path) -> dict:
    mod = importlib.import_module(module)
    out = tmp_path / f"{module}.json"
    mod.main([*argv, "--out", str(out)] if module != "bench_synth" else argv)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1, f"{module} printed {len(lines)} lines on stdout, expected one JSON line"
    obj = json.loads(lines[0])
    if module != "bench_synth":
        assert json.loads(out.read_text()) == obj
        assert obj["machine"]["host_cpus"] >= 1 and "load_1min" in obj["machine"]
    return obj


def test_decode_harness(capsys, tmp_path):
    obj = _run(capsys, "bench_decode", ["--quick"], tmp_path)
    assert obj["bench"] == "decode" and obj["num_frames"] == 8
    for key in ("cold", "cache_miss", "cache_hit", "memory_hit"):
        assert obj[key]["clips_per_s"] > 0 and obj[key]["frames_per_s"] > 0
    assert obj["ratios"]["cache_hit_over_cold_speed"]["median"] > 1  # reading an .npz beats decoding an mp4


def test_tower_attention_harness(capsys, tmp_path):
    obj = _run(capsys, "bench_tower_attention", ["--quick"], tmp_path)
    assert obj["bitwise_equal"] is True  # the batched towers compute the per-chunk loop's numbers
    assert set(obj["towers"].values()) == {"omnibench_flash_chunked_sdpa"}
    for w in ("perception_step", "forward_backward"):
        assert obj[w]["s_per_call"]["per_chunk"] > 0 and obj[w]["s_per_call"]["batched"] > 0


def test_patch_embed_harness(capsys, tmp_path):
    obj = _run(capsys, "bench_tower_attention", ["--quick", "--feature", "patch_embed"], tmp_path)
    assert obj["bench"] == "patch_embed" and obj["feature"] == "patch_embed"
    assert obj["max_abs_diff"] < 1e-3  # the matrix product is the convolution up to rounding
    for w in ("perception_step", "forward_backward"):
        assert obj[w]["s_per_call"]["conv3d"] > 0 and obj[w]["s_per_call"]["matmul"] > 0


def test_synth_harness(capsys, tmp_path):
    obj = _run(capsys, "bench_synth", ["--n", "3", "--workers", "1"], tmp_path)
    assert obj["n"] == 3 and obj["clips_per_s"] > 0


def test_grpo_step_harness_times_all_variants_side_by_side(capsys, tmp_path):
    obj = _run(capsys, "bench_grpo_step", ["--quick"], tmp_path)
    assert set(obj["variants"]) == {"omni", "omni_noopt", "trl_text"}
    omni, text = obj["variants"]["omni"], obj["variants"]["trl_text"]
    for v in obj["variants"].values():
        assert v["s_per_step"] > 0 and v["breakdown_s"]["generation"] > 0 and v["breakdown_s"]["backward"] > 0
    assert omni["breakdown_s"]["processor"] > 0 and omni["encoders_s"] > 0
    # the clips are decoded by the dataloader's worker process (media_workers: 1), not inside the step
    assert omni["breakdown_s"]["decode"] == 0 and omni["worker_cpu_s_per_step"] > 0
    assert text["breakdown_s"]["decode"] == 0 and text["encoders_s"] == 0  # text-only: no media, no encoders
    assert {"omni_over_trl", "noopt_over_opt"} <= set(obj["ratios"])
    assert obj["prompt_tokens_full"] > 100  # video + audio placeholders are in the omni prompt


def test_text_prompt_has_the_requested_token_length():
    import bench_grpo_step

    from omnibench.tiny import build_tiny

    _, processor = build_tiny(seed=0)
    for n in (120, 158):
        assert len(processor.tokenizer(bench_grpo_step.text_prompt(processor, n))["input_ids"]) == n


def test_eval_and_attribution_harnesses(capsys, tmp_path):
    ev = _run(capsys, "bench_eval", ["--quick"], tmp_path)
    assert set(ev["generate"]) >= {"batch_1", "batch_4"} and ev["generate"]["batch_4"]["clips_per_s"] > 0
    assert ev["score"]["batch_1"]["clips_per_s"] > 0
    at = _run(capsys, "bench_attribution", ["--quick"], tmp_path)
    assert at["generate"]["seconds"] > 0 and at["score"]["seconds"] > 0
    assert at["ratios"]["generate_over_score_time"]["median"] > 0
    for key in ("agreement_generate_vs_score", "agreement_score_vs_score_reasoning"):
        ag = at[key]  # clips where both name a dominant modality, plus each side's ties, never exceed the clips
        assert ag["n"] + max(ag["n_tie_a"], ag["n_tie_b"]) <= at["n_clips"], key
        assert ag["n"] == 0 or 0.0 <= ag["agreement"] <= 1.0, key


def test_run_all_collects_results(tmp_path):
    import run_all

    env = {**os.environ, "PYTHONPATH": str(BENCH.parent)}
    proc = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--quick", "--only", "decode",
                           "--results", str(tmp_path)], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    latest = json.loads((tmp_path / "latest_quick.json").read_text())
    assert latest["failed"] == [] and latest["results"]["decode"]["bench"] == "decode"
    assert json.loads(proc.stdout.strip().splitlines()[-1])["bench"] == "decode"
    assert "decode: cold clips/s" in proc.stderr
    assert any(label.startswith("decode") for label, _ in run_all.headline(latest["results"]))
    with pytest.raises(SystemExit):
        run_all.main(["--only", "nope"])


def test_run_all_records_a_failing_harness(tmp_path, monkeypatch):
    import run_all

    monkeypatch.setitem(run_all.HARNESSES, "broken", ("no_such_harness.py", [], []))
    obj, _ = run_all.run_one("broken", quick=True, results=tmp_path, timeout=60)
    assert obj["bench"] == "broken" and "exit status" in obj["error"] and "no_such_harness" in obj["error"]


@pytest.mark.slow
def test_gpu_check_dry_mode_runs_every_stage(tmp_path):
    """GPU_CHECK_DRY=1: the whole script on the CPU with tiny sizes (the pytest stage is skipped here:
    it is this test suite)."""
    env = {**os.environ, "GPU_CHECK_DRY": "1", "OUT": str(tmp_path), "GPU_CHECK_SKIP": "tests",
           "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(BENCH / "gpu_check.sh")], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    merged = json.loads((tmp_path / "gpu_check.json").read_text())
    assert {k: v["status"] for k, v in merged["stages"].items()} == {
        "env": "ok", "tests": "skipped", "model": "ok", "pipeline": "ok", "grpo3b": "ok", "scale": "ok"}
    assert merged["env"]["omnibench_grpo_import"] == "ok"
    assert merged["pipeline"]["grpo"]["language_model_changed"] is True
    g = merged["grpo3b"]
    assert g["dry"] is True and g["shared_encoders"]["s_per_step"] > 0
    train, frozen = g["phases"]["train_towers"], g["phases"]["frozen_towers"]
    assert train["no_prefill"]["s_per_step"] > 0 and train["no_prefill_over_shared_time"] > 0  # prefill sharing off / on
    assert frozen["reuse"]["s_per_step"] > 0 and frozen["no_reuse"]["s_per_step"] > 0  # frozen-tower reuse on / off
    assert merged["model_bench"]["scoring_max_abs_diff"] < 1e-3
    assert "== summary" in proc.stdout


def test_scale_harness(capsys, tmp_path):
    """Tiny sizes (n = 8, 16; no 1 vs 2 process runs): every step timed with its peak memory, the decode
    step decodes every clip (one cache entry per clip, not hits on the few reused files), the capped
    cache evicts and keeps its cap, and the growth per step is reported."""
    obj = _run(capsys, "bench_scale", ["--quick"], tmp_path)
    assert obj["bench"] == "scale" and obj["ns"] == [8, 16]
    for n in ("8", "16"):
        steps = obj["steps"][n]
        assert set(steps) >= {"validate", "decode", "decode_hit", "eval_score", "eval_generate", "attribute"}
        for row in steps.values():  # a step of 8 clips can round to 0.0 s and grow the peak by 0 MiB
            assert row["seconds"] >= 0 and row["peak_rss_mib"] >= 0
        assert steps["decode"]["cache"]["misses"] == int(n) and steps["decode_hit"]["cache"]["hits"] == int(n)
        assert steps["eval_score"]["n_evaluated"] == int(n) and steps["attribute"]["n_attributed"] == 8
    capped = obj["steps"]["8"]["decode_capped"]
    assert capped["cache"]["evicted"] > 0 and capped["disk_mib_after"] <= capped["cap_mib"]
    assert obj["growth"]["decode"]["n"] == [8, 16] and obj["growth"]["eval_score"]["ms_per_clip"][0] > 0
