#!/usr/bin/env bash
# The GPU reference sweep: the exact commands behind examples/gpu-h200/, run from the repository root
# on a machine with one CUDA GPU. Writes under $OUT (default out/): spool.tar.gz (the spool files),
# logs.tar.gz (each step's output), machine.txt (nvidia-smi, versions).
# A smoke sweep goes first and the script stops if it fails; later steps are skipped once DEADLINE
# seconds have passed, and each step is cut at its own limit, so one slow step cannot take the rest.
set -u
OUT=${OUT:-out}
DEADLINE=${DEADLINE:-400}
SPOOL=$OUT/spool; LOGS=$OUT/logs
mkdir -p "$SPOOL" "$LOGS"
START=$SECONDS
export PYTHONUNBUFFERED=1

{ date -u; nvidia-smi; python3 -m pip show torch transformers tokenizers diffusers 2>/dev/null | grep -E '^(Name|Version)';
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), torch.cuda.get_device_name())'
} > "$OUT/machine.txt" 2>&1

step() {  # step NAME LIMIT_S COMMAND...: run it within both its limit and what is left of DEADLINE
  local name=$1 limit=$2; shift 2
  if [[ -n "${ONLY:-}" && " $ONLY " != *" $name "* ]]; then echo "$name: not in ONLY"; return 0; fi
  local left=$((DEADLINE - (SECONDS - START)))
  if (( left < 20 )); then echo "$name: skipped ($((SECONDS - START)) s gone)"; return 0; fi
  (( limit > left )) && limit=$left
  local t0=$SECONDS
  timeout "$limit" "$@" > "$LOGS/$name.log" 2>&1
  local rc=$?
  echo "$name: rc $rc in $((SECONDS - t0)) s (limit $limit s)"
  return $rc
}

sweep() {  # sweep NAME LIMIT_S FLAGS...
  local name=$1 limit=$2; shift 2
  step "$name" "$limit" python3 -m generator sweep --device cuda --spool "$SPOOL" --out "$OUT/images" \
    --save-images none --quiet "$@"
}

finish() {
  tar -czf "$OUT/spool.tar.gz" -C "$SPOOL" . && tar -czf "$OUT/logs.tar.gz" -C "$LOGS" . && rm -rf "$SPOOL" "$LOGS" "$OUT/images"
  echo "total $((SECONDS - START)) s"
}

# 1. Do the GPU paths work at all (CUDA-event timing, NVML telemetry, the H200's datasheet peak)?
if ! sweep smoke 90 --arch tiny --resolutions 64 --batch-sizes 1,4 --steps 5 --repeats 2 --warmup 1 --warmup-max 1; then
  tail -30 "$LOGS/smoke.log"; finish; exit 1
fi
# 2. The instrumented job against a plain pipeline call, on the GPU (the tiny model: launch-bound, the worst case).
step overhead 60 env BENCH_RESULTS="$OUT/bench.json" python3 -m benchmarks.bench_generator --device cuda \
  --overhead-only --size 256 --steps 10 --pairs 10

# 3. The reference sweep: real shapes, random weights, float16, 20 DDIM steps.
sweep sd15-static 170 --arch sd15 --resolutions 512 --dtype float16 --steps 20 --mode static \
  --batch-sizes 1,2,4,8,16,32,64 --cfg off,full --guidance 7.5 --repeats 3 --warmup 1 --warmup-max 2 --profile-ops
sweep sdxl-static 120 --arch sdxl --resolutions 1024 --dtype float16 --steps 20 --mode static \
  --batch-sizes 1,2,4,8,16 --cfg full --guidance 7.5 --repeats 2 --warmup 1 --warmup-max 1
sweep ldm-inpaint 60 --arch ldm-inpaint --task inpaint --resolutions 256 --dtype float16 --steps 20 \
  --mode static --batch-sizes 1,2,4,8,16,32,64 --repeats 3 --warmup 1 --warmup-max 2
sweep sd15-stream 70 --arch sd15 --resolutions 512 --dtype float16 --steps 20 --mode stream \
  --batch-sizes 1,2,4,8,16,32,64 --cfg off --repeats 2 --warmup 1 --warmup-max 1
sweep sd15-sequential 40 --arch sd15 --resolutions 512 --dtype float16 --steps 20 --mode sequential \
  --batch-sizes 1,2,4,8 --cfg off --repeats 2 --warmup 1 --warmup-max 1
sweep tiny 40 --arch tiny --resolutions 64 --steps 20 --mode static,stream --batch-sizes 1,2,4,8,16,32,64 \
  --repeats 3 --warmup 1 --warmup-max 2
finish
