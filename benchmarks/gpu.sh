#!/usr/bin/env bash
# imbtrain on one NVIDIA H100/H200: the GPU figures of benchmarks/RESULTS.md, in one call of
# under 9 minutes.
#
#   bash benchmarks/gpu.sh                 # on the GPU machine, from the repository root
#   SMOKE=1 bash benchmarks/gpu.sh         # tiny settings on CPU, under a minute: checks the script
#
# Prints, each section under a banner (times on an H100, about):
#   0. the machine: nvidia-smi, torch/CUDA versions                              (~5 s)
#   1. no host sync between training steps on CUDA
#      (tests/test_train_fast_paths.py)                                         (~40 s)
#   2. images/s of the training loop on generated CIFAR-shaped data, ResNet-32 and
#      WRN-28-10, fp32 vs bf16 autocast + channels_last; SAM-A's epoch time over ERM's;
#      each augmentation policy's images/s on the device and its share of a step; the
#      epoch time of WRN-28-10 with the tuned routine on LT-CIFAR-10-shaped data
#      (12,406 train images)                                     (benchmarks/gpu_loop.py, ~4 min)
#   3. packing gain: 4 ResNet-32 trials with --gpus-per-trial 0.25 vs 1
#                                                                (benchmarks/packing.py, ~1.5 min)
#   4. torch.compile reused by the next trials of a worker      (gpu_loop.py compile, ~1 min)
# Each section has its own time limit (60 + 270 + 100 + 70 s: under 9 minutes in all); a
# failed or timed-out section is reported and the script goes on to the next. SMOKE=1 skips
# section 4 (inductor's C++ build on a CPU takes minutes). The figures go into
# benchmarks/RESULTS.md ("GPU").
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
  # On a shared CPU the limits are the GPU run's times four; the CUDA-only tests are skipped.
  LIMIT=4 TESTS=(-k cuda)
  LOOP=(--device cpu --models resnet8 --samples 8 --batch-size 32 --epochs 1 --reps 2
        --epoch-model wrn_10_1)
  PACK=(--device cpu --model resnet8 --samples 8 --epochs 1 --trials 2 --cpus-per-trial 1)
else
  LIMIT=1 TESTS=()
  LOOP=(--device cuda --models resnet32 wrn_28_10 --samples 2000 --epochs 2)
  PACK=(--device cuda --model resnet32 --samples 1000 --epochs 3 --trials 4)
  COMPILE=(--device cuda --models resnet32 --samples 1000)
fi

section "1. no host sync between CUDA training steps" $((60 * LIMIT)) \
  "$PY" -m pytest tests/test_train_fast_paths.py -q -p no:cacheprovider "${TESTS[@]}"
section "2. training loop: fp32 vs bf16 + channels_last, SAM-A / ERM, augmentation, WRN-28-10 epoch" $((270 * LIMIT)) \
  "$PY" benchmarks/gpu_loop.py "${LOOP[@]}" --sections loop sam pipeline epoch
section "3. packing 4 trials on one GPU (--gpus-per-trial 0.25 vs 1)" $((100 * LIMIT)) \
  "$PY" benchmarks/packing.py "${PACK[@]}"
if [[ "$SMOKE" != 1 ]]; then
  section "4. torch.compile reused across the trials of a worker" 70 \
    "$PY" benchmarks/gpu_loop.py "${COMPILE[@]}" --sections compile
fi

banner "done"
if (( ${#FAILED[@]} )); then
  printf 'failed sections:\n'; printf '  %s\n' "${FAILED[@]}"
  exit 1
fi
echo "all sections passed"
