"""SFT and GRPO in two CPU processes (DDP over gloo), through the real run_sft / run_grpo paths.

Started with ``torchrun --nproc_per_node 2`` (``python -m torch.distributed.run``): accelerate then
reports MULTI_CPU and all-reduces across the ranks. (``accelerate launch --cpu --num_processes 2``
started only one process on the 2-core machine where this was written.) What is tested where:
DDP on the CPU here; the DeepSpeed ZeRO-2/3 configs (configs/accelerate/) need GPUs and belong to
the GPU check. One torchrun run (tests/dist_train.py) serves every test below.

    pytest -m distributed tests/test_distributed.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.distributed, pytest.mark.slow]
SCRIPT = Path(__file__).with_name("dist_train.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from omnibench.data.synth import generate

    root = tmp_path_factory.mktemp("ddp")
    manifest = generate(root / "data", n_train=4, n_cold_start=8, n_test=0, seed=0, workers=1)
    out = root / "out"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(SCRIPT), str(manifest), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=420, check=False)
    assert proc.returncode == 0, f"torchrun failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    return {"out": out, "ranks": ranks, "manifest": manifest}


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu")


def test_two_processes_under_ddp(run):
    for r, rec in enumerate(run["ranks"]):
        assert rec["rank"] == r and rec["world_size"] == 2
        assert rec["distributed_type"] == {"sft": "DistributedType.MULTI_CPU", "grpo": "DistributedType.MULTI_CPU"}


@pytest.mark.parametrize("stage", ["sft", "grpo"])
def test_ranks_hold_identical_weights_and_the_saved_model_equals_them(run, stage):
    from omnibench.model.loading import load_model

    a, b = (_weights(run["out"] / f"rank{r}_{stage}.pt") for r in (0, 1))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "ranks diverged: gradients were not synchronised"
    saved = load_model(run["out"] / stage / "model", dtype="float32")[0].state_dict()
    assert saved.keys() == a.keys()
    assert all(torch.equal(saved[k], a[k]) for k in saved), "the final model is what the ranks hold"
    start = _weights(run["out"] / "rank0_sft.pt") if stage == "grpo" else None
    if start is not None:
        assert any(not torch.equal(start[k], a[k]) for k in a), "GRPO changed the weights"


def test_every_rank_saw_the_same_modality_dropout_for_the_same_clip(run):
    """GRPO groups of 4 completions split over the 2 ranks (2 rows each): both ranks hold each clip of a
    step and must show it the same way (modality_dropout 1.0: video or audio dropped every step)."""
    seen = [{(step, cid): tuple(mods) for step, cid, mods in rec["dropout"]} for rec in run["ranks"]]
    shared = seen[0].keys() & seen[1].keys()
    assert len(shared) >= 4, "each step's clip should be on both ranks"
    assert all(seen[0][k] == seen[1][k] for k in shared)
    assert all(len(m) == 1 for m in seen[0].values()), "dropout 1.0 leaves one modality"


def test_each_rank_decoded_only_its_own_clips(run):
    from omnibench.data.manifest import read_manifest

    cold = {c.id for c in read_manifest(run["manifest"], split="cold_start")}
    sft = [set(rec["decoded"]["sft"]) for rec in run["ranks"]]
    assert sft[0] and sft[1] and not sft[0] & sft[1], "the SFT clips are sharded, not decoded by every rank"
    assert sft[0] | sft[1] == cold  # 2 steps x 2 ranks x 2 clips = the 8 cold-start clips, once each
    grpo = [[cid for _, cid, _ in rec["dropout"]] for rec in run["ranks"]]
    assert all(set(rec["decoded"]["grpo"]) == set(g) for rec, g in zip(run["ranks"], grpo))
    # GRPO's clips are decoded by each rank's dataloader worker (media_workers: 1), not on the step's path
    assert all(rec["decoded_in_rank_process"]["grpo"] == 0 for rec in run["ranks"])


def test_checkpoints_and_the_final_model_are_written_once(run):
    out = run["out"]
    saves = [rec["saves"] for rec in run["ranks"]]
    assert saves[1] == [], "rank 1 wrote no model"
    for stage, steps in (("sft", 2), ("grpo", 4)):
        expected = [str((out / stage / "checkpoints" / f"checkpoint-{s}").resolve()) for s in range(1, steps + 1)]
        final = str((out / stage / "model").resolve())
        mine = [p for p in saves[0] if p.startswith(str((out / stage).resolve()))]
        assert mine == [*expected, final], mine
        assert (out / stage / "model" / "README.md").is_file() and (out / stage / "model" / "config.json").is_file()
        rows = (out / stage / "metrics.jsonl").read_text().splitlines()
        assert len([r for r in rows if '"loss"' in r]) == steps, "metrics written by rank 0 only, once per step"
