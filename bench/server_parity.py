#!/usr/bin/env python3
"""Per-item log-likelihoods through a real OpenAI-compatible server: assay's
`openai-completions` backend against lm-eval's `gguf` model, both talking to
llama-cpp-python's server on the same model; and both against assay's
embedded `llama` backend on the same file.

  * writes the tiny random-weight GGUF the tests use (`examples/tiny_gguf.rs`),
    so the server answers quickly;
  * serves it with `python -m llama_cpp.server --model tiny.gguf --logits_all
    true` (flash attention off, its default);
  * runs the built-in multiple-choice tasks (default assay_arithmetic,
    assay_ordering, assay_dates; --limit documents each) with
      assay run --model openai-completions:http://127.0.0.1:PORT/v1
      lm_eval run --model gguf --model_args base_url=http://127.0.0.1:PORT --log_samples
      assay run --model llama:tiny.gguf
  * prints, per task, the largest difference between the tools' per-item
    log-likelihoods and each tool's accuracy.

Needs llama-cpp-python with its server extras and lm-eval (at $LM_EVAL or
lm_eval on PATH); pyarrow for this script's interpreter.

    cargo build --release --bin assay --example tiny_gguf
    python bench/server_parity.py --limit 40
"""

from __future__ import annotations

import argparse
import ast
import glob
import importlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import ROOT  # noqa: E402
from requests_throughput import lmeval_env  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}); see its log")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the server did not answer {url}")


def assay_items(pq, out: Path) -> dict:
    (path,) = out.glob("*/*/samples.parquet")
    items = {}
    for row in pq.read_table(path).to_pylist():
        for idx, (ll, greedy) in enumerate(json.loads(row["resps"])):
            items[(row["task"], row["doc_id"], idx)] = (ll, greedy)
    acc = {}
    for row in pq.read_table(path).to_pylist():
        acc.setdefault(row["task"], []).append(row["acc"])
    return items, {t: sum(v) / len(v) for t, v in acc.items()}


def lmeval_items(out: Path, task: str) -> tuple[dict, float]:
    (path,) = glob.glob(str(out / "**" / f"samples_{task}_*.jsonl"), recursive=True)
    items, acc = {}, []
    for line in Path(path).read_text().splitlines():
        s = json.loads(line)
        for idx, resp in enumerate(s["resps"]):
            # lm-eval logs each response as a list holding the tuple, which
            # may be written as its Python repr.
            value = resp[0] if isinstance(resp, list) and len(resp) == 1 else resp
            if isinstance(value, str):
                value = ast.literal_eval(value)
            ll, greedy = float(value[0]), value[1] in (True, "True")
            items[(task, s["doc_id"], idx)] = (ll, greedy)
        acc.append(s["acc"])
    return items, sum(acc) / len(acc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default="assay_arithmetic,assay_ordering,assay_dates")
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--assay", default=str(ROOT / "target" / "release" / "assay"))
    ap.add_argument("--tiny-gguf", default=str(ROOT / "target" / "release" / "examples" / "tiny_gguf"))
    ap.add_argument("--server-python", default=sys.executable, help="a Python with llama-cpp-python[server]")
    args = ap.parse_args()
    pq = importlib.import_module("pyarrow.parquet")
    lm_eval = os.environ.get("LM_EVAL", "lm_eval")
    tasks = args.tasks.split(",")

    with tempfile.TemporaryDirectory(prefix="assay-parity-") as tmp:
        work = Path(tmp)
        model = work / "tiny.gguf"
        subprocess.run([args.tiny_gguf, str(model)], check=True, capture_output=True)
        port = free_port()
        log = open(work / "server.log", "w")
        server = subprocess.Popen(
            [args.server_python, "-m", "llama_cpp.server", "--model", str(model), "--logits_all", "true",
             "--n_ctx", "1024", "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(f"http://127.0.0.1:{port}/v1/models", server)
            env = {**os.environ, "ASSAY_CACHE_DIR": str(work / "cache")}
            common = ["--tasks", args.tasks, "--limit", str(args.limit), "--quiet", "--no-cache"]
            subprocess.run([args.assay, "run", "--model", f"openai-completions:http://127.0.0.1:{port}/v1",
                            "--model-arg", "concurrency=1", "--out", str(work / "server"), *common],
                           check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
            for task in tasks:
                subprocess.run([lm_eval, "run", "--model", "gguf", "--model_args",
                                f"base_url=http://127.0.0.1:{port}", "--tasks", task, "--include_path",
                                str(ROOT / "tasks" / task), "--limit", str(args.limit), "--log_samples",
                                "--output_path", str(work / "lmeval" / task)],
                               check=True, cwd=ROOT / "tasks" / task, env=lmeval_env(work / f"hf-{task}"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finally:
            server.kill()
            log.close()
        subprocess.run([args.assay, "run", "--model", f"llama:{model}", "--model-arg", "n_ctx=1024",
                        "--out", str(work / "embedded"), *common],
                       check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)

        served, served_acc = assay_items(pq, work / "server")
        embedded, embedded_acc = assay_items(pq, work / "embedded")
        print(f"tiny random-weight GGUF served by llama-cpp-python; --limit {args.limit} per task")
        print(f"{'task':18}{'items':>7}{'max |assay - lm-eval|':>23}{'max |served - embedded|':>25}"
              f"{'acc assay':>11}{'acc lm-eval':>13}{'acc embedded':>14}")
        worst = 0.0
        notes = []
        for task in tasks:
            reference, ref_acc = lmeval_items(work / "lmeval" / task, task)
            keys = sorted(k for k in reference if k[0] == task)
            missing = [k for k in keys if k not in served]
            if missing:
                raise SystemExit(f"assay has no answer for {missing[:3]}")
            d_lm = max(abs(served[k][0] - reference[k][0]) for k in keys)
            d_emb = max(abs(served[k][0] - embedded[k][0]) for k in keys)
            greedy_differ = sum(served[k][1] != reference[k][1] for k in keys)
            worst = max(worst, d_lm)
            # lm-eval's gguf model splits context from continuation by
            # text_offset >= len(context); llama-cpp-python's offsets run one
            # character ahead for SentencePiece models, so it also counts the
            # context's last token. Then its score differs from assay's by
            # one value per document, the same for every option.
            offsets = {}
            for k in keys:
                offsets.setdefault(k[1], []).append(reference[k][0] - served[k][0])
            constant = sum(max(v) - min(v) < 1e-4 for v in offsets.values())
            notes.append(f"{task}: lm-eval minus assay is one constant per document on {constant} "
                         f"of {len(offsets)} documents")
            print(f"{task:18}{len(keys):7d}{d_lm:23.2e}{d_emb:25.2e}{served_acc[task]:11.4f}{ref_acc:13.4f}"
                  f"{embedded_acc[task]:14.4f}" + (f"  (is_greedy differs on {greedy_differ})" if greedy_differ else ""))
        print(f"\nlargest difference from lm-eval's gguf model: {worst:.2e}")
        print("\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
