"""Runs lm-eval's own task YAML on local JSONL files instead of the Hugging Face Hub.

Shared by tests/golden/make_hub_goldens.py and bench/hub_parity.py; run with the Python
of a venv that has lm-eval installed (lm-eval is found through `import lm_eval`, or
$LM_EVAL_TASKS for its tasks folder and $LM_EVAL for its CLI).

For every task it writes an overlay YAML into a temporary folder,

    include: <lm_eval>/tasks/<family>/<task>.yaml     # lm-eval's file, absolute path, unchanged
    task: hubfx_<task>                               # a name no built-in task has
    dataset_path: json
    dataset_name: null
    dataset_kwargs: {data_files: {<split>: <absolute path of tests/fixtures/hub/...jsonl>}}

lm-eval merges includes shallowly with the including file's keys winning, and resolves
each `!function` against the folder of the YAML that contains it, so the hooks
(hellaswag's process_docs, winogrande's doc_to_*, wikitext's detokenizer, ...) are
lm-eval's own. The results are renamed back to lm-eval's task names.
"""

from __future__ import annotations

import glob
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent
ROOT = GOLDEN.parent.parent
HUB_FIXTURES = ROOT / "tests" / "fixtures" / "hub"
TEMP_PREFIX = "hubfx_"


@dataclass(frozen=True)
class HubTask:
    yaml: str
    """lm-eval's YAML, relative to its tasks folder."""
    repo: str
    """dataset_path in that YAML."""
    config: str
    """dataset_name in that YAML; `default` where it is null."""


# The Open LLM Leaderboard v2's subtasks (lm-eval's leaderboard/bbh_mc and leaderboard/math):
# a BBH subtask's name is its dataset config; MATH maps the name in leaderboard_math_<name>_hard
# to its dataset config.
LEADERBOARD_BBH = [
    "boolean_expressions", "causal_judgement", "date_understanding", "disambiguation_qa", "formal_fallacies",
    "geometric_shapes", "hyperbaton", "logical_deduction_five_objects", "logical_deduction_seven_objects",
    "logical_deduction_three_objects", "movie_recommendation", "navigate", "object_counting", "penguins_in_a_table",
    "reasoning_about_colored_objects", "ruin_names", "salient_translation_error_detection", "snarks",
    "sports_understanding", "temporal_sequences", "tracking_shuffled_objects_five_objects",
    "tracking_shuffled_objects_seven_objects", "tracking_shuffled_objects_three_objects", "web_of_lies",
]
LEADERBOARD_MATH = {
    "algebra": "algebra", "counting_and_prob": "counting_and_probability", "geometry": "geometry",
    "intermediate_algebra": "intermediate_algebra", "num_theory": "number_theory", "prealgebra": "prealgebra",
    "precalculus": "precalculus",
}

