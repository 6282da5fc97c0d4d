#!/bin/bash
# exo-bench through the OpenCL plugin on the GPU machine (NVIDIA H100/H200): prefill and decode
# of the synthetic presets in bf16. Needs the bundle of scripts/gpu-host/collect.sh.
#
# Environment: EXO_DEVICE_BUNDLE, EXO_MODELS (default /tmp/exo-models; models are written there
# with exo-synth when missing), MODELS (default "small-110m llama-3.2-1b"), REPS (default 2),
# P / N (prompt and generated tokens, default 512 / 128), WEIGHTS (default "bf16": bf16 and/or
# MLX affine variants such as mlx-q4-g64 mlx-q8-g32, written by exo-synth --quant), PROFILE=1 (EXO_OPENCL_PROFILE: prints
# the per-kernel device time table; a small P makes it a decode profile), BATCH (e.g. "1 8": one run
# per value with exo-bench --batch N, the batched-step figures after the single-sequence ones;
# default: no batch), STREAM=1 (also measure the device's read bandwidth, so decode prints its
# fraction of it; default: skipped), KV_DTYPE (exo-bench --kv-dtype: f32, bf16 or f16; default: the library's, bf16).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/gpu-host/env.sh"
export EXO_PLUGINS_SELECT=opencl
MODELS_DIR=${EXO_MODELS:-/tmp/exo-models}
MODELS=${MODELS:-"small-110m llama-3.2-1b"}
REPS=${REPS:-2}
P=${P:-512}
N=${N:-128}
[ "${PROFILE:-0}" = 1 ] && export EXO_OPENCL_PROFILE=1 EXO_LOG_LEVEL=info
mkdir -p "$MODELS_DIR" "$RESULTS/opencl-bench"
status=0
WEIGHTS=${WEIGHTS:-bf16}
for preset in $MODELS; do
 for weights in $WEIGHTS; do
  model="$MODELS_DIR/$preset-$weights"
  quant=()
  [ "$weights" = bf16 ] || quant=(--quant "$weights")
  [ -f "$model/config.json" ] || "$BIN/exo-synth" --preset "$preset" --dtype bf16 "${quant[@]}" --out "$model" >/dev/null ||
    { echo "FAIL: exo-synth $preset $weights" >&2; exit 1; }
  for batch in ${BATCH:-none}; do
   extra=()
   [ "${STREAM:-0}" = 1 ] || extra+=(--no-stream)
   tag=""
   [ "$batch" = none ] || { extra+=(--batch "$batch"); tag="-b$batch"; }
   [ -z "${KV_DTYPE:-}" ] || { extra+=(--kv-dtype "$KV_DTYPE"); tag="$tag-kv$KV_DTYPE"; }
   json="$RESULTS/opencl-bench/$preset-$weights-p$P-n$N$tag.json"
   echo "== exo-bench $preset $weights on opencl:0, -p $P -n $N -r $REPS ${extra[*]}"
   "$BIN/exo-bench" --model "$model" --device opencl:0 -p "$P" -n "$N" -r "$REPS" --json "${extra[@]}" \
     >"$json.log" 2>&1
   rc=$?
   grep -v '^{' "$json.log" | grep -v '^exo info' | tail -12
   grep 'profile' "$json.log" | head -24
   tail -n1 "$json.log" >"$json"
   [ $rc -eq 0 ] || { echo "FAIL: exo-bench exited $rc" >&2; status=1; }
  done
 done
done
exit $status
