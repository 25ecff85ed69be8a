"""Human perception as a reference for measured attribution (issue 23): CREMA-D votes and RAVDESS
presentations / ratings in the indexers, and :func:`omnibench.attribution.human.human_reference`.

Fixtures are the real layouts of tests/fixtures_layouts.py; the votes rows are written by the tests in
the real tabulatedVotes.csv format (row id 100000 * queryType + clipNum, counts A..S, fileName, ...).
"""

from __future__ import annotations

import json
import math

import fixtures_layouts as fx  # tests/ is on sys.path under pytest (rootdir conftest, no __init__)
import numpy as np
import pytest

from omnibench.attribution import AttributionResult
from omnibench.attribution.human import CREMAD_PUBLISHED, human_reference
from omnibench.attribution.shapley import shares
from omnibench.data.indexers import DatasetLayoutError, index_with_report
from omnibench.data.indexers.common import HUMAN_MARGIN, human_dominant
from omnibench.data.manifest import Clip, read_manifest, write_manifest


def by_id(clips):
    return {c.id: c for c in clips}


def counts(letter: str, hits: int, n: int = 10, other: str = "N") -> list[int]:
    """Six vote counts (A D F H N S): ``hits`` for ``letter``, the rest of ``n`` for ``other``."""
    c = dict.fromkeys("ADFHNS", 0)
    c[letter] += hits
    c[other] += n - hits
    return [c[e] for e in "ADFHNS"]


# clip number (row of SentenceFilenames.csv), stem, {presentation: (intended letter, hits, n)}
VOTES = [
    (1, "1001_DFA_ANG_XX", {"voice": ("A", 2, 10), "face": ("A", 9, 10), "both": ("A", 10, 10)}),
    (2, "1001_IEO_HAP_HI", {"voice": ("H", 8, 10), "face": ("H", 3, 10), "both": ("H", 9, 10)}),
    (3, "1002_IEO_SAD_LO", {"voice": ("S", 5, 10), "face": ("S", 7, 10), "both": ("S", 7, 10)}),
    (5, "1015_WSI_NEU_XX", {"face": ("N", 6, 8, "A")}),  # face-only votes: partial
    (6, "1040_ITH_DIS_XX", {"voice": ("D", 1, 9)}),  # its wav is missing: the clip is not indexed
    (9, "1050_IEO_ANG_HI", {"voice": ("A", 4, 10)}),  # a clip that is not on disk: ignored
]  # 1091_TSI_FEA_XX has no row: kept with rates None, counted


def votes_rows():
    rows = []
    for pres in ("voice", "face", "both"):  # the real file: all voice rows, then face, then audio-visual
        for num, stem, plan in VOTES:
            if pres in plan:
                letter, hits, n, *other = plan[pres]
                rows.append(fx.cremad_votes_row(num, pres, stem, counts(letter, hits, n, *other)))
    return rows


@pytest.fixture
def cremad(tmp_path):
    root = tmp_path / "CREMA-D"
    fx.make_cremad(root)
    fx.write_cremad_votes(root, votes_rows())
    return root


# ------------------------------------------------------------------------------------------ CREMA-D


def test_votes_file_is_in_the_real_format(cremad):
    lines = (cremad / "processedResults" / "tabulatedVotes.csv").read_text().splitlines()
    assert lines[0].startswith('"","A","D","F","H","N","S","fileName","numResponses","agreement","emoVote"')
    assert lines[1].startswith('"100001",2,0,0,0,8,0,"1001_DFA_ANG_XX",10,0.8,"N",')
    assert len(lines[0].split(",")) == 27


