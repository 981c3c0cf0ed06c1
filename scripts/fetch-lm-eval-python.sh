#!/usr/bin/env bash
# Makes the Python environment the lm-eval bridge tests run lm-eval's model
# code in: .lm-eval/venv with lm-eval[hf] (transformers, accelerate, peft)
# and torch, pinned so that the tests compare like with like. About 3 to 4
# minutes on a fresh machine (mostly torch); nothing when it is there.
#
# It also holds what the hooks of the Open LLM Leaderboard v2 tasks import
# (assay --python-hooks runs them in this Python): lm-eval's `ifeval` extra
# (langdetect, immutabledict, nltk) and its `math` extra (sympy, math-verify,
# antlr4 4.11), pinned here by name rather than through the extras.
#
# IFEval's instructions_util calls nltk.download("punkt_tab") unless NLTK
# finds that data, and the tests have no network but the package registries.
# The llama-index-core wheel on PyPI ships NLTK's punkt_tab (the 18 languages'
# abbrev_types.txt, collocations.tab, ortho_context.tab, sent_starters.txt and
# the README) under llama_index/core/_static/nltk_cache/tokenizers/punkt_tab/:
# that folder alone is unpacked into <venv>/nltk_data/tokenizers/punkt_tab,
# one of the folders NLTK searches (sys.prefix/nltk_data); llama-index itself
# is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.lm-eval/venv
stamp="$venv/.assay-packages"
packages=("lm-eval[hf]==0.4.13" "torch==2.15.0" "transformers==5.24.0"
          "langdetect==1.0.9" "immutabledict==4.3.1" "nltk==3.10.4"
          "sympy==1.14.0" "math-verify==0.9.0" "latex2sympy2_extended==1.11.0"
          "antlr4-python3-runtime==4.11.0")
punkt_wheel="llama-index-core==0.14.25"
punkt_sha256=caa7d9c5ac9b13dc33400cf8d5e92e689b6d1e4497eb9bfa50d6f52ca2eb22a1
want="${packages[*]} punkt_tab:$punkt_wheel"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
# An existing venv (perhaps a link to one elsewhere) is upgraded in place.
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "$punkt_wheel --hash=sha256:$punkt_sha256" > "$tmp/requirements.txt"
"$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --require-hashes -r "$tmp/requirements.txt" -d "$tmp/wheel"
"$venv/bin/python" - "$tmp"/wheel/*.whl "$venv/nltk_data" <<'EOF'
import shutil
import sys
import zipfile
from pathlib import Path

wheel, dest = sys.argv[1], Path(sys.argv[2])
prefix = "llama_index/core/_static/nltk_cache/"
target = dest / "tokenizers" / "punkt_tab"
shutil.rmtree(target, ignore_errors=True)
n = 0
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix + "tokenizers/punkt_tab/") and not name.endswith("/"):
            out = dest / name[len(prefix):]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(z.read(name))
            n += 1
if not (target / "english" / "ortho_context.tab").is_file():
    sys.exit(f"{wheel}: no punkt_tab/english in it")
print(f"punkt_tab: {n} files in {target}")
EOF
# What IFEval's and MATH's hooks import, offline (no nltk.download).
"$venv/bin/python" -c '
import nltk
nltk.data.find("tokenizers/punkt_tab/english/")
import langdetect, immutabledict, math_verify, latex2sympy2_extended, sympy
assert nltk.word_tokenize("It works. Does it?") == ["It", "works", ".", "Does", "it", "?"]
'
echo "$want" > "$stamp"
echo "lm-eval's Python: $venv/bin/python"
