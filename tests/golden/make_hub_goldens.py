#!/usr/bin/env python3
"""Regenerate the golden files of the Hugging Face Hub tasks (tests/golden/hub/).

Run with the Python of a venv that has lm-eval installed (not needed by CI):

    $LMEVAL_VENV/bin/python tests/golden/make_hub_goldens.py                 # every run
    $LMEVAL_VENV/bin/python tests/golden/make_hub_goldens.py hellaswag.n10   # only the named runs
    $LMEVAL_VENV/bin/python tests/golden/make_hub_goldens.py --list          # the runs and their flags

Each run is lm-eval's own task YAML, unchanged but for where the data comes from: an
overlay that includes it and reads tests/fixtures/hub/<owner>--<name>/<config>/*.jsonl
as local JSON (see lmeval_overlay.py), run offline as

    lm_eval run --model dummy --tasks hubfx_<task> --include_path <overlays> --log_samples
                --output_path <tmp> [extra]

Output per run NAME, in the format of tests/golden/README.md, with the task names
rewritten back to lm-eval's (hubfx_hellaswag -> hellaswag):

  NAME.requests.jsonl  task, doc_id, request_type, idx, arguments; sorted
  NAME.hashes.jsonl    task, doc_id, doc_hash, prompt_hash, target_hash, target (first filter)
  NAME.docs.jsonl      task, doc_id, doc: the document as lm-eval saw it (after process_docs)
  NAME.meta.json       lm-eval's results json (configs, n-shot, versions, ...), the command,
                       the overlays, the Hub dataset of each task, package versions

Absolute paths are written relative to the repository, lm-eval's tasks folder as
`<lm_eval>/tasks/`, the overlay folder as `<overlays>`, and function reprs lose their
memory address, so that a second run writes the same bytes.
"""

from __future__ import annotations

import json
import platform
import re
import sys
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lmeval_overlay import (  # noqa: E402
    GOLDEN, HUB_FIXTURES, HUB_TASKS, LEADERBOARD_BBH, LM_EVAL_FOLDER_ONLY, LEADERBOARD_MATH, PYTHON_HOOK_TASKS, ROOT, TEMP_PREFIX,
    lmeval_tasks_dir, remove, rename_tasks, run_lmeval, scratch,
)

OUT = GOLDEN / "hub"

# (golden name, tasks, extra lm_eval arguments). Plain names use the YAML's num_fewshot;
# `.nK` runs use the Open LLM Leaderboard v1 shot count where it differs from the YAML
# (gsm8k's YAML already says 5 and truthfulqa's 0, so those have no extra run). The Open LLM
# Leaderboard v2's YAMLs already hold its shot counts (BBH 3, MATH 4, IFEval 0): their `.n0`
# runs check the zero-shot prompts too.
RUNS: list[tuple[str, list[str], list[str]]] = [
    *[(t, [t], []) for t in HUB_TASKS],
    ("arc_challenge.n25", ["arc_challenge"], ["--num_fewshot", "25"]),
    ("hellaswag.n10", ["hellaswag"], ["--num_fewshot", "10"]),
    ("winogrande.n5", ["winogrande"], ["--num_fewshot", "5"]),
    ("mmlu.n5", ["mmlu_abstract_algebra", "mmlu_college_biology"], ["--num_fewshot", "5"]),
    ("leaderboard_bbh.n0", [f"leaderboard_bbh_{t}" for t in LEADERBOARD_BBH], ["--num_fewshot", "0"]),
    ("leaderboard_math_hard.n0", [f"leaderboard_math_{t}_hard" for t in LEADERBOARD_MATH], ["--num_fewshot", "0"]),
]

META_KEYS = ["configs", "n-shot", "versions", "higher_is_better", "n-samples",
             "group_subtasks", "groups", "config", "lm_eval_version"]


def scrub(obj, replacements: list[tuple[str, str]]):
    if isinstance(obj, str):
        # lm-eval logs a hook as its Python source: keep only its name (the
        # source is lm-eval's, not this project's).
        hook = re.match(r"def ([A-Za-z_][A-Za-z0-9_]*)\(", obj)
        if hook:
            return f"<python function {hook.group(1)}>"
        for old, new in replacements:
            obj = obj.replace(old, new)
        return re.sub(r" at 0x[0-9a-f]+>", ">", obj)
    if isinstance(obj, list):
        return [scrub(x, replacements) for x in obj]
    if isinstance(obj, dict):
        return {k: scrub(v, replacements) for k, v in obj.items()}
    return obj


def dump_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def make(name: str, tasks: list[str], extra: list[str]) -> None:
    work = scratch(f"hub-golden-{name}-")
    try:
        run = run_lmeval(tasks, HUB_FIXTURES, extra, work)
        dump_jsonl(OUT / f"{name}.requests.jsonl", run.requests)
        dump_jsonl(OUT / f"{name}.hashes.jsonl", run.hashes)
        dump_jsonl(OUT / f"{name}.docs.jsonl", run.docs)

        # Longest paths first: the overlay folder lies in a temp folder, lm-eval's in a venv.
        replacements = sorted([
            (str(work / "overlays"), "<overlays>"),
            (str(lmeval_tasks_dir()) + "/", "<lm_eval>/tasks/"),
            (str(ROOT) + "/", ""),
        ], key=lambda r: -len(r[0]))
        meta = {k: run.results[k] for k in META_KEYS if k in run.results}
        meta["tasks"] = tasks
        meta["extra_args"] = extra
        if any(t in PYTHON_HOOK_TASKS for t in tasks):
            meta["assay_args"] = ["--python-hooks"]
        if any(t in LM_EVAL_FOLDER_ONLY for t in tasks):
            meta["assay_configs"] = False
        meta["hub_datasets"] = {t: {"dataset_path": HUB_TASKS[t].repo, "dataset_name": HUB_TASKS[t].config,
                                    "lm_eval_yaml": "<lm_eval>/tasks/" + HUB_TASKS[t].yaml} for t in tasks}
        cmd = ["lm_eval", *run.command[1:]]
        cmd[cmd.index("--output_path") + 1] = "<tmp>"
        meta["lm_eval_command"] = cmd
        meta["overlays"] = {f"{TEMP_PREFIX}{t}.yaml": run.overlays[t] for t in tasks}
        meta["environment"] = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
                               "HF_DATASETS_CACHE": "<fresh temporary folder>"}
        meta["package_versions"] = {"lm_eval": version("lm_eval"), "datasets": version("datasets"),
                                    "pyarrow": version("pyarrow"), "jinja2": version("jinja2"),
                                    "python": platform.python_version()}
        meta = scrub(meta, replacements)
        # Task names inside the configs and results go back to lm-eval's; the command and
        # the overlays keep the temporary names they were run with.
        for key in META_KEYS:
            if key in meta:
                meta[key] = rename_tasks(meta[key], tasks)
        (OUT / f"{name}.meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
        print(f"{name:28s} {run.wall:6.1f} s wall  {len(run.hashes):4d} docs  {len(run.requests):5d} requests",
              flush=True)
    finally:
        remove(work)


def main(argv: list[str]) -> int:
    if "--list" in argv:
        for name, tasks, extra in RUNS:
            print(f"{name:28s} {','.join(tasks):45s} {' '.join(extra)}")
        return 0
    wanted = set(argv)
    unknown = wanted - {r[0] for r in RUNS}
    if unknown:
        raise SystemExit(f"unknown runs: {sorted(unknown)} (see --list)")
    OUT.mkdir(parents=True, exist_ok=True)
    for name, tasks, extra in RUNS:
        if not wanted or name in wanted:
            make(name, tasks, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