def test_cremad_votes_attached_and_missing_counted(cremad):
    clips, report = index_with_report("cremad", cremad)
    got = by_id(clips)
    assert len(clips) == 5  # 1040_ITH_DIS_XX: missing wav; 1091_TSI_FEA_XX (no votes) is kept
    ang = got["cremad-1001_DFA_ANG_XX"].meta
    assert ang["actor"] == "1001" and ang["level"] == "unspecified"
    assert ang["human_rates"] == {"voice": 0.2, "face": 0.9, "both": 1.0}
    assert ang["human_votes"] == {"voice": 10, "face": 10, "both": 10}
    assert ang["human_dominant"] == "face" and ang["human_source"] == "processedResults/tabulatedVotes.csv"
    hap = got["cremad-1001_IEO_HAP_HI"].meta
    assert hap["human_rates"] == {"voice": 0.8, "face": 0.3, "both": 0.9} and hap["human_dominant"] == "voice"
    sad = got["cremad-1002_IEO_SAD_LO"].meta  # 0.7 - 0.5 = 0.2: within the margin
    assert sad["human_rates"]["face"] - sad["human_rates"]["voice"] == pytest.approx(HUMAN_MARGIN)
    assert sad["human_dominant"] is None
    neu = got["cremad-1015_WSI_NEU_XX"].meta
    assert neu["human_rates"] == {"voice": None, "face": 0.75, "both": None}
    assert neu["human_votes"] == {"voice": 0, "face": 8, "both": 0} and neu["human_dominant"] is None
    fea = got["cremad-1091_TSI_FEA_XX"].meta
    assert fea["human_rates"] == {"voice": None, "face": None, "both": None} and fea["human_dominant"] is None
    assert report.counts == {"no_human_votes": 1, "partial_human_votes": 1}
    assert "1 clips have no votes in processedResults/tabulatedVotes.csv: kept" in report.summary()
    # the fields survive a manifest round trip (JSON-safe)
    out = write_manifest(clips, cremad.parent / "m" / "cremad.jsonl")
    assert by_id(read_manifest(out))["cremad-1001_DFA_ANG_XX"].meta == ang
    # wav-only clips get the same votes (the votes are per recording)
    audio = by_id(index_with_report("cremad", cremad, mode="audio")[0])
    assert audio["cremad-1001_IEO_HAP_HI"].meta["human_rates"] == hap["human_rates"]


def test_cremad_without_votes_file_keeps_meta_as_before(tmp_path):
    fx.make_cremad(tmp_path / "C")
    clips, report = index_with_report("cremad", tmp_path / "C")
    assert all("human_rates" not in c.meta for c in clips) and report.counts == {}
    assert any("no processedResults/tabulatedVotes.csv" in n for n in report.notes)


def _row(num=1, pres="voice", stem="1001_DFA_ANG_XX", c=(1, 0, 0, 0, 9, 0)):
    return fx.cremad_votes_row(num, pres, stem, c)


@pytest.mark.parametrize(
    "header, rows, match",
    [
        ([h for h in fx.CREMAD_VOTES_HEADER if h != "numResponses"], [_row()[:8] + _row()[9:]],
         r"tabulatedVotes\.csv:1: no column \['numResponses'\]"),
        (None, [_row(), _row(2, stem="1001_IEO_HAP_HI")[:1] + ["two"] + _row()[2:]],
         r"tabulatedVotes\.csv:3: column 'A' must be a non-negative whole number, got 'two'"),
        (None, [_row(), _row(2)[:-3]], r"tabulatedVotes\.csv:3: 24 fields, the header has 27"),
        (None, [_row()[:0] + ["400001"] + _row()[1:]], r"tabulatedVotes\.csv:2: row id '400001' has queryType 4"),
        (None, [_row()[:8] + [11] + _row()[9:]], r"tabulatedVotes\.csv:2: numResponses is 11 but A\.\.S sum to 10"),
        (None, [_row(), _row()], r"tabulatedVotes\.csv:3: a second voice row for 1001_DFA_ANG_XX \(the first is on line 2\)"),
        (["X0", *fx.CREMAD_VOTES_HEADER[1:]], [_row()], r"tabulatedVotes\.csv:1: the first column must be the unnamed row id"),
    ],
    ids=["missing-column", "non-numeric", "field-count", "query-type", "num-responses", "duplicate", "no-row-id"],
)
def test_malformed_votes_file_names_file_and_line(tmp_path, header, rows, match):
    root = tmp_path / "CREMA-D"
    fx.make_cremad(root)
    fx.write_cremad_votes(root, rows, header=header)
    with pytest.raises(DatasetLayoutError, match=match):
        index_with_report("cremad", root)


# ------------------------------------------------------------------------------------------ RAVDESS


