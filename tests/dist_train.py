"""One rank of tests/test_distributed.py: SFT then GRPO through run_sft / run_grpo (the real paths,
final saves included) under ``torchrun --nproc_per_node 2`` on the CPU (gloo; accelerate reports
MULTI_CPU). ``accelerate launch --cpu --num_processes 2`` started only one process on the 2-core
test machine, hence torchrun.

    python -m torch.distributed.run --nproc_per_node 2 tests/dist_train.py MANIFEST OUT

Each rank records what the test asserts in ``OUT/rank<R>.json`` (the clips it decoded, the
modality-dropout choice per GRPO step and clip, every save_pretrained call it made, the
accelerator's distributed type) and its weights after each stage in ``OUT/rank<R>_<stage>.pt``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import transformers

import omnibench.grpo as grpo_mod
import omnibench.sft as sft_mod
from omnibench.rewards import register

RANK = int(os.environ["RANK"])
MANIFEST, OUT = sys.argv[1], Path(sys.argv[2])
record: dict = {"rank": RANK, "world_size": int(os.environ["WORLD_SIZE"]), "decoded": {}, "dropout": [],
                "saves": [], "distributed_type": {}}
trainers: dict = {}


class Recording:
    """A media store that notes every clip this rank asked for, in ``OUT/rank<R>_decoded_<stage>.txt``
    (its dataloader's worker processes, which decode GRPO's clips, append there too)."""

    def __init__(self, store, stage: str):
        self.store, self.stage = store, stage
        self.log = OUT / f"rank{RANK}_decoded_{stage}.txt"
        self.log.write_text("")

    def __call__(self, clip_id):
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {clip_id}\n")
        return self.store(clip_id)


def _wrap(module, stage: str):
    make_store, make_trainer = module.recipe_media_store, module.build_trainer

    def store(recipe, clips, model=None):
        return Recording(make_store(recipe, clips, model), stage)

    def trainer(*args, **kwargs):
        t = make_trainer(*args, **kwargs)
        trainers[stage] = t
        record["distributed_type"][stage] = str(t.accelerator.distributed_type)
        return t

    module.recipe_media_store, module.build_trainer = store, trainer


_wrap(sft_mod, "sft")
_wrap(grpo_mod, "grpo")

_save = transformers.PreTrainedModel.save_pretrained


def save_pretrained(self, path, *args, **kwargs):
    record["saves"].append(str(Path(path).resolve()))
    return _save(self, path, *args, **kwargs)


transformers.PreTrainedModel.save_pretrained = save_pretrained

_encode = grpo_mod.OmniGRPOTrainer.encode_clips


def encode_clips(self, clip_ids, train, **kw):
    rows = _encode(self, clip_ids, train, **kw)
    for cid, row in zip(clip_ids, rows):
        record["dropout"].append([self.state.global_step, cid, sorted(row.modalities)])
    return rows


grpo_mod.OmniGRPOTrainer.encode_clips = encode_clips


@register("dist_length")
def length_reward(completions, **kwargs):
    """A reward with spread for an untrained model, so GRPO's advantages (and updates) are not zero."""
    return [len(c[0]["content"]) / 10.0 for c in completions]


common = {"manifest": MANIFEST, "seed": 0, "threads": 1, "progress": False, "save_steps": 1,
          "decode": {"num_frames": 4, "size": 56}}
sft_model = sft_mod.run_sft({**common, "model": "tiny", "out": str(OUT / "sft"), "mode": "label_only",
                             "split": "cold_start", "batch_size": 2, "max_steps": 2, "learning_rate": 3e-3,
                             "modality_dropout": 0.5})
torch.save(trainers["sft"].accelerator.unwrap_model(trainers["sft"].model).state_dict(), OUT / f"rank{RANK}_sft.pt")
grpo_mod.run_grpo({**common, "model": str(sft_model), "out": str(OUT / "grpo"), "split": "train",
                   "num_generations": 4, "per_device_train_batch_size": 2, "max_completion_length": 8,
                   "max_steps": 4, "learning_rate": 1e-3, "beta": 0.04, "modality_dropout": 1.0,
                   "rewards": {"accuracy": 1.0, "dist_length": 1.0}})
torch.save(trainers["grpo"].accelerator.unwrap_model(trainers["grpo"].model).state_dict(),
           OUT / f"rank{RANK}_grpo.pt")
for stage in ("sft", "grpo"):
    calls = [line.split() for line in (OUT / f"rank{RANK}_decoded_{stage}.txt").read_text().splitlines()]
    record["decoded"][stage] = [cid for _, cid in calls]
    record.setdefault("decoded_in_rank_process", {})[stage] = sum(int(pid) == os.getpid() for pid, _ in calls)
(OUT / f"rank{RANK}.json").write_text(json.dumps(record, indent=1))
