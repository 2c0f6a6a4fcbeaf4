#!/usr/bin/env bash
# One prepared run of issue 16's GPU checks, from the source tree (no install, no internet).
#
#   OUT=/some/folder bash benchmarks/gpu_check.sh            # on the H200 image: Python 3.12, torch 2.11
#
# Writes everything under $OUT (default: ./gpu-check-out):
#   env.txt            Python/torch/CUDA versions, nvidia-smi
#   pytest_cuda.txt    `pytest -k cuda` over the CUDA tests (device data path, region stacks under bf16,
#                      K-means on cuda); pytest_cuda.xml (JUnit)
#   bench_eager.txt    the suite at the papers' batch sizes, fp32 and bf16, eager; rewrites the CUDA
#                      section of $OUT/benchmarks.md (a copy of docs/benchmarks.md: copy it back to commit)
#   bench_compiled.txt bf16 + torch.compile for every paper configuration (compile time measured);
#                      table in $OUT/compiled.md
#   bench_regions.txt  MA-Net / AMP-Net with the region stacks batched and as a loop (bf16, eager);
#                      table in $OUT/regions.md
#   summary.txt        the exit status of every step
# Without a GPU it says so, runs the CUDA tests (they skip) and a tiny CPU suite, and ends in about a
# minute: that is how it is tried before a GPU session.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TQDM_DISABLE=1 PYTHONDONTWRITEBYTECODE=1
export TORCHINDUCTOR_CACHE_DIR="$OUT/.inductor-cache"  # compile once per session, reuse on a rerun
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"

step() {  # step NAME TIMEOUT_S LOGFILE -- command...
  local name=$1 limit=$2 log=$3
  shift 4
  local t0=$SECONDS
  timeout "$limit" "$@" >"$log" 2>&1
  local rc=$?
  echo "$name: exit $rc in $((SECONDS - t0)) s (log $(basename "$log"))" | tee -a "$SUMMARY"
}

{
  date -u
  "$PY" - <<'EOF'
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("cuda available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported())
for mod in ("torchvision", "numpy", "sklearn", "pytest", "threadpoolctl", "yaml", "PIL"):
    try:
        m = __import__(mod)
        print(mod, getattr(m, "__version__", "?"))
    except Exception as exc:  # noqa: BLE001 - recorded, not fatal
        print(mod, "MISSING", exc)
import ferlib.models, ferlib.train  # noqa: E401,F401 - the tree must import from source
print("ferlib imports from", ferlib.__file__)
EOF
  command -v nvidia-smi >/dev/null && nvidia-smi
} >"$OUT/env.txt" 2>&1
echo "env: $(head -3 "$OUT/env.txt" | tail -2 | tr '\n' ' ')" | tee -a "$SUMMARY"

GPU=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
CUDA_TESTS="tests/test_train_device_data.py tests/test_region_stacks.py tests/test_train_guidance_kmeans.py"
# shellcheck disable=SC2086
step pytest_cuda 300 "$OUT/pytest_cuda.txt" -- "$PY" -m pytest -q -p no:cacheprovider -k cuda \
  --junitxml="$OUT/pytest_cuda.xml" $CUDA_TESTS

cp docs/benchmarks.md "$OUT/benchmarks.md"
BENCH=(benchmarks/train_throughput.py --suite --cache-dir "$OUT/.bench-cache")
if [ "$GPU" = 1 ]; then
  step bench_eager 420 "$OUT/bench_eager.txt" -- "$PY" "${BENCH[@]}" --paper-batches --devices cuda \
    --precisions fp32,bf16 --steps 10 --warmup 3 --write "$OUT/benchmarks.md" \
    --note "benchmarks/gpu_check.sh, eager"
  step bench_compiled 600 "$OUT/bench_compiled.txt" -- "$PY" "${BENCH[@]}" --paper-batches --devices cuda \
    --precisions bf16 --compile --steps 10 --warmup 3 --write "$OUT/compiled.md" \
    --note "benchmarks/gpu_check.sh, bf16, eager and compiled"
  step bench_regions 300 "$OUT/bench_regions.txt" -- "$PY" "${BENCH[@]}" --models ma-net,amp-net --batch-size 128 \
    --devices cuda --precisions bf16 --batched-regions both --steps 10 --warmup 3 --write "$OUT/regions.md" \
    --note "benchmarks/gpu_check.sh, region stacks batched vs loop"
else
  echo "no CUDA device: CUDA tests skip, benchmark runs a tiny CPU suite (GPU figures still to come)" | tee -a "$SUMMARY"
  step bench_cpu 300 "$OUT/bench_cpu.txt" -- "$PY" "${BENCH[@]}" --models lan --devices cpu --batch-size 2 \
    --precisions fp32 --steps 1 --warmup 0 --threads 2 --write "$OUT/cpu.md" --note "benchmarks/gpu_check.sh, no GPU"
fi
cat "$SUMMARY"
