#!/usr/bin/env python3
"""Hub tasks end to end: assay reading a (mock) Hugging Face Hub against lm-eval
reading the same documents from local files, request for request.

    ASSAY=target/release/assay $LMEVAL_VENV/bin/python bench/hub_parity.py [--docs N]

  * serves the documents (tests/fixtures/hub, or with --docs N a procedural set with N
    documents in every evaluation split, written by tests/fixtures/hub/make_data.py)
    with bench/mock_hub.py, which converts them to parquet;
  * runs `$ASSAY requests --include-path <lm_eval>/tasks --tasks arc_easy,hellaswag,...`
    with HF_ENDPOINT at the mock and a fresh ASSAY_DATASETS_CACHE: lm-eval's own YAML,
    the datasets resolved, downloaded and verified through the Hub protocol, the hooks
    ported; then once more on the warm cache, which must download nothing;
  * runs `lm_eval run --model dummy` on the same tasks with the data source swapped for
    the same JSONL files (tests/golden/lmeval_overlay.py) and takes its logged requests;
  * compares every request, sorted by (task, doc_id, idx), numbers by value; prints per
    task the documents, requests and differences, a total, how many files the mock
    served and each side's wall time; exits 1 on any difference;
  * checks the mock itself: every evaluation split, fetched through the protocol and read
    from parquet, equals the documents lm-eval read from JSON (columns lm-eval's hooks
    added left out).

Run with the Python of lm-eval's venv (it imports lm_eval and pyarrow). The assay binary
is $ASSAY, else --assay, else target/release/assay; --skip-assay checks the lm-eval side
and the mock only.
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import ROOT, load, machine, timed  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "golden"))
from lmeval_overlay import HUB_FIXTURES, HUB_TASKS, TEMP_PREFIX, lmeval_tasks_dir, remove, run_lmeval, scratch  # noqa: E402

sys.path.insert(0, str(HUB_FIXTURES))
import make_data  # noqa: E402

DEFAULT_TASKS = "arc_easy,hellaswag,winogrande,truthfulqa_mc2,gsm8k,piqa"
SHOW = 3  # differences printed per task


def same(a, b) -> bool:
    """JSON equality with numbers compared by value (lm-eval writes 0.0 where assay may write 0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    return type(a) is type(b) and a == b


def key(r: dict) -> tuple:
    return (r.get("task"), r.get("doc_id"), r.get("idx"))


def start_mock(fixtures: Path, extra: list[str]) -> tuple[subprocess.Popen, str, float]:
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "mock_hub.py"), "--fixtures", str(fixtures),
                             "--port", "0", "--quiet", *extra], stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit("the mock Hub did not start (see its messages above)")
    return proc, url, time.monotonic() - t0


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def mock_rows(url: str, repo: str, config: str, split: str) -> tuple[list[dict], int]:
    """A split's rows as a client of the protocol reads them: card, siblings, files."""
    info = get_json(f"{url}/api/datasets/{repo}/revision/main?blobs=true")
    (entry,) = [c for c in info["cardData"]["configs"] if c["config_name"] == config]
    (pattern,) = [d["path"] for d in entry["data_files"] if d["split"] == split]
    files = sorted(s["rfilename"] for s in info["siblings"] if fnmatch.fnmatch(s["rfilename"], pattern))
    rows = []
    for f in files:
        with urllib.request.urlopen(f"{url}/datasets/{repo}/resolve/{info['sha']}/{f}", timeout=30) as r:
            rows += pq.read_table(io.BytesIO(r.read())).to_pylist()
    return rows, len(files)


def check_mock(url: str, tasks: list[str], lm) -> list[str]:
    problems, n_rows, n_files = [], 0, 0
    for task in tasks:
        cfg = lm.results["configs"][TEMP_PREFIX + task]
        split = cfg.get("test_split") or cfg.get("validation_split")
        spec = HUB_TASKS[task]
        rows, files = mock_rows(url, spec.repo, spec.config, split)
        docs = [d["doc"] for d in lm.docs if d["task"] == task]
        # the doc's own key order, less the columns lm-eval's process_docs added
        seen = [{k: d[k] for k in d if k in row} for row, d in zip(rows, docs)]
        n_rows, n_files = n_rows + len(rows), n_files + files
        if len(rows) != len(docs):
            problems.append(f"{task}: the mock serves {len(rows)} rows of {split}, lm-eval read {len(docs)} documents")
        elif not all(list(r) == list(s) and same(r, s) for r, s in zip(rows, seen)):
            i = next(i for i, (r, s) in enumerate(zip(rows, seen)) if not (list(r) == list(s) and same(r, s)))
            problems.append(f"{task}: row {i} of {split} differs\n  mock:    {rows[i]}\n  lm-eval: {docs[i]}")
    print(f"mock round trip: {n_rows} rows in {n_files} files read through the protocol; "
          f"{'equal to' if not problems else 'NOT equal to'} the documents lm-eval read")
    return problems


