"""Tiny fixture trees in the real dataset layouts (real file names, generated media).

Each ``make_<dataset>(root)`` builds a small copy of the dataset's native layout under ``root`` and
returns a dict describing what it wrote (expected clips, labels, deliberately missing files), so
tests can check an indexer against it. Media are generated once per process with PyAV (a few
32x32 frames, H.264, plus an AAC track where the dataset has audio) and soundfile (wav), then
copied under each real file name — real decodable files, at almost no cost per clip.
"""

from __future__ import annotations

import csv
import functools
import json
import tempfile
from pathlib import Path

import numpy as np

SR = 16000


@functools.cache
def _template(kind: str) -> bytes:
    """Bytes of a tiny media file: "mp4" (H.264 + AAC), "mp4_silent" (no audio), "flv", "avi", "wav"."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"t.{kind.split('_')[0]}"
        if kind == "wav":
            import soundfile as sf

            t = np.arange(SR // 2) / SR
            sf.write(path, (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR)
        else:
            fmt = {"flv": "flv", "avi": "avi"}.get(kind)
            _write_video(
                path, fmt=fmt, vcodec="mpeg4" if kind == "avi" else "libx264", audio=kind in ("mp4", "flv")
            )
        return path.read_bytes()


def _write_video(path: Path, fmt=None, vcodec="libx264", audio=True, n=4, size=32, fps=8):
    import av

    c = av.open(str(path), "w", format=fmt)
    v = c.add_stream(vcodec, rate=fps)
    v.width = v.height = size
    v.pix_fmt = "yuv420p"
    a = None
    if audio:
        a = c.add_stream("aac", rate=SR)
        a.layout = "mono"
    for i in range(n):
        img = np.full((size, size, 3), 40 * i, np.uint8)
        for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(p)
    for p in v.encode():
        c.mux(p)
    if a is not None:
        t = np.arange(int(SR * n / fps)) / SR
        s = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(s, format="fltp", layout="mono")
        frame.sample_rate = SR
        for p in a.encode(frame):
            c.mux(p)
        for p in a.encode():
            c.mux(p)
    c.close()


def media(path: Path, kind: str) -> Path:
    """Write a tiny media file of ``kind`` at ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_template(kind))
    return path


def _write_csv(path: Path, rows, header=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if header:
            w.writerow(header)
        w.writerows(rows)


# ------------------------------------------------------------------------------------------ DFEW

DFEW_NAMES = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]


def make_dfew(root: Path, *, missing: int = 1, part_folders: bool = True, spelling="single-labeled") -> dict:
    """DFEW/EmoLabel_DataSplit/{train,test}(single-labeled)/set_1..2.csv + Clip/original/part_K/NNNNN.mp4.

    Clip numbers 1..10; fold 1 tests clips 1..3, fold 2 clips 4..6. Clip 10 (train in both folds) has
    no video when ``missing``.
    """
    labels = {n: (n % 7) + 1 for n in range(1, 11)}  # clip number -> DFEW code
    for fold, test_ids in ((1, {1, 2, 3}), (2, {4, 5, 6})):
        for subset, ids in (("train", sorted(set(labels) - test_ids)), ("test", sorted(test_ids))):
            _write_csv(
                root / "EmoLabel_DataSplit" / f"{subset}({spelling})" / f"set_{fold}.csv",
                [[n, labels[n]] for n in ids],
                header=["video_name", "label"],
            )
    for n in labels:
        if missing and n == 10:
            continue
        sub = f"part_{(n - 1) // 5 + 1}/" if part_folders else ""
        media(root / "Clip" / "original" / f"{sub}{n:05d}.mp4", "mp4")
    # frame folders exist in the real release too; they must be ignored
    (root / "Clip" / "clip_224x224" / "00001").mkdir(parents=True, exist_ok=True)
    (root / "Clip" / "clip_224x224" / "00001" / "00001_00001.jpg").write_bytes(b"\xff\xd8")
    return {"labels": {n: DFEW_NAMES[c - 1] for n, c in labels.items()}, "missing": [10] if missing else []}


# ------------------------------------------------------------------------------------------ MAFW

MAFW_WORDS = [
    "anger",
    "disgust",
    "fear",
    "happiness",
    "neutral",
    "sadness",
    "surprise",
    "contempt",
    "anxiety",
    "helplessness",
    "disappointment",
]


