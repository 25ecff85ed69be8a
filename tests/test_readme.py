"""The README's commands run as written after `make demo`: every `omnibench` command parses, and every
path under runs/demo it names is one the pipeline writes (the run folder's layout, not a guess)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from omnibench.cli import build_parser
from omnibench.run import CHECKPOINTS, RunFolder

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[str]:
    """`omnibench ...` command lines inside the README's shell (or untagged) fenced code blocks, continuations
    joined; fences are paired with their info string, so a ```python block is skipped, not mis-paired."""
    text = README.read_text(encoding="utf-8")
    commands = []
    for lang, block in re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
        if lang not in ("", "bash", "sh", "shell"):
            continue
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            m = re.match(r"^(?:\.venv/bin/)?omnibench\s+(.*)$", line)
            if m:
                commands.append(m.group(1))
    return commands


def demo_layout(tmp_path) -> set[str]:
    """Paths (relative to the repository, as runs/demo/...) that `omnibench run --name demo` writes."""
    run = RunFolder(tmp_path / "runs" / "demo")
    paths = [run.manifest, run.predictions, run.metrics_path, run.attribution, run.report_path, run.params_path,
             run.figures, run.notebooks]
    for ck in CHECKPOINTS:
        paths += [run.checkpoint(ck), run.train_dir(ck), run.train_dir(ck) / "metrics.jsonl"]
    return {"runs/demo/" + str(Path(p).relative_to(run.path)) for p in paths}


def test_readme_has_commands_that_use_the_demo_run():
    assert any("runs/demo" in c for c in readme_commands())


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_parses(command):
    argv = shlex.split(command)
    try:
        build_parser().parse_args(argv)
    except SystemExit as e:  # argparse exits on unknown flags / missing arguments
        pytest.fail(f"README command `omnibench {command}` does not parse (exit {e.code})")


@pytest.mark.parametrize("command", [c for c in readme_commands() if "runs/demo" in c])
def test_readme_demo_paths_are_written_by_the_pipeline(command, tmp_path):
    layout = demo_layout(tmp_path)
    named = [tok.rstrip("/") for tok in shlex.split(command) if tok.startswith("runs/demo")]
    assert named
    for path in named:
        assert path in layout, f"README command names {path}, which `make demo` does not write; it writes {sorted(layout)}"
