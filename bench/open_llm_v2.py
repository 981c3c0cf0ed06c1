#!/usr/bin/env python3
"""The open-llm-v2 suite end to end on a real model: time, documents and scores.

    ASSAY=target/release/assay $LMEVAL_VENV/bin/python bench/open_llm_v2.py \\
        --model .demo/gemma-3-270m-q4_k_m.gguf [--limit 20] [--docs 20]

  * writes --docs procedural documents per evaluation split in the shapes of the
    suite's Hub datasets (tests/fixtures/hub/make_data.py; written for this project,
    nonsense on purpose: the scores say nothing about the model, the time does) and
    serves them with bench/mock_hub.py;
  * scores a manifest of the model on the suite, `assay score --suite open-llm-v2
    --include-path <lm_eval>/tasks/leaderboard/bbh_mc --python-hooks --limit N` (BBH
    from lm-eval's folder, the rest from assay's own configs; IFEval's and MATH's
    scoring run by this Python), with a fresh cache;
  * builds the suite's leaderboard from the run and prints each benchmark's
    documents, raw and normalized score, the average, and the wall time.

Run with the Python of lm-eval's venv (scripts/fetch-lm-eval-python.sh makes it).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import ROOT, machine, timed  # noqa: E402

ENTRIES = ["leaderboard_bbh", "leaderboard_gpqa", "leaderboard_ifeval", "leaderboard_math_hard",
           "leaderboard_musr", "leaderboard_mmlu_pro"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--docs", type=int, default=20)
    ap.add_argument("--n-ctx", default="4096")
    ap.add_argument("--assay", default=os.environ.get("ASSAY", str(ROOT / "target" / "release" / "assay")))
    ap.add_argument("--lm-eval-tasks", type=Path, default=ROOT / ".lm-eval/0.4.13/lm_eval/tasks")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="open-llm-v2-"))
    data = work / "data"
    subprocess.run([sys.executable, str(ROOT / "tests/fixtures/hub/make_data.py"), "--out", str(data),
                    "--docs", str(args.docs)], check=True, stdout=subprocess.DEVNULL)
    hub = subprocess.Popen([sys.executable, str(ROOT / "bench/mock_hub.py"), "--fixtures", str(data)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = hub.stdout.readline().strip()
        variants = work / "variants"
        variants.mkdir()
        manifest = variants / "demo.toml"
        manifest.write_text(f'name = "demo"\nrelation = "original"\n[backend]\n'
                            f'spec = "llama:{args.model.resolve()}"\nargs = {{ n_ctx = "{args.n_ctx}" }}\n')
        env = dict(os.environ, HF_ENDPOINT=url, ASSAY_DATASETS_CACHE=str(work / "datasets"),
                   ASSAY_CACHE_DIR=str(work / "cache"), ASSAY_PYTHON=sys.executable)
        env.pop("HF_HUB_OFFLINE", None)
        results = work / "results"
        started = time.strftime("%Y-%m-%d %H:%M")
        bbh = args.lm_eval_tasks / "leaderboard" / "bbh_mc"
        score = timed([args.assay, "score", "--quiet", "--suite", "open-llm-v2", "--limit", str(args.limit),
                       "--include-path", str(bbh), "--python-hooks",
                       "--out", str(results / "runs"), str(manifest)], env=env, check=False)
        if score.proc.returncode != 0:
            print(score.proc.stderr[-3000:], file=sys.stderr)
            return 1
        board = work / "board"
        subprocess.run([args.assay, "leaderboard", "--results", str(results), "--variants", str(variants),
                        "--suite", "open-llm-v2", "--include-path", str(bbh), "--out", str(board)],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        (run_json,) = (results / "runs" / "demo").glob("*/run.json")
        run = json.loads(run_json.read_text())
        row = next(csv.DictReader((board / "leaderboard.csv").open()))
    finally:
        hub.terminate()

    print(machine())
    print(f"started {started}; model {args.model.name}; --limit {args.limit} per task; "
          f"{args.docs} documents per evaluation split; assay {args.assay}\n")
    print(f"{'benchmark':24s} {'tasks':>5s} {'docs':>5s} {'score':>8s} {'normalized':>11s}")
    for entry in ENTRIES:
        leaves = run["group_subtasks"].get(entry) or [entry]
        docs = sum(run["n-samples"][t]["effective"] for t in leaves)
        print(f"{entry:24s} {len(leaves):5d} {docs:5d} {float(row[entry]):8.4f} "
              f"{float(row[entry + '_normalized']):11.4f}")
    requests = run["assay"]["requests"]
    stderr = f" ± {float(row['average_stderr']):.4f}" if row["average_stderr"] else ""
    print(f"\naverage (normalized) {float(row['average']):.4f}{stderr}")
    print(f"requests sent {requests.get('sent')}; wall {score.wall:.0f} s, CPU {score.cpu:.0f} s, "
          f"peak memory {score.peak_rss_mb:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