def test_ravdess_presentations_on_disk(tmp_path):
    info = fx.make_ravdess(tmp_path / "R")
    clips, _ = index_with_report("ravdess", tmp_path / "R", channel="all")
    got = by_id(clips)
    assert got[f"ravdess-01-{info['no_wav']}"].meta["presentations"] == ["face", "both"]
    assert got[f"ravdess-01-{info['speech'][1]}"].meta["presentations"] == ["voice", "face", "both"]
    assert got[f"ravdess-01-{info['song'][0]}"].meta["presentations"] == ["both"]
    assert all("human_rates" not in c.meta for c in clips)  # no ratings given
    wav = by_id(index_with_report("ravdess", tmp_path / "R", pair="audio")[0])
    assert wav[f"ravdess-03-{info['speech'][1]}"].meta["presentations"] == ["voice", "face", "both"]


def test_ravdess_ratings(tmp_path):
    info = fx.make_ravdess(tmp_path / "R")
    a, b = info["speech"][1], info["speech"][2]
    fx._write_csv(
        tmp_path / "R" / "ratings.csv",
        [[f"01-{a}.mp4", "0.9", "x"], [f"02-{a}.mp4", "0.8", "x"], [f"03-{a}.wav", "0.3", "x"],
         [f"02-{b}", "0.6", "x"], [f"03-{b}", "0.5", "x"]],
        header=["Filename", "Proportion correct", "Notes"],
    )
    clips, report = index_with_report("ravdess", tmp_path / "R", ratings="ratings.csv")
    got = by_id(clips)
    ma = got[f"ravdess-01-{a}"].meta
    assert ma["human_rates"] == {"voice": 0.3, "face": 0.8, "both": 0.9} and ma["human_dominant"] == "face"
    assert ma["human_source"] == "ratings.csv" and "human_votes" not in ma
    mb = got[f"ravdess-01-{b}"].meta
    assert mb["human_rates"] == {"voice": 0.5, "face": 0.6, "both": None} and mb["human_dominant"] is None
    assert got[f"ravdess-01-{info['speech'][3]}"].meta["human_rates"] == dict.fromkeys(("voice", "face", "both"))
    assert len(clips) == 10 and report.counts == {"no_human_ratings": 8}


@pytest.mark.parametrize(
    "header, row, match",
    [
        (["Filename", "Rating"], ["01-01-01-01-01-01-01.mp4", "0.5"], r"ratings\.csv:1: no proportion-correct column"),
        (["Filename", "proportion_correct"], ["01-01-01-01-01-01-01.mp4", "85"], r"ratings\.csv:2: .*in \[0, 1\], got '85'"),
        (["Filename", "proportion_correct"], ["01-01-01-01-01-01-01.mp4", "n/a"], r"ratings\.csv:2: .*got 'n/a'"),
        (["Filename", "proportion_correct"], ["clip_7.mp4", "0.5"], r"ratings\.csv:2: 'clip_7\.mp4' is not a RAVDESS file name"),
        (["Filename", "proportion_correct"], ["01-01-01-01-01-01-01.mp4"], r"ratings\.csv:2: 1 fields, the header has 2"),
    ],
)
def test_malformed_ratings_file(tmp_path, header, row, match):
    fx.make_ravdess(tmp_path / "R")
    fx._write_csv(tmp_path / "ratings.csv", [row], header=header)
    with pytest.raises(DatasetLayoutError, match=match):
        index_with_report("ravdess", tmp_path / "R", ratings=tmp_path / "ratings.csv")
    with pytest.raises(FileNotFoundError, match="ratings file"):
        index_with_report("ravdess", tmp_path / "R", ratings="nope.csv")


# ------------------------------------------------------------------------------------------ human_reference


def _result(ids, phi):
    phi = np.asarray(phi, dtype=float)
    n = len(ids)
    return AttributionResult(
        ids=list(ids), gold=["happy"] * n, prediction=["happy"] * n, target=["happy"] * n, condition=[None] * n,
        players=("video", "audio"), values=np.zeros((n, 4)), phi=phi, share=shares(phi),
    )


def _clip(cid, voice=None, face=None, both=None, rates=True):
    meta = {"human_rates": {"voice": voice, "face": face, "both": both}} if rates else {}
    return Clip(id=cid, video=f"{cid}.flv", label="happy", split="test", dataset="cremad", meta=meta)


