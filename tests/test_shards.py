"""Evaluation and attribution in chunks: two processes write the files one process writes, byte for byte,
and a run killed with SIGKILL resumes to the files of an uninterrupted run (``omnibench eval`` and
``omnibench attribute`` as a user starts them: ``python -m omnibench`` and ``torchrun ... -m omnibench``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import write_mp4

from omnibench.run import RunFolder
from omnibench.stages.shards import Journal, Shards, run_chunks

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
       "TRANSFORMERS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}
N_CLIPS = 24


class Row:
    def __init__(self, i):
        self.id = f"c{i}"


def test_chunks_journal_resume_and_settings_tag(tmp_path):
    """The journal keeps each chunk's rows as it is done, a torn line counts as not done, and rows written
    under other settings are not reused."""
    items = [Row(i) for i in range(10)]
    calls = []

    def work(chunk):
        calls.append([x.id for x in chunk])
        return [{"id": x.id, "v": int(x.id[1:]) ** 2} for x in chunk]

    final = tmp_path / "out.jsonl"
    journal = Journal(final, tag="a")
    assert run_chunks(items, 4, journal, Shards(), work) == 10 and len(calls) == 3
    part = journal.path.read_text().splitlines()
    journal.path.write_text("\n".join(part[:5]) + "\n" + part[5][:7])  # chunk 2 cut short by a crash
    calls.clear()
    assert run_chunks(items, 4, Journal(final, tag="a"), Shards(), work) == 6
    assert calls == [["c4", "c5", "c6", "c7"], ["c8", "c9"]]  # chunk 1 whole again, chunk 0 kept
    assert [r["v"] for r in Journal(final, tag="a").rows().values()] == [i * i for i in range(10)]
    assert Journal(final, tag="b").rows() == {}  # other settings: nothing reused


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cmd(args, nproc=1):
    if nproc == 1:
        return [sys.executable, "-m", "omnibench", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr",
            "127.0.0.1", "--master_port", str(_port()), "-m", "omnibench", *args]


def _run(args, nproc=1):
    proc = subprocess.run(_cmd(args, nproc), env=ENV, capture_output=True, text=True, timeout=400, check=False)
    assert proc.returncode == 0, f"{args[0]} ({nproc} proc) failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny):
    from omnibench.data.manifest import Clip, write_manifest
    from omnibench.model import save_model

    root = tmp_path_factory.mktemp("shards")
    src = RunFolder(root / "src")
    model, proc = tiny
    save_model(model, proc, src.checkpoint("grpo"))
    conds = ("both", "video", "audio")
    clips = [Clip(id=f"c{i:02d}", video=str(write_mp4(root / f"c{i:02d}.mp4", seed=i)),
                  label=("happy", "sad", "angry")[i % 3], split="test_id",
                  meta={"condition": conds[i % 3], "video_label": "happy", "audio_label": "neutral"})
             for i in range(N_CLIPS)]
    write_manifest(clips, src.manifest)
    common = ["--manifest", str(src.manifest), "--split", "test_id", "--batch-size", "1", "--max-new-tokens", "8",
              "--n-boot", "50", "--no-progress"]
    evaluate = ["eval", "--model", str(src.checkpoint("grpo")), *common]
    attribute = ["attribute", "--model", str(src.checkpoint("grpo")), "--perceptual", "0", *common]
    one = RunFolder(root / "one")
    _run([*evaluate, "--out", str(one.path)])
    _run([*attribute, "--out", str(one.path)])
    return {"root": root, "evaluate": evaluate, "attribute": attribute, "one": one}


def _files(run: RunFolder) -> dict:
    metrics = json.loads(run.metrics_path.read_text())
    metrics["attribution"]["method"].pop("seconds")
    return {"predictions": run.predictions_path("grpo", "test_id").read_bytes(),
            "attribution": (run.path / "attribution" / "test_id.jsonl").read_bytes(),
            "eval": metrics["eval"], "attribution_section": metrics["attribution"]}


@pytest.mark.distributed
@pytest.mark.slow
def test_two_processes_write_the_files_of_one(setup):
    two = RunFolder(setup["root"] / "two")
    out = _run([*setup["evaluate"], "--out", str(two.path)], nproc=2)
    assert out.count("WAR") >= 1  # rank 0 prints the table, once
    _run([*setup["attribute"], "--out", str(two.path)], nproc=2)
    assert _files(two) == _files(setup["one"])
    assert not list(two.predictions.glob(".*.part*")) and not list((two.path / "attribution").glob(".*.part*"))


@pytest.mark.slow
def test_an_evaluation_killed_with_sigkill_resumes_to_the_same_files(setup):
    run = RunFolder(setup["root"] / "killed")
    args = [*setup["evaluate"], "--out", str(run.path)]
    journal = Journal(run.predictions_path("grpo", "test_id"))
    proc = subprocess.Popen(_cmd(args), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (journal.path.is_file() and journal.path.read_text().count("\n") >= 4) and time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the evaluation ended (rc {proc.returncode}) before it could be killed")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not journal.final.is_file(), "killed after the final file was written: nothing to resume"
    out = _run(args)
    assert "already journalled" in out and f"of {N_CLIPS} clips" in out
    one = setup["one"]
    assert run.predictions_path("grpo", "test_id").read_bytes() == one.predictions_path("grpo", "test_id").read_bytes()
    assert json.loads(run.metrics_path.read_text())["eval"] == json.loads(one.metrics_path.read_text())["eval"]
    assert not journal.path.exists()
