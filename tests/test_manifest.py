import json

import pytest

from omnibench.data.manifest import Clip, ManifestError, read_manifest, write_manifest
from omnibench.labels import DFEW7, alias_table, label_set, normalize_label


def test_aliases_normalise_case_whitespace_and_spelling():
    assert normalize_label("Happiness") == "happy"
    assert normalize_label(" happy ") == "happy"
    assert normalize_label("HAPPY") == "happy"
    assert normalize_label("fearful") == "fear"
    assert normalize_label("") is None
    assert normalize_label("bananas") is None
    assert set(DFEW7) <= set(alias_table().values())
    assert label_set("synthemo") == DFEW7


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_round_trip_keeps_relative_paths(tmp_path, mp4_factory):
    video = mp4_factory("a.mp4")
    clips = [Clip("a", str(video), "happy", "train", meta={"condition": "both"})]
    path = write_manifest(clips, tmp_path / "m.jsonl")
    assert json.loads(path.read_text())["video"] == "a.mp4"
    back = read_manifest(path)
    assert back[0].video == str(video) and back[0].meta == {"condition": "both"}


def test_alias_label_is_normalised_on_read(tmp_path, mp4_factory):
    mp4_factory("a.mp4")
    p = _write(tmp_path / "m.jsonl", [{"id": "a", "video": "a.mp4", "label": "Happiness", "split": "test"}])
    assert read_manifest(p)[0].label == "happy"


def test_unknown_label_names_file_line_label_and_allowed(tmp_path, mp4_factory):
    mp4_factory("a.mp4")
    p = _write(
        tmp_path / "m.jsonl",
        [{"id": "a", "video": "a.mp4", "label": "happy", "split": "t"}, {"id": "b", "video": "a.mp4", "label": "calm", "split": "t"}],
    )
    with pytest.raises(ManifestError) as e:
        read_manifest(p, labels=DFEW7)
    msg = str(e.value)
    assert f"{p}:2" in msg and "'calm'" in msg and "fear" in msg


def test_missing_media_is_named(tmp_path):
    p = _write(tmp_path / "m.jsonl", [{"id": "a", "video": "nope.mp4", "label": "sad", "split": "t"}])
    with pytest.raises(ManifestError, match="nope.mp4"):
        read_manifest(p)
    assert read_manifest(p, check_media=False)[0].id == "a"


def test_duplicate_ids_rejected(tmp_path, mp4_factory):
    mp4_factory("a.mp4")
    row = {"id": "a", "video": "a.mp4", "label": "sad", "split": "t"}
    p = _write(tmp_path / "m.jsonl", [row, row])
    with pytest.raises(ManifestError, match="duplicate id 'a'"):
        read_manifest(p)


def test_bad_json_and_unknown_fields(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text("{not json}\n")
    with pytest.raises(ManifestError, match=":1: not valid JSON"):
        read_manifest(p)
    _write(p, [{"id": "a", "video": "a.mp4", "split": "t", "colour": "red"}])
    with pytest.raises(ManifestError, match="colour"):
        read_manifest(p, check_media=False)


def test_split_filter(tmp_path, mp4_factory):
    mp4_factory("a.mp4")
    rows = [{"id": str(i), "video": "a.mp4", "label": "sad", "split": s} for i, s in enumerate(["train", "test_id", "train"])]
    p = _write(tmp_path / "m.jsonl", rows)
    assert [c.id for c in read_manifest(p, split="train")] == ["0", "2"]


def test_split_filter_takes_a_list_of_qualified_splits(tmp_path, mp4_factory):
    mp4_factory("a.mp4")
    splits = ["dfew/train", "dfew/test", "mafw/test", "emer/cold_start"]
    rows = [{"id": str(i), "video": "a.mp4", "label": "sad", "split": s} for i, s in enumerate(splits)]
    p = _write(tmp_path / "m.jsonl", rows)
    assert [c.id for c in read_manifest(p, split=["dfew/test", "mafw/test"])] == ["1", "2"]
    assert [c.id for c in read_manifest(p, split=("emer/cold_start",))] == ["3"]
    assert read_manifest(p, split="test") == []


def test_open_vocab_label_kept_only_on_marked_clips(tmp_path, mp4_factory):
    mp4_factory("a.mp4")
    rows = [
        {"id": "a", "video": "a.mp4", "label": " Bemused ", "split": "emer/cold_start", "meta": {"open_vocab": True}},
        {"id": "b", "video": "a.mp4", "label": "Happiness", "split": "emer/cold_start", "meta": {"open_vocab": True}},
    ]
    p = _write(tmp_path / "m.jsonl", rows)
    assert [c.label for c in read_manifest(p)] == ["bemused", "happy"]  # known spellings still canonical
    with pytest.raises(ManifestError, match=r"m\.jsonl:1: unknown label ' Bemused '; allowed: \["):
        read_manifest(p, labels=DFEW7)  # an explicit label set applies to open-vocabulary clips too
    rows[0]["meta"] = {}
    _write(p, rows)
    with pytest.raises(ManifestError, match=r"(?s):1: unknown label ' Bemused '.*open_vocab"):
        read_manifest(p)
    # an open-vocabulary clip survives a write / read round trip
    clips = [Clip("x", str(tmp_path / "a.mp4"), "wistful", "emer/cold_start", dataset="emer", meta={"open_vocab": True})]
    back = read_manifest(write_manifest(clips, tmp_path / "ov.jsonl"))
    assert back[0].label == "wistful" and back[0].dataset == "emer"


def test_write_manifest_is_atomic_and_leaves_no_temporary(tmp_path, mp4_factory):
    video = mp4_factory("a.mp4")
    path = write_manifest([Clip("a", str(video), "happy", "train")], tmp_path / "m.jsonl")
    write_manifest([Clip("b", str(video), "sad", "train")], path)
    assert [c.id for c in read_manifest(path)] == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "m.jsonl"]
