#!/usr/bin/env python3
"""Regenerate the Open LLM Leaderboard v2 chat-template goldens in tests/golden/chat/v2/.

Run with the Python of a venv that has lm-eval installed (not needed by CI):

    $LMEVAL_VENV/bin/python tests/golden/chat/make_v2_chat_goldens.py            # every run
    $LMEVAL_VENV/bin/python tests/golden/chat/make_v2_chat_goldens.py gemma_like.leaderboard_ifeval
    $LMEVAL_VENV/bin/python tests/golden/chat/make_v2_chat_goldens.py --list
    $LMEVAL_VENV/bin/python tests/golden/chat/make_v2_chat_goldens.py --check-plain

The machinery is make_chat_goldens.py's (imported, not copied): its `chatdummy` model,
which renders the templates of templates.json the way transformers v5 does, run in
process through `lm_eval.simple_evaluate(model="chatdummy", apply_chat_template=True,
fewshot_as_multiturn=...)`. The tasks are lm-eval's own leaderboard YAML, unchanged
but for where the data comes from: overlays written by tests/golden/lmeval_overlay.py
(`include:` lm-eval's file by absolute path, `dataset_path: json` on
tests/fixtures/hub/<owner>--<name>/<config>/<split>.jsonl), named `hubfx_<task>`;
the goldens say lm-eval's task names again.

For every run NAME (= TEMPLATE.TASK[.multiturn]) it writes, into v2/,
  NAME.requests.jsonl  one request per line, sorted by (task, doc_id, idx), keys exactly
                       task, doc_id, request_type, idx, arguments (first filter only)
  NAME.meta.json       what tests/chat_template_v2.rs needs to plan the same run: template,
                       tasks, fewshot_as_multiturn, system_instruction, fewshot_random_seed,
                       the overlays (lm-eval's tasks folder written `<lm_eval>/tasks/`, the
                       fixtures relative to the repository), python_hooks (the tasks'
                       hooks need `--python-hooks`); and lm-eval's n-shot and versions.

`--check-plain` runs every task once without a chat template and checks that the
requests are exactly those of tests/golden/hub/<task>.requests.jsonl (made by
`lm_eval run --model dummy` in a fresh process each): the in-process runs see the
same documents and few-shot examples.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import make_chat_goldens as mcg  # noqa: E402  (sets the offline environment, registers chatdummy)
import lmeval_overlay as ov  # noqa: E402

import lm_eval  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

OUT = HERE / "v2"

# The v2 selection: lm-eval's task name -> what the run pins down.
TASKS = {
    "leaderboard_mmlu_pro": "5-shot (first_n from validation), hooks ported natively",
    "leaderboard_gpqa_main": "0-shot, prompt ending in a space, choices shuffled by process_docs",
    "leaderboard_musr_murder_mysteries": "0-shot, long narratives, choices from a list field",
    "leaderboard_bbh_hyperbaton": "3-shot from the YAML's samples, description as system message",
    "leaderboard_bbh_date_understanding": "3-shot from the YAML's samples, six choices",
    "leaderboard_ifeval": "0-shot generate_until, until: [] (Python hooks)",
    "leaderboard_math_algebra_hard": "4-shot from a Python function, doc_to_target switching on few_shot "
                                     "(Python hooks)",
}

TEMPLATES = ("gemma_like", "chatml_like")

# (template, task, fewshot_as_multiturn, suffix for the name)
RUNS: list[tuple[str, str, bool, str]] = [
    (t, task, mt, ".multiturn" if mt else "")
    for t in TEMPLATES for task in TASKS for mt in (False, True)
]


def run_name(template: str, task: str, suffix: str) -> str:
    return f"{template}.{task}{suffix}"


def relative(obj, replacements: list[tuple[str, str]]):
    if isinstance(obj, str):
        for old, new in replacements:
            obj = obj.replace(old, new)
        return obj
    if isinstance(obj, list):
        return [relative(x, replacements) for x in obj]
    if isinstance(obj, dict):
        return {k: relative(v, replacements) for k, v in obj.items()}
    return obj


def requests_of(results: dict) -> list[dict]:
    """The logged requests, under lm-eval's task names, sorted."""
    out = []
    for temp, cfg in results["configs"].items():
        task = temp[len(ov.TEMP_PREFIX):] if temp.startswith(ov.TEMP_PREFIX) else temp
        fkey = mcg.first_filter(cfg)
        rtype = mcg.request_type(cfg["output_type"])
        for s in results["samples"][temp]:
            if s["filter"] != fkey:
                continue
            for i, args in enumerate(s["arguments"]):
                out.append({"task": task, "doc_id": s["doc_id"], "request_type": rtype, "idx": i,
                            "arguments": mcg.jsonable(args)})
    out.sort(key=lambda r: (r["task"], r["doc_id"], r["idx"]))
    return out


