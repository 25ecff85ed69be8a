"""SynthEmo difficulty check: a logistic-regression baseline and the one-factor-at-a-time OOD diagnosis.

Features, decoded from the mp4 files through decord (the real decoding path):
  video: 8 uniformly sampled frames, grey, block-averaged to 28x28; mean and std over time;
  audio: 64-band log-mel spectrogram (librosa); per-band mean over the first, middle and last third
         of the voiced frames (the contour), std and mean |delta| over time, and the modulation
         spectrum of the frame energy (1-40 Hz, where the roughness cues live).
The classifier (standardise + multinomial logistic regression) is trained on ``train`` and scored on
``test_id`` (the training actors), ``test_actors`` (unseen actors from the training ranges, nothing else
shifted), ``test_ood`` and ``test_draw`` (a new draw: master seed ``--draw-seed``), then retrained with the video or the audio features removed.  The diagnosis
regenerates ``test_ood`` with one OOD factor shifted at a time (same clips otherwise); its ``actors``
row is the same shift as ``test_actors`` on other clips.

    .venv/bin/python experiments/synth_baseline.py --work /tmp/synth_baseline --n-train 1400 --n-test 210

``--work runs/<run>/data --seed <its seed> --no-diagnosis`` scores a run's own clips (the files are reused,
not regenerated) -- the LR row beside the study's ``test_draw`` figure.

Prints one JSON line of figures (accuracies; chance is 1/7 = 0.143).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

from omnibench.data import synth


def video_features(path: str, n_frames: int = 8, grid: int = 28) -> np.ndarray:
    import decord

    vr = decord.VideoReader(path)
    idx = np.linspace(0, len(vr) - 1, n_frames).round().astype(int)
    fr = vr.get_batch(list(idx)).asnumpy().astype(np.float32).mean(-1)  # (T, H, W) grey
    t, h, _w = fr.shape
    b = h // grid
    small = fr[:, : b * grid, : b * grid].reshape(t, grid, b, grid, b).mean((2, 4))
    small = (small - small.mean()) / (small.std() + 1e-6)  # per-clip contrast normalisation
    return np.concatenate([small.mean(0).ravel(), small.std(0).ravel()])


def audio_features(path: str, sr: int = 16000) -> np.ndarray:
    import decord
    import librosa

    y = decord.AudioReader(path, sample_rate=sr, mono=True)[:].asnumpy().reshape(-1)
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=400, hop_length=160, n_mels=64, fmax=8000)
    logm = np.log(mel + 1e-6)
    energy = np.log(mel.sum(0) + 1e-6)
    e = energy - energy.mean()
    mod = np.abs(np.fft.rfft(e * np.hanning(len(e)), 256))[3:104:4]  # frame rate 100 Hz: ~1-40 Hz
    active = logm[:, energy > energy.max() - 3.0]  # frames within 13 dB of the loudest (the voice)
    thirds = [part.mean(1) for part in np.array_split(active, 3, axis=1)]  # contour: start, middle, end
    return np.concatenate([*thirds, logm.std(1), np.abs(np.diff(logm, axis=1)).mean(1), mod, [energy.std()]])


def features(clips, cache: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(video, audio, label index) arrays; ``cache`` maps file identity -> (video, audio) features."""
    cache = {} if cache is None else cache
    v, a = [], []
    for c in clips:
        st = Path(c.video).stat()
        key = f"{c.video}|{st.st_size}|{st.st_mtime_ns}"
        if key not in cache:
            cache[key] = (video_features(c.video), audio_features(c.video))
        v.append(cache[key][0])
        a.append(cache[key][1])
    y = np.array([synth.LABELS.index(c.label) for c in clips])
    return np.stack(v), np.stack(a), y


def fit_predict(xtr, ytr, tests: dict[str, np.ndarray], c: float = 0.05) -> dict[str, np.ndarray]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    model.fit(xtr, ytr)
    return {name: model.predict(x) for name, x in tests.items()}


