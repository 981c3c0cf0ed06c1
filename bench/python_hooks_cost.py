#!/usr/bin/env python3
"""The cost of running a task's hooks in Python (`--python-hooks=all`) against
assay's native ports of the same hooks, per document.

    ASSAY=target/release/assay $LMEVAL_VENV/bin/python bench/python_hooks_cost.py [--docs N]

  * writes N procedural documents (default 10,000) in the shapes of hellaswag's
    and winogrande's datasets (tests/fixtures/hub/make_data.py --docs N);
  * points lm-eval's own hellaswag and winogrande YAML at them as local JSON
    (tests/golden/lmeval_overlay.py): hellaswag's hook is process_docs, over the
    whole split; winogrande's are doc_to_text, doc_to_target and doc_to_choice,
    per document;
  * times `assay requests` on each task with the native ports, then with
    --python-hooks=all (the Python worker started, the documents sent in one
    batch per hook), best of --repeat runs each;
  * prints per task the wall and CPU seconds of both and the extra cost per
    document, and checks that both sent the same requests.

Run with the Python of lm-eval's venv: the hooks' worker runs in it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import ROOT, machine, timed  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "golden"))
from lmeval_overlay import TEMP_PREFIX, lmeval_tasks_dir, write_overlays  # noqa: E402

TASKS = {"hellaswag": "process_docs", "winogrande": "doc_to_text, doc_to_target, doc_to_choice"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--assay", default=os.environ.get("ASSAY", str(ROOT / "target" / "release" / "assay")))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hooks-cost-"))
    data = work / "data"
    subprocess.run([sys.executable, str(ROOT / "tests/fixtures/hub/make_data.py"), "--out", str(data),
                    "--docs", str(args.docs)], check=True, stdout=subprocess.DEVNULL)
    overlays = work / "overlays"
    write_overlays(overlays, list(TASKS), lmeval_tasks_dir(), data)
    env = dict(os.environ, ASSAY_PYTHON=sys.executable, ASSAY_CACHE_DIR=str(work / "cache"))

    print(machine())
    print(f"{args.docs} documents per task, best of {args.repeat}; assay {args.assay}\n")
    print(f"{'task':12s} {'hooks':38s} {'native s':>9s} {'python s':>9s} {'CPU n/p':>13s} {'per doc':>10s}")
    for task, hooks in TASKS.items():
        runs = {}
        for mode, flag in (("native", []), ("python", ["--python-hooks=all"])):
            best = None
            for _ in range(args.repeat):
                t = timed([args.assay, "requests", "--tasks", TEMP_PREFIX + task, "--include-path", str(overlays),
                           *flag], env=env)
                if best is None or t.wall < best.wall:
                    best = t
            runs[mode] = best
        native, python = runs["native"], runs["python"]
        if native.proc.stdout != python.proc.stdout:
            print(f"{task}: the requests differ between the native ports and Python", file=sys.stderr)
            return 1
        per_doc = (python.wall - native.wall) / args.docs * 1e6
        print(f"{task:12s} {hooks:38s} {native.wall:9.2f} {python.wall:9.2f} "
              f"{native.cpu:6.2f}/{python.cpu:<6.2f} {per_doc:7.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
