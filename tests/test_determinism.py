"""Reproducible on one machine: the same seed and recipe give the same eval table twice in a row.

The chain a pipeline run takes (SynthEmo generation, the tiny base model's perception pre-training,
explained cold-start SFT with modality dropout, GRPO with sampling, greedy evaluation with bootstrap
CIs) is run twice at smoke sizes into two folders, and every eval cell and every prediction must be
equal, bit for bit. A seed that differs must change something (otherwise the test could not fail).
SynthEmo's generation is checked apart: clips are byte-identical between two generations, and adding
the ``test_actors`` split left the other splits' plans unchanged (their digests were recorded before
the split existed).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from omnibench.data.manifest import read_manifest
from omnibench.io import json_safe

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

#: sha256[:16] of the plans of clips 0..20 of each split at seed 0, recorded before test_actors existed
PLAN_DIGESTS = {"train": "26f89ef069a958a7", "cold_start": "92e26f1f8adfdf9c", "test_id": "27cdfbd48bd829db",
                "test_ood": "7eaf0694b733b26a"}


def _plan_digest(split: str, seed: int = 0, n: int = 21) -> str:
    from omnibench.data.synth import default_shift, plan_clip

    h = hashlib.sha256()
    for i in range(n):
        h.update(json.dumps(json_safe(plan_clip(seed, split, i, default_shift(split))), sort_keys=True).encode())
    return h.hexdigest()[:16]


def test_synthemo_plans_of_the_existing_splits_are_unchanged_and_test_actors_shifts_only_the_actors():
    from omnibench.data.synth import plan_clip

    assert {s: _plan_digest(s) for s in PLAN_DIGESTS} == PLAN_DIGESTS
    for i in range(14):
        p = plan_clip(0, "test_actors", i, ("actors",))
        same = plan_clip(0, "test_actors", i, ())  # the same clip with nothing shifted
        assert p["actor"].startswith("o") and same["actor"].startswith("a")
        assert (p["cues"], p["nuisance"], p["timing"], p["label"]) == (same["cues"], same["nuisance"],
                                                                         same["timing"], same["label"])


def _files(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.mp4"))}


def _chain(root, seed: int):
    """Generate, pre-train, cold-start, GRPO and evaluate at smoke sizes; the eval table and predictions."""
    from omnibench import evaluate
    from omnibench.data.media import MediaStore, decode_config_for
    from omnibench.data.synth import generate
    from omnibench.grpo import run_grpo
    from omnibench.model import load_model
    from omnibench.run import RunFolder
    from omnibench.sft import run_sft
    from omnibench.stages import ColdStartStageConfig, base_stage

    run = RunFolder(root)
    generate(run.data, n_train=8, n_cold_start=8, n_test=7, seed=seed, workers=1)
    decode = {"num_frames": 4, "size": 56}
    base = base_stage(run, ColdStartStageConfig(
        seed=seed, decode=decode,
        perception={"steps": 2, "describe_steps": 2, "batch_size": 4, "describe_batch_size": 4, "eval_every": 1}))
    cold = run_sft({"manifest": str(run.manifest), "seed": seed, "batch_size": 4, "learning_rate": 3e-3,
                    "modality_dropout": 0.3, "progress": False, "modality_dropout_policy": "consistent",
                    "split": "cold_start", "mode": "explained", "model": str(base),
                    "out": str(run.train_dir("cold_start")), "max_steps": 3})
    grpo = run_grpo({"manifest": str(run.manifest), "split": "train", "model": str(cold),
                     "out": str(run.train_dir("grpo")), "seed": seed, "max_steps": 1, "num_generations": 2,
                     "per_device_train_batch_size": 4, "max_completion_length": 16, "temperature": 0.7,
                     "modality_dropout": 0.3, "progress": False})
    clips = read_manifest(run.manifest, split="test_id")
    results = []
    for name, path in (("cold_start", cold), ("grpo", grpo)):
        model, processor = load_model(path)
        store = MediaStore(clips, decode_config_for(model), run.decode_cache)
        for mode in ("generate", "score"):  # score: the argmax of the label scores, varied even this early
            res = evaluate.evaluate_split(model, processor, clips, store.decode(clips),
                                          labels=evaluate.model_labels(model),
                                          config=evaluate.EvalConfig(mode=mode, max_new_tokens=16, n_boot=50, seed=seed),
                                          checkpoint=f"{name}/{mode}", split="test_id")
            results.append(res)
    table = evaluate.eval_table(results)
    weights = {p.parent.parent.name: hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted(run.path.glob("checkpoints/*/model/*.safetensors"))}
    files = {**_files(run.data), **{f"weights:{k}": v for k, v in weights.items()}}
    return table, [r.records() for r in results], files, (run.train_dir("grpo") / "metrics.jsonl")


def _steps(path):
    """The training log's rows without wall-clock figures."""
    drop = ("runtime", "per_second", "time", "seconds")
    return [{k: v for k, v in json.loads(line).items() if not any(d in k for d in drop)}
            for line in path.read_text().splitlines()]


def chain_json(root: str, seed: int, out: str) -> None:
    """:func:`_chain` into a JSON file (run in a fresh interpreter by the test)."""
    table, preds, files, log = _chain(Path(root), seed)
    Path(out).write_text(json.dumps(json_safe({"table": table, "preds": preds, "files": files,
                                               "log": _steps(log)})))


def test_same_seed_same_eval_table_twice(tmp_path):
    """In this process, then in a fresh one with another PYTHONHASHSEED (set and dict-of-str order) and
    one torch thread: equal. Seed 1: different (the seed reaches every stage)."""
    t1, p1, f1, log1 = _chain(tmp_path / "a", seed=0)
    env = {**os.environ, "PYTHONHASHSEED": str((int(os.environ.get("PYTHONHASHSEED") or 0) + 1) % 4294967295 or 7),
           "OMP_NUM_THREADS": "1"}
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import torch; torch.set_num_threads(1); "
            f"from test_determinism import chain_json; chain_json({str(tmp_path / 'b')!r}, 0, {str(tmp_path / 'b.json')!r})")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=tmp_path)
    other = json.loads((tmp_path / "b.json").read_text())
    assert f1 == other["files"]  # byte-identical clips (test_actors included) and model weights
    assert sum(k.startswith("media/") for k in f1) == 8 + 8 + 3 * 7
    assert {k for k in f1 if k.startswith("weights:")} == {"weights:base", "weights:cold_start", "weights:grpo"}
    assert json_safe(t1) == other["table"]  # every eval cell, CIs included
    assert json_safe(p1) == other["preds"]  # every completion
    assert json_safe(_steps(log1)) == other["log"]  # GRPO's rewards, loss, KL, step by step
    assert len({r["prediction"] for rs in p1 for r in rs}) > 1  # varied answers to compare (score mode)
    _, p3, f3, _ = _chain(tmp_path / "c", seed=1)
    assert f3 != f1 and p3 != p1
