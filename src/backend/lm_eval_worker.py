"""assay's worker for the lm-eval bridge backend (`--model lm-eval:NAME`).

assay writes this file into its cache folder and runs it with the Python
that has lm-eval. It makes one model through lm-eval's registry and answers
requests over line-delimited JSON: one object per line on stdin, one per
line on stdout; stderr is left for Python's own messages.

  worker -> {"hello": {"protocol": 1, "versions": {...}}}
  assay  -> {"op": "load", "model": NAME, "args": {KEY: VALUE, ...}}
  worker -> {"loaded": {"commit": COMMIT or null, "chat_template": TEMPLATE or null,
                        "bos_token": TEXT, "eos_token": TEXT}}
  assay  -> {"op": "loglikelihood" | "loglikelihood_rolling" | "generate_until",
             "requests": [ARGUMENTS, ...]}
  worker -> {"answer": INDEX, "value": VALUE}   (each as the model produces it)
  worker -> {"done": COUNT}

A failure is {"error": MESSAGE, "kind": KIND}, KIND one of "missing" (a
package cannot be imported), "load" (the model does not load), "request"
(the model raised while answering), "protocol".
"""

import json
import platform
import sys

PROTOCOL = 1

# The protocol owns stdout; whatever the libraries print goes to stderr.
_out = sys.stdout
sys.stdout = sys.stderr


def send(message):
    _out.write(json.dumps(message, ensure_ascii=False) + "\n")
    _out.flush()


def last_line(error):
    text = "".join(str(error).strip().splitlines()[-1:]) or repr(error)
    return f"{type(error).__name__}: {text}"


def versions():
    from importlib import metadata

    found = {"python": platform.python_version()}
    for package in ("lm_eval", "transformers", "torch", "peft", "vllm", "sglang"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def typed(value):
    """A model argument as lm-eval's own argument strings become Python
    values (`true` -> True, `8` -> 8, `0.5` -> 0.5)."""
    from lm_eval.utils import handle_arg_string

    return handle_arg_string(value) if isinstance(value, str) else value


def key(kind, arguments):
    """The identity of a request as a model reports it to its cache hook."""
    if kind == "generate_until":
        context, kwargs = arguments
        return (context, json.dumps(kwargs, sort_keys=True))
    return tuple(arguments)


class Stream:
    """Stands in for lm-eval's cache hook: each answer the model reports is
    sent at once, so assay stores it before the batch ends."""

    def __init__(self):
        self.waiting = {}
        self.sent = set()

    def start(self, kind, requests):
        self.kind = kind
        self.waiting = {}
        self.sent = set()
        for index, arguments in enumerate(requests):
            self.waiting.setdefault(key(kind, arguments), []).append(index)

    def add_partial(self, attr, request, result):
        if attr != self.kind or request is None:
            return
        try:
            indices = self.waiting.pop(key(attr, request), [])
        except (TypeError, ValueError):
            return
        for index in indices:
            self.answer(index, result)

    def answer(self, index, result):
        if index in self.sent:
            return
        self.sent.add(index)
        send({"answer": index, "value": value(self.kind, result)})


def value(kind, result):
    if kind == "loglikelihood":
        logprob, greedy = result
        return [float(logprob), bool(greedy)]
    if kind == "loglikelihood_rolling":
        return float(result)
    return str(result)


def load(message):
    from lm_eval.api.registry import get_model

    import lm_eval.models  # noqa: F401  (fills the registry)

    name = message["model"]
    args = {k: typed(v) for k, v in message.get("args", {}).items()}
    model_class = get_model(name)
    lm = model_class.create_from_arg_obj(args)
    stream = Stream()
    lm.set_cache_hook(stream)
    config = getattr(getattr(lm, "model", None), "config", None)
    commit = getattr(config, "_commit_hash", None)
    return lm, stream, {"commit": commit, **chat_template(lm)}


def chat_template(lm):
    """The model's chat template as lm-eval picks it (`chat_template(True)`),
    with the tokenizer's special tokens, for assay to render prompts with.
    Only a tokenizer the model already loaded is asked (lm-eval's `dummy`
    model would download one)."""
    tokenizer = vars(lm).get("tokenizer")
    if tokenizer is None:
        return {"chat_template": None, "bos_token": "", "eos_token": ""}
    try:
        template = lm.chat_template(True)
    except Exception:  # noqa: BLE001  (a model without a template)
        template = None
    return {
        "chat_template": template if isinstance(template, str) and template else None,
        "bos_token": str(getattr(tokenizer, "bos_token", None) or ""),
        "eos_token": str(getattr(tokenizer, "eos_token", None) or ""),
    }


def answer(lm, stream, message):
    from lm_eval.api.instance import Instance

    kind = message["op"]
    requests = [
        tuple(r) if kind != "generate_until" else (r[0], dict(r[1]))
        for r in message["requests"]
    ]
    instances = [
        Instance(request_type=kind, doc={}, arguments=arguments, idx=0)
        for arguments in requests
    ]
    stream.start(kind, requests)
    method = getattr(lm, kind)
    try:
        results = method(instances, disable_tqdm=True)
    except TypeError:
        results = method(instances)
    # Models that report nothing to the hook are answered here, in order.
    for index, result in enumerate(results):
        stream.answer(index, result)
    send({"done": len(results)})


def main():
    try:
        import lm_eval  # noqa: F401
    except ImportError as error:
        send({"error": last_line(error), "kind": "missing", "package": "lm_eval"})
        return 3
    send({"hello": {"protocol": PROTOCOL, "versions": versions()}})
    lm = stream = None
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        op = message.get("op")
        if op == "load":
            try:
                lm, stream, loaded = load(message)
            except ImportError as error:
                send({"error": last_line(error), "kind": "missing",
                      "package": getattr(error, "name", None)})
                return 3
            except Exception as error:  # noqa: BLE001  (reported, not raised)
                send({"error": last_line(error), "kind": "load"})
                return 3
            send({"loaded": loaded})
        elif op in ("loglikelihood", "loglikelihood_rolling", "generate_until"):
            if lm is None:
                send({"error": "no model loaded", "kind": "protocol"})
                return 3
            try:
                answer(lm, stream, message)
            except Exception as error:  # noqa: BLE001
                send({"error": last_line(error), "kind": "request"})
                return 3
        else:
            send({"error": f"unknown op {op!r}", "kind": "protocol"})
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
