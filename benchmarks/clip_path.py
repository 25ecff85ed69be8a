"""Which omnibench source files a clip crosses from the manifest to an attribution plot.

Counts the files in which a function runs (``sys.setprofile``; module bodies not counted) while the
attribution stage attributes two clips of a tiny model and one share plot is drawn. The list and the
count are the ones docs/architecture.md gives:

    .venv/bin/python benchmarks/clip_path.py
"""
import collections
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import write_mp4

from omnibench import plots
from omnibench.data.manifest import Clip, write_manifest
from omnibench.model import save_model
from omnibench.run import RunFolder
from omnibench.stages import AttributionStageConfig, attribution_stage
from omnibench.tiny import build_tiny

root = Path(tempfile.mkdtemp())
run = RunFolder(root / "run")
save_model(*build_tiny(seed=0), run.checkpoint("grpo"))
clips = [Clip(id=f"c{i}", video=str(write_mp4(root / f"c{i}.mp4", seed=i)), label="happy", split="test_id",
              meta={"condition": "both", "video_label": "happy", "audio_label": "neutral"}) for i in range(2)]
write_manifest(clips, run.manifest)
files = collections.Counter()
REPO = str(Path(__file__).resolve().parents[1])
def prof(frame, event, arg):
    if event == "call" and frame.f_code.co_name != "<module>":
        f = frame.f_code.co_filename
        if f.startswith(REPO) and "/omnibench/" in f:
            files[f[len(REPO) + 1:]] += 1
sys.setprofile(prof)
res = attribution_stage(run, AttributionStageConfig(splits=["test_id"], n_perm=0, max_new_tokens=4, batch_size=2, n_boot=10))
fig, ax = plots.plot_shares(res.head.by_condition(n_boot=10), title="x")
sys.setprofile(None)
for f, n in sorted(files.items()): print(f"{n:7d} {f}")
print(len(files), "files")