HUB_TASKS: dict[str, HubTask] = {
    "arc_easy": HubTask("arc/arc_easy.yaml", "allenai/ai2_arc", "ARC-Easy"),
    "arc_challenge": HubTask("arc/arc_challenge.yaml", "allenai/ai2_arc", "ARC-Challenge"),
    "hellaswag": HubTask("hellaswag/hellaswag.yaml", "Rowan/hellaswag", "default"),
    "winogrande": HubTask("winogrande/default.yaml", "allenai/winogrande", "winogrande_xl"),
    "truthfulqa_mc1": HubTask("truthfulqa/truthfulqa_mc1.yaml", "truthfulqa/truthful_qa", "multiple_choice"),
    "truthfulqa_mc2": HubTask("truthfulqa/truthfulqa_mc2.yaml", "truthfulqa/truthful_qa", "multiple_choice"),
    "truthfulqa_gen": HubTask("truthfulqa/truthfulqa_gen.yaml", "truthfulqa/truthful_qa", "generation"),
    "gsm8k": HubTask("gsm8k/gsm8k.yaml", "openai/gsm8k", "main"),
    "piqa": HubTask("piqa/piqa.yaml", "baber/piqa", "default"),
    "mmlu_abstract_algebra": HubTask("mmlu/default/mmlu_abstract_algebra.yaml", "cais/mmlu", "abstract_algebra"),
    "mmlu_college_biology": HubTask("mmlu/default/mmlu_college_biology.yaml", "cais/mmlu", "college_biology"),
    "boolq": HubTask("super_glue/boolq/default.yaml", "aps/super_glue", "boolq"),
    "lambada_openai": HubTask("lambada/lambada_openai.yaml", "EleutherAI/lambada_openai", "default"),
    "wikitext": HubTask("wikitext/wikitext.yaml", "EleutherAI/wikitext_document_level", "wikitext-2-raw-v1"),
    "leaderboard_mmlu_pro": HubTask("leaderboard/mmlu_pro/mmlu_pro.yaml", "TIGER-Lab/MMLU-Pro", "default"),
    **{f"leaderboard_gpqa_{t}": HubTask(f"leaderboard/gpqa/gpqa_{t}_zeroshot.yaml", "Idavidrein/gpqa",
                                        f"gpqa_{t}") for t in ("main", "diamond", "extended")},
    **{f"leaderboard_musr_{t}": HubTask(f"leaderboard/musr/musr_{t}.yaml", "TAUR-Lab/MuSR", "default")
       for t in ("murder_mysteries", "object_placements", "team_allocation")},
    # Tasks whose hooks run in Python (PYTHON_HOOK_TASKS below).
    "drop": HubTask("drop/default.yaml", "EleutherAI/drop", "default"),
    "copa": HubTask("super_glue/copa/default.yaml", "aps/super_glue", "copa"),
    "wsc": HubTask("super_glue/wsc/default.yaml", "aps/super_glue", "wsc.fixed"),
    "super_glue-wsc-t5-prompt": HubTask("super_glue/wsc/t5-prompt.yaml", "aps/super_glue", "wsc.fixed"),
    "super_glue-cb-t5-prompt": HubTask("super_glue/cb/t5-prompt.yaml", "aps/super_glue", "cb"),
    "logiqa": HubTask("logiqa/logiqa.yaml", "EleutherAI/logiqa", "logiqa"),
    "mathqa": HubTask("mathqa/mathqa.yaml", "regisss/math_qa", "default"),
    "race": HubTask("race/race.yaml", "EleutherAI/race", "high"),
    "xwinograd_en": HubTask("xwinograd/xwinograd_en.yaml", "Muennighoff/xwinograd", "en"),
    "pubmedqa": HubTask("pubmedqa/pubmedqa.yaml", "bigbio/pubmed_qa", "pubmed_qa_labeled_fold0_source"),
    "mutual": HubTask("mutual/mutual.yaml", "EleutherAI/mutual", "mutual"),
    "webqs": HubTask("webqs/webqs.yaml", "stanfordnlp/web_questions", "default"),
    **{f"bbh_zeroshot_{t}": HubTask(f"bbh/zeroshot/{t}.yaml", "SaylorTwift/bbh", t)
       for t in ("sports_understanding", "date_understanding")},
    "leaderboard_ifeval": HubTask("leaderboard/ifeval/ifeval.yaml", "wis-k/instruction-following-eval", "default"),
    **{f"leaderboard_math_{t}_hard": HubTask(f"leaderboard/math/math_{t}.yaml", "DigitalLearningGmbH/MATH-lighteval",
                                             config) for t, config in LEADERBOARD_MATH.items()},
    # The Open LLM Leaderboard v2's BBH: plain YAML, no hooks.
    **{f"leaderboard_bbh_{t}": HubTask(f"leaderboard/bbh_mc/{t}.yaml", "SaylorTwift/bbh", t) for t in LEADERBOARD_BBH},
}


# Tasks whose hooks have no native port in assay: their goldens are checked with
# `assay requests --python-hooks` (the meta's `assay_args`).
PYTHON_HOOK_TASKS: set[str] = {
    "drop", "copa", "wsc", "super_glue-wsc-t5-prompt", "super_glue-cb-t5-prompt", "logiqa", "mathqa", "race",
    "xwinograd_en", "pubmedqa", "mutual", "webqs", "bbh_zeroshot_sports_understanding",
    "bbh_zeroshot_date_understanding", "leaderboard_ifeval",
    *(f"leaderboard_math_{t}_hard" for t in LEADERBOARD_MATH),
}


# Tasks that assay has no config of its own for, read only from lm-eval's folder:
# BBH's few-shot examples are written in lm-eval's YAML (benchmark items this
# project does not copy), and the other Python-hook tasks are lm-eval's alone.
# (assay's own IFEval and MATH configs name lm-eval's installed Python.)
# Their goldens say `"assay_configs": false`.
LM_EVAL_FOLDER_ONLY: set[str] = {f"leaderboard_bbh_{t}" for t in LEADERBOARD_BBH} | (
    PYTHON_HOOK_TASKS - {"leaderboard_ifeval", *(f"leaderboard_math_{t}_hard" for t in LEADERBOARD_MATH)})


def lmeval_tasks_dir() -> Path:
    if os.environ.get("LM_EVAL_TASKS"):
        return Path(os.environ["LM_EVAL_TASKS"]).resolve()
    import lm_eval  # noqa: PLC0415 (only the golden and bench scripts need it)
    return Path(lm_eval.__file__).resolve().parent / "tasks"


def lmeval_cli() -> str:
    return os.environ.get("LM_EVAL") or str(Path(sys.executable).parent / "lm_eval")


def lmeval_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(cache),
        "TOKENIZERS_PARALLELISM": "false",
    })
    return env


def check_source(task: str, tasks_dir: Path) -> None:
    """lm-eval's YAML must still name the task and Hub dataset the overlay stands in for."""
    from lm_eval.tasks._yaml_loader import load_yaml  # noqa: PLC0415

    spec = HUB_TASKS[task]
    cfg = load_yaml(tasks_dir / spec.yaml, resolve_func=False)
    found = (cfg.get("task"), cfg.get("dataset_path"), cfg.get("dataset_name") or "default")
    if found != (task, spec.repo, spec.config):
        raise SystemExit(f"{spec.yaml}: expected task {task} on {spec.repo} {spec.config}, found {found}")


