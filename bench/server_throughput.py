#!/usr/bin/env python3
"""Client cost of scoring through an OpenAI-compatible server: assay's
`openai-completions` backend against lm-eval's `local-completions` (with
`num_concurrent`) and `gguf` models, on a mock server that answers at once.

In one run:

  * starts assay's mock server (`examples/mock_openai.rs`, release build): it
    answers every completions request at once with a deterministic fake
    model, and reports through `GET /v1/stats` how many requests it answered
    and the most it had in flight;
  * writes a multiple-choice task (invented arithmetic, 4 choices, 0-shot;
    --docs documents, default 2,500 = 10,000 log-likelihood requests) and, for
    lm-eval's `local-completions`, which tokenizes locally, a small BPE
    tokenizer trained on the task's text (HF `tokenizers`, saved as a
    `PreTrainedTokenizerFast` folder);
  * times the whole process of each client (wall, user+sys CPU):
      assay run --model openai-completions:URL --model-arg concurrency=N --no-cache
      lm_eval --model local-completions (num_concurrent=N, tokenized requests)
      lm_eval --model gguf (one request at a time; it has no concurrency)
  * prints requests/second, CPU seconds per 10,000 requests, the ratio of
    lm-eval's CPU to assay's, and the most requests each kept in flight.

Timings are informative only. Needs lm-eval with its API extras (`pip install
lm-eval tenacity transformers aiohttp`), found at $LM_EVAL or
lm_eval on PATH, with `tokenizers` importable by this script's
interpreter or lm-eval's.

    cargo build --release --bin assay --example mock_openai
    python3 bench/server_throughput.py                 # 2,500 docs, concurrency 8
    python3 bench/server_throughput.py --docs 250 --concurrency 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import ROOT, load, machine, timed  # noqa: E402
from requests_throughput import TASK, lmeval_env, write_task  # noqa: E402

TOKENIZER_SCRIPT = r"""
import json, sys
from pathlib import Path
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
from transformers import PreTrainedTokenizerFast
task_dir, out = Path(sys.argv[1]), sys.argv[2]
texts = []
for name in task_dir.glob("*.jsonl"):
    for line in name.read_text().splitlines():
        d = json.loads(line)
        texts.append("Question: " + d["question"] + "\nAnswer: " + " ".join(d["choices"]))
