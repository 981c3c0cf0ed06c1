"""The lm-eval bridge against lm-eval itself, on the demo model loaded by
transformers from its GGUF file (dequantized to float32).

Runs, on the same task, documents and batch size:
- `lm_eval --model hf --model_args pretrained=DIR,gguf_file=FILE` (lm-eval
  alone: it builds the prompts, calls the model, scores);
- `assay run --model lm-eval:hf` with the same model arguments (assay builds
  the prompts and scores; lm-eval's HFLM answers through the bridge);
- `assay run --model llama:FILE` (the embedded llama.cpp on the quantized
  file itself), for the accuracy only.

It prints wall and CPU time (the child's user + sys) of each, the ratio
assay / lm-eval, and each one's accuracy. Fresh caches for every run.

  python3 bench/bridge_speed.py --python .lm-eval/venv/bin/python \
      --gguf .demo/gemma-3-270m-q4_k_m.gguf --limit 50
"""

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def timed(cmd, env, cwd=None):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return wall, cpu


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", default=".lm-eval/venv/bin/python")
    parser.add_argument("--assay", default="target/release/assay")
    parser.add_argument("--gguf", default=".demo/gemma-3-270m-q4_k_m.gguf")
    parser.add_argument("--task", default="assay_arithmetic")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    gguf = os.path.abspath(args.gguf)
    python = os.path.abspath(args.python)
    assay = os.path.abspath(args.assay)
    task_dir = os.path.join(root, "tasks", args.task)
    model_args = {
        "pretrained": os.path.dirname(gguf),
        "gguf_file": os.path.basename(gguf),
        "dtype": "float32",
        "device": "cpu",
        "batch_size": str(args.batch_size),
    }
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                   HF_DATASETS_CACHE=os.path.join(tmp, "datasets"),
                   ASSAY_CACHE_DIR=os.path.join(tmp, "assay-cache"))
        lm_out = os.path.join(tmp, "lm-eval")
        lm_args = ",".join(f"{k}={v}" for k, v in model_args.items()
                           if k not in ("device", "batch_size"))
        lm = timed([python, "-m", "lm_eval", "run", "--model", "hf", "--model_args", lm_args,
                    "--device", "cpu", "--batch_size", str(args.batch_size),
                    "--tasks", args.task, "--include_path", ".", "--limit", str(args.limit),
                    "--output_path", lm_out], env, cwd=task_dir)
        results = glob.glob(f"{lm_out}/**/results_*.json", recursive=True)[0]
        lm_acc = json.load(open(results))["results"][args.task]["acc,none"]

        def assay_run(spec, extra, name):
            out = os.path.join(tmp, name)
            cmd = [assay, "run", "--model", spec, "--tasks", args.task,
                   "--limit", str(args.limit), "--out", out, "--variant", name]
            for k, v in extra.items():
                cmd += ["--model-arg", f"{k}={v}"]
            t = timed(cmd, env)
            run = glob.glob(f"{out}/{name}/*/run.json")[0]
            return t, json.load(open(run))["results"][args.task]["acc,none"]

        bridge, bridge_acc = assay_run("lm-eval:hf", dict(model_args, python=python), "bridge")
        _, llama_acc = assay_run(f"llama:{gguf}", {}, "llama")
    print(f"{args.task}, --limit {args.limit}, batch size {args.batch_size}, "
          f"{os.path.basename(gguf)} (transformers: dequantized, float32)")
    print(f"{'':28} {'wall s':>8} {'cpu s':>8} {'acc':>7}")
    print(f"{'lm_eval --model hf':28} {lm[0]:8.1f} {lm[1]:8.1f} {lm_acc:7.4f}")
    print(f"{'assay --model lm-eval:hf':28} {bridge[0]:8.1f} {bridge[1]:8.1f} {bridge_acc:7.4f}")
    print(f"{'assay --model llama: (Q4_K_M)':28} {'':>8} {'':>8} {llama_acc:7.4f}")
    print(f"ratio assay / lm-eval: wall {bridge[0] / lm[0]:.2f}x, cpu {bridge[1] / lm[1]:.2f}x")


if __name__ == "__main__":
    main()