def compare(tasks: list[str], ours: list[dict], theirs: list[dict]) -> tuple[int, list[str]]:
    print(f"\n{'task':22s} {'docs':>6s} {'requests':>9s} {'assay':>7s} {'differences':>12s}")
    total_docs = total_req = total_ours = total_diff = 0
    shown = []
    for task in tasks:
        a = {key(r): r for r in ours if r.get("task") == task}
        b = {key(r): r for r in theirs if r["task"] == task}
        diffs = [k for k in sorted(set(a) | set(b), key=lambda k: (k[1] if k[1] is not None else -1, k[2] or 0))
                 if k not in a or k not in b or not same(a[k], b[k])]
        docs = len({k[1] for k in b})
        print(f"{task:22s} {docs:6d} {len(b):9d} {len(a):7d} {len(diffs):12d}")
        total_docs, total_req, total_ours, total_diff = (total_docs + docs, total_req + len(b), total_ours + len(a),
                                                         total_diff + len(diffs))
        for k in diffs[:SHOW]:
            shown.append(f"{task} doc {k[1]} idx {k[2]}:\n  assay:   {json.dumps(a.get(k), ensure_ascii=False)[:600]}"
                         f"\n  lm-eval: {json.dumps(b.get(k), ensure_ascii=False)[:600]}")
    other = [r for r in ours if r.get("task") not in tasks]
    if other:
        total_diff += len(other)
        shown.append(f"assay printed {len(other)} requests of other tasks, e.g. {json.dumps(other[0])[:300]}")
    print(f"{'total':22s} {total_docs:6d} {total_req:9d} {total_ours:7d} {total_diff:12d}")
    return total_diff, shown


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--assay", default=os.environ.get("ASSAY") or str(ROOT / "target" / "release" / "assay"))
    ap.add_argument("--tasks", default=DEFAULT_TASKS, help=f"comma-separated (default {DEFAULT_TASKS})")
    ap.add_argument("--docs", type=int, help="documents per evaluation split, generated (default: the committed fixtures)")
    ap.add_argument("--skip-assay", action="store_true", help="run the mock and lm-eval only")
    ap.add_argument("--redirect-lfs", action="store_true", help="the mock answers parquet downloads with a 302")
    ap.add_argument("--shard-rows", type=int, help="the mock splits every split into files of this many rows")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in HUB_TASKS]
    if unknown:
        raise SystemExit(f"no Hub fixture for {unknown}; known: {', '.join(HUB_TASKS)}")
    if not args.skip_assay and not Path(args.assay).is_file():
        raise SystemExit(f"no assay binary at {args.assay}: build it (cargo build --release) and set ASSAY, "
                         "or pass --skip-assay")

    work = scratch("hub-parity-")
    mock = None
    try:
        if args.docs:
            fixtures = work / "fixtures"
            make_data.write(fixtures, docs=args.docs)
        else:
            fixtures = HUB_FIXTURES
        print(f"hub parity: {', '.join(tasks)}")
        print(f"documents: {fixtures if not args.docs else f'{args.docs} per evaluation split (make_data.py --docs)'}")
        print(f"machine: {machine()}; load {load()}")
        mock_args = (["--redirect-lfs"] if args.redirect_lfs else []) + \
                    (["--shard-rows", str(args.shard_rows)] if args.shard_rows else [])
        mock, url, started = start_mock(fixtures, mock_args)
        print(f"mock hub: {url} (parquet written and hashed in {started:.2f} s)")

        tasks_dir = lmeval_tasks_dir()
        ours: list[dict] = []
        failed = False
        if not args.skip_assay:
            env = dict(os.environ, HF_ENDPOINT=url, ASSAY_DATASETS_CACHE=str(work / "assay-datasets"))
            env.pop("HF_HUB_OFFLINE", None)
            cmd = [args.assay, "requests", "--include-path", str(tasks_dir), "--tasks", ",".join(tasks)]
            cold = timed(cmd, check=False, env=env, cwd=work)
            served = get_json(f"{url}/_mock/stats")
            print(f"assay requests (fresh cache): {cold.wall:7.2f} s wall {cold.cpu:7.2f} s cpu; "
                  f"the mock served {served['files_served']} files ({served['bytes_served']:,} bytes), "
                  f"{served['api_calls']} API calls")
            if cold.proc.returncode != 0:
                print(f"assay failed (exit {cold.proc.returncode}):\n{cold.proc.stderr[-3000:]}")
                failed = True
            else:
                ours = [json.loads(line) for line in cold.proc.stdout.splitlines() if line.strip()]
                warm = timed(cmd, check=False, env=env, cwd=work)
                again = get_json(f"{url}/_mock/stats")["files_served"] - served["files_served"]
                print(f"assay requests (warm cache):  {warm.wall:7.2f} s wall {warm.cpu:7.2f} s cpu; "
                      f"the mock served {again} more files")
                if warm.proc.returncode != 0 or warm.proc.stdout != cold.proc.stdout:
                    print("assay's output on the warm cache differs from its first run")
                    failed = True
                if again:
                    print("assay downloaded again although its cache held every file")
                    failed = True

        lm = run_lmeval(tasks, fixtures, [], work / "lmeval")
        print(f"lm_eval --model dummy (local JSON): {lm.wall:7.2f} s wall {lm.cpu:7.2f} s cpu")
        problems = check_mock(url, tasks, lm)
        for p in problems:
            print(p)
        failed = failed or bool(problems)

        if args.skip_assay:
            print(f"\n(assay skipped) lm-eval: {len(lm.hashes)} documents, {len(lm.requests)} requests")
            return 1 if failed else 0
        n_diff, shown = compare(tasks, ours, lm.requests)
        for s in shown:
            print(s)
        if n_diff or failed:
            print(f"\nFAIL: {n_diff} requests differ" + ("; see the messages above" if failed else ""))
            return 1
        print(f"\nOK: all {len(lm.requests)} requests identical")
        return 0
    finally:
        if mock is not None:
            mock.terminate()
            try:
                mock.wait(timeout=10)
            except subprocess.TimeoutExpired:
                mock.kill()
        if args.keep:
            print(f"kept {work}")
        else:
            remove(work)


if __name__ == "__main__":
    sys.exit(main())