tok = Tokenizer(models.BPE(unk_token="<unk>"))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=["<unk>", "<s>", "</s>"],
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
tok.train_from_iterator(texts, trainer)
PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                        unk_token="<unk>").save_pretrained(out)
"""


def stats(base: str) -> dict:
    with urllib.request.urlopen(f"{base}/stats", timeout=10) as r:
        return json.loads(r.read())


def run_clients(args, base: str, docs: int, lm_eval: str, lm_python: str) -> list:
    """Runs every client on a task of `docs` documents: [(label, timing, server stats, load)]."""
    host = base.removesuffix("/v1")
    n_requests = docs * 4
    rows = []
    with tempfile.TemporaryDirectory(prefix="assay-server-bench-") as tmp:
        work = Path(tmp)
        task_dir = work / "task"
        task_dir.mkdir()
        write_task(task_dir, docs)
        tokenizer = work / "tokenizer"
        subprocess.run([lm_python, "-c", TOKENIZER_SCRIPT, str(task_dir), str(tokenizer)], check=True,
                       capture_output=True)

        stats(base)
        ld = load()
        t = timed([args.assay, "run", "--quiet", "--no-cache", "--model", f"openai-completions:{base}",
                   "--model-arg", f"concurrency={args.concurrency}", "--tasks", TASK, "--include-path",
                   str(task_dir), "--num-fewshot", "0", "--variant", "bench", "--out", str(work / "assay")])
        s = stats(base)
        (run_json,) = (work / "assay").glob("bench/*/run.json")
        # assay sends identical requests once (the generated questions repeat a few).
        s["expected"] = json.loads(run_json.read_text())["assay"]["requests"]["sent"]
        rows.append((f"assay (concurrency={args.concurrency})", t, s, ld))

        ld = load()
        model_args = (f"model=mock-model,base_url={base}/completions,num_concurrent={args.concurrency},"
                      f"tokenizer={tokenizer},tokenizer_backend=huggingface,tokenized_requests=True,"
                      "max_retries=3")
        t = timed([lm_eval, "run", "--model", "local-completions", "--model_args", model_args,
                   "--tasks", TASK, "--include_path", str(task_dir), "--num_fewshot", "0",
                   "--output_path", str(work / "lmeval")],
                  cwd=task_dir, env=lmeval_env(work / "hf-cache-1"))
        s = stats(base)
        s["expected"] = n_requests
        rows.append((f"lm-eval local-completions (num_concurrent={args.concurrency})", t, s, ld))

        if not args.skip_gguf:
            ld = load()
            t = timed([lm_eval, "run", "--model", "gguf", "--model_args", f"base_url={host}",
                       "--tasks", TASK, "--include_path", str(task_dir), "--num_fewshot", "0",
                       "--output_path", str(work / "lmeval-gguf")],
                      cwd=task_dir, env=lmeval_env(work / "hf-cache-2"))
            s = stats(base)
            s["expected"] = n_requests
            rows.append(("lm-eval gguf", t, s, ld))
    for label, t, s, _ in rows:
        if s["answered"] < s["expected"]:
            raise SystemExit(f"{label}: the server answered {s['answered']} of {s['expected']} requests")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=2500, help="documents (4 requests each)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--assay", default=str(ROOT / "target" / "release" / "assay"))
    ap.add_argument("--mock", default=str(ROOT / "target" / "release" / "examples" / "mock_openai"))
    ap.add_argument("--skip-gguf", action="store_true", help="leave out lm-eval's gguf model")
    ap.add_argument("--latency-docs", type=int, default=250,
                    help="documents for the run against a server with 20 ms latency (0: none)")
    ap.add_argument("--baseline-docs", type=int, default=25,
                    help="a second, small run whose costs are subtracted: start-up and task loading")
    args = ap.parse_args()
    lm_eval = os.environ.get("LM_EVAL", "lm_eval")
    lm_python = str(Path(lm_eval).with_name("python"))
    n_requests = args.docs * 4
    mock = subprocess.Popen([args.mock], stdout=subprocess.PIPE, text=True)
    try:
        base = mock.stdout.readline().strip()
        full = run_clients(args, base, args.docs, lm_eval, lm_python)
        small = run_clients(args, base, args.baseline_docs, lm_eval, lm_python)
    finally:
        mock.kill()
    slow_rows = []
    if args.latency_docs:
        # A server that takes 20 ms per answer: does each client keep N in flight?
        slow = subprocess.Popen([args.mock, "127.0.0.1:0", "20"], stdout=subprocess.PIPE, text=True)
        try:
            slow_base = slow.stdout.readline().strip()
            skip = args.skip_gguf
            args.skip_gguf = True
            slow_rows = run_clients(args, slow_base, args.latency_docs, lm_eval, lm_python)
            args.skip_gguf = skip
        finally:
            slow.kill()

    version = subprocess.run([args.assay, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{n_requests:,} log-likelihood requests ({args.docs:,} documents x 4 choices, 0-shot) "
          f"to a mock server that answers at once")
    print(f"machine: {machine()}")
    print(f"versions: {version}; lm-eval from {lm_eval}")
    print()
    print(f"{'client':48}{'wall s':>9}{'cpu s':>9}{'answered':>10}{'req/s':>9}{'cpu s/10k':>11}"
          f"{'marginal':>10}{'in flight':>11}{'load':>7}")
    marginal = []
    for (label, t, s, ld), (_, t0, s0, _) in zip(full, small):
        answered = s["answered"]
        per10k = t.cpu / answered * 10_000
        extra = (t.cpu - t0.cpu) / (answered - s0["answered"]) * 10_000
        marginal.append(extra)
        print(f"{label:48}{t.wall:9.2f}{t.cpu:9.2f}{answered:10,d}{answered / t.wall:9,.0f}{per10k:11.2f}"
              f"{extra:10.2f}{s['max_in_flight']:11d}{ld:>7}")
    print()
    for (label, t, s, _), extra in zip(full[1:], marginal[1:]):
        whole = (t.cpu / s["answered"]) / (full[0][1].cpu / full[0][2]["answered"])
        print(f"{label}: {whole:.1f}x assay's CPU per request (whole runs), {extra / marginal[0]:.1f}x marginal")
    print(f"cpu s/10k: the whole process's CPU per 10,000 answered requests; marginal: the same for the"
          f" requests beyond a {args.baseline_docs}-document run (start-up, task loading and writing"
          f" subtracted)")
    print("answered: requests the server answered (all of each client's: checked); in flight: the most"
          " it had at once")
    if slow_rows:
        print(f"\nwith 20 ms per answer, {args.latency_docs * 4:,} requests (concurrency {args.concurrency}):")
        for label, t, s, _ in slow_rows:
            print(f"{label:48}{t.wall:9.2f} s wall{s['answered'] / t.wall:9,.0f} req/s"
                  f"{s['max_in_flight']:4d} in flight")
    return 0


if __name__ == "__main__":
    sys.exit(main())
