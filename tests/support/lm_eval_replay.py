"""lm-eval's own scores for the answers an assay run recorded.

Run with the Python that has lm-eval:

    python lm_eval_replay.py RUN_DIR TASK[,TASK...] INCLUDE_PATH
    python lm_eval_replay.py RUN_DIR TASK[,TASK...] --hub-fixtures FIXTURES

A stand-in model answers lm-eval's requests with the responses in
RUN_DIR/samples.parquet, looked up by the request's text, so lm-eval's
evaluator (its prompts, filters, process_results, metrics and aggregations)
scores exactly the answers assay scored. A request assay did not send is an
error, and so is one assay sent that lm-eval did not ask: the prompts must
agree too. With --hub-fixtures, TASK is one of
lm-eval's own tasks, read from the fixtures as tests/golden/lmeval_overlay.py
arranges.

Prints {"TASK": {"METRIC,FILTER": VALUE, ...}, ...} (NaN as null).
"""

import json
import math
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def answers(run_dir):
    import pyarrow.parquet as pq

    found = {}
    table = pq.read_table(Path(run_dir) / "samples.parquet", columns=["arguments", "resps"])
    for arguments, resps in zip(table.column("arguments").to_pylist(), table.column("resps").to_pylist()):
        for args, resp in zip(json.loads(arguments), json.loads(resps)):
            found[key(args)] = resp
    return found


def key(args):
    """A request's identity: its texts (generation options aside)."""
    return json.dumps([a for a in args if isinstance(a, str)], ensure_ascii=False)


def replay_model(recorded):
    from lm_eval.api.model import LM

    class Replay(LM):
        asked = set()

        def answer(self, request):
            args = list(request.args)
            self.asked.add(key(args))
            try:
                return recorded[key(args)]
            except KeyError:
                raise SystemExit(f"assay sent no request {json.dumps(args, ensure_ascii=False)[:300]}")

        def loglikelihood(self, requests):
            return [(float(a[0]), bool(a[1])) for a in map(self.answer, requests)]

        def loglikelihood_rolling(self, requests):
            return [float(a[0]) for a in map(self.answer, requests)]

        def generate_until(self, requests):
            return [str(a) for a in map(self.answer, requests)]

    return Replay()


def main(argv):
    run_dir, tasks = argv[0], argv[1].split(",")
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    names = tasks
    if argv[2] == "--hub-fixtures":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "golden"))
        from lmeval_overlay import TEMP_PREFIX, lmeval_tasks_dir, write_overlays

        include = Path(tempfile.mkdtemp(prefix="replay-")) / "overlays"
        write_overlays(include, tasks, lmeval_tasks_dir(), Path(argv[3]).resolve())
        names = [TEMP_PREFIX + t for t in tasks]
    else:
        include = Path(argv[2])
    recorded = answers(run_dir)
    model = replay_model(recorded)
    results = simple_evaluate(
        model=model,
        tasks=names,
        task_manager=TaskManager(include_path=str(include)),
        bootstrap_iters=0,
    )["results"]
    unasked = set(recorded) - model.asked
    if unasked:
        raise SystemExit(f"assay sent {len(unasked)} request(s) lm-eval did not ask, e.g. {sorted(unasked)[0][:300]}")
    out = {}
    for task, name in zip(tasks, names):
        out[task] = {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in results[name].items()
            if "," in k and "_stderr" not in k
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
