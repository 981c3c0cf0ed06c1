#!/usr/bin/env python3
"""Multiple-choice scoring on a GGUF model: assay's embedded backend against
llama.cpp's own `llama-perplexity --multiple-choice` and the token-throughput
floor, on the same documents, in one run.

For a BIG-bench multiple-choice task (default `date_understanding`, the first
--limit documents, default 300):

  * assay: `assay run --model llama:MODEL --tasks TASK --limit N`, timed (wall,
    CPU, peak memory of the process);
  * llama-perplexity: the same documents written in its binary task format
    (question + " " + answer reproduces assay's context + continuation
    exactly), `llama-perplexity --multiple-choice -kvu -np 128 -c N_CTX/128
    -fa off` (it sizes its KV cache and logits buffer as np x c = N_CTX
    tokens, packing up to 128 sequences per batch), timed the same way;
  * the floor: the tokens that must be evaluated when the options of a
    document share their context (the distinct prefixes of every option's
    `tokens[:-1]`, BOS included, as assay and lm-eval split them), divided by
    llama-bench's prompt-processing rate (`-p 512 -n 0 -fa 0`, mean of 3).
    It leaves out the cost of the logits rows a scorer must compute (one
    262k-wide row per scored position for Gemma 3), so no scorer reaches it
    on short contexts; a second floor adds them, each row costed as
    n_vocab x n_embd multiply-adds over the model's other weights per token;
  * accuracy: each tool's accuracy, and per item whether both chose the same
    option. llama-perplexity scores an option by its mean log-probability per
    token after the options' common prefix, assay (like lm-eval) by the sum
    over the continuation; where the option token counts differ, assay's
    choice under llama-perplexity's rule is computed from its own per-option
    log-likelihoods, so the comparison is of the same rule.

Timings are informative only. Needs Python packages llama-cpp-python (its
tokenizer, `vocab_only`) and pyarrow, a release build of assay, and
`llama-perplexity` + `llama-bench` built from llama.cpp (see bench/README.md).

    python bench/mc_speed.py --model gemma-3-270m-q4_k_m.gguf \\
        --bigbench bigbench/benchmark_tasks --llama-bin llama.cpp/build/bin
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import ROOT, load, machine, timed  # noqa: E402


def need(module: str, package: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SystemExit(f"this benchmark needs the Python package {package}: pip install {package}")


def requests_by_doc(assay: str, include: Path, task: str, limit: int) -> dict[int, list[tuple[str, str]]]:
    """assay's requests for the task, as (context, continuation) per option, by doc_id."""
    out = subprocess.run(
        [assay, "requests", "--include-path", str(include), "--tasks", task, "--limit", str(limit)],
        check=True, capture_output=True, text=True,
    ).stdout
    docs: dict[int, list[tuple[str, str]]] = {}
    for line in out.splitlines():
        r = json.loads(line)
        if r["request_type"] != "loglikelihood":
            raise SystemExit(f"{task} is not a multiple-choice task (it sends {r['request_type']})")
        docs.setdefault(r["doc_id"], []).append(tuple(r["arguments"]))
    return docs


class Tokens:
    """Token sequences as lm-eval's loglikelihood builds them: trailing context
    whitespace moved to the continuation, context and context+continuation
    tokenized separately with BOS, the split at the context's length."""

    def __init__(self, llama_cpp, model: Path):
        self.llm = llama_cpp.Llama(model_path=str(model), vocab_only=True, verbose=False)

    def encode(self, text: str) -> list[int]:
        # special=True: text that spells a special or user-defined token is
        # that token, as HF tokenizers, llama-cpp-python's server and assay
        # read prompts.
        return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    def split(self, context: str, continuation: str) -> tuple[list[int], int]:
        """(all tokens, number of context tokens)."""
        moved = len(context) - len(context.rstrip())
        if moved:
            continuation = context[-moved:] + continuation
            context = context[:-moved]
        return self.encode(context + continuation), len(self.encode(context))


