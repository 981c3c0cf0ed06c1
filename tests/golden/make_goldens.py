#!/usr/bin/env python3
"""Regenerate the lm-evaluation-harness golden files in tests/golden/.

Run with the Python of a venv that has lm-eval installed (not needed by CI):

    $LMEVAL_VENV/bin/python tests/golden/make_goldens.py            # every run
    $LMEVAL_VENV/bin/python tests/golden/make_goldens.py fx_jinja   # only the named runs
    $LMEVAL_VENV/bin/python tests/golden/make_goldens.py --repeat 3 # time each run 3 times
                                                                   # (and check determinism)

For every entry of RUNS it calls the real CLI,

    lm_eval run --model dummy --tasks T --include_path DIR --log_samples --output_path TMP [extra]

offline (HF_DATASETS_OFFLINE=1, HF_HUB_OFFLINE=1, a fresh datasets cache per run), then
converts what lm-eval logged into, per run NAME:

  NAME.requests.jsonl  one request per line, sorted by (task, doc_id, idx), keys exactly
                       task, doc_id, request_type, idx, arguments
                       (multiple_choice is sent as loglikelihood; arguments is
                       [context, continuation] | [text] | [context, generation_kwargs])
  NAME.hashes.jsonl    one line per (task, doc), first filter only:
                       task, doc_id, doc_hash, prompt_hash, target_hash, target
                       exactly as lm-eval logged them
  NAME.docs.jsonl      one line per (task, doc): task, doc_id, doc -- the document as
                       lm-eval saw it after Hugging Face `datasets` read the JSON (types
                       coerced, missing keys filled with null, key order of the schema)
  NAME.meta.json       from lm-eval's results json: configs, n-shot, versions,
                       higher_is_better, n-samples, group_subtasks, groups (if any),
                       config, lm_eval_version; absolute paths under the repo are made
                       repo-relative
and timings.json (wall seconds of each lm_eval process, merged into the existing file;
with --repeat N every run is repeated N times and must give identical files).

The dummy model answers loglikelihood with (-random.random(), False), generation with
"lol", rolling with -random.random(); its scores mean nothing, only the requests do.

Relative data_files paths: assay resolves them against the YAML file's folder, lm-eval
(Hugging Face datasets) against the process's working directory.  So fixture runs use
cwd = tests/fixtures/lmeval (every fixture YAML lives there), and built-in runs use a
temporary folder holding a symlink to every tasks/*/*.jsonl by its file name (the names
are unique across the suite), which resolves every task's relative paths at once.
"""

from __future__ import annotations

import glob
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent
ROOT = GOLDEN.parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "lmeval"
TASKS = ROOT / "tasks"
LM_EVAL = Path(sys.executable).parent / "lm_eval"

# (golden name, "fx" | "builtin", tasks argument, extra CLI arguments)
RUNS: list[tuple[str, str, str, list[str]]] = [
    ("fx_mc_zero", "fx", "fx_mc_zero", []),
    ("fx_mc_fewshot_default", "fx", "fx_mc_fewshot_default", []),
    ("fx_mc_fewshot_default.n2_limit5", "fx", "fx_mc_fewshot_default", ["--num_fewshot", "2", "--limit", "5"]),
    ("fx_mc_fewshot_default.seed42", "fx", "fx_mc_fewshot_default", ["--seed", "42"]),
    ("fx_mc_fewshot_first_n", "fx", "fx_mc_fewshot_first_n", []),
    ("fx_mc_fewshot_same_split", "fx", "fx_mc_fewshot_same_split", []),
    ("fx_mc_validation_only", "fx", "fx_mc_validation_only", []),
    ("fx_gen_regex", "fx", "fx_gen_regex", []),
    ("fx_rolling", "fx", "fx_rolling", []),
    ("fx_multi_input", "fx", "fx_multi_input", []),
    ("fx_loglikelihood", "fx", "fx_loglikelihood", []),
    ("fx_include_mid", "fx", "fx_include_mid", []),
    ("fx_include_leaf", "fx", "fx_include_leaf", []),
    ("fx_jinja", "fx", "fx_jinja", []),
    ("fx_choice_dict", "fx", "fx_choice_dict", []),
    ("fx_digit_text", "fx", "fx_digit_text", []),
    ("fx_coerce", "fx", "fx_coerce", []),
    ("fx_gen_prefix", "fx", "fx_gen_prefix", []),
    ("fx_group", "fx", "fx_group", []),
    ("assay_arithmetic", "builtin", "assay_arithmetic", []),
    ("assay_ordering", "builtin", "assay_ordering", []),
    ("assay_counting", "builtin", "assay_counting", []),
    ("assay_dates", "builtin", "assay_dates", []),
    ("assay_wordlist", "builtin", "assay_wordlist", []),
    ("assay_core", "builtin", "assay_core", []),
]

