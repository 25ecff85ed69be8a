"""The ``omnibench`` command: one subcommand per stage of the workbench.

Each subcommand lives with the code it runs: the owning module defines ``add_<name>_args(parser)``
and ``cli_<name>(args)``; this file only wires them together.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("omnibench.data.synth", "generate the SynthEmo benchmark (mp4 clips + manifest.jsonl)"),
    "index": ("omnibench.data.indexers", "index a real dataset folder (DFEW, MAFW, RAVDESS, ...) into a manifest"),
    "base": ("omnibench.model.perception", "build the tiny base model: perception pre-training of its towers and language model"),
    "sft": ("omnibench.sft", "cold-start (or label-only) supervised fine-tuning from a YAML recipe"),
    "grpo": ("omnibench.grpo", "GRPO with verifiable rewards on video + audio from a YAML recipe"),
    "eval": ("omnibench.evaluate", "WAR/UAR evaluation of a model on a manifest split"),
    "attribute": ("omnibench.attribution", "modality attribution (exact Shapley over video/audio)"),
    "run": ("omnibench.pipeline", "run the notebook pipeline with papermill into runs/NAME/"),
    "report": ("omnibench.report", "rebuild report.html for a run folder"),
    "study": ("omnibench.study", "run a pipeline recipe over seeds or folds and aggregate (study.json, study.html)"),
}


def build_parser() -> argparse.ArgumentParser:
    from omnibench import __version__

    parser = argparse.ArgumentParser(
        prog="omnibench",
        description="Explainable audio-visual emotion recognition: R1-Omni SFT + GRPO, evaluation, measured modality attribution.",
    )
    parser.add_argument("--version", action="version", version=f"omnibench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        getattr(module, f"add_{name}_args")(p)
        p.set_defaults(_run=getattr(module, f"cli_{name}"))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    result = args._run(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