def common_prefix(seqs: list[list[int]]) -> int:
    n = 0
    for column in zip(*seqs):
        if any(t != column[0] for t in column):
            break
        n += 1
    return n


def floor_counts(options: list[tuple[list[int], int]]) -> tuple[int, int]:
    """(tokens to evaluate, logits rows) for one document's options with shared
    prefixes: every option is fed without its last token; the distinct
    prefixes are the evaluated tokens, the ones ending at or after the context
    boundary need logits."""
    fed = set()
    rows = set()
    for tokens, n_ctx in options:
        for k in range(1, len(tokens)):
            fed.add(tuple(tokens[:k]))
            if k >= n_ctx:
                rows.add(tuple(tokens[:k]))
    return len(fed), len(rows)


def perplexity_split(context: str, continuation: str) -> tuple[str, str]:
    """llama-perplexity joins question + " " + answer; cut at the last space of
    the context so that join is exactly context + continuation."""
    full = context + continuation
    at = context.rfind(" ")
    if at < 0:
        raise SystemExit(f"context {context!r} has no space; llama-perplexity cannot be given the same text")
    return full[:at], full[at + 1:]


def write_mc_file(path: Path, docs: list[tuple[str, list[str], list[int]]]) -> None:
    """llama-perplexity's multiple-choice binary format: u32 task count, u32
    offset per task, then per task the question and two answer sets (mc1 with
    labels, mc2 empty); strings are u32 length + bytes, little-endian."""

    def string(s: str) -> bytes:
        b = s.encode("utf-8")
        return struct.pack("<I", len(b)) + b

    bodies = []
    for question, answers, labels in docs:
        body = string(question) + struct.pack("<I", len(answers))
        body += b"".join(string(a) for a in answers)
        body += struct.pack(f"<{len(labels)}i", *labels)
        body += struct.pack("<I", 0)
        bodies.append(body)
    offset = 4 + 4 * len(bodies)
    positions = []
    for body in bodies:
        positions.append(offset)
        offset += len(body)
    path.write_bytes(struct.pack("<I", len(bodies)) + struct.pack(f"<{len(bodies)}I", *positions) + b"".join(bodies))


def perplexity_choices(log: str, n: int) -> list[bool]:
    """Per-item correctness from llama-perplexity's running accuracy lines
    ("<items done>\\t<accuracy x 100>")."""
    acc = {}
    for m in re.finditer(r"^(\d+)\t(\d+\.\d{8})$", log, re.M):
        acc[int(m.group(1))] = float(m.group(2))
    if len(acc) != n:
        raise SystemExit(f"llama-perplexity reported {len(acc)} of {n} items:\n{log[-3000:]}")
    correct = [round(acc[i] * i / 100) for i in range(1, n + 1)]
    return [c - p == 1 for c, p in zip(correct, [0] + correct[:-1])]


def llama_bench(binary: Path, model: Path, threads: int) -> tuple[float, int]:
    """(prompt-processing tokens/s at 512, the model's parameter count)."""
    out = subprocess.run(
        [str(binary), "-m", str(model), "-p", "512", "-n", "0", "-t", str(threads), "-fa", "0", "-r", "3", "-o", "json"],
        check=True, capture_output=True, text=True,
    ).stdout
    (row,) = [r for r in json.loads(out) if r.get("n_prompt") == 512]
    return float(row["avg_ts"]), int(row["model_n_params"])