# Group runs whose requests/hashes/docs are not written, only checked to equal the union
# of these per-task goldens (which must be generated first); their meta.json is written.
UNION_OF = {
    "assay_core": ["assay_arithmetic", "assay_ordering", "assay_counting", "assay_dates", "assay_wordlist"],
}

META_KEYS = ["configs", "n-shot", "versions", "higher_is_better", "n-samples",
             "group_subtasks", "groups", "config", "lm_eval_version"]


def relativize(obj, prefix: str):
    if isinstance(obj, str):
        return obj.replace(prefix, "")
    if isinstance(obj, list):
        return [relativize(x, prefix) for x in obj]
    if isinstance(obj, dict):
        return {k: relativize(v, prefix) for k, v in obj.items()}
    return obj


def request_type(output_type: str) -> str:
    return "loglikelihood" if output_type == "multiple_choice" else output_type


def first_filter(cfg: dict) -> str:
    fl = cfg.get("filter_list")
    if fl:
        return fl[0]["name"]
    return "none"


def dump_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def builtin_cwd(tmp: Path) -> Path:
    farm = tmp / "datafarm"
    farm.mkdir()
    for p in sorted(TASKS.glob("*/*.jsonl")):
        link = farm / p.name
        if link.exists():
            raise SystemExit(f"data file name {p.name} is not unique under tasks/")
        link.symlink_to(p)
    return farm