IDS = ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"]
PHI = [[3, 1], [1, 3], [1, 1], [3, 1], [0, 0], [1, 0], [1, 0], [1, 0]]
CLIPS = [
    _clip("c1", voice=0.2, face=0.9, both=1.0),  # humans: face;  measured: video (agree)
    _clip("c2", voice=0.8, face=0.3, both=0.9),  # humans: voice; measured: audio (agree)
    _clip("c3", voice=0.5, face=0.6),  # within the margin; measured: a tie
    _clip("c4", voice=0.7, face=0.4),  # humans: voice; measured: video (disagree)
    _clip("c5", voice=0.1, face=0.9),  # humans: face;  measured: undefined (phi = 0, share NaN)
    _clip("c6", rates=False),  # no rates at all
    _clip("c7", face=0.5),  # face only: partial
]  # c8: not in the manifest


def test_human_reference_matches_hand_computation():
    out = human_reference(_result(IDS, PHI), CLIPS, model_accuracy={"video": 0.5, "audio": 0.4, "both": 0.7},
                          n_boot=500, seed=3)
    json.dumps(out, allow_nan=False)  # JSON-safe
    assert out["n_clips"] == 8 and out["n_with_human"] == 5 and out["n_without_human"] == 3
    assert out["without"] == {"not_in_manifest": 1, "no_rates": 1, "partial": 1}
    # measured share_video - share_audio (c1..c4; c5's shares are NaN) vs human face - voice:
    # x = [0.5, -0.5, 0, 0.5], y = [0.7, -0.5, 0.1, -0.3]; mean x 0.125, mean y 0
    # sum dx*dy = 0.375*0.7 + 0.625*0.5 - 0.125*0.1 - 0.375*0.3 = 0.45
    # sum dx^2 = 0.6875, sum dy^2 = 0.84
    c = out["correlation"]
    assert c["n"] == 4 and c["n_undefined_share"] == 1
    assert c["r"] == pytest.approx(0.45 / math.sqrt(0.6875 * 0.84))
    lo, hi = c["ci"]
    assert -1 <= lo <= hi <= 1 and c["n_boot"] == 500 and c["seed"] == 3
    # clear human preference: c1 face, c2 voice, c4 voice, c5 face; c5 has no measured dominant
    d = out["dominant"]
    assert (d["n_human_clear"], d["n_human_face"], d["n_human_voice"], d["n_model_undefined"]) == (4, 2, 2, 1)
    assert d["n"] == 3 and d["n_agree"] == 2 and d["agreement"] == pytest.approx(2 / 3)
    r = out["recognition"]
    assert r["voice"]["human"] == pytest.approx((0.2 + 0.8 + 0.5 + 0.7 + 0.1) / 5) and r["voice"]["n"] == 5
    assert r["face"]["human"] == pytest.approx((0.9 + 0.3 + 0.6 + 0.4 + 0.9 + 0.5) / 6) and r["face"]["n"] == 6
    assert r["both"]["human"] == pytest.approx(0.95) and r["both"]["n"] == 2
    assert (r["voice"]["model"], r["face"]["model"], r["both"]["model"]) == (0.4, 0.5, 0.7)
    assert r["face"]["model_modality"] == "video" and r["voice"]["published_cremad"] == 0.409
    assert out["published_cremad"]["face"] == CREMAD_PUBLISHED["face"] == 0.582
    assert out["published_cremad"]["both"] == 0.636 and "Cao" in out["published_cremad"]["source"]
    # seeded: the same seed gives the same interval; the margin is a parameter
    assert human_reference(_result(IDS, PHI), CLIPS, n_boot=500, seed=3)["correlation"]["ci"] == c["ci"]
    wide = human_reference(_result(IDS, PHI), CLIPS, n_boot=0, margin=0.05)
    assert wide["correlation"]["ci"] == [None, None] and wide["recognition"]["face"]["model"] is None
    assert wide["dominant"]["n_human_clear"] == 5 and wide["dominant"]["n_model_undefined"] == 2


def test_human_reference_on_indexed_cremad_fixture(cremad):
    clips, _ = index_with_report("cremad", cremad)
    ids = [c.id for c in clips]
    # video carries the clips humans read from the face, audio the others
    phi = [[3, 1] if c.meta["human_dominant"] == "face" else [1, 3] for c in clips]
    out = human_reference(_result(ids, phi), clips, n_boot=200)
    assert out["n_clips"] == 5 and out["n_with_human"] == 3 and out["without"]["no_rates"] == 1
    assert out["without"]["partial"] == 1
    assert out["dominant"]["n"] == 2 and out["dominant"]["agreement"] == 1.0
    # ANG, HAP, SAD: x = [0.5, -0.5, -0.5], y = face - voice = [0.7, -0.5, 0.2]
    assert out["correlation"]["n"] == 3
    assert out["correlation"]["r"] == pytest.approx(np.corrcoef([0.5, -0.5, -0.5], [0.7, -0.5, 0.2])[0, 1])


