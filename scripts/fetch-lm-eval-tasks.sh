#!/usr/bin/env bash
# Unpacks the task folder of lm-evaluation-harness (its YAML configs and the
# Python files their `!function` hooks name) into .lm-eval/<version>/, for the
# tests that run assay on lm-eval's own configs. Nothing from it is executed:
# assay reads the YAML and fingerprints the Python to pick its native ports.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.4.13
dest=".lm-eval/$version"
if [ -d "$dest/lm_eval/tasks" ]; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --no-deps --quiet --disable-pip-version-check "lm-eval==$version" -d "$tmp"
python3 - "$tmp" "$dest" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(f"{sys.argv[1]}/lm_eval-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith("lm_eval/tasks/"):
            z.extract(name, sys.argv[2])
PY
echo "lm-eval $version task folder: $dest/lm_eval/tasks"