def run_one(name: str, kind: str, tasks: str, extra: list[str]) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"golden-{name}-"))
    try:
        if kind == "fx":
            include, cwd = FIXTURES, FIXTURES
        else:
            include, cwd = TASKS, builtin_cwd(tmp)
        out = tmp / "out"
        env = dict(os.environ)
        env.update({
            "HF_DATASETS_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_DATASETS_CACHE": str(tmp / "hf_datasets_cache"),
            "TOKENIZERS_PARALLELISM": "false",
        })
        cmd = [str(LM_EVAL), "run", "--model", "dummy", "--tasks", tasks,
               "--include_path", str(include), "--log_samples", "--output_path", str(out), *extra]
        load = os.getloadavg()[0]
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        wall = time.monotonic() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-5000:])
            raise SystemExit(f"lm_eval failed for {name} (exit {proc.returncode})")
        (results_path,) = glob.glob(str(out / "*" / "results_*.json"))
        results = json.loads(Path(results_path).read_text(encoding="utf-8"))
        configs = results["configs"]

        requests, hashes, docs = [], [], []
        for task, cfg in configs.items():
            (spath,) = [p for p in glob.glob(str(out / "*" / "samples_*.jsonl"))
                        if Path(p).name.startswith(f"samples_{task}_")]
            fkey = first_filter(cfg)
            rtype = request_type(cfg["output_type"])
            for line in Path(spath).read_text(encoding="utf-8").splitlines():
                s = json.loads(line)
                if s["filter"] != fkey:
                    continue
                args = s["arguments"]
                for i in range(len(args)):
                    a = args[f"gen_args_{i}"]
                    requests.append({"task": task, "doc_id": s["doc_id"], "request_type": rtype, "idx": i,
                                     "arguments": [a[f"arg_{j}"] for j in range(len(a))]})
                hashes.append({"task": task, "doc_id": s["doc_id"], "doc_hash": s["doc_hash"],
                               "prompt_hash": s["prompt_hash"], "target_hash": s["target_hash"],
                               "target": s["target"]})
                docs.append({"task": task, "doc_id": s["doc_id"], "doc": s["doc"]})
        requests.sort(key=lambda r: (r["task"], r["doc_id"], r["idx"]))
        hashes.sort(key=lambda r: (r["task"], r["doc_id"]))
        docs.sort(key=lambda r: (r["task"], r["doc_id"]))
        if name in UNION_OF:
            # Too big to keep twice: check it is exactly the union of the per-task goldens.
            for suffix, rows in (("requests", requests), ("hashes", hashes), ("docs", docs)):
                union = []
                for part in UNION_OF[name]:
                    union += [json.loads(x) for x in
                              (GOLDEN / f"{part}.{suffix}.jsonl").read_text(encoding="utf-8").splitlines()]
                key = (lambda r: (r["task"], r["doc_id"], r["idx"])) if suffix == "requests" else \
                      (lambda r: (r["task"], r["doc_id"]))
                union.sort(key=key)
                if union != rows:
                    raise SystemExit(f"{name}.{suffix} differs from the union of {UNION_OF[name]}")
        else:
            dump_jsonl(GOLDEN / f"{name}.requests.jsonl", requests)
            dump_jsonl(GOLDEN / f"{name}.hashes.jsonl", hashes)
            dump_jsonl(GOLDEN / f"{name}.docs.jsonl", docs)

        meta = {k: results[k] for k in META_KEYS if k in results}
        meta = relativize(meta, str(ROOT) + "/")
        meta["lm_eval_command"] = relativize(
            ["lm_eval", *cmd[1:]], str(ROOT) + "/").copy()
        meta["lm_eval_command"][meta["lm_eval_command"].index("--output_path") + 1] = "<tmp>"
        meta["cwd"] = "tests/fixtures/lmeval" if kind == "fx" else "<folder of symlinks to tasks/*/*.jsonl>"
        (GOLDEN / f"{name}.meta.json").write_text(
            json.dumps(meta, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
        n_docs = len(hashes)
        print(f"{name:40s} {wall:7.2f} s wall {cpu:7.2f} s cpu (load {load:.1f})  "
              f"{n_docs:5d} docs  {len(requests):6d} requests", flush=True)
        return {"wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2), "loadavg_1min_before": round(load, 2),
                "lm_eval_total_evaluation_time_seconds": round(float(results.get("total_evaluation_time_seconds", "nan")), 2)
                if "total_evaluation_time_seconds" in results else None,
                "tasks": sorted(configs), "docs": n_docs, "requests": len(requests),
                "extra_args": extra}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def golden_bytes(name: str) -> dict[str, bytes]:
    out = {}
    for suffix in ("requests.jsonl", "hashes.jsonl", "docs.jsonl", "meta.json"):
        p = GOLDEN / f"{name}.{suffix}"
        if p.exists():
            out[suffix] = p.read_bytes()
    return out


def main(argv: list[str]) -> int:
    repeat = 1
    if "--repeat" in argv:
        i = argv.index("--repeat")
        repeat = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    wanted = set(argv)
    timings_path = GOLDEN / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    from importlib.metadata import version
    timings["_lm_eval_version"] = version("lm_eval")
    timings["_datasets_version"] = version("datasets")
    timings["_note"] = ("wall_seconds: whole `lm_eval run` process (python start, task index of "
                        "lm-eval's built-in tasks, dataset load, requests, dummy model, writing), "
                        "one process at a time on a 2-core machine; runs: every repetition, "
                        "median/min over them. cpu_seconds: user+sys of the lm_eval process, "
                        "less sensitive to other load on the machine (loadavg_1min_before).")
    runs = [r for r in RUNS if not wanted or r[0] in wanted]
    if wanted - {r[0] for r in RUNS}:
        raise SystemExit(f"unknown runs: {sorted(wanted - {r[0] for r in RUNS})}")
    for name, kind, tasks, extra in runs:
        walls, cpus, loads, info, first = [], [], [], None, None
        for _ in range(repeat):
            info = run_one(name, kind, tasks, extra)
            walls.append(info.pop("wall_seconds"))
            cpus.append(info.pop("cpu_seconds"))
            loads.append(info.pop("loadavg_1min_before"))
            produced = golden_bytes(name)
            produced.pop("meta.json", None)  # meta holds nothing run-dependent, but be lenient
            if first is None:
                first = produced
            elif produced != first:
                raise SystemExit(f"{name}: output differs between repetitions (not deterministic)")
        info["runs_wall_seconds"] = walls
        info["median_wall_seconds"] = round(statistics.median(walls), 2)
        info["min_wall_seconds"] = round(min(walls), 2)
        info["runs_cpu_seconds"] = cpus
        info["median_cpu_seconds"] = round(statistics.median(cpus), 2)
        info["runs_loadavg_1min_before"] = loads
        timings[name] = info
        timings_path.write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
