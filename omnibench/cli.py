"""The ``omnibench`` command: one subcommand per stage of the workbench.

The handler table below names, for each subcommand, the module that defines its flags
(``add_<name>_args(parser)``) and its handler (``cli_<name>(args)``). Only the module of the command
being run is imported, so ``omnibench index --help`` or ``omnibench report`` never import torch or
TRL (``tests/test_cli.py``); ``omnibench --help`` imports none of them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: subcommand -> (module defining add_<fn>_args / cli_<fn>, the function suffix, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "synth": ("omnibench.data.synth", "synth", "generate the SynthEmo benchmark (mp4 clips + manifest.jsonl)"),
    "index": ("omnibench.data.indexers.cli", "index",
              "index a real dataset folder (DFEW, MAFW, RAVDESS, ...) into a manifest"),
    "base": ("omnibench.tiny.perception", "base",
             "build the tiny base model: perception pre-training of its towers and language model"),
    "sft": ("omnibench.sft", "sft", "cold-start (or label-only) supervised fine-tuning from a YAML recipe"),
    "grpo": ("omnibench.grpo", "grpo", "GRPO with verifiable rewards on video + audio from a YAML recipe"),
    "eval": ("omnibench.stages.commands", "eval", "WAR/UAR evaluation of a model on manifest splits (the evaluate stage)"),
    "attribute": ("omnibench.stages.commands", "attribute",
                  "modality attribution, exact Shapley over video/audio (the attribution stage)"),
    "run": ("omnibench.pipeline", "run", "run the notebook pipeline with papermill into runs/NAME/"),
    "report": ("omnibench.report", "report", "rebuild report.html for a run folder"),
    "study": ("omnibench.study", "study",
              "run a pipeline recipe over seeds or folds and aggregate (study.json, study.html)"),
}


def build_parser(commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser with the flags of ``commands`` (default: every subcommand, importing each module);
    the others are listed with their help line only."""
    from omnibench import __version__

    parser = argparse.ArgumentParser(
        prog="omnibench",
        description="Explainable audio-visual emotion recognition: R1-Omni SFT + GRPO, evaluation, measured "
                    "modality attribution.",
    )
    parser.add_argument("--version", action="version", version=f"omnibench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = COMMANDS if commands is None else set(commands)
    for name, (module_name, fn, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name in wanted:
            module = importlib.import_module(module_name)
            getattr(module, f"add_{fn}_args")(p)
            p.set_defaults(_run=getattr(module, f"cli_{fn}"))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser([command] if command in COMMANDS else [])
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