def test_human_dominant_margin_and_missing():
    assert human_dominant(0.9, 0.2) == "face" and human_dominant(0.1, 0.8) == "voice"
    assert human_dominant(0.3, 0.1) is None  # exactly the margin (0.3 - 0.1 = 0.19999999999999998)
    assert human_dominant(None, 0.5) is None and human_dominant(float("nan"), 0.5) is None
    with pytest.raises(ValueError, match="video and audio"):
        human_reference(AttributionResult(["a"], [None], [None], [None], [None], ("text",), np.zeros((1, 2)),
                                          np.zeros((1, 1)), np.zeros((1, 1))), [])


# ----------------------------------------------------------------------------- through the stage


def test_attribution_stage_writes_the_human_reference_section(cremad, tmp_path, tiny):
    """``omnibench attribute``'s stage on the indexed CREMA-D fixture (real layout, votes file): the
    ``human_reference`` section of metrics.json, its correlation and agreement recomputed by hand from
    the per-clip rows the stage wrote and the clips' human rates (the pure function's own hand check on
    graded shares is test_human_reference_matches_hand_computation)."""
    import soundfile as sf
    from conftest import write_mp4

    from omnibench.model import save_model
    from omnibench.run import RunFolder
    from omnibench.stages import AttributionStageConfig, attribution_stage

    clips, _ = index_with_report("cremad", cremad)
    for i, c in enumerate(clips):  # the layout's files, with content that differs from clip to clip
        write_mp4(c.video, seed=i, size=32)
        t = np.arange(16000) / 16000
        sf.write(c.audio, (0.3 * np.sin(2 * np.pi * (120 + 90 * i) * t)).astype(np.float32), 16000)
    run = RunFolder(tmp_path / "run")
    write_manifest(clips, run.manifest)
    save_model(*tiny, run.checkpoint("grpo"))
    run.update_metrics("eval_modalities", {"grpo/video": {"test": {"war": 0.25}}})  # a single-modality figure
    attribution_stage(run, AttributionStageConfig(splits=["test"], generate=False, n_perm=0, n_boot=100,
                                                  batch_size=2, max_new_tokens=4))
    section = json.loads(run.metrics_path.read_text())["attribution"]["human_reference"]["test"]
    rows = {r["id"]: r for r in map(json.loads, (run.path / "attribution" / "test.jsonl").read_text().splitlines())}
    rates = {c.id: c.meta["human_rates"] for c in clips}
    both = [i for i in rows if rates[i]["face"] is not None and rates[i]["voice"] is not None]
    x = [rows[i]["share"]["video"] - rows[i]["share"]["audio"] for i in both]
    y = [rates[i]["face"] - rates[i]["voice"] for i in both]
    assert section["n_clips"] == 5 and section["n_with_human"] == len(both) == 3
    assert section["correlation"]["n"] == 3
    if np.ptp(x) > 0:  # an untrained model may put every clip's evidence in one modality: r undefined
        assert section["correlation"]["r"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    else:
        assert section["correlation"]["r"] is None and section["correlation"]["ci"] == [None, None]
    clear = [i for i in both if abs(rates[i]["face"] - rates[i]["voice"]) > HUMAN_MARGIN]
    measured = {i: max(("video", "audio"), key=lambda p: rows[i]["phi"][p]) for i in clear
                if rows[i]["phi"]["video"] != rows[i]["phi"]["audio"]}
    human = {i: "video" if rates[i]["face"] > rates[i]["voice"] else "audio" for i in clear}
    assert section["dominant"]["n"] == len(measured)
    assert section["dominant"]["agreement"] == pytest.approx(np.mean([measured[i] == human[i] for i in measured]))
    assert section["recognition"]["face"]["model"] == 0.25 and section["recognition"]["voice"]["model"] is None
    assert section["recognition"]["face"]["human"] == pytest.approx(np.mean([0.9, 0.3, 0.7, 0.75]))
