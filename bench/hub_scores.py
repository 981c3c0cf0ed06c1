#!/usr/bin/env python3
"""The same numbers as lm-eval: the standard tasks scored by assay with a real
model, and the same model answers scored again by lm-eval's own code.

    ASSAY=target/release/assay $LMEVAL_VENV/bin/python bench/hub_scores.py \\
        --model .demo/gemma-3-270m-q4_k_m.gguf [--docs N] [--tasks LIST]

  * serves the documents (tests/fixtures/hub, or a procedural set of N per
    evaluation split) with bench/mock_hub.py;
  * `assay run --model llama:MODEL --include-path <lm_eval>/tasks --tasks ...`
    with HF_ENDPOINT at the mock: lm-eval's own task YAML, its Python hooks
    run as assay's native ports (hellaswag's process_docs, winogrande's
    doc_to_*, truthfulqa_mc2's process_results, wikitext's detokenizer and
    process_results), scored by assay;
  * lm-eval's `simple_evaluate` on the same documents as local files (lm-eval's
    YAML with the data source swapped, tests/golden/lmeval_overlay.py) with a
    model that answers every request with the log-likelihood or text assay's
    model gave for it (read from the run's samples.parquet): lm-eval then
    scores those answers with its own metrics, filters, aggregations and the
    real Python hooks;
  * prints, per task and metric, both values and their difference; exits 1 if
    any differs by more than 1e-9, or if lm-eval asked for a request assay
    did not send.

So this checks everything after the model: the prompts (a request lm-eval
builds must be one assay answered), the hooks, the metrics and the averages.
That the embedded model's log-likelihoods equal llama.cpp's own is
bench/check_loglik.py's job.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hub_parity import start_mock  # noqa: E402
from timing import ROOT, load, machine  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "golden"))
from lmeval_overlay import (HUB_FIXTURES, HUB_TASKS, TEMP_PREFIX, lmeval_tasks_dir, remove, scratch,  # noqa: E402
                            write_overlays)

sys.path.insert(0, str(HUB_FIXTURES))
import make_data  # noqa: E402

DEFAULT_TASKS = ("arc_easy,arc_challenge,hellaswag,winogrande,truthfulqa_mc1,truthfulqa_mc2,truthfulqa_gen,piqa,boolq,"
                 "mmlu_abstract_algebra,lambada_openai,wikitext,gsm8k")
TOLERANCE = 1e-9


def assay_answers(samples: Path) -> tuple[dict, dict, dict]:
    """What assay's model answered, by request: (context, continuation) ->
    (loglikelihood, is_greedy); text -> rolling loglikelihood; context -> generation."""
    ll, rolling, gen = {}, {}, {}
    for row in pq.read_table(samples).to_pylist():
        args = json.loads(row["arguments"])
        resps = json.loads(row["resps"])
        for a, r in zip(args, resps):
            if isinstance(r, str):
                gen[a[0]] = r
            elif len(a) == 1:
                rolling[a[0]] = float(r[0])
            else:
                ll[(a[0], a[1])] = (float(r[0]), bool(r[1]))
    return ll, rolling, gen


def replay_model(ll: dict, rolling: dict, gen: dict):
    from lm_eval.api.model import LM  # noqa: PLC0415

    class Replay(LM):
        """Answers each request with what assay's model answered to it."""

        missing: list = []

        def _get(self, table, key):
            if key not in table:
                self.missing.append(key)
                return None
            return table[key]

        def loglikelihood(self, requests, disable_tqdm=False):
            out = []
            for r in requests:
                v = self._get(ll, (r.args[0], r.args[1]))
                out.append(v if v is not None else (float("nan"), False))
            return out

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            out = []
            for r in requests:
                v = self._get(rolling, r.args[0])
                out.append(v if v is not None else float("nan"))
            return out

        def generate_until(self, requests, disable_tqdm=False):
            out = []
            for r in requests:
                v = self._get(gen, r.args[0])
                out.append(v if v is not None else "")
            return out

    return Replay()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--assay", default=os.environ.get("ASSAY") or str(ROOT / "target" / "release" / "assay"))
    ap.add_argument("--model", default=str(ROOT / ".demo" / "gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("--tasks", default=DEFAULT_TASKS)
    ap.add_argument("--docs", type=int, help="documents per evaluation split, generated (default: the fixtures)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in HUB_TASKS]
    if unknown:
        raise SystemExit(f"no Hub fixture for {unknown}; known: {', '.join(HUB_TASKS)}")
    for path, what in [(args.assay, "assay binary (cargo build --release; or ASSAY)"),
                       (args.model, "model (scripts/demo.sh fetches the demo model)")]:
        if not Path(path).is_file():
            raise SystemExit(f"no {what} at {path}")

    work = scratch("hub-scores-")
    mock = None
    try:
        fixtures = HUB_FIXTURES
        if args.docs:
            fixtures = work / "fixtures"
            make_data.write(fixtures, docs=args.docs)
        mock, url, _ = start_mock(fixtures, [])
        print(f"hub scores: {', '.join(tasks)}")
        print(f"model: {Path(args.model).name}; documents: "
              f"{'the fixtures' if not args.docs else f'{args.docs} per evaluation split'}")
        print(f"machine: {machine()}; load {load()}")

        tasks_dir = lmeval_tasks_dir()
        env = dict(os.environ, HF_ENDPOINT=url, ASSAY_DATASETS_CACHE=str(work / "datasets"),
                   ASSAY_CACHE_DIR=str(work / "cache"))
        env.pop("HF_HUB_OFFLINE", None)
        t0 = time.monotonic()
        subprocess.run([args.assay, "run", "--quiet", "--model", f"llama:{args.model}", "--include-path",
                        str(tasks_dir), "--tasks", ",".join(tasks), "--out", str(work / "runs")],
                       check=True, env=env, cwd=work, stdout=subprocess.DEVNULL)
        assay_wall = time.monotonic() - t0
        (run_dir,) = [p.parent for p in (work / "runs").glob("*/*/run.json")]
        run = json.loads((run_dir / "run.json").read_text())
        ll, rolling, gen = assay_answers(run_dir / "samples.parquet")
        print(f"assay run: {assay_wall:.1f} s; {len(ll) + len(rolling) + len(gen)} distinct answers")

        from lm_eval import evaluator  # noqa: PLC0415
        from lm_eval.tasks import TaskManager  # noqa: PLC0415
        overlays = work / "overlays"
        write_overlays(overlays, tasks, tasks_dir, fixtures)
        os.environ.update({"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
                           "HF_DATASETS_CACHE": str(work / "hf-cache")})
        model = replay_model(ll, rolling, gen)
        t0 = time.monotonic()
        theirs = evaluator.simple_evaluate(
            model=model, tasks=[TEMP_PREFIX + t for t in tasks],
            task_manager=TaskManager(include_path=str(overlays)), bootstrap_iters=0)
        lm_wall = time.monotonic() - t0
        print(f"lm-eval scoring the same answers: {lm_wall:.1f} s")

        worst, failed = 0.0, False
        print(f"\n{'task':<24} {'metric':<34} {'lm-eval':>14} {'assay':>14} {'|diff|':>10}")
        for task in tasks:
            mine = run["results"].get(task, {})
            for key, value in sorted(theirs["results"][TEMP_PREFIX + task].items()):
                if key in ("alias", "sample_len") or "_stderr" in key or not isinstance(value, (int, float)):
                    continue
                ours = mine.get(key)
                if not isinstance(ours, (int, float)):
                    print(f"{task:<24} {key:<34} {value:>14.8f} {'missing':>14}")
                    failed = True
                    continue
                diff = abs(ours - value)
                worst = max(worst, diff)
                failed |= diff > TOLERANCE
                print(f"{task:<24} {key:<34} {value:>14.8f} {ours:>14.8f} {diff:>10.2e}")
        if model.missing:
            print(f"\nlm-eval asked {len(model.missing)} requests assay did not send, e.g. {model.missing[0]!r:.300}")
            failed = True
        print(f"\nlargest difference: {worst:.2e} (tolerance {TOLERANCE:g})")
        print("FAIL" if failed else "OK: every metric equal")
        return 1 if failed else 0
    finally:
        if mock is not None:
            mock.terminate()
        if args.keep:
            print(f"kept {work}")
        else:
            remove(work)


if __name__ == "__main__":
    sys.exit(main())
