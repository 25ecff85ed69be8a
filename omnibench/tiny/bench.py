"""CPU timings of the tiny model: processor, training step, generation, label scoring.

    python -m omnibench.tiny.bench [--batch 8] [--new-tokens 40] [--reps 7] [--threads 2]
                                    [--device cuda] [--dtype bfloat16]

Prints one JSON line of figures (seconds; best and median of ``--reps`` runs after one warm-up).
Media are SynthEmo-shaped stand-ins (8 frames of 112 px, 1.5 s of 16 kHz audio), so the figures do
not depend on decoding.  ``label_scoring`` compares :func:`score_labels` (prompt once per clip, cache
repeated over the labels) with the plain alternative (one full row per clip and label), and
``scoring_max_abs_diff`` is the largest difference between the two (a correctness check on any device).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from omnibench.data.media import synth_media
from omnibench.labels import DFEW7
from omnibench.model.generation import generate, score_labels, to_device
from omnibench.model.inputs import ALL, build_inputs
from omnibench.tiny.model import build_tiny

COMPLETION = (
    "<think>The face shows a smiling mouth and wide eyes. The voice has a high pitch and loud volume. "
    "Face and voice agree: happy.</think><answer>happy</answer>"
)


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _time(fn, reps: int) -> dict:
    fn()
    runs = []
    for _ in range(reps):
        _sync()
        t = time.perf_counter()
        fn()
        _sync()
        runs.append(time.perf_counter() - t)
    return {"best": round(min(runs), 4), "median": round(statistics.median(runs), 4)}


def run(
    batch: int = 8,
    new_tokens: int = 40,
    reps: int = 7,
    threads: int | None = None,
    device: str = "cpu",
    dtype: str = "float32",
) -> dict:
    if threads:
        torch.set_num_threads(threads)
    model, processor = build_tiny(seed=0)
    model.to(device=device, dtype=getattr(torch, dtype))
    rng = np.random.default_rng(0)
    media = [
        synth_media(
            rng.integers(0, 256, (8, 112, 112, 3), dtype=np.uint8),
            (0.1 * rng.standard_normal(24000)).astype(np.float32),
        )
        for _ in range(batch)
    ]
    out: dict = {
        "device": str(torch.cuda.get_device_name() if device.startswith("cuda") else device),
        "dtype": dtype,
        "threads": torch.get_num_threads(),
        "batch": batch,
        "params": sum(p.numel() for p in model.parameters()),
    }
    frames = [m.frames for m in media]
    audio = [m.audio for m in media]
    vp, fe = processor.video_processor, processor.feature_extractor
    out["video_processor"] = _time(
        lambda: vp(frames, return_tensors="pt", size=dict(vp.size), input_data_format="channels_last"), reps
    )
    out["whisper_features_batch_padded"] = _time(
        lambda: fe(
            audio, sampling_rate=16000, return_tensors="pt", max_length=24400, return_attention_mask=True
        ),
        reps,
    )
    out["whisper_features_30s_padded"] = _time(
        lambda: fe(audio, sampling_rate=16000, return_tensors="pt", return_attention_mask=True), reps
    )
    out["build_inputs_prompt"] = _time(lambda: build_inputs(processor, media, ALL), reps)
    comps = [COMPLETION] * batch
    out["build_inputs_sft"] = _time(
        lambda: build_inputs(processor, media, ALL, completions=comps, return_labels=True), reps
    )
    sft = to_device(
        build_inputs(processor, media, ALL, completions=comps, return_labels=True), model.device, model.dtype
    )
    out["sft_seq_len"] = int(sft["input_ids"].shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()

    def step():
        loss = model(**sft).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    out["train_step_fwd_bwd_adamw"] = _time(step, reps)
    model.eval()
    prompt = to_device(build_inputs(processor, media, ALL), model.device, model.dtype)
    tok = processor.tokenizer

    def gen():
        with torch.no_grad():
            model.generate(
                **prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=True, top_k=0,
                pad_token_id=tok.pad_token_id,
            )  # fmt: skip

    out[f"generate_{batch}x{new_tokens}_sampled"] = _time(gen, max(1, reps // 2))
    out[f"generate_api_{batch}x{new_tokens}_greedy"] = _time(
        lambda: generate(model, processor, media, ALL, max_new_tokens=new_tokens, batch_size=batch),
        max(1, reps // 2),
    )
    out["score_labels_cached_prompt"] = _time(lambda: score_labels(model, processor, media, ALL, DFEW7), reps)

    def plain_scoring():
        rows = [m for m in media for _ in DFEW7]
        texts = [f"<answer>{lab}</answer>" for _ in media for lab in DFEW7]
        b = build_inputs(processor, rows, ALL, completions=texts, return_labels=True, close_turn=False)
        b = to_device(b, model.device, model.dtype)
        with torch.no_grad():
            logp = torch.log_softmax(model(**b).logits.float(), -1)
        lab = b["labels"][:, 1:]
        tgt = lab.clamp(min=0).unsqueeze(-1)
        return (logp[:, :-1].gather(-1, tgt).squeeze(-1) * (lab != -100)).sum(-1)

    out["score_labels_plain_rows"] = _time(plain_scoring, reps)
    cached = score_labels(model, processor, media, ALL, DFEW7)
    plain = plain_scoring().double().cpu().numpy().reshape(len(media), len(DFEW7))
    out["scoring_max_abs_diff"] = float(np.abs(cached - plain).max())
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8, help="clips per batch")
    ap.add_argument("--new-tokens", type=int, default=40, help="tokens generated per sequence")
    ap.add_argument("--reps", type=int, default=7, help="timed repetitions after one warm-up")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    ap.add_argument("--dtype", default="float32", help="model dtype: float32 | bfloat16 | float16")
    a = ap.parse_args(argv)
    print(json.dumps(run(a.batch, a.new_tokens, a.reps, a.threads, a.device, a.dtype)))


if __name__ == "__main__":
    main()
