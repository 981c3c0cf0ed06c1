#!/usr/bin/env python3
"""Regenerate the chat-template golden files in tests/golden/chat/.

Run with the Python of a venv that has lm-eval installed (not needed by CI):

    $LMEVAL_VENV/bin/python tests/golden/chat/make_chat_goldens.py              # every run
    $LMEVAL_VENV/bin/python tests/golden/chat/make_chat_goldens.py gemma_like.fx_mc_zero   # named runs
    $LMEVAL_VENV/bin/python tests/golden/chat/make_chat_goldens.py --transformers v4 --out /tmp/v4

lm-eval's `dummy` model renders chat templates with a Hugging Face tokenizer, which
needs `transformers` and a download. Instead this script registers a small model,
`chatdummy`, that renders the template files in this folder itself, the way
transformers' `apply_chat_template(..., tokenize=False,
continue_final_message=not add_generation_prompt)` does (see `render` below: the
Jinja environment of transformers' `_compile_jinja_template` and the cut of
`render_jinja_template`, as in transformers v5; `--transformers v4 --out DIR` imitates
transformers 4.x instead, whose continue_final_message cut differs in one edge case),
and otherwise answers like lm-eval's dummy model. lm-eval is run in process through
`lm_eval.simple_evaluate(model="chatdummy", apply_chat_template=True,
fewshot_as_multiturn=..., system_instruction=..., log_samples=True,
task_manager=TaskManager(include_path=tests/fixtures/lmeval))`, offline, with
cwd = tests/fixtures/lmeval (relative data_files resolve against the working directory).

For every run NAME (= TEMPLATE.TASK[.variant]) it writes
  NAME.requests.jsonl  one request per line, sorted by (task, doc_id, idx), keys exactly
                       task, doc_id, request_type, idx, arguments (the format of
                       tests/golden/*.requests.jsonl; first filter only)
  NAME.meta.json       the options of the run (template, tasks, fewshot_as_multiturn,
                       system_instruction, ...) that tests/chat_template_parity.rs
                       gives assay, and lm-eval's n-shot / versions
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from copy import deepcopy
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "lmeval"

# Offline, with a private datasets cache; must be set before lm_eval/datasets load.
os.environ.update({
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_CACHE": tempfile.mkdtemp(prefix="chat-goldens-hf-"),
    "TOKENIZERS_PARALLELISM": "false",
})

import jinja2  # noqa: E402
import jinja2.ext  # noqa: E402
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

import lm_eval  # noqa: E402
from lm_eval.api.model import LM  # noqa: E402
from lm_eval.api.registry import register_model  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

# name -> (file, bos_token, eos_token). Also written to templates.json for the Rust test.
TEMPLATES = {
    "gemma_like": ("gemma_like.jinja", "<bos>", "<eos>"),
    "chatml_like": ("chatml_like.jinja", "", "<|im_end|>"),
    "json_like": ("json_like.jinja", "<s>", "</s>"),
    "phi_like": ("phi_like.jinja", "<s>", "<|endoftext|>"),
}

# (template, task, fewshot_as_multiturn, system_instruction, suffix for the name)
RUNS: list[tuple[str, str, bool, str | None, str]] = []
for _t in ("gemma_like", "chatml_like"):
    RUNS += [
        (_t, "fx_mc_zero", False, None, ""),
        (_t, "fx_mc_fewshot_default", False, None, ""),
        (_t, "fx_mc_fewshot_default", True, None, ".multiturn"),
        (_t, "fx_mc_fewshot_first_n", False, None, ""),
        (_t, "fx_mc_fewshot_first_n", True, None, ".multiturn"),
        (_t, "fx_gen_regex", False, None, ""),
        (_t, "fx_gen_regex", True, None, ".multiturn"),
        (_t, "fx_multi_input", False, None, ""),
        (_t, "fx_multi_input", True, None, ".multiturn"),
        (_t, "fx_gen_prefix", False, None, ""),
        (_t, "fx_gen_prefix", True, None, ".multiturn"),
        (_t, "fx_choice_dict", False, None, ""),
        (_t, "fx_choice_dict", True, None, ".multiturn"),
        (_t, "fx_choice_dict", False, "You grade statements.", ".system"),
        (_t, "fx_choice_dict", True, "You grade statements.", ".multiturn.system"),
        (_t, "fx_mc_zero", False, "Answer with one word.\n", ".system"),
        (_t, "fx_jinja", False, None, ""),
        (_t, "fx_loglikelihood", True, None, ".multiturn"),
        (_t, "fx_rolling", False, None, ""),
        (_t, "fx_chat_gen_prefix", False, None, ""),
        (_t, "fx_chat_gen_prefix", True, None, ".multiturn"),
        (_t, "fx_chat_mc_prefix", False, None, ""),
        (_t, "fx_chat_mc_prefix", True, None, ".multiturn"),
    ]
RUNS += [
    ("json_like", "fx_choice_dict", True, None, ".multiturn"),
    ("json_like", "fx_chat_gen_prefix", False, "Sys: <be brief> & exact", ".system"),
    ("phi_like", "fx_mc_fewshot_default", True, None, ".multiturn"),
    ("phi_like", "fx_gen_prefix", False, None, ""),
    ("phi_like", "fx_chat_gen_prefix", True, None, ".multiturn"),
    ("gemma_like", "fx_chat_prefix_newline", False, None, ""),
    ("chatml_like", "fx_chat_prefix_newline", False, None, ""),
    ("phi_like", "fx_chat_prefix_newline", False, None, ""),
]

# Which transformers to imitate for continue_final_message: "v5" (the default; a
# sentinel appended to the final message marks where to cut) or "v4" (<= 4.57: cut
# after the last occurrence of the final message's stripped text). `--transformers v4
# --out DIR` writes v4 goldens elsewhere, to see which goldens the two disagree on.
TRANSFORMERS = "v5"
OUT = HERE


def run_name(template: str, task: str, suffix: str) -> str:
    return f"{template}.{task}{suffix}"


# ---------------------------------------------------------------------------
# transformers' chat-template rendering (transformers/utils/chat_template_utils.py:
# _cached_compile_jinja_template and render_jinja_template), reproduced for the
# string-content, no-tools case.

def _raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers replaces Jinja's tojson (which escapes HTML characters)
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt):
    return datetime.now().strftime(fmt)


def compile_template(source: str):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env.from_string(source)


CONTINUE_FINAL_MESSAGE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "


def render(compiled, source: str, messages: list[dict], add_generation_prompt: bool,
           continue_final_message: bool, **special_tokens) -> str:
    if add_generation_prompt and continue_final_message:
        raise ValueError("continue_final_message and add_generation_prompt are not compatible")
    chat = messages
    final_message = None
    if continue_final_message:
        chat = deepcopy(messages)
        final_message = chat[-1].get("content")
        if final_message is None:
            raise ValueError('continue_final_message is set but the final message has no "content" to continue!')
        if TRANSFORMERS == "v5":
            if "content" not in source:
                raise ValueError('continue_final_message is set to "content" but this is not an accepted field')
            chat[-1]["content"] = chat[-1]["content"] + CONTINUE_FINAL_MESSAGE_TAG
    rendered = compiled.render(messages=chat, tools=None, documents=None,
                               add_generation_prompt=add_generation_prompt, **special_tokens)
    if continue_final_message and TRANSFORMERS == "v4":
        # transformers 4.x (e.g. 4.57): no sentinel; find the final message's text
        if final_message.strip() not in rendered:
            raise ValueError("continue_final_message is set but the final message does not appear in the chat")
        loc = rendered.rindex(final_message.strip())
        if rendered[loc:loc + len(final_message.lstrip())] == final_message:
            rendered = rendered[:loc + len(final_message.lstrip())]
        else:
            rendered = rendered[:loc + len(final_message.strip())]
    elif continue_final_message:
        if final_message.strip() not in rendered or CONTINUE_FINAL_MESSAGE_TAG.strip() not in rendered:
            raise ValueError("continue_final_message is set but the final message does not appear in the chat")
        tag_loc = rendered.rindex(CONTINUE_FINAL_MESSAGE_TAG.strip())
        if rendered[tag_loc:tag_loc + len(CONTINUE_FINAL_MESSAGE_TAG)] == CONTINUE_FINAL_MESSAGE_TAG:
            rendered = rendered[:tag_loc]  # the template kept the spacing
        else:
            rendered = rendered[:tag_loc].rstrip()  # the template trimmed the content
    return rendered


# ---------------------------------------------------------------------------

@register_model("chatdummy")
class ChatDummyLM(LM):
    """lm-eval's dummy model with a chat template rendered like transformers renders it."""

    def __init__(self, template: str = "gemma_like", **kwargs) -> None:
        super().__init__()
        file, bos, eos = TEMPLATES[template]
        self.template_name = template
        self.source = (HERE / file).read_text(encoding="utf-8")
        self.compiled = compile_template(self.source)
        self.special_tokens = {"bos_token": bos, "eos_token": eos}

    @property
    def tokenizer_name(self) -> str:
        return f"chatdummy-{self.template_name}"

    def chat_template(self, chat_template=False):
        return self.source

    def apply_chat_template(self, chat_history, add_generation_prompt=True):
        return render(self.compiled, self.source, chat_history, add_generation_prompt=add_generation_prompt,
                      continue_final_message=not add_generation_prompt, **self.special_tokens)

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        import random
        return [(-random.random(), False) for _ in requests]

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        import random
        return [-random.random() for _ in requests]

    def generate_until(self, requests, disable_tqdm: bool = False):
        return ["lol" for _ in requests]


