"""Evaluation and attribution at the protocol's scale: chunks of clips, shared across processes, journalled.

A split is cut into fixed chunks of consecutive clips (a multiple of the batch size, so every
forward batch is the batch one process would have run: the rows come out bitwise the same with 1 or
N processes). Under ``torchrun --nproc_per_node N`` (or ``accelerate launch``) each process takes every
N-th chunk (:class:`Shards`, through accelerate's :class:`~accelerate.PartialState`, which sets up the
process group: gloo on the CPU, NCCL on GPUs, one device per process); alone, one process takes them
all. Each chunk's rows are appended to the process's journal (``<final file>.part<rank>``, one
``write`` + ``fsync`` per chunk) as soon as they are made. A re-run after a crash (even ``kill -9``)
reads the journals, drops a torn last line, and only redoes the chunks that are not complete; rank 0
then writes the final file in clip order, atomically, and removes the journals. Journalled rows carry
a tag of the settings that made them, so a re-run with other settings does not reuse them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["Journal", "Shards", "chunk_size", "run_chunks"]

#: batches per chunk: a chunk is journalled at once, so this bounds the work a crash can lose
BATCHES_PER_CHUNK = 4


def chunk_size(batch_size: int) -> int:
    """Clips per chunk: :data:`BATCHES_PER_CHUNK` whole batches."""
    return max(1, int(batch_size)) * BATCHES_PER_CHUNK


class Shards:
    """This process's rank and the number of processes (1 without a launcher)."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.state = None
        if self.world > 1:
            import torch
            from accelerate import PartialState

            # without a GPU accelerate only sets up the gloo group when asked to run on the CPU (as the Trainer asks)
            self.state = PartialState(cpu=not torch.cuda.is_available())
            self.rank, self.world = self.state.process_index, self.state.num_processes
        else:
            self.rank = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mine(self, n: int) -> list[int]:
        """The chunk indices this process works on: every ``world``-th, from its rank."""
        return list(range(self.rank, n, self.world))

    def wait(self) -> None:
        """Every process reaches this point before any goes on."""
        if self.state is not None:
            self.state.wait_for_everyone()

    def device(self, device: str) -> str:
        """``auto`` under several processes: this process's own device (``cuda:<local rank>`` or ``cpu``)."""
        if self.state is not None and device in ("auto", "", None):
            return str(self.state.device)
        return device


class Journal:
    """Rows of one output file (keyed by ``id``) as they are made, one part file per process."""

    def __init__(self, final: str | os.PathLike, rank: int = 0, tag: str = ""):
        self.final = Path(final)
        self.path = self.part(rank)
        #: rows journalled under another tag (other settings, another checkpoint) are not reused
        self.tag = tag

    def part(self, rank: int) -> Path:
        return self.final.with_name(f".{self.final.name}.part{rank}")

    def parts(self) -> list[Path]:
        return sorted(self.final.parent.glob(f".{self.final.name}.part*"))

    def rows(self) -> dict[str, dict]:
        """Every journalled row by id, any process's (the later of two for the same id); a line cut
        short by a crash is dropped, so its chunk counts as not done."""
        out: dict[str, dict] = {}
        for p in self.parts():
            for line in p.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the torn last line of a killed process
                if row.pop("_tag", None) == self.tag:
                    out[row["id"]] = row
        return out

    def append(self, rows: Sequence[dict]) -> None:
        from omnibench.io import json_safe

        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(json_safe({**r, "_tag": self.tag}), ensure_ascii=False) + "\n" for r in rows)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def clear(self) -> None:
        """Remove the journals (once the final file is written)."""
        for p in self.parts():
            p.unlink(missing_ok=True)


def run_chunks(items: Sequence, size: int, journal: Journal, shards: Shards,
               work: Callable[[Sequence], list[dict]], progress: Callable[[int], None] | None = None,
               key: Callable = lambda item: item.id) -> int:
    """Do ``work`` on every chunk of ``items`` this process owns and has not journalled completely yet,
    appending its rows (``work`` returns one row with an ``id`` for every item of the chunk; ``progress``
    is called with the chunk's length), then wait for every process. Returns the number of items done here."""
    done, n_done = journal.rows(), 0
    if done and shards.main:
        print(f"resuming {journal.final.name}: {sum(key(x) in done for x in items)} of {len(items)} clips already "
              "journalled")
    for i in shards.mine(len(items) // size + bool(len(items) % size)):
        chunk = items[i * size:(i + 1) * size]
        if all(key(x) in done for x in chunk):
            continue
        rows = work(chunk)
        missing = {key(x) for x in chunk} - {r["id"] for r in rows}
        if missing:
            raise RuntimeError(f"chunk {i}: no row for {sorted(missing)[:3]} (a stage's work must answer every clip)")
        journal.append(rows)
        n_done += len(chunk)
        if progress:
            progress(len(chunk))
    shards.wait()
    return n_done