def accuracy(pred: np.ndarray, gold: np.ndarray, mask: np.ndarray | None = None) -> float:
    mask = np.ones(len(gold), bool) if mask is None else mask
    return round(float((pred[mask] == gold[mask]).mean()), 4)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="/tmp/synth_baseline", help="folder for the generated clips")
    ap.add_argument("--n-train", type=int, default=1400)
    ap.add_argument("--n-test", type=int, default=210, help="clips per test split and per diagnosis variant")
    ap.add_argument("--seed", type=int, default=0, help="master seed of train and the test splits")
    ap.add_argument("--draw-seed", type=int, default=1000, help="master seed of test_draw (a seed never trained on)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--c", type=float, default=0.05, help="inverse L2 regularisation of the classifier")
    ap.add_argument("--no-diagnosis", action="store_true")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON file collecting one result per --seed (merged into it, with the mean and t-CI over seeds)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    work = Path(args.work)
    if args.draw_seed == args.seed:
        ap.error(f"--draw-seed must differ from --seed ({args.seed}): test_draw is a draw never trained on")
    gen = {"seed": args.seed, "workers": args.workers}
    draw = {"seed": args.draw_seed}
    sets = {
        "train": synth.generate_split(work, "train", args.n_train, **gen),
        **{split: synth.generate_split(work, split, args.n_test, **(gen | draw if split == synth.DRAW_SPLIT else gen))
           for split in synth.TEST_SPLITS},
    }
    if not args.no_diagnosis:
        for factor in synth.OOD_FACTORS:
            sets[f"ood_only_{factor}"] = synth.generate_split(work / f"diag_{factor}", "test_ood", args.n_test,
                                                              shift=[factor], **gen)  # fmt: skip
    t_gen = time.perf_counter() - t0
    cache_file = work / "features_cache.pkl"
    cache = pickle.loads(cache_file.read_bytes()) if cache_file.is_file() else {}
    feats = {name: features(clips, cache) for name, clips in sets.items()}
    cache_file.write_bytes(pickle.dumps(cache))
    t_feat = time.perf_counter() - t0 - t_gen

    vtr, atr, ytr = feats["train"]
    tests = {k: v for k, v in feats.items() if k != "train"}
    gold = {k: y for k, (v, a, y) in tests.items()}
    pred = {
        "both": fit_predict(
            np.hstack([vtr, atr]), ytr, {k: np.hstack([v, a]) for k, (v, a, y) in tests.items()}, args.c
        ),
        "video": fit_predict(vtr, ytr, {k: v for k, (v, a, y) in tests.items()}, args.c),
        "audio": fit_predict(atr, ytr, {k: a for k, (v, a, y) in tests.items()}, args.c),
    }
    both = {k: accuracy(p, gold[k]) for k, p in pred["both"].items()}
    audio_only = {k: accuracy(p, gold[k]) for k, p in pred["audio"].items()}
    video_only = {k: accuracy(p, gold[k]) for k, p in pred["video"].items()}
    by_condition = {}
    for split in tests:
        cond = np.array([c.meta["condition"] for c in sets[split]])
        by_condition[split] = {
            k: accuracy(pred["both"][split], gold[split], cond == k) for k in synth.CONDITIONS
        }

    result = {
        "chance": round(1 / len(synth.LABELS), 4),
        "n_train": args.n_train,
        "n_test": args.n_test,
        "seed": args.seed,
        "draw_seed": args.draw_seed,
        **{split: both[split] for split in synth.TEST_SPLITS},
        **{f"{split}_without_video": audio_only[split] for split in synth.TEST_SPLITS},
        **{f"{split}_without_audio": video_only[split] for split in synth.TEST_SPLITS},
        "by_condition": by_condition,
        "ood_one_factor": {
            k.removeprefix("ood_only_"): v for k, v in both.items() if k.startswith("ood_only_")
        },
        "generate_s": round(t_gen, 1),
        "features_s": round(t_feat, 1),
    }
    print(json.dumps(result))
    if args.out:
        _merge_out(args.out, args.seed, result, args.work)
    return result


def _merge_out(path: Path, seed: int, result: dict, work: str) -> None:
    """Put ``result`` under ``per_seed[seed]`` of ``path`` and recompute the mean and t-CI over its seeds."""
    import datetime as dt
    import platform

    from omnibench.io import read_json, write_json
    from omnibench.stats import mean_ci_over_seeds

    obj = read_json(path, default={}) if path.is_file() else {}
    obj.setdefault("per_seed", {})[str(seed)] = {**result, "work": str(work),
                                                 "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                                 "cpu": platform.processor() or platform.machine()}
    runs = list(obj["per_seed"].values())
    keys = [k for k, v in runs[0].items() if isinstance(v, float) and k.startswith("test_")]
    obj["mean_ci"] = {k: mean_ci_over_seeds([r.get(k) for r in runs]) for k in keys}
    obj["seeds"] = sorted(int(k) for k in obj["per_seed"])
    write_json(path, obj)


if __name__ == "__main__":
    main(sys.argv[1:])