def fixture_splits(fixtures: Path, spec: HubTask) -> dict[str, Path]:
    folder = fixtures / spec.repo.replace("/", "--") / spec.config
    splits = {p.stem: p.resolve() for p in sorted(folder.glob("*.jsonl"))}
    if not splits:
        raise SystemExit(f"no fixture files in {folder}")
    return splits


def overlay(task: str, tasks_dir: Path, fixtures: Path) -> dict:
    spec = HUB_TASKS[task]
    return {
        "include": str(tasks_dir / spec.yaml),
        "task": TEMP_PREFIX + task,
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": {s: str(p) for s, p in fixture_splits(fixtures, spec).items()}},
    }


def write_overlays(folder: Path, tasks: list[str], tasks_dir: Path, fixtures: Path) -> dict[str, dict]:
    """One YAML per task (JSON is valid YAML, and needs no quoting rules)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for task in tasks:
        check_source(task, tasks_dir)
        cfg = overlay(task, tasks_dir, fixtures)
        (folder / f"{cfg['task']}.yaml").write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n",
                                                    encoding="utf-8")
        out[task] = cfg
    return out


def request_type(output_type: str) -> str:
    return "loglikelihood" if output_type == "multiple_choice" else output_type


def first_filter(cfg: dict) -> str:
    fl = cfg.get("filter_list")
    return fl[0]["name"] if fl else "none"


@dataclass
class LmevalRun:
    command: list[str]
    results: dict
    overlays: dict[str, dict]
    requests: list[dict] = field(default_factory=list)
    hashes: list[dict] = field(default_factory=list)
    docs: list[dict] = field(default_factory=list)
    wall: float = 0.0
    cpu: float = 0.0


def run_lmeval(tasks: list[str], fixtures: Path, extra: list[str], work: Path) -> LmevalRun:
    """`lm_eval run --model dummy` on the overlays; what it logged, under lm-eval's task names."""
    tasks_dir = lmeval_tasks_dir()
    include = work / "overlays"
    overlays = write_overlays(include, tasks, tasks_dir, fixtures)
    out = work / "out"
    cmd = [lmeval_cli(), "run", "--model", "dummy", "--tasks", ",".join(TEMP_PREFIX + t for t in tasks),
           "--include_path", str(include), "--log_samples", "--output_path", str(out), *extra]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=work, env=lmeval_env(work / "hf_datasets_cache"), capture_output=True, text=True)
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-5000:])
        raise SystemExit(f"lm_eval failed (exit {proc.returncode}): {' '.join(cmd)}")
    (results_path,) = glob.glob(str(out / "*" / "results_*.json"))
    results = json.loads(Path(results_path).read_text(encoding="utf-8"))
    run = LmevalRun(cmd, results, overlays, wall=wall,
                    cpu=(ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime))
    for temp, cfg in results["configs"].items():
        task = temp[len(TEMP_PREFIX):]
        (spath,) = [p for p in glob.glob(str(out / "*" / "samples_*.jsonl"))
                    if Path(p).name.startswith(f"samples_{temp}_")]
        fkey = first_filter(cfg)
        rtype = request_type(cfg["output_type"])
        for line in Path(spath).read_text(encoding="utf-8").splitlines():
            s = json.loads(line)
            if s["filter"] != fkey:
                continue
            args = s["arguments"]
            for i in range(len(args)):
                a = args[f"gen_args_{i}"]
                run.requests.append({"task": task, "doc_id": s["doc_id"], "request_type": rtype, "idx": i,
                                     "arguments": [a[f"arg_{j}"] for j in range(len(a))]})
            run.hashes.append({"task": task, "doc_id": s["doc_id"], "doc_hash": s["doc_hash"],
                               "prompt_hash": s["prompt_hash"], "target_hash": s["target_hash"],
                               "target": s["target"]})
            run.docs.append({"task": task, "doc_id": s["doc_id"], "doc": s["doc"]})
    run.requests.sort(key=lambda r: (r["task"], r["doc_id"], r["idx"]))
    run.hashes.sort(key=lambda r: (r["task"], r["doc_id"]))
    run.docs.sort(key=lambda r: (r["task"], r["doc_id"]))
    return run


def rename_tasks(obj, tasks: list[str]):
    """Every temporary task name, in keys and values, back to lm-eval's."""
    names = {TEMP_PREFIX + t: t for t in tasks}
    if isinstance(obj, str):
        return names.get(obj, re.sub(rf"\b{TEMP_PREFIX}({'|'.join(map(re.escape, tasks))})\b", r"\1", obj))
    if isinstance(obj, list):
        return [rename_tasks(x, tasks) for x in obj]
    if isinstance(obj, dict):
        return {rename_tasks(k, tasks): rename_tasks(v, tasks) for k, v in obj.items()}
    return obj


def scratch(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
