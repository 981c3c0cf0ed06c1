#!/usr/bin/env python3
"""Per-item log-likelihoods: assay's embedded backend against llama-cpp-python's
in-process `Llama(..., logits_all=True)` on the same GGUF file.

Runs `assay run --model llama:MODEL` on multiple-choice tasks (default: the
built-in assay_arithmetic, assay_ordering and assay_dates), takes the first
--items log-likelihood requests from its samples.parquet, and recomputes each
with llama-cpp-python: the tokens split as lm-eval splits them (trailing
context whitespace moved to the continuation, BOS, the split at the context's
token count), one evaluation of tokens[:-1] with logits at every position, the
log-softmax of each continuation token summed, and is_greedy. Prints the
largest absolute difference and exits 1 if it exceeds --tolerance (1e-3).
Flash attention is off on both sides.

Needs Python packages llama-cpp-python, numpy and pyarrow, and a build of assay.

    python bench/check_loglik.py --model gemma-3-270m-q4_k_m.gguf
    python bench/check_loglik.py --model M.gguf --include-path bigbench/benchmark_tasks \\
        --tasks salient_translation_error_detection --limit 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import ROOT  # noqa: E402
from mc_speed import Tokens, need  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="the GGUF file")
    ap.add_argument("--tasks", default="assay_arithmetic,assay_ordering,assay_dates")
    ap.add_argument("--include-path", type=Path)
    ap.add_argument("--limit", type=int, default=12, help="documents per task given to assay")
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--tolerance", type=float, default=1e-3)
    ap.add_argument("--assay", default=str(ROOT / "target" / "release" / "assay"))
    ap.add_argument("--model-arg", action="append", default=[],
                    help="extra llama backend options for assay, e.g. alone=true")
    args = ap.parse_args()
    llama_cpp = need("llama_cpp", "llama-cpp-python")
    np = need("numpy", "numpy")
    pq = need("pyarrow.parquet", "pyarrow")

    with tempfile.TemporaryDirectory(prefix="assay-check-") as tmp:
        out = Path(tmp)
        cmd = [args.assay, "run", "--quiet", "--model", f"llama:{args.model}", "--model-arg",
               f"n_ctx={args.n_ctx}", "--model-arg", f"threads={args.threads}", "--tasks", args.tasks,
               "--limit", str(args.limit), "--variant", "check", "--out", str(out)]
        if args.include_path:
            cmd += ["--include-path", str(args.include_path)]
        for extra in args.model_arg:
            cmd += ["--model-arg", extra]
        env = {**os.environ, "ASSAY_CACHE_DIR": str(out / "cache")}  # a fresh response cache
        subprocess.run(cmd, check=True, cwd=ROOT, env=env)
        (path,) = out.glob("check/*/samples.parquet")
        rows = pq.read_table(path).to_pylist()

    items = []
    for row in sorted(rows, key=lambda r: (r["task"], r["doc_id"])):
        for (context, continuation), (ll, greedy) in zip(json.loads(row["arguments"]), json.loads(row["resps"])):
            items.append((row["task"], row["doc_id"], context, continuation, ll, greedy))
    items = items[: args.items]
    if len(items) < args.items:
        raise SystemExit(f"assay produced {len(items)} items; raise --limit")

    tok = Tokens(llama_cpp, args.model)
    llm = llama_cpp.Llama(model_path=str(args.model), logits_all=True, n_ctx=args.n_ctx, n_batch=512,
                          n_threads=args.threads, flash_attn=False, verbose=False)
    worst = (0.0, None)
    diffs = []
    greedy_mismatch = 0
    for task, doc_id, context, continuation, ll, greedy in items:
        tokens, n_context = tok.split(context, continuation)
        llm.reset()
        llm.eval(tokens[:-1])
        logits = np.asarray(llm.scores[n_context - 1: len(tokens) - 1], dtype=np.float64)
        peak = logits.max(axis=1, keepdims=True)
        logprobs = logits - peak - np.log(np.exp(logits - peak).sum(axis=1, keepdims=True))
        targets = tokens[n_context:]
        ref = float(sum(logprobs[i, t] for i, t in enumerate(targets)))
        ref_greedy = all(int(logits[i].argmax()) == t for i, t in enumerate(targets))
        greedy_mismatch += ref_greedy != greedy
        diff = abs(ref - ll)
        diffs.append(diff)
        if diff >= worst[0]:
            worst = (diff, (task, doc_id, continuation, ll, ref))

    diff, (task, doc_id, continuation, ll, ref) = worst
    print(f"{len(items)} items from {args.tasks} on {args.model.name}"
          + (f" (assay --model-arg {' '.join(args.model_arg)})" if args.model_arg else ""))
    print(f"largest |assay - llama-cpp-python| = {diff:.3e} (task {task}, document {doc_id}, "
          f"continuation {continuation!r}: assay {ll:.6f}, llama-cpp-python {ref:.6f})")
    diffs.sort()
    within = sum(d <= args.tolerance for d in diffs)
    print(f"median difference {diffs[len(diffs) // 2]:.3e}; {within} of {len(items)} items within "
          f"{args.tolerance:g}")
    print(f"is_greedy differs on {greedy_mismatch} of {len(items)} items")
    ok = diff <= args.tolerance and greedy_mismatch == 0
    print("PASS" if ok else f"FAIL (tolerance {args.tolerance})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
