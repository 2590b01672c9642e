#!/usr/bin/env bash
# imbtrain on one NVIDIA H100/H200: the GPU figures of benchmarks/RESULTS.md, in under 8 minutes.
#
#   bash benchmarks/gpu.sh                 # on the GPU machine, from the repository root
#   SMOKE=1 bash benchmarks/gpu.sh         # tiny settings on CPU: checks the script itself
#
# Prints, each section under a banner (times on an H100, about):
#   0. the machine: nvidia-smi, torch/CUDA versions                              (~5 s)
#   1. no host sync between training steps on CUDA
#      (tests/test_train_fast_paths.py)                                         (~40 s)
#   2. images/s of the training loop on generated CIFAR-shaped data, ResNet-32 and
#      WRN-28-10, fp32 vs bf16 autocast + channels_last; SAM-A's epoch time over ERM's;
#      data-pipeline headroom (each policy's images/s on the device over the loop's)
#                                                                (benchmarks/gpu_loop.py, ~3 min)
#   3. packing gain: 4 ResNet-32 trials with --gpus-per-trial 0.25 vs 1
#                                                                (benchmarks/packing.py, ~1.5 min)
#   4. torch.compile reused by the next trials of a worker      (gpu_loop.py compile, ~1.5 min)
# Each section has its own time limit (75 + 200 + 120 + 75 s: under 8 minutes in all); a
# failed or timed-out section is reported and the script goes on to the next. Paste the output into benchmarks/RESULTS.md ("GPU").
set -euo pipefail

cd "$(dirname "$0")/.."
SMOKE="${SMOKE:-0}"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
if [[ -n "${PY:-}" ]]; then :
elif [[ -x .venv/bin/python ]]; then PY=.venv/bin/python
else PY=python3
fi
# imbtrain from this tree even where it is not pip-installed
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

START=$(date +%s)
FAILED=()
banner() { printf '\n==================== %s  (t = %ss)\n' "$1" "$(( $(date +%s) - START ))"; }
section() {  # section NAME SECONDS CMD...: run CMD with a time limit, note a failure, go on
  local name=$1 limit=$2; shift 2
  banner "$name"
  local rc=0
  timeout --signal=INT --kill-after=15 "$limit" "$@" || rc=$?
  if (( rc != 0 )); then
    FAILED+=("$name (exit $rc$([[ $rc == 124 ]] && echo ', timed out'))")
    echo "!! section '$name' failed with exit code $rc"
  fi
}

banner "0. machine"
if [[ "$SMOKE" == 1 ]]; then
  DEVICE=cpu
  echo "SMOKE=1: tiny settings on CPU (checks the script, not the GPU)"
else
  DEVICE=cuda
  if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L; then
    echo "error: no NVIDIA GPU here (nvidia-smi missing or failing); run with SMOKE=1 to" \
         "check the script on CPU" >&2
    exit 2
  fi
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
fi
"$PY" - <<'EOF'
import os, platform, torch
print(f"python {platform.python_version()}, torch {torch.__version__}, "
      f"CUDA {torch.version.cuda}, cuda available {torch.cuda.is_available()}, "
      f"{os.cpu_count()} CPUs")
import imbtrain  # noqa: F401  (fails here, not in every section, when it cannot import)
EOF
if [[ "$DEVICE" == cuda ]]; then
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
    echo "error: torch sees no CUDA device ($PY)" >&2; exit 2; }
fi

if [[ "$SMOKE" == 1 ]]; then
  LOOP=(--device cpu --models resnet8 --samples 8 --batch-size 32 --epochs 1 --reps 2)
  PACK=(--device cpu --model resnet8 --samples 8 --epochs 1 --trials 2 --cpus-per-trial 1)
  COMPILE=(--device cpu --models resnet8 --samples 8 --batch-size 32)
else
  LOOP=(--device cuda --models resnet32 wrn_28_10 --samples 2000 --epochs 2)
  PACK=(--device cuda --model resnet32 --samples 1000 --epochs 3 --trials 4)
  COMPILE=(--device cuda --models resnet32 --samples 1000)
fi

section "1. no host sync between CUDA training steps" 75 \
  "$PY" -m pytest tests/test_train_fast_paths.py -q -p no:cacheprovider
section "2. training loop: fp32 vs bf16 + channels_last, SAM-A / ERM, pipeline headroom" 200 \
  "$PY" benchmarks/gpu_loop.py "${LOOP[@]}" --sections loop sam pipeline
section "3. packing 4 trials on one GPU (--gpus-per-trial 0.25 vs 1)" 120 \
  "$PY" benchmarks/packing.py "${PACK[@]}"
section "4. torch.compile reused across the trials of a worker" 75 \
  "$PY" benchmarks/gpu_loop.py "${COMPILE[@]}" --sections compile

banner "done"
if (( ${#FAILED[@]} )); then
  printf 'failed sections:\n'; printf '  %s\n' "${FAILED[@]}"
  exit 1
fi
echo "all sections passed"