def make_mafw(root: Path, *, missing: bool = True, folds=(1,)) -> dict:
    """MAFW/Train & Test Set/single/no_caption/set_N/{train,test}.txt + data/clips/NNNNN.mp4 (11 clips).

    Fold k (of ``folds``) tests clips 3k-2..3k (fold 1: 00001..00003).
    """
    names = [f"{i:05d}.mp4" for i in range(1, 12)]
    words = dict(zip(names, MAFW_WORDS))
    for k in folds:
        split_dir = root / "Train & Test Set" / "single" / "no_caption" / f"set_{k}"
        split_dir.mkdir(parents=True, exist_ok=True)
        test_k = names[3 * (k - 1) : 3 * k]
        (split_dir / "train.txt").write_text("".join(f"{n} {words[n]}\n" for n in names if n not in test_k))
        (split_dir / "test.txt").write_text("".join(f"{n} {words[n]}\n" for n in test_k))
    test = names[:3]
    for n in names:
        if missing and n == names[-1]:
            continue
        media(root / "data" / "clips" / n, "mp4")
    return {"words": words, "test": test, "missing": [names[-1]] if missing else []}


# ------------------------------------------------------------------------------------------ RAVDESS


def make_ravdess(root: Path, *, actors=(1, 12), emotions=("01", "02", "03", "06", "08")) -> dict:
    """Video_Speech_Actor_NN/Actor_NN/{01,02}-01-EE-..-NN.mp4 + Audio_Speech_Actors_01-24/Actor_NN/03-....wav.

    The video-only file of the first actor's first emotion has no matching wav (to count as missing
    with pair="video+wav"); one song file (channel 02) is added for actor 1.
    """
    codes = []
    for actor in actors:
        for emo in emotions:
            inten = "01" if emo == "01" else "02"
            codes.append(f"01-{emo}-{inten}-01-01-{actor:02d}")
    for rest in codes:
        actor = rest[-2:]
        vdir = root / f"Video_Speech_Actor_{actor}" / f"Actor_{actor}"
        media(vdir / f"01-{rest}.mp4", "mp4")
        media(vdir / f"02-{rest}.mp4", "mp4_silent")
        if rest != codes[0]:
            media(root / "Audio_Speech_Actors_01-24" / f"Actor_{actor}" / f"03-{rest}.wav", "wav")
    song = "02-03-01-01-01-01"
    media(root / "Video_Song_Actor_01" / "Actor_01" / f"01-{song}.mp4", "mp4")
    (root / "Video_Speech_Actor_01" / "Actor_01" / ".DS_Store").write_bytes(b"\0")  # noise files are ignored
    return {"speech": codes, "song": [song], "no_wav": codes[0]}


# ------------------------------------------------------------------------------------------ CREMA-D

CREMAD_STEMS = [
    "1001_DFA_ANG_XX",
    "1001_IEO_HAP_HI",
    "1002_IEO_SAD_LO",
    "1091_TSI_FEA_XX",
    "1015_WSI_NEU_XX",
    "1040_ITH_DIS_XX",
]


def make_cremad(root: Path, *, missing_wav: bool = True) -> dict:
    """CREMA-D/VideoFlash/*.flv + AudioWAV/*.wav (the last clip's wav missing when ``missing_wav``)."""
    for i, stem in enumerate(CREMAD_STEMS):
        media(root / "VideoFlash" / f"{stem}.flv", "flv")
        if not (missing_wav and i == len(CREMAD_STEMS) - 1):
            media(root / "AudioWAV" / f"{stem}.wav", "wav")
    (root / "AudioMP3").mkdir(parents=True, exist_ok=True)
    (root / "processedResults").mkdir(exist_ok=True)
    _write_csv(
        root / "VideoDemographics.csv",
        [[1001, 51, "Male", "Caucasian", "Not Hispanic"]],
        header=["ActorID", "Age", "Sex", "Race", "Ethnicity"],
    )
    return {"stems": CREMAD_STEMS, "missing_wav": CREMAD_STEMS[-1] if missing_wav else None}


#: The header of CREMA-D's processedResults/tabulatedVotes.csv, as R's write.csv wrote it (27 columns;
#: the first, unnamed one is the row id 100000 * queryType + clipNum).
CREMAD_VOTES_HEADER = [
    "", "A", "D", "F", "H", "N", "S", "fileName", "numResponses", "agreement", "emoVote",
    "meanEmoResp", "meanAngerResp", "meanDisgustResp", "meanFearResp", "meanHappyResp",
    "meanNeutralResp", "meanSadResp", "medianEmoResp", "meanEmoRespNorm", "meanAngerRespNorm",
    "meanDisgustRespNorm", "meanFearRespNorm", "meanHappyRespNorm", "meanNeutralRespNorm",
    "meanSadRespNorm", "medianEmoRespNorm",
]
#: CREMA-D queryType per presentation (README: 1 voice only, 2 face only, 3 audio-visual).
CREMAD_QUERY_TYPE = {"voice": 1, "face": 2, "both": 3}