def request_type(output_type: str) -> str:
    return "loglikelihood" if output_type == "multiple_choice" else output_type


def first_filter(cfg: dict) -> str:
    fl = cfg.get("filter_list")
    return fl[0]["name"] if fl else "none"


def jsonable(x):
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    return x


def run_one(tm: TaskManager, template: str, task: str, multiturn: bool, system: str | None, name: str) -> int:
    results = lm_eval.simple_evaluate(
        model="chatdummy",
        model_args={"template": template},
        tasks=[task],
        apply_chat_template=True,
        fewshot_as_multiturn=multiturn,
        system_instruction=system,
        log_samples=True,
        task_manager=tm,
    )
    requests = []
    for tname, cfg in results["configs"].items():
        fkey = first_filter(cfg)
        rtype = request_type(cfg["output_type"])
        for s in results["samples"][tname]:
            if s["filter"] != fkey:
                continue
            for i, args in enumerate(s["arguments"]):
                requests.append({"task": tname, "doc_id": s["doc_id"], "request_type": rtype, "idx": i,
                                 "arguments": jsonable(args)})
    requests.sort(key=lambda r: (r["task"], r["doc_id"], r["idx"]))
    with (OUT / f"{name}.requests.jsonl").open("w", encoding="utf-8") as f:
        for r in requests:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    meta = {
        "template": template,
        "tasks": [task],
        "apply_chat_template": True,
        "fewshot_as_multiturn": multiturn,
        "system_instruction": system,
        "fewshot_random_seed": 1234,
        "continue_final_message": f"transformers {TRANSFORMERS}",
        "n-shot": results.get("n-shot"),
        "versions": results.get("versions"),
        "lm_eval_version": results.get("lm_eval_version"),
    }
    (OUT / f"{name}.meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
    return len(requests)


def main(argv: list[str]) -> int:
    global TRANSFORMERS, OUT
    for flag in ("--transformers", "--out"):
        if flag in argv:
            i = argv.index(flag)
            value = argv[i + 1]
            argv = argv[:i] + argv[i + 2:]
            if flag == "--transformers":
                if value not in ("v4", "v5"):
                    raise SystemExit("--transformers is v4 or v5")
                TRANSFORMERS = value
            else:
                OUT = Path(value).resolve()
                OUT.mkdir(parents=True, exist_ok=True)
    if TRANSFORMERS != "v5" and OUT == HERE:
        raise SystemExit("the goldens here are v5: give --out DIR with --transformers v4")
    wanted = set(argv)
    names = {run_name(t, k, s) for t, k, _, _, s in RUNS}
    if wanted - names:
        raise SystemExit(f"unknown runs: {sorted(wanted - names)}")
    (HERE / "templates.json").write_text(json.dumps(
        {k: {"file": f, "bos_token": b, "eos_token": e} for k, (f, b, e) in TEMPLATES.items()},
        indent=2) + "\n", encoding="utf-8")
    os.chdir(FIXTURES)
    tm = TaskManager(include_path=str(FIXTURES))
    for template, task, multiturn, system, suffix in RUNS:
        name = run_name(template, task, suffix)
        if wanted and name not in wanted:
            continue
        n = run_one(tm, template, task, multiturn, system, name)
        print(f"{name:55s} {n:5d} requests", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
