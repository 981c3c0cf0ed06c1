#!/usr/bin/env bash
# Makes the Python environment the lm-eval bridge tests run lm-eval's model
# code in: .lm-eval/venv with lm-eval[hf] (transformers, accelerate, peft)
# and torch, pinned so that the tests compare like with like. About 3 to 4
# minutes on a fresh machine (mostly torch); nothing when it is there.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.lm-eval/venv
stamp="$venv/.assay-packages"
packages=("lm-eval[hf]==0.4.13" "torch==2.15.0" "transformers==5.24.0")
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${packages[*]}" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}"
echo "${packages[*]}" > "$stamp"
echo "lm-eval's Python: $venv/bin/python"