def head_cost_ratio(llm, n_params: int) -> float:
    """The cost of one logits row (an n_vocab x n_embd product) over the cost
    of one token through the rest of the network (its other weights; the
    embedding lookup is free). Tied embeddings (one n_vocab x n_embd matrix
    for input and output, as Gemma 3) are assumed when the parameter count
    has room for only one such matrix."""
    arch = llm.metadata["general.architecture"]
    n_vocab, n_embd = llm.n_vocab(), int(llm.metadata[f"{arch}.embedding_length"])
    head = n_vocab * n_embd
    tied = n_params < 2 * head + head // 10
    body = n_params - head * (1 if tied else 2)
    return head / body


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="the GGUF file")
    ap.add_argument("--bigbench", type=Path, required=True, help="BIG-bench's benchmark_tasks folder")
    ap.add_argument("--task", default="date_understanding")
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--llama-bin", type=Path, required=True, help="folder with llama-perplexity and llama-bench")
    ap.add_argument("--assay", default=str(ROOT / "target" / "release" / "assay"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--skip-perplexity", action="store_true", help="time assay and the floor only")
    args = ap.parse_args()
    llama_cpp = need("llama_cpp", "llama-cpp-python")
    pq = need("pyarrow.parquet", "pyarrow")

    with tempfile.TemporaryDirectory(prefix="assay-mc-") as tmp:
        work = Path(tmp)
        include = work / "tasks"
        include.mkdir()
        (include / args.task).symlink_to((args.bigbench / args.task).resolve())
        docs = requests_by_doc(args.assay, include, args.task, args.limit)
        doc_ids = sorted(docs)
        n = len(doc_ids)
        with open(args.model, "rb") as f:  # the same warm page cache for every tool
            while f.read(1 << 24):
                pass

        # The floor.
        tok = Tokens(llama_cpp, args.model)
        split = {d: [tok.split(c, x) for c, x in docs[d]] for d in doc_ids}
        fed_tokens = rows = 0
        for d in doc_ids:
            f, r = floor_counts(split[d])
            fed_tokens += f
            rows += r
        pp_rate, n_params = llama_bench(args.llama_bin / "llama-bench", args.model, args.threads)
        floor = fed_tokens / pp_rate
        ratio = head_cost_ratio(tok.llm, n_params)
        head_floor = (fed_tokens + rows * ratio) / pp_rate

        # assay.
        out = work / "runs"
        ld_assay = load()
        t_assay = timed([
            args.assay, "run", "--quiet", "--model", f"llama:{args.model}", "--model-arg",
            f"threads={args.threads}", "--model-arg", f"n_ctx={args.n_ctx}", "--include-path", str(include),
            "--tasks", args.task, "--limit", str(args.limit), "--variant", "bench", "--out", str(out),
        ], env={**os.environ, "ASSAY_CACHE_DIR": str(work / "cache")})  # a fresh response cache
        (samples_path,) = out.glob("bench/*/samples.parquet")
        samples = {r["doc_id"]: r for r in pq.read_table(samples_path).to_pylist()}
        if sorted(samples) != doc_ids:
            raise SystemExit("assay scored other documents than it listed")

        labels, loglik, assay_correct = {}, {}, {}
        for d in doc_ids:
            row = samples[d]
            scores = json.loads(row["doc"])["target_scores"]
            best = max(scores)
            labels[d] = [int(s == best and s > 0) for s in scores]
            loglik[d] = [r[0] for r in json.loads(row["resps"])]
            assay_correct[d] = row["multiple_choice_grade"] == 1.0

        # assay's choice under llama-perplexity's rule: mean log-probability
        # per token after the options' common prefix. Computable from the sums
        # when that prefix ends exactly at the context, or when it reaches into
        # the continuations and all options score the same number of tokens.
        rule_choice: dict[int, int | None] = {}
        for d in doc_ids:
            seqs = [t for t, _ in split[d]]
            shared = common_prefix(seqs)
            counts = [len(t) - shared for t in seqs]
            n_ctx = split[d][0][1]
            if shared == n_ctx:  # both score exactly the continuation tokens
                means = [ll / c for ll, c in zip(loglik[d], counts)]
            elif shared > n_ctx and len(set(counts)) == 1:  # a shared part, equal counts
                means = loglik[d]
            else:
                rule_choice[d] = None
                continue
            rule_choice[d] = max(range(len(means)), key=lambda i: (means[i], -i))

        t_perp = None
        if not args.skip_perplexity:
            mc = work / "tasks.bin"
            items = []
            for d in doc_ids:
                parts = [perplexity_split(c, x) for c, x in docs[d]]
                if len({q for q, _ in parts}) != 1:
                    raise SystemExit(f"document {d}: its options have different contexts")
                items.append((parts[0][0], [a for _, a in parts], labels[d]))
            write_mc_file(mc, items)
            ld_perp = load()
            t_perp = timed([
                str(args.llama_bin / "llama-perplexity"), "-m", str(args.model), "-bf", str(mc),
                # Its KV cache and logits buffer hold np x c tokens: c per
                # sequence, so the whole batch spans --n-ctx tokens, like assay's.
                "--multiple-choice", "-kvu", "-np", "128", "-c", str(max(1, args.n_ctx // 128)),
                "-t", str(args.threads),
                "-fa", "off",
            ])
            log = t_perp.proc.stdout + t_perp.proc.stderr
            perp_correct = dict(zip(doc_ids, perplexity_choices(log, n)))
            final = re.search(r"Final result: ([\d.]+) \+/- ([\d.]+)", log)

    # Report.
    version = subprocess.run([args.assay, "--version"], capture_output=True, text=True).stdout.strip()
    n_opts = sum(len(docs[d]) for d in doc_ids)
    print(f"{args.task}: {n} documents, {n_opts} options; model {args.model.name}; n_ctx {args.n_ctx}, "
          f"{args.threads} threads")
    print(f"machine: {machine()}")
    print(f"versions: {version}; llama.cpp tools from {args.llama_bin}")
    print()
    print(f"floor: {fed_tokens:,} tokens with shared prefixes / {pp_rate:,.1f} tokens/s "
          f"(llama-bench pp512) = {floor:.2f} s")
    print(f"with the logits rows: {rows:,} rows x {ratio:.2f} token-equivalents each "
          f"(n_vocab x n_embd over the other weights) -> {head_floor:.2f} s")
    print()
    print(f"{'':24}{'wall s':>9}{'cpu s':>9}{'peak MiB':>10}{'x floor':>9}{'x rows floor':>14}{'load':>7}")
    print(f"{'assay run':24}{t_assay.wall:9.2f}{t_assay.cpu:9.2f}{t_assay.peak_rss_mb:10.0f}"
          f"{t_assay.wall / floor:9.2f}{t_assay.wall / head_floor:14.2f}{ld_assay:>7}")
    if t_perp is not None:
        print(f"{'llama-perplexity':24}{t_perp.wall:9.2f}{t_perp.cpu:9.2f}{t_perp.peak_rss_mb:10.0f}"
              f"{t_perp.wall / floor:9.2f}{t_perp.wall / head_floor:14.2f}{ld_perp:>7}")
        print(f"\nassay / llama-perplexity wall: {t_assay.wall / t_perp.wall:.2f}")
    print()
    acc = sum(assay_correct.values()) / n
    print(f"assay accuracy (sum of log-probs, multiple_choice_grade): {acc:.4f} ({sum(assay_correct.values())}/{n})")
    comparable = [d for d in doc_ids if rule_choice[d] is not None]
    rule_correct = {d: labels[d][rule_choice[d]] == 1 for d in comparable}
    if t_perp is not None:
        pc = sum(perp_correct.values())
        print(f"llama-perplexity accuracy (mean log-prob per token): {pc / n:.4f} ({pc}/{n})"
              + (f", reported {final.group(1)} +/- {final.group(2)}" if final else ""))
        same = sum(rule_correct[d] == perp_correct[d] for d in comparable)
        rc = sum(rule_correct.values())
        pc_c = sum(perp_correct[d] for d in comparable)
        print(f"same rule, {len(comparable)} comparable items: assay {rc}/{len(comparable)} correct, "
              f"llama-perplexity {pc_c}/{len(comparable)}; same outcome on {same}/{len(comparable)}")
        differ = [d for d in comparable if rule_correct[d] != perp_correct[d]]
        if differ:
            print(f"items with different outcomes: {differ[:20]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
