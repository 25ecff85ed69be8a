#!/usr/bin/env bash
# omnibench GPU check: a prepared script for a lent GPU machine (H100/H200, no network there).
#
# Stages (each under a time limit; the whole script stays under 8 minutes):
#   0. wheels   install the carried wheels in .whl/ (trl, datasets, dill, multiprocess, peft, regex, transformers 5.23)
#               into /tmp/omnibench-site; the package itself is used from the source tree (PYTHONPATH)
#   1. env      GPU, driver, library versions, `import omnibench.grpo`           -> $OUT/env.json
#   2. tests    pytest -m gpu tests/test_gpu.py + tests/test_encoders.py            -> $OUT/tests.log
#   3. model    python -m omnibench.tiny.bench on cuda in bf16 (scoring cross-check) -> $OUT/model_bench.json
#   4. pipeline tiny thinker: SFT + GRPO steps in bf16, bf16 evaluation and scoring -> $OUT/pipeline.json
#   5. grpo3b   GRPO step throughput + peak memory, random thinker with Qwen2.5-Omni-3B sizes,
#               G=8; phase train_towers: encoder sharing on/off alternating; phase frozen_towers:
#               step-level reuse of the frozen towers' outputs on/off; both: the prompt prefill's
#               time and the reference's weights shared with the policy           -> $OUT/grpo3b.json
#   6. scale    tiny + 3B-shaped thinker: SFT + GRPO steps, bf16 autocast over float32 master weights
#               (s/step, peak memory, finite losses/weights); eval + attribution on the GPU in bf16 -> $OUT/scale.json
#   everything merged into $OUT/gpu_check.json, the log in $OUT/gpu_check.log.
#
# Usage (device tool; see benchmarks/README.md):  bash benchmarks/gpu_check.sh     with carry [".whl"]
# Here, a dry run on the CPU with tiny sizes (1-2 steps per stage, the venv's python):
#   GPU_CHECK_DRY=1 OUT=/tmp/gpu_dry bash benchmarks/gpu_check.sh
# Knobs for stage 5: GPU_CHECK_G (8) GPU_CHECK_CLIPS (1) GPU_CHECK_STEPS (6) GPU_CHECK_NEW_TOKENS (128)
#   GPU_CHECK_FRAMES (16) GPU_CHECK_SIZE (224) GPU_CHECK_GC (1 = gradient checkpointing);
#   GPU_CHECK_PHASES (train_towers,frozen_towers);
#   GPU_CHECK_BUDGET_S (460): total seconds the stages may use; GPU_CHECK_SKIP="tests model" skips stages.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DRY=${GPU_CHECK_DRY:-0}
export GPU_CHECK_DRY=$DRY
export OUT=${OUT:-$REPO/benchmarks/results/gpu}
mkdir -p "$OUT"
LOG=$OUT/gpu_check.log
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1
TEE_PID=$!
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg PYTHONDONTWRITEBYTECODE=1
BUDGET=${GPU_CHECK_BUDGET_S:-460}
SKIP=" ${GPU_CHECK_SKIP:-} "
START=$(date +%s)

if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ "$DRY" != 0 ] && [ -x "$REPO/.venv/bin/python" ]; then PY=$REPO/.venv/bin/python
else PY=python3; fi

export PY DRY
declare -A STATUS ELAPSED
ORDER=()
left() { echo $(( BUDGET - ($(date +%s) - START) )); }

stage() {  # stage NAME LIMIT_S COMMAND...
  local name=$1 limit=$2; shift 2
  ORDER+=("$name")
  if [[ "$SKIP" == *" $name "* ]]; then STATUS[$name]=skipped; ELAPSED[$name]=0; return; fi
  local remaining; remaining=$(left)
  (( limit > remaining )) && limit=$remaining
  if (( limit < 10 )); then
    echo "== $name: skipped, only ${remaining}s of the ${BUDGET}s budget left"
    STATUS[$name]=no_time; ELAPSED[$name]=0; return
  fi
  echo "== $name (limit ${limit}s, $(date -u +%H:%M:%S))"
  local t0; t0=$(date +%s)
  if declare -F "$1" >/dev/null; then  # a shell function: run it in a child bash under the limit
    timeout --kill-after=5 "$limit" bash -c "set -o pipefail; $(declare -f "$1"); $1"
  else
    timeout --kill-after=5 "$limit" "$@"
  fi
  local rc=$?
  ELAPSED[$name]=$(( $(date +%s) - t0 ))
  if (( rc == 0 )); then STATUS[$name]=ok
  elif (( rc == 124 || rc == 137 )); then STATUS[$name]=timeout
  else STATUS[$name]=failed_rc_$rc; fi
  echo "== $name: ${STATUS[$name]} in ${ELAPSED[$name]}s"
}

# 0. carried wheels (missing on the GPU image: trl, datasets, dill, multiprocess; transformers pinned 5.23)
export SITE=/tmp/omnibench-site
install_wheels() {
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
}
if [ "$DRY" = 0 ] || [ "${GPU_CHECK_WHEELS:-0}" != 0 ]; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    stage wheels 90 install_wheels
    export PYTHONPATH=$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}
  else
    echo "== wheels: no .whl/*.whl here (was .whl in the device tool's carry list?); using what is installed"
    export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
  fi
else
  export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
fi
echo "python: $PY ($("$PY" --version 2>&1)); dry=$DRY; OUT=$OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# 1. environment
stage env 45 "$PY" benchmarks/gpu_check.py env