def cremad_votes_row(clip_num: int, presentation: str, stem: str, counts) -> list:
    """One tabulatedVotes.csv row in the real format: row id, the six counts (A D F H N S), fileName,
    numResponses, agreement, emoVote (ties joined by ":"), and emotion-level means (-1 where no vote)."""
    counts = [int(c) for c in counts]
    n = sum(counts)
    top = max(counts)
    vote = ":".join(e for e, c in zip("ADFHNS", counts) if c == top)
    levels = [55.5 if c else -1 for c in counts]
    return [
        str(100000 * CREMAD_QUERY_TYPE[presentation] + clip_num), *counts, stem, n, top / n, vote,
        55.5, *levels, 56, 52.25, *levels, 53,
    ]


def write_cremad_votes(root: Path, rows, *, header=None) -> Path:
    """Write ``root/processedResults/tabulatedVotes.csv`` as R's write.csv does (strings quoted,
    numbers bare); ``rows`` are lists such as :func:`cremad_votes_row` returns."""
    path = root / "processedResults" / "tabulatedVotes.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC)
        w.writerow(CREMAD_VOTES_HEADER if header is None else header)
        w.writerows(rows)
    return path


# ------------------------------------------------------------------------------------------ MER2023


def make_mer2023(root: Path, *, missing: bool = True) -> dict:
    """mer2023-dataset/{train,test1,test3}-label.csv (name, discrete, valence) + train/ test1/ test3/ videos."""
    plan = {
        "train": [
            ("sample_00000001", "happy", 2.5),
            ("sample_00000002", "worried", -1.0),
            ("sample_00000003", "neutral", 0.0),
            ("sample_00000004", "surprise", 1.0),
        ],
        "test1": [("sample_00003001", "angry", -3.0), ("sample_00003002", "sad", -2.0)],
        "test3": [("sample_00005001", "sad", None)],
    }
    for split, rows in plan.items():
        header = ["name", "discrete", "valence"] if split != "test3" else ["name", "discrete"]
        _write_csv(
            root / f"{split}-label.csv",
            [[n, d, v] if v is not None else [n, d] for n, d, v in rows],
            header=header,
        )
        for i, (name, _d, _v) in enumerate(rows):
            if missing and split == "train" and i == len(rows) - 1:
                continue
            ext = "avi" if split == "test1" else "mp4"
            media(root / split / f"{name}.{ext}", "avi" if ext == "avi" else "mp4")
    return {"plan": plan, "missing": "sample_00000004" if missing else None}


# ------------------------------------------------------------------------------------------ MELD

MELD_HEADER = [
    "Sr No.",
    "Utterance",
    "Speaker",
    "Emotion",
    "Sentiment",
    "Dialogue_ID",
    "Utterance_ID",
    "Season",
    "Episode",
    "StartTime",
    "EndTime",
]


def make_meld(root: Path) -> dict:
    """MELD.Raw/{train,dev,test}_sent_emo.csv + train/train_splits, dev_splits_complete, test/output_repeated_splits_test.

    dev dia110_utt7 has no video, as in the real release.
    """
    rows = {
        "train": [
            (
                1,
                "also I was the point person on my company's transition",
                "Chandler",
                "neutral",
                "neutral",
                0,
                0,
            ),
            (2, "You must've had your hands full.", "The Interviewer", "joy", "positive", 0, 1),
            (3, "That I did. That I did.", "Chandler", "anger", "negative", 0, 2),
        ],
        "dev": [
            (1, "Oh my God!", "Monica", "surprise", "positive", 0, 0),
            (2, "No!", "Ross", "sadness", "negative", 110, 7),
        ],
        "test": [
            (
                1,
                "Why do all you're coffee mugs have numbers on the bottom?",
                "Mark",
                "surprise",
                "positive",
                0,
                0,
            ),
            (2, "Ew!", "Rachel", "disgust", "negative", 1, 3),
        ],
    }
    vdirs = {
        "train": root / "train" / "train_splits",
        "dev": root / "dev_splits_complete",
        "test": root / "test" / "output_repeated_splits_test",
    }
    for split, rs in rows.items():
        _write_csv(
            root / f"{split}_sent_emo.csv",
            [[*r, 1, 1, "00:00:01,000", "00:00:02,000"] for r in rs],
            header=MELD_HEADER,
        )
        for r in rs:
            if split == "dev" and (r[5], r[6]) == (110, 7):
                continue
            media(vdirs[split] / f"dia{r[5]}_utt{r[6]}.mp4", "mp4")
    return {"rows": rows, "missing": "dia110_utt7.mp4"}


# ------------------------------------------------------------------------------------------ R1-Omni

R1_PROMPT = (
    "<video>\n<audio>\nAs an emotional recognition expert; throughout the video, which emotion conveyed by "
    "the characters is the most obvious to you? Output the thinking process in <think> </think> and final "
    "emotion in <answer> </answer> tags."
)


