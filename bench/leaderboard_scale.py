#!/usr/bin/env python3
"""Leaderboard at scale: wall time, CPU time and peak memory of `assay leaderboard`
over synthetic runs of 250, 500 and 1,000 variants.

For each size N, `examples/synthetic_runs.rs` writes (once; kept for later runs
with the same parameters) --tasks invented multiple-choice tasks of --docs
documents each and a suite listing them, N variant manifests (the first half
originals, the rest each derived from an earlier variant, so every derived
variant has a paired delta to its base), and one run per variant planned,
scored and written by assay's own engine and results writer, as `assay run`
writes them. Then, for each size:

  * cold: `assay leaderboard` into an empty --out folder;
  * warm: the same command again into the same --out (the site may reuse
    per-run files it wrote before);

each timed as one child process (wall, user+sys CPU and peak RSS from wait4).
It prints a table, the seconds per 1,000 runs at each size, how time grows
with the number of runs (time per run at the largest size over that at the
smallest, and the log-log slope: 1.0 is linear), and the target check: under
15 s and 3 GB at 1,000 variants. Timings are informative; nothing is asserted
except that the leaderboard ran and counted every variant.
Python 3 standard library only.

    python3 bench/leaderboard_scale.py                           # 250, 500, 1000 variants x 50 tasks x 500 docs
    python3 bench/leaderboard_scale.py --sizes 20,40,80 --tasks 5 --docs 100   # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import ROOT, Timing, load, machine, timed  # noqa: E402

TARGET_SECONDS = 15.0
TARGET_BYTES = 3e9  # 3 GB
TARGET_SIZE = 1000
SUITE = "bench"
# What the generator writes into a size's folder, and what this script adds.
OWN_ENTRIES = {"tasks", "variants", "results", "out", "synthetic.json"}


def parameters(args, size: int) -> dict:
    return {"variants": size, "tasks": args.tasks, "docs": args.docs, "seed": args.seed}


def folder_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def read_through(path: Path) -> None:
    """Reads every file under `path` once, untimed, so that every size is
    measured with its runs in the page cache, however long ago they were
    written."""
    for root, _, files in os.walk(path):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                while fh.read(1 << 20):
                    pass


def generate(args, size: int) -> tuple[Path, float | None]:
    """The data folder for `size` variants, generated unless it is there already
    with the same parameters: (folder, seconds generating or None if reused)."""
    work = Path(args.workdir) / str(size)
    marker = work / "synthetic.json"
    wanted = parameters(args, size)
    if marker.is_file() and not args.regenerate:
        try:
            found = json.loads(marker.read_text())
        except (OSError, ValueError):
            found = {}
        if all(found.get(k) == v for k, v in wanted.items()):
            return work, None
    if work.exists():
        strangers = {p.name for p in work.iterdir()} - OWN_ENTRIES
        if strangers:
            raise SystemExit(f"{work} holds files this bench did not write ({', '.join(sorted(strangers))}); "
                             f"give another --workdir")
        shutil.rmtree(work)
    cmd = [args.generator, str(work), "--variants", str(size), "--tasks", str(args.tasks),
           "--docs", str(args.docs), "--seed", str(args.seed)]
    print(f"generating {size} variants x {args.tasks} tasks x {args.docs} documents into {work} ...",
          flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-5000:])
        raise SystemExit(f"failed (exit {proc.returncode}): {' '.join(cmd)}")
    return work, seconds


def leaderboard_command(assay: str, work: Path) -> list[str]:
    return [assay, "leaderboard", "--results", str(work / "results"), "--variants", str(work / "variants"),
            "--suite", str(work / "tasks" / "suites" / f"{SUITE}.yaml"), "--include-path", str(work / "tasks"),
            "--out", str(work / "out")]


def check_counted(t: Timing, size: int, out: Path) -> None:
    counted = re.search(r"(\d+) variants?\b|(\d+) variant\(s\)", t.proc.stdout)
    if counted:
        n = int(counted.group(1) or counted.group(2))
        if n != size:
            raise SystemExit(f"the leaderboard counted {n} variants, not {size}:\n{t.proc.stdout[-2000:]}")
    else:
        print(f"warning: the leaderboard's output does not say how many variants it counted "
              f"(expected {size})", file=sys.stderr)
    if not out.is_dir() or not any(out.iterdir()):
        raise SystemExit(f"the leaderboard wrote nothing into {out}")


def mib(t: Timing) -> float:
    return t.peak_rss_mb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="250,500,1000", help="variants (runs) per size, comma-separated")
    ap.add_argument("--tasks", type=int, default=50)
    ap.add_argument("--docs", type=int, default=500, help="documents per task")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", default="/tmp/lb-scale", help="one folder per size: WORKDIR/<size>")
    ap.add_argument("--regenerate", action="store_true", help="write the runs again even if present")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--assay", default=str(ROOT / "target" / "release" / "assay"))
    ap.add_argument("--generator", default=str(ROOT / "target" / "release" / "examples" / "synthetic_runs"))
    args = ap.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if not sizes or min(sizes) < 1:
        raise SystemExit("--sizes: give positive numbers of variants, e.g. 250,500,1000")

    if not args.skip_build:
        build = ["cargo", "build", "--release", "--example", "synthetic_runs", "--bin", "assay"]
        proc = subprocess.run(build, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-5000:])
            raise SystemExit(f"failed: {' '.join(build)}")

    data = []
    for size in sizes:
        work, seconds = generate(args, size)
        data.append((size, work, seconds, folder_bytes(work / "results")))

    rows = []  # (size, kind, timing, load)
    for size, work, _, _ in data:
        read_through(work / "results")
        cmd = leaderboard_command(args.assay, work)
        out = work / "out"
        shutil.rmtree(out, ignore_errors=True)
        for kind in ("cold", "warm"):
            ld = load()
            t = timed(cmd)
            check_counted(t, size, out)
            rows.append((size, kind, t, ld))

    version = subprocess.run([args.assay, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"assay leaderboard over synthetic runs: {args.tasks} tasks x {args.docs:,} documents per run "
          f"({args.tasks * args.docs:,} samples.parquet rows), half the variants derived from another")
    print(f"machine: {machine()}")
    print(f"version: {version}")
    print(f"command: {' '.join(leaderboard_command(args.assay, data[-1][1]))}")
    print()
    for size, work, seconds, size_bytes in data:
        made = "reused" if seconds is None else f"generated in {seconds:.1f} s"
        print(f"{size:>6,} runs: {size_bytes / 1e6:,.0f} MB of runs in {work / 'results'} ({made})")
    print()
    print(f"{'runs':>6}  {'build':6}{'wall s':>9}{'cpu s':>9}{'peak MiB':>10}{'s/1000 runs':>13}{'load':>7}")
    for size, kind, t, ld in rows:
        print(f"{size:>6,}  {kind:6}{t.wall:9.2f}{t.cpu:9.2f}{mib(t):10.0f}{t.wall / size * 1000:13.2f}{ld:>7}")
    print()
    if len(sizes) > 1:
        for kind in ("cold", "warm"):
            runs = [r for r in rows if r[1] == kind]
            (n0, _, t0, _), (n1, _, t1, _) = runs[0], runs[-1]
            ratio = (t1.wall / n1) / (t0.wall / n0)
            slope = math.log(t1.wall / t0.wall) / math.log(n1 / n0)
            print(f"{kind}: time per run at {n1:,} / at {n0:,} = {ratio:.2f} "
                  f"(log-log slope {slope:.2f}; 1.00 is linear)")
    at = TARGET_SIZE if TARGET_SIZE in sizes else sizes[-1]
    note = "" if at == TARGET_SIZE else f" (measured at {at:,}, not {TARGET_SIZE:,})"
    for size, kind, t, _ in rows:
        if size != at:
            continue
        peak = t.peak_rss_mb * 2**20
        ok = t.wall < TARGET_SECONDS and peak < TARGET_BYTES
        print(f"target{note}, {kind}: {t.wall:.2f} s (< {TARGET_SECONDS:.0f} s), "
              f"{peak / 1e9:.2f} GB peak (< {TARGET_BYTES / 1e9:.0f} GB): {'met' if ok else 'MISSED'}")
    print("peak: the leaderboard process's peak resident set; load: 1-minute load average before the run")
    print("every size's runs were read once, untimed, before its first measurement (page cache warm)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