# 2. CUDA tests (skipped without CUDA: in a dry run they report 'skipped')
run_tests() {
  "$PY" -m pytest -q -p no:cacheprovider -o addopts="" -m "gpu or not slow" \
    tests/test_gpu.py tests/test_encoders.py 2>&1 | tee "$OUT/tests.log"
  return "${PIPESTATUS[0]}"
}
stage tests 100 run_tests

# 3. model-level timings on the device (processor, train step, generation, scoring cross-check)
run_model_bench() {
  local args=(--device cuda --dtype bfloat16 --reps 3 --batch 8)
  [ "$DRY" != 0 ] && args=(--device cpu --dtype float32 --reps 1 --batch 2 --new-tokens 4)
  "$PY" -m omnibench.tiny.bench "${args[@]}" | tee "$OUT/model_bench.json"
  return "${PIPESTATUS[0]}"
}
stage model 45 run_model_bench

# 4. tiny pipeline in bf16
stage pipeline 90 "$PY" benchmarks/gpu_check.py pipeline

# 5. 3B-sized GRPO step: throughput, peak memory, encoder sharing on/off
stage grpo3b 300 "$PY" benchmarks/gpu_check.py grpo3b

# 6. scale (issue 13): tiny + 3B-shaped thinker, SFT + GRPO steps in bf16 mixed precision over float32
#    master weights (s/step, peak memory, finite losses), evaluation and attribution on the GPU in bf16
stage scale 180 "$PY" benchmarks/gpu_check.py scale

# summary: one JSON object with every stage's status and figures
STATUS_JSON=$(for k in "${ORDER[@]}"; do printf '"%s": {"status": "%s", "seconds": %s}, ' "$k" "${STATUS[$k]}" "${ELAPSED[$k]}"; done)
"$PY" - "$OUT" "{${STATUS_JSON%, }}" "$(( $(date +%s) - START ))" <<'EOF'
import json, sys
from pathlib import Path
out, stages, total = Path(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
merged = {"stages": stages, "seconds_total": total}
for name in ("env", "model_bench", "pipeline", "grpo3b", "scale"):
    f = out / f"{name}.json"
    if f.is_file() and f.read_text().strip():
        try:
            merged[name] = json.loads(f.read_text().strip().splitlines()[-1])
        except json.JSONDecodeError as e:
            merged[name] = {"error": f"unreadable JSON: {e}"}
(out / "gpu_check.json").write_text(json.dumps(merged, indent=1) + "\n")
print("== summary")
for k, v in stages.items():
    print(f"  {k:<9} {v['status']:<14} {v['seconds']:>4} s")
g = merged.get("grpo3b", {})
if g.get("shared_encoders"):
    print(f"  grpo3b: {g['device']} {g.get('params_total', 0) / 1e9:.2f} B params, G={g['G']}, "
          f"{g['completions_per_step']} completions/step, prompt {g['prompt_tokens']} tok, "
          f"peak {g.get('peak_memory_gib')} GiB")
    for key in ("shared_encoders", "unshared_encoders"):
        if g.get(key):
            print(f"    {key}: {g[key]['s_per_step']} s/step, {g[key]['samples_per_s']} samples/s, "
                  f"breakdown {g[key]['breakdown_s']}")
    print(f"    unshared / shared time: {g.get('unshared_over_shared_time')}")
for phase, r in (g.get("phases") or {}).items():
    if "error" in r:
        print(f"  grpo3b {phase}: ERROR {r['error'][:300]}")
        continue
    names = [k for k in r if isinstance(r[k], dict) and "s_per_step" in r[k]]
    line = ", ".join(f"{k} {r[k]['s_per_step']} s/step (prefill LM {r[k]['breakdown_s'].get('generation.prefill_lm')} s, "
                     f"encoders {r[k]['breakdown_s'].get('encoders')} s)" for k in names)
    ratio = next((f"{k} {v}" for k, v in r.items() if k.endswith("_time")), "")
    print(f"  grpo3b {phase}: {line}; {ratio}; peak {r.get('peak_memory_gib')} GiB; reference shares "
          f"{r.get('reference_params_shared_with_policy', 0) / 1e9:.2f} B params with the policy, owns "
          f"{r.get('reference_params_own', 0) / 1e9:.2f} B")
p = merged.get("pipeline", {})
if p.get("grpo"):
    print(f"  pipeline: sft loss {p['sft']['loss']}, grpo loss {p['grpo']['loss']}, "
          f"lm changed {p['grpo']['language_model_changed']}, eval {p['eval']}")
m = merged.get("model_bench", {})
if m:
    print(f"  model bench: scoring_max_abs_diff {m.get('scoring_max_abs_diff')}, device {m.get('device')}")
sc = merged.get("scale", {})
for key in ("tiny", "3b"):
    r = sc.get(key) or {}
    if r.get("sft"):
        print(f"  scale {key}: sft {r['sft']['s_per_step']} s/step (peak {r['sft']['peak_memory_gib']} GiB), grpo "
              f"{r['grpo']['s_per_step']} s/step G={r['grpo']['G']} (peak {r['grpo']['peak_memory_gib']} GiB), "
              f"finite losses {r['finite_losses']}, finite weights {r['finite_weights']}")
    elif r:
        print(f"  scale {key}: {r}")
if sc.get("eval"):
    print(f"  scale eval: {sc['eval']}; attribution: {sc['attribution']}")
print(f"figures: {out / 'gpu_check.json'}  ({total} s)")
EOF
RC=0
for k in "${ORDER[@]}"; do [ "${STATUS[$k]}" = ok ] || [ "${STATUS[$k]}" = skipped ] || RC=1; done
exec 1>&- 2>&-   # let tee write the last lines before the script ends
wait "$TEE_PID" 2>/dev/null
exit $RC