def evaluate(tm: TaskManager, task: str, template: str | None, multiturn: bool) -> dict:
    chat = template is not None
    return lm_eval.simple_evaluate(
        model="chatdummy",
        model_args={"template": template or "gemma_like"},
        tasks=[ov.TEMP_PREFIX + task],
        apply_chat_template=chat,
        fewshot_as_multiturn=multiturn if chat else False,
        system_instruction=None,
        log_samples=True,
        task_manager=tm,
    )


def run_one(tm: TaskManager, overlays: dict, replacements, template: str, task: str, multiturn: bool,
            name: str) -> int:
    results = evaluate(tm, task, template, multiturn)
    requests = requests_of(results)
    with (OUT / f"{name}.requests.jsonl").open("w", encoding="utf-8") as f:
        for r in requests:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tasks = [task]
    meta = {
        "template": template,
        "tasks": tasks,
        "apply_chat_template": True,
        "fewshot_as_multiturn": multiturn,
        "system_instruction": None,
        "fewshot_random_seed": 1234,
        "continue_final_message": f"transformers {mcg.TRANSFORMERS}",
        "python_hooks": any(t in ov.PYTHON_HOOK_TASKS for t in tasks),
        "overlays": relative({f"{ov.TEMP_PREFIX}{t}.yaml": overlays[t] for t in tasks}, replacements),
        "hub_datasets": {t: {"dataset_path": ov.HUB_TASKS[t].repo, "dataset_name": ov.HUB_TASKS[t].config,
                             "lm_eval_yaml": "<lm_eval>/tasks/" + ov.HUB_TASKS[t].yaml} for t in tasks},
        "n-shot": ov.rename_tasks(results.get("n-shot"), tasks),
        "versions": ov.rename_tasks(results.get("versions"), tasks),
        "lm_eval_version": results.get("lm_eval_version"),
        "package_versions": {"lm_eval": version("lm_eval"), "datasets": version("datasets"),
                             "jinja2": version("jinja2"), "python": platform.python_version()},
    }
    (OUT / f"{name}.meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
                                           encoding="utf-8")
    return len(requests)


def check_plain(tm: TaskManager) -> int:
    bad = 0
    for task in TASKS:
        ours = requests_of(evaluate(tm, task, None, False))
        golden = ov.GOLDEN / "hub" / f"{task}.requests.jsonl"
        theirs = [json.loads(line) for line in golden.read_text(encoding="utf-8").splitlines() if line.strip()]
        same = ours == theirs
        bad += not same
        print(f"{task:45s} {len(ours):5d} requests  {'same as' if same else 'DIFFERENT FROM'} {golden.name}",
              flush=True)
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    if "--list" in argv:
        for template, task, mt, suffix in RUNS:
            print(f"{run_name(template, task, suffix):60s} {TASKS[task]}")
        return 0
    plain = "--check-plain" in argv
    wanted = {a for a in argv if a != "--check-plain"}
    names = {run_name(t, k, s) for t, k, _, s in RUNS}
    if wanted - names:
        raise SystemExit(f"unknown runs: {sorted(wanted - names)} (see --list)")
    tasks_dir = ov.lmeval_tasks_dir()
    work = Path(tempfile.mkdtemp(prefix="v2-chat-goldens-"))
    try:
        overlays = ov.write_overlays(work / "overlays", list(TASKS), tasks_dir, ov.HUB_FIXTURES)
        # Longest paths first: lm-eval's tasks folder may lie inside the repository.
        replacements = sorted([(str(tasks_dir) + "/", "<lm_eval>/tasks/"), (str(ov.ROOT) + "/", "")],
                              key=lambda r: -len(r[0]))
        tm = TaskManager(include_path=str(work / "overlays"))
        if plain:
            return check_plain(tm)
        OUT.mkdir(parents=True, exist_ok=True)
        for template, task, multiturn, suffix in RUNS:
            name = run_name(template, task, suffix)
            if wanted and name not in wanted:
                continue
            n = run_one(tm, overlays, replacements, template, task, multiturn, name)
            print(f"{name:60s} {n:5d} requests", flush=True)
    finally:
        ov.remove(work)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
