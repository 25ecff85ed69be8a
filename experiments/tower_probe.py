"""Voice-tower probe (issue 22): the demo's tower pre-training, audio tower only, on one run's train clips.

Trains the tiny thinker's audio tower and a linear read-out of each clip's voice emotion (meta
``audio_label``) with ``omnibench.tiny.perception.pretrain_encoders``' recipe (the same 10% held out,
batch, AdamW, linear-decay schedule, 1,500 steps; the face tower is left out, and the head is
initialised from its own generator, so a run is not bit-for-bit the audio half of a pre-training run),
one CPU thread, and prints one JSON line: the
mean training loss and held-out read-out every 300 steps, and the accuracy on 280 training clips.
``hseed`` re-seeds the read-out head only (everything else fixed), which measures how much of the
spread over seeds is the training's own instability.

    .venv/bin/python experiments/tower_probe.py runs/study_demo/seed1 1 hseed=11 >> benchmarks/results/tower_probe.jsonl

Keys after the model seed: lr, warmup, steps, bs, clip (gradient norm), hseed, and TinySizes fields
(audio_d_model, audio_ffn, audio_layers, audio_heads).
"""
import json
import sys
import time

import numpy as np
import torch

from omnibench.data.manifest import read_manifest
from omnibench.data.media import DecodeCache, DecodeConfig, decode_clips
from omnibench.labels import DFEW7
from omnibench.model.inputs import ClipInputs
from omnibench.model.parts import QWEN2_5_THINKER, thinker
from omnibench.tiny.model import build_tiny
from omnibench.tiny.perception import _schedule, modality_targets, pooled_features

torch.set_num_threads(1)
run, mseed = sys.argv[1], int(sys.argv[2])
kw = dict(a.split("=") for a in sys.argv[3:])
lr = float(kw.pop("lr", 6e-3))
warm = int(kw.pop("warmup", 0))
steps = int(kw.pop("steps", 1500))
bs = int(kw.pop("bs", 32))
hseed = int(kw.pop("hseed", -1))
clip = float(kw.pop("clip", 0)) or None
sizes = {k: int(v) for k, v in kw.items()}
clips = read_manifest(f"{run}/data/manifest.jsonl", split="train")
media, _ = decode_clips(clips, DecodeConfig(), cache=DecodeCache(f"{run}/data/.decode_cache"), progress=False)
model, proc = build_tiny(labels=DFEW7, seed=mseed, **sizes)
y = torch.as_tensor(modality_targets(clips, DFEW7)["audio"])
n = len(media)
rng = np.random.default_rng(mseed)
order = rng.permutation(n)
val, train = order[: round(n * 0.1)], order[round(n * 0.1):]
inputs = ClipInputs(proc, media, frozenset({"audio"}))
inner = thinker(model, family=QWEN2_5_THINKER)
head = torch.nn.Linear(model.config.text_config.hidden_size, len(DFEW7))
torch.nn.init.normal_(head.weight, std=0.02, generator=torch.Generator().manual_seed(mseed if hseed < 0 else hseed))
torch.nn.init.zeros_(head.bias)
params = list(inner.audio_tower.parameters()) + list(head.parameters())
opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
sched = _schedule(opt, steps, warm)
model.train()
t0 = time.perf_counter()
losses, hist = [], []


def acc(idx):
    model.eval()
    c = 0
    with torch.no_grad():
        for i in range(0, len(idx), 64):
            f = pooled_features(model, inputs.batch(idx[i:i + 64]))["audio"]
            c += int((head(f.float()).argmax(-1) == y[idx[i:i + 64]]).sum())
    model.train()
    return round(c / len(idx), 3)


for step in range(steps):
    idx = rng.choice(train, bs, replace=False)
    f = pooled_features(model, inputs.batch(idx))["audio"]
    loss = torch.nn.functional.cross_entropy(head(f.float()), y[idx])
    opt.zero_grad()
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()
    sched.step()
    losses.append(float(loss))
    if (step + 1) % 300 == 0:
        hist.append((step + 1, round(float(np.mean(losses[-100:])), 3), acc(val)))
import datetime as dt
import platform

print(json.dumps({"run": run, "mseed": mseed, "args": sys.argv[3:], "hist": hist, "train_acc": acc(train[:280]),
                  "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "cpu": platform.processor(),
                  "s": round(time.perf_counter() - t0, 1)}))
