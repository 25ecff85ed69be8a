"""Indexers on fixtures built in each dataset's real layout, data cards, R1-Omni JSON, CLI."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import fixtures_layouts as fx  # tests/ is on sys.path under pytest (rootdir conftest, no __init__)
import numpy as np
import pytest

from omnibench import labels
from omnibench.data import indexers as ix
from omnibench.data.indexers import DatasetLayoutError, LabelCodeError, index_dataset, index_with_report
from omnibench.data.manifest import Clip, read_manifest, write_manifest

CARDS = ["dfew", "mafw", "ravdess", "cremad", "mer2023", "meld"]
REQUIRED_KEYS = [
    "name",
    "title",
    "labels",
    "aliases",
    "splits",
    "modalities",
    "licence",
    "obtain",
    "citation",
    "cross_dataset",
    "layout",
]
SECTIONS = ["Motivation", "Composition", "Collection", "Preprocessing", "Uses", "Distribution", "Maintenance"]


def by_id(clips):
    return {c.id: c for c in clips}


# ------------------------------------------------------------------------------------------ cards


@pytest.mark.parametrize("name", CARDS)
def test_card_front_matter_and_datasheet_sections(name):
    c = labels.card(name)
    for key in REQUIRED_KEYS:
        assert c.get(key), f"{name}: front matter lacks {key}"
    assert all(lab == lab.lower() for lab in c["labels"])
    assert all(v in c["labels"] or v in labels.DFEW7 for v in c["aliases"].values())
    for code, lab in (c.get("codes") or {}).items():
        assert lab in c["labels"], f"{name}: code {code} -> {lab} not among the card's labels"
    body = (labels.cards_dir() / f"{name}.md").read_text()
    for section in SECTIONS:
        assert re.search(rf"^## {section}\b", body, re.MULTILINE), f"{name}.md lacks the '{section}' section"


def test_cards_agree_with_dfew_order_and_aliases_resolve():
    codes = labels.card("dfew")["codes"]
    assert tuple(codes[i] for i in range(1, 8)) == labels.DFEW7
    assert labels.label_set("dfew") == labels.DFEW7
    table = labels.alias_table()  # raises on a conflict between cards
    expect = {
        "fearful": "fear",
        "surprised": "surprise",
        "Happiness": "happy",
        "ANGER": "angry",
        "ANG": "angry",
        "joy": "happy",
        "sadness": "sad",
        "anxious": "anxiety",
        "calm": "calm",
        "contempt": "contempt",
        "worried": "worried",
        "helplessness": "helplessness",
        "disappointment": "disappointment",
    }
    for spelling, canonical in expect.items():
        assert labels.normalize_label(spelling) == canonical, spelling
    assert len(table) > 30
    # labels outside the seven DFEW classes stay their own labels
    assert {"calm", "contempt", "anxiety", "worried"}.isdisjoint(labels.DFEW7)


# ------------------------------------------------------------------------------------------ DFEW


def test_dfew_fold_splits_labels_and_missing(tmp_path):
    info = fx.make_dfew(tmp_path / "DFEW")
    with pytest.warns(UserWarning, match=r"1 missing"):
        clips = index_dataset("dfew", tmp_path / "DFEW", fold=1)
    ids = by_id(clips)
    assert {c.split for c in clips} == {"train", "test"}
    assert sorted(c.id for c in clips if c.split == "test") == ["dfew-00001", "dfew-00002", "dfew-00003"]
    assert len([c for c in clips if c.split == "train"]) == 6  # 7 train rows, clip 10 has no video
    assert "dfew-00010" not in ids
    for c in clips:
        n = int(c.id.split("-")[1])
        assert c.label == info["labels"][n]
        assert c.meta["fold"] == 1 and c.dataset == "dfew"
        assert Path(c.video).is_file() and Path(c.video).name == f"{n:05d}.mp4"
    _, report = index_with_report("dfew", tmp_path / "DFEW", fold=2)
    assert report.indexed == 9 and len(report.missing) == 1 and "00010" in report.missing[0]
    assert "9 clips indexed, 1 missing" in report.summary()


def test_dfew_variants_default_fold_and_errors(tmp_path):
    root = tmp_path / "DFEW"
    fx.make_dfew(root, missing=0, part_folders=False, spelling="single_labeled")
    clips, report = index_with_report("dfew", root)
    assert len(clips) == 10 and not report.missing
    assert any("fold 1" in n for n in report.notes)
    with pytest.raises(ValueError, match="fold must be in 1..5"):
        index_dataset("dfew", root, fold=6)
    # unknown label code -> error naming file and line
    csv = root / "EmoLabel_DataSplit" / "test(single_labeled)" / "set_1.csv"
    csv.write_text(csv.read_text() + "4,8\n")
    with pytest.raises(LabelCodeError, match=r"set_1\.csv:5: unknown dfew label code '8'"):
        index_dataset("dfew", root, fold=1)


def test_dfew_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="(?s)does not exist.*EmoLabel_DataSplit"):
        index_dataset("dfew", tmp_path / "nope", fold=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"(?s)empty.*expected layout:\n.*EmoLabel_DataSplit"):
        index_dataset("dfew", tmp_path / "empty", fold=1)
    # only frame folders: a clear error, not an empty manifest
    root = tmp_path / "frames"
    fx.make_dfew(root)
    import shutil

    shutil.rmtree(root / "Clip" / "original")
    with pytest.raises(DatasetLayoutError, match="frame folders"):
        index_dataset("dfew", root, fold=1)
    # every clip missing -> nothing indexed is an error listing the missing files
    fx.make_dfew(tmp_path / "novid")
    for p in (tmp_path / "novid" / "Clip" / "original").rglob("*.mp4"):
        p.unlink()
    with pytest.raises(DatasetLayoutError, match=r"(?s)nothing indexed.*0 clips indexed, 10 missing"):
        index_dataset("dfew", tmp_path / "novid", fold=1)
    with pytest.raises(DatasetLayoutError, match="referenced media file not found"):
        index_dataset("dfew", root.parent / "novid", fold=1, on_missing="error")


# ------------------------------------------------------------------------------------------ MAFW


def test_mafw_labels_splits_missing_and_unknown(tmp_path):
    info = fx.make_mafw(tmp_path / "MAFW")
    clips, report = index_with_report("mafw", tmp_path / "MAFW", fold=1)
    assert len(clips) == 10 and len(report.missing) == 1 and report.missing[0].endswith("00011.mp4")
    ids = by_id(clips)
    assert ids["mafw-00001"].label == "angry" and ids["mafw-00001"].split == "test"
    assert ids["mafw-00004"].label == "happy" and ids["mafw-00004"].split == "train"
    assert ids["mafw-00008"].label == "contempt" and ids["mafw-00009"].label == "anxiety"
    assert {c.label for c in clips} <= set(labels.label_set("mafw"))
    assert all(c.meta["fold"] == 1 for c in clips)
    assert sorted(c.id for c in clips if c.split == "test") == [f"mafw-{n[:5]}" for n in info["test"]]
    txt = tmp_path / "MAFW" / "Train & Test Set" / "single" / "no_caption" / "set_1" / "train.txt"
    txt.write_text(txt.read_text() + "00005.mp4 boredom\n")
    with pytest.raises(LabelCodeError, match=r"train\.txt:9: unknown mafw label code 'boredom'"):
        index_dataset("mafw", tmp_path / "MAFW", fold=1)
    with pytest.raises(DatasetLayoutError, match="set_3"):
        index_dataset("mafw", tmp_path / "MAFW", fold=3)


# ------------------------------------------------------------------------------------------ RAVDESS


def test_ravdess_av_default_is_ood_test_with_actor(tmp_path):
    info = fx.make_ravdess(tmp_path / "RAVDESS")
    clips = index_dataset("ravdess", tmp_path / "RAVDESS")
    assert len(clips) == len(info["speech"]) == 10
    assert {c.split for c in clips} == {"test"}
    c = by_id(clips)["ravdess-01-01-02-02-01-01-12"]
    assert c.label == "calm" and c.meta["actor"] == "12" and c.meta["gender"] == "female"
    assert (
        c.meta["intensity"] == "strong"
        and c.audio is None
        and Path(c.video).name == "01-01-02-02-01-01-12.mp4"
    )
    assert {c.label for c in clips} == {"neutral", "calm", "happy", "fear", "surprise"}
    everything = index_dataset("ravdess", tmp_path / "RAVDESS", channel="all", split="ood")
    assert len(everything) == 11 and {c.split for c in everything} == {"ood"}
    with pytest.raises(ValueError, match="has no folds"):
        index_dataset("ravdess", tmp_path / "RAVDESS", fold=1)


def test_ravdess_video_plus_wav_and_audio_only(tmp_path):
    info = fx.make_ravdess(tmp_path / "R")
    clips, report = index_with_report("ravdess", tmp_path / "R", pair="video+wav")
    assert (
        len(clips) == 9
        and len(report.missing) == 1
        and report.missing[0].startswith(f"03-{info['no_wav']}.wav")
    )
    for c in clips:
        assert Path(c.video).name.startswith("02-") and Path(c.audio).name.startswith("03-")
        assert Path(c.video).name[3:-4] == Path(c.audio).name[3:-4]
    audio_only = index_dataset("ravdess", tmp_path / "R", pair="audio")
    assert len(audio_only) == 9 and all(c.video is None and c.audio.endswith(".wav") for c in audio_only)


def test_ravdess_unknown_emotion_code(tmp_path):
    fx.media(tmp_path / "R" / "Actor_03" / "01-01-09-01-01-01-03.mp4", "mp4")
    with pytest.raises(LabelCodeError, match=r"01-01-09-01-01-01-03\.mp4: unknown ravdess label code '09'"):
        index_dataset("ravdess", tmp_path / "R")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="(?s)Video_Speech_Actor"):
        index_dataset("ravdess", tmp_path / "empty")


# ------------------------------------------------------------------------------------------ CREMA-D


def test_cremad_pairs_flv_with_wav(tmp_path):
    info = fx.make_cremad(tmp_path / "CREMA-D")
    clips, report = index_with_report("cremad", tmp_path / "CREMA-D")
    assert len(clips) == 5 and report.missing == [
        str(tmp_path / "CREMA-D" / "AudioWAV" / f"{info['missing_wav']}.wav")
    ]
    c = by_id(clips)["cremad-1001_IEO_HAP_HI"]
    assert (
        c.label == "happy"
        and c.split == "test"
        and c.meta == {"actor": "1001", "sentence": "IEO", "level": "high"}
    )
    assert c.video.endswith("VideoFlash/1001_IEO_HAP_HI.flv") and c.audio.endswith(
        "AudioWAV/1001_IEO_HAP_HI.wav"
    )
    assert sorted(c.label for c in clips) == ["angry", "fear", "happy", "neutral", "sad"]
    track = index_dataset("cremad", tmp_path / "CREMA-D", audio="track")
    assert len(track) == 6 and all(c.audio is None for c in track)
    wav_only = index_dataset("cremad", tmp_path / "CREMA-D", mode="audio")
    assert len(wav_only) == 5 and all(c.video is None for c in wav_only)


def test_cremad_unknown_code_and_empty(tmp_path):
    fx.media(tmp_path / "C" / "VideoFlash" / "1001_DFA_XYZ_XX.flv", "flv")
    with pytest.raises(LabelCodeError, match=r"1001_DFA_XYZ_XX\.flv: unknown cremad label code 'XYZ'"):
        index_dataset("cremad", tmp_path / "C")
    (tmp_path / "E" / "VideoFlash").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match=r"(?s)no VideoFlash.*expected layout"):
        index_dataset("cremad", tmp_path / "E")


# ------------------------------------------------------------------------------------------ MER2023


def test_mer2023_label_files_and_video_folders(tmp_path):
    fx.make_mer2023(tmp_path / "mer")
    clips, report = index_with_report("mer2023", tmp_path / "mer")
    assert len(clips) == 6 and len(report.missing) == 1 and "sample_00000004" in report.missing[0]
    ids = by_id(clips)
    assert ids["mer2023-train-sample_00000002"].label == "worried"
    assert ids["mer2023-train-sample_00000001"].meta["valence"] == 2.5
    assert ids["mer2023-test1-sample_00003001"].video.endswith(".avi")
    assert "valence" not in ids["mer2023-test3-sample_00005001"].meta
    assert {c.split for c in clips} == {"train", "test1", "test3"}
    only = index_dataset("mer2023", tmp_path / "mer", splits="test1")
    assert {c.split for c in only} == {"test1"}
    with pytest.raises(DatasetLayoutError, match="test2-label.csv"):
        index_dataset("mer2023", tmp_path / "mer", splits=["test2"])
    (tmp_path / "mer" / "test3-label.csv").write_text("name,discrete\nsample_00005001,bored\n")
    with pytest.raises(LabelCodeError, match=r"test3-label\.csv:2: unknown mer2023 label code 'bored'"):
        index_dataset("mer2023", tmp_path / "mer")


# ------------------------------------------------------------------------------------------ MELD


def test_meld_splits_ids_and_known_missing_clip(tmp_path):
    fx.make_meld(tmp_path / "MELD.Raw")
    clips, report = index_with_report("meld", tmp_path / "MELD.Raw")
    assert len(clips) == 6 and len(report.missing) == 1 and report.missing[0].endswith("dia110_utt7.mp4")
    ids = by_id(clips)
    assert ids["meld-train-dia0_utt1"].label == "happy"  # joy
    assert ids["meld-train-dia0_utt2"].label == "angry"  # anger
    assert ids["meld-dev-dia0_utt0"].video.endswith("dev_splits_complete/dia0_utt0.mp4")
    assert ids["meld-test-dia0_utt0"].video.endswith("output_repeated_splits_test/dia0_utt0.mp4")
    m = ids["meld-train-dia0_utt1"].meta
    assert m["speaker"] == "The Interviewer" and m["sentiment"] == "positive" and m["dialogue_id"] == 0
    assert m["utterance"] == "You must've had your hands full."
    assert {c.split for c in clips} == {"train", "dev", "test"}


# ------------------------------------------------------------------------------------------ R1-Omni JSON


def test_r1omni_import_and_round_trip(tmp_path):
    path, info = fx.make_r1omni(tmp_path)
    clips = index_dataset("r1omni", path)
    assert [c.label for c in clips] == info["labels"]
    first, second = clips
    assert (
        first.meta["reasoning"].endswith("<answer>anxious</answer>") and "<think>" in first.meta["reasoning"]
    )
    assert "reasoning" not in second.meta and second.meta["prompt"].startswith("<video>\n<audio>\n")
    assert Path(first.video) == tmp_path / "MER24" / "sample_00000967.mp4"

    # cold start: every clip has reasoning
    out = ix.export_r1omni([first], tmp_path / "export" / "cold.json")
    items = json.loads(out.read_text())
    assert items[0]["video"] == "../MER24/sample_00000967.mp4"
    human, gpt = items[0]["conversations"]
    assert human == {"from": "human", "value": ix.R1OMNI_MEDIA_TAGS + ix.R1OMNI_PROMPT}
    assert gpt == {"from": "gpt", "value": first.meta["reasoning"]}
    back = index_dataset("r1omni", out)
    assert back[0].label == first.label and back[0].meta["reasoning"] == first.meta["reasoning"]
    assert Path(back[0].video).resolve() == Path(first.video).resolve()

    # mixed -> RL style (bare labels); cold_start demanded on them is an error
    out = ix.export_r1omni(clips, tmp_path / "rl.json")
    assert [i["conversations"][1]["value"] for i in json.loads(out.read_text())] == ["anxiety", "sad"]
    assert [c.label for c in index_dataset("r1omni", out)] == ["anxiety", "sad"]
    with pytest.raises(ValueError, match="needs meta\\['reasoning'\\]"):
        ix.export_r1omni(clips, tmp_path / "bad.json", style="cold_start")


def test_r1omni_errors(tmp_path):
    path, _ = fx.make_r1omni(tmp_path)
    items = json.loads(path.read_text())
    items[1]["conversations"][1]["value"] = "sad"
    items[1]["video"] = "DFEW/videos/404.mp4"
    path.write_text(json.dumps(items))
    clips, report = index_with_report("r1omni", path)
    assert len(clips) == 1 and report.missing[0].endswith("404.mp4")
    # an empty answer is no label: skipped and listed, never a clip labelled "<answer></answer>"
    items[1]["video"] = "DFEW/videos/1.mp4"
    items[1]["conversations"][1]["value"] = "<think>x</think>\n<answer> </answer>"
    path.write_text(json.dumps(items))
    clips, report = index_with_report("r1omni", path)
    assert [c.label for c in clips] == ["anxiety"] and report.skipped == 1
    assert "item 1" in report.unparseable[0] and "without a readable answer" in report.summary()
    path.write_text("{not json")
    with pytest.raises(DatasetLayoutError, match="not valid JSON"):
        index_dataset("r1omni", path)


def test_r1omni_split_default_follows_reasoning_and_option(tmp_path):
    path, _ = fx.make_r1omni(tmp_path)
    clips, report = index_with_report("r1omni", path)
    # the explained record goes where explained SFT reads (sft.py's default split), the label-only one to train
    assert [(c.label, c.split) for c in clips] == [("anxiety", "cold_start"), ("sad", "train")]
    assert any("cold_start" in n and "--split" in n for n in report.notes)
    # parse_answer semantics: the last complete <answer> is the label
    items = json.loads(path.read_text())
    items[0]["conversations"][1]["value"] = "<think>t</think><answer>happy</answer><answer>Fearful</answer>"
    path.write_text(json.dumps(items))
    assert index_dataset("r1omni", path)[0].label == "fear"
    assert {c.split for c in index_dataset("r1omni", path, split="emer_train")} == {"emer_train"}
    out = tmp_path / "m.jsonl"
    ix.cli_index(_parse(["--dataset", "r1omni", "--root", str(path), "--out", str(out), "--split", "cs"]))
    assert {c.split for c in read_manifest(out)} == {"cs"}


def test_r1omni_labels_outside_cards_counted_skipped_or_kept(tmp_path, capsys):
    path, info = fx.make_r1omni(tmp_path, open_vocab=True)
    with pytest.warns(
        UserWarning, match=r"(?s)3 records with labels outside the data cards, skipped.*'bemused': 2"
    ):
        clips = index_dataset("r1omni", path)
    assert [c.label for c in clips] == info["labels"]
    _, report = index_with_report("r1omni", path)
    assert report.unknown_labels == info["open_vocab"] and report.skipped == 3 and not report.open_vocab

    kept, report = index_with_report("r1omni", path, open_vocab=True, dataset="emer")
    assert report.unknown_labels == info["open_vocab"] and report.skipped == 0
    ov = [c for c in kept if c.meta.get("open_vocab")]
    assert sorted(c.label for c in ov) == ["bemused", "bemused", "wistful"]
    assert all(c.split == "cold_start" and c.dataset == "emer" and c.meta["reasoning"] for c in ov)
    assert not any(c.meta.get("open_vocab") for c in kept if c.label in info["labels"])

    # the CLI prints the per-label counts; the manifest it writes reads back with the open labels
    out = tmp_path / "emer.jsonl"
    argv = ["--dataset", "r1omni", "--root", str(path), "--out", str(out), "--open-vocab", "--name", "emer"]
    ix.cli_index(_parse(argv))
    text = capsys.readouterr().out
    assert "kept as open-vocabulary labels" in text and "'bemused': 2" in text and "'wistful': 1" in text
    back = read_manifest(out)
    assert sorted(c.label for c in back) == ["anxiety", "bemused", "bemused", "sad", "wistful"]
    ix.cli_index(_parse(["--dataset", "r1omni", "--root", str(path), "--out", str(out)]))
    text = capsys.readouterr().out
    assert "skipped; keep them with --open-vocab" in text and "'bemused': 2" in text
    assert len(read_manifest(out)) == 2
    with pytest.raises(SystemExit, match="--open-vocab applies to r1omni"):
        ix.cli_index(_parse(["--dataset", "ravdess", "--root", str(path), "--out", str(out), "--open-vocab"]))
    # nothing known and nothing kept: an error that still gives the counts
    items = json.loads(path.read_text())[2:]
    path.write_text(json.dumps(items))
    with pytest.raises(DatasetLayoutError, match=r"(?s)nothing indexed.*'bemused': 2"):
        index_dataset("r1omni", path)


# ------------------------------------------------------------------------------------------ folds, merging


def test_dfew_and_mafw_fold_all(tmp_path):
    fx.make_dfew(tmp_path / "DFEW")
    clips, report = index_with_report("dfew", tmp_path / "DFEW", fold="all")
    splits = {c.split for c in clips}
    assert splits == {"train@fold1", "test@fold1", "train@fold2", "test@fold2"}  # the fixture has folds 1, 2
    assert len(clips) == 18 and len(report.missing) == 2  # clip 10 is train in both folds, no video
    ids = by_id(clips)
    assert ids["dfew-00001@fold1"].split == "test@fold1" and ids["dfew-00001@fold2"].split == "train@fold2"
    assert ids["dfew-00004@fold2"].meta == {"fold": 2, "clip": "00004"}
    assert {c.meta["fold"] for c in clips if c.split.endswith("@fold2")} == {2}
    assert ids["dfew-00001@fold1"].video == ids["dfew-00001@fold2"].video
    assert any("fold 5" in n for n in report.notes)
    # one fold keeps its plain names
    assert {c.split for c in index_dataset("dfew", tmp_path / "DFEW", fold=2)} == {"train", "test"}
    with pytest.raises(ValueError, match="or 'all'"):
        index_dataset("dfew", tmp_path / "DFEW", fold="every")

    fx.make_mafw(tmp_path / "MAFW", folds=(1, 2))
    mafw = by_id(index_dataset("mafw", tmp_path / "MAFW", fold="all"))
    assert mafw["mafw-00004@fold2"].split == "test@fold2" and mafw["mafw-00004@fold1"].split == "train@fold1"
    assert len(mafw) == 20  # 10 clips with video, each in both folds
    assert _parse(["--dataset", "dfew", "--root", "x", "--out", "y", "--fold", "all"]).fold == "all"
    assert _parse(["--dataset", "dfew", "--root", "x", "--out", "y", "--fold", "3"]).fold == 3


def test_merge_sources_qualifies_splits_and_ids(tmp_path):
    fx.make_dfew(tmp_path / "DFEW")
    fx.make_mafw(tmp_path / "MAFW")
    fx.make_ravdess(tmp_path / "RAVDESS")
    r1, _ = fx.make_r1omni(tmp_path / "R1")
    sources = [
        {"dataset": "dfew", "root": tmp_path / "DFEW", "fold": 1},
        {"dataset": "mafw", "root": tmp_path / "MAFW", "fold": 1},
        {"dataset": "ravdess", "root": tmp_path / "RAVDESS", "channel": "speech"},
        {"dataset": "r1omni", "root": r1, "name": "emer", "split": "cold_start"},
    ]
    clips, reports = ix.merge_with_reports(sources)
    assert ix.split_counts(clips) == {
        "dfew/train": 6,
        "dfew/test": 3,
        "mafw/train": 7,
        "mafw/test": 3,
        "ravdess/test": 10,
        "emer/cold_start": 2,
    }
    assert [r.dataset for r in reports] == ["dfew", "mafw", "ravdess", "r1omni"]
    assert len(reports[0].missing) == 1 and len(reports[1].missing) == 1
    ids = by_id(clips)
    assert len(ids) == len(clips) and ids["dfew-00001"].label == "sad" and ids["dfew-00001"].dataset == "dfew"
    assert {c.dataset for c in clips if c.split == "emer/cold_start"} == {"emer"}

    # the merged manifest round-trips; read_manifest takes a list of splits
    out = write_manifest(clips, tmp_path / "merged" / "manifest.jsonl")
    tests = read_manifest(out, split=["dfew/test", "mafw/test"])
    assert sorted(c.id for c in tests) == ["dfew-00001", "dfew-00002", "dfew-00003"] + [
        "mafw-00001",
        "mafw-00002",
        "mafw-00003",
    ]
    assert read_manifest(out, split="test") == []  # unqualified names are not in a merged manifest

    # merging a merged manifest again keeps its names; an identical clip is dropped and counted,
    # a different clip with a taken id is renamed
    other = [Clip(id="dfew-00001", video=clips[0].video, label="angry", split="test_id", dataset="synthemo")]
    again, rep = ix.merge_with_reports([out, out, other])
    assert len(again) == len(clips) + 1
    assert ix.split_counts(again)["dfew/test"] == 3
    assert any("were dropped" in n for n in rep[1].notes) and any("renamed" in n for n in rep[2].notes)
    renamed = by_id(again)["synthemo/dfew-00001"]
    assert renamed.split == "synthemo/test_id" and renamed.meta["source_id"] == "dfew-00001"
    assert renamed.label == "angry" and by_id(again)["dfew-00001"].label == "sad"

    with pytest.raises(ValueError, match="lacks 'root'"):
        ix.merge_sources([{"dataset": "dfew"}])
    with pytest.raises(ValueError, match="'name' applies to r1omni"):
        ix.merge_sources([{"dataset": "dfew", "root": tmp_path / "DFEW", "name": "dfew2"}])
    with pytest.warns(UserWarning, match="2 missing"):
        folds = ix.merge_sources([{"dataset": "dfew", "root": tmp_path / "DFEW", "fold": "all"}])
    assert ix.split_counts(folds) == {
        "dfew/train@fold1": 6,
        "dfew/test@fold1": 3,
        "dfew/train@fold2": 6,
        "dfew/test@fold2": 3,
    }


def test_cli_merges_manifests(tmp_path, capsys):
    fx.make_dfew(tmp_path / "DFEW")
    fx.make_mafw(tmp_path / "MAFW")
    m1, m2 = tmp_path / "m" / "dfew.jsonl", tmp_path / "m" / "mafw.jsonl"
    ix.cli_index(
        _parse(["--dataset", "dfew", "--root", str(tmp_path / "DFEW"), "--fold", "1", "--out", str(m1)])
    )
    ix.cli_index(_parse(["--dataset", "mafw", "--root", str(tmp_path / "MAFW"), "--out", str(m2)]))
    capsys.readouterr()
    out = tmp_path / "all.jsonl"
    assert ix.cli_index(_parse(["--merge", str(m1), str(m2), "--out", str(out)])) == 0
    text = capsys.readouterr().out
    assert "'dfew/test': 3" in text and "'mafw/test': 3" in text and "wrote" in text
    merged = read_manifest(out)
    assert {c.split for c in merged} == {"dfew/train", "dfew/test", "mafw/train", "mafw/test"}
    # a dataset indexed in the same run joins the merge
    fx.make_ravdess(tmp_path / "RAVDESS")
    argv = [
        "--merge",
        str(out),
        "--dataset",
        "ravdess",
        "--root",
        str(tmp_path / "RAVDESS"),
        "--out",
        str(out),
    ]
    ix.cli_index(_parse(argv))
    assert ix.split_counts(read_manifest(out))["ravdess/test"] == 10
    with pytest.raises(SystemExit, match="--merge"):
        ix.cli_index(_parse(["--out", str(out)]))


# ------------------------------------------------------------------------------------------ CLI + decoding


def _parse(argv):
    return ix.add_index_args(argparse.ArgumentParser()).parse_args(argv)


def test_cli_writes_readable_manifest_and_r1omni_json(tmp_path, capsys):
    fx.make_cremad(tmp_path / "CREMA-D")
    out = tmp_path / "m" / "cremad.jsonl"
    assert (
        ix.cli_index(_parse(["--dataset", "cremad", "--root", str(tmp_path / "CREMA-D"), "--out", str(out)]))
        == 0
    )
    text = capsys.readouterr().out
    assert "5 clips indexed, 1 missing" in text and "missing:" in text and "wrote" in text
    clips = read_manifest(out, labels=labels.label_set("cremad"))
    assert len(clips) == 5 and all(Path(c.video).is_file() and Path(c.audio).is_file() for c in clips)
    assert all(not Path(json.loads(line)["video"]).is_absolute() for line in out.read_text().splitlines())

    js = tmp_path / "r1" / "train.json"
    ix.cli_index(
        _parse(["--dataset", "manifest", "--root", str(out), "--out", str(js), "--format", "r1omni"])
    )
    assert sorted(c.label for c in index_dataset("r1omni", js)) == sorted(c.label for c in clips)
    with pytest.raises(SystemExit, match=r"(?s)omnibench index: meld: root .*nope does not exist.*dia"):
        ix.cli_index(_parse(["--dataset", "meld", "--root", str(tmp_path / "nope"), "--out", str(out)]))
    with pytest.raises(SystemExit, match="--pair applies to ravdess"):
        ix.cli_index(
            _parse(["--dataset", "cremad", "--root", str(tmp_path), "--out", str(out), "--pair", "av"])
        )


def test_indexed_fixture_media_decode(tmp_path):
    """The fixtures are real media: an indexed mp4 (own AAC track) and flv + separate wav decode."""
    from omnibench.data.media import DecodeConfig, decode_clip

    fx.make_dfew(tmp_path / "DFEW", missing=0)
    fx.make_cremad(tmp_path / "CREMA-D", missing_wav=False)
    cfg = DecodeConfig(num_frames=2, size=32)
    for clip in (
        index_dataset("dfew", tmp_path / "DFEW", fold=1, on_missing="error")[0],
        index_dataset("cremad", tmp_path / "CREMA-D")[0],
    ):
        m = decode_clip(clip, cfg)
        assert m.frames.shape == (2, 32, 32, 3) and m.audio is not None and m.audio.size > 1000
        assert np.isfinite(m.audio).all()


def test_unknown_dataset_and_option():
    with pytest.raises(KeyError, match="unknown dataset 'affectnet'"):
        index_dataset("affectnet", ".")
    with pytest.raises(TypeError, match="dfew: .*pair"):
        index_dataset("dfew", ".", pair="av")