#: EMER / OV-MERD-style answers outside every data card, and how many records carry each (folded).
OPEN_VOCAB = {"bemused": 2, "wistful": 1}


def make_r1omni(root: Path, *, open_vocab: bool = False) -> tuple[Path, dict]:
    """R1-Omni cold-start JSON (as in its README) plus one RLVR-style label-only item; returns (json, expected).

    With ``open_vocab``, three explained records whose answers no card knows are appended
    (:data:`OPEN_VOCAB`: "bemused" twice, spelled "Bemused" once, and "wistful").
    """
    media(root / "MER24" / "sample_00000967.mp4", "mp4")
    media(root / "DFEW" / "videos" / "1.mp4", "mp4")
    items = [
        {
            "video": "MER24/sample_00000967.mp4",
            "conversations": [
                {"from": "human", "value": R1_PROMPT},
                {
                    "from": "gpt",
                    "value": "<think>The man's furrowed brow and fast-paced speech suggest tension.</think>\n"
                    "<answer>anxious</answer>",
                },
            ],
        },
        {
            "video": "DFEW/videos/1.mp4",
            "conversations": [
                {
                    "from": "human",
                    "value": "<video>\n<audio>\nAs an emotional recognition expert; throughout the video, "
                    "which emotion conveyed by the characters is the most obvious to you?",
                },
                {"from": "gpt", "value": "sad"},
            ],
        },
    ]
    if open_vocab:
        for i, word in enumerate(["bemused", " Bemused", "wistful"]):
            media(root / "EMER" / f"ov_{i}.mp4", "mp4")
            think = f"<think>A half smile and a flat, slow voice.</think>\n<answer>{word}</answer>"
            items.append(
                {
                    "video": f"EMER/ov_{i}.mp4",
                    "conversations": [{"from": "human", "value": R1_PROMPT}, {"from": "gpt", "value": think}],
                }
            )
    path = root / "train.json"
    path.write_text(json.dumps(items, indent=2))
    return path, {"labels": ["anxiety", "sad"], "open_vocab": dict(OPEN_VOCAB) if open_vocab else {}}


# ------------------------------------------------------------------------------------------ R1-Omni protocol

#: Explained (cold-start) records of :func:`make_r1omni_protocol`: (file under EMER/, answer word).
EMER_RECORDS = [("sample_00000967", "anxious"), ("sample_00001002", "happy"), ("sample_00001003", "Sad"),
                ("sample_00001004", "neutral")]


def make_r1omni_protocol(root: Path, *, corrupt: str = "dfew") -> dict:
    """Everything ``configs/r1omni.yaml`` reads, in the real layouts, under ``root``: ``DFEW/`` (fold 1),
    ``MAFW/`` (fold 1), ``RAVDESS/`` (speech, actors 1 and 12) and ``EMER/train.json`` (R1-Omni's
    training JSON: :data:`EMER_RECORDS` with ``<think>`` reasoning, plus one label-only record).

    One clip is corrupt (its file holds bytes no decoder reads, under its real name): DFEW clip 2, in
    ``dfew/test`` (``corrupt="dfew"``). Returns the roots (``roots``: dataset -> path, the keys of
    ``data.roots``), the corrupt clip's id and path, and each fixture's own description."""
    dfew = make_dfew(root / "DFEW")
    mafw = make_mafw(root / "MAFW")
    ravdess = make_ravdess(root / "RAVDESS")
    emer = root / "EMER"
    items = []
    for stem, word in EMER_RECORDS:
        media(emer / "videos" / f"{stem}.mp4", "mp4")
        think = f"<think>The face and the voice of the speaker read as {word.lower()}.</think>\n<answer>{word}</answer>"
        items.append({"video": f"videos/{stem}.mp4",
                      "conversations": [{"from": "human", "value": R1_PROMPT}, {"from": "gpt", "value": think}]})
    media(emer / "videos" / "sample_00002001.mp4", "mp4")
    items.append({"video": "videos/sample_00002001.mp4",
                  "conversations": [{"from": "human", "value": R1_PROMPT}, {"from": "gpt", "value": "angry"}]})
    (emer / "train.json").write_text(json.dumps(items, indent=2))
    corrupt_path = None
    if corrupt == "dfew":
        corrupt_path = next((root / "DFEW" / "Clip" / "original").rglob("00002.mp4"))
        corrupt_path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)  # an mp4 header, then noise
    return {
        "roots": {"dfew": root / "DFEW", "mafw": root / "MAFW", "ravdess": root / "RAVDESS",
                  "r1omni": emer / "train.json"},
        "corrupt": {"path": corrupt_path, "split": "dfew/test"} if corrupt_path else None,
        "dfew": dfew, "mafw": mafw, "ravdess": ravdess, "emer": EMER_RECORDS,
    }
