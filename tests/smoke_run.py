"""One smoke pipeline run per pytest session, shared by test_notebooks.py and test_browser.py.

The run executes every notebook through papermill with ``configs/smoke.yaml`` into the session's
base temporary folder; a second caller in the same session reuses it when all stages completed.
"""

from __future__ import annotations

import os
from pathlib import Path

from omnibench.pipeline import run_pipeline
from omnibench.run import STAGES, RunFolder

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "configs" / "smoke.yaml"


def smoke_run(tmp_path_factory) -> RunFolder:
    """The session's smoke run (``$OMNIBENCH_SMOKE_RUN`` names a finished one to reuse while iterating)."""
    if os.environ.get("OMNIBENCH_SMOKE_RUN"):
        return RunFolder(os.environ["OMNIBENCH_SMOKE_RUN"], create=False)
    runs = tmp_path_factory.getbasetemp() / "smoke_runs"
    run = RunFolder(runs / "smoke", create=False) if (runs / "smoke").is_dir() else None
    if run is not None and all(run.read_state().get(st.name, {}).get("status") == "ok" for st in STAGES) \
            and run.report_path.is_file():
        return run
    return run_pipeline(SMOKE, "smoke", runs_dir=runs, quiet=True)
