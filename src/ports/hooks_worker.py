"""assay's worker for Python hooks (`--python-hooks`): runs the functions a
task config names with `!function module.name`, as lm-eval runs them.

assay writes this file into its cache folder and runs it with the Python
that has lm-eval. Messages are line-delimited JSON: one object per line on
stdin, one per line on stdout; stderr is left for Python's own messages.

  worker -> {"hello": {"protocol": 1, "versions": {...}}}
  assay  -> {"op": "hook", "id": ID, "file": PATH, "installed": BOOL,
             "module": NAME, "function": NAME}
             ("installed": PATH is under the installed lm-eval package's
             folder, e.g. lm_eval/tasks/leaderboard/math/utils.py)
  worker -> {"ready": ID, "file": PATH, "sha256": HEX,
             "imports": {PACKAGE: VERSION, ...}}
             (the file imported; the packages the module uses that lm-eval
             pins)
  assay  -> {"op": "call", "id": ID, "kind": KIND, ...}
  worker -> {"value": VALUE}

Kinds of call:
  "docs"       {"docs": [DOC, ...], "seed": BOOL}: process_docs on a
               datasets.Dataset of the documents; the processed documents.
               With "seed", Python's and numpy's generators are seeded first
               as lm-eval's evaluator seeds them (0 and 1234).
  "each"       {"docs": [DOC, ...]}: doc_to_text and friends, per document.
  "results"    {"items": [[DOC, RESULTS], ...]}: process_results per document.
  "filter"     {"kwargs": {...}, "resps": [[RESP, ...], ...], "docs": [...]}:
               a filter class's apply.
  "metric"     {"kwargs": {...}, "items": [[GOLD, PREDICTION], ...]}: a
               metric function, as lm-eval's default process_results calls it.
  "aggregate"  {"items": [VALUE, ...]}: an aggregation function.
  "samples"    {}: fewshot_config.samples as a function; the documents.

Values keep Python's types: a tuple is {"__tuple__": [...]}, a float that
JSON cannot hold is {"__float__": "nan" | "inf" | "-inf"}.

A failure is {"error": MESSAGE, "kind": KIND, ...}: "missing" (a module the
file imports is not installed: "package"), "not_installed" (the installed
lm-eval has no such file), "import" (the file does not run), "attribute" (no such function), "raised" (the hook raised: "index" of
the item, when one was being processed), "protocol".
"""

import hashlib
import importlib.util
import json
import math
import os
import platform
import sys

PROTOCOL = 1

# The protocol owns stdout; whatever the libraries print goes to stderr.
_out = sys.stdout
sys.stdout = sys.stderr


def send(message):
    _out.write(json.dumps(message, ensure_ascii=False, allow_nan=False) + "\n")
    _out.flush()


def last_line(error):
    text = "".join(str(error).strip().splitlines()[-1:]) or repr(error)
    return f"{type(error).__name__}: {text}"


def encode(value):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return {"__float__": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, (list, set, frozenset)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return encode(item())
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return encode(tolist())
    raise TypeError(f"a value of type {type(value).__name__} cannot be passed back to assay")


def decode(value):
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and "__tuple__" in value:
            return tuple(decode(v) for v in value["__tuple__"])
        if len(value) == 1 and "__float__" in value:
            return float(value["__float__"])
        return {k: decode(v) for k, v in value.items()}
    return value


def versions():
    from importlib import metadata

    found = {"python": platform.python_version()}
    for package in ("lm_eval", "datasets", "numpy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def _norm(name):
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


_installed = None


def installed():
    """(the distributions lm-eval pins, each top-level module's
    distributions), read once: both scan every installed package."""
    global _installed
    if _installed is None:
        import re
        from importlib import metadata

        try:
            requirements = metadata.requires("lm_eval") or []
        except metadata.PackageNotFoundError:
            requirements = []
        pinned = {_norm(re.split(r"[ ;<>=!~\[(]", r, maxsplit=1)[0]) for r in requirements}
        pinned.add("lm-eval")
        _installed = (pinned, metadata.packages_distributions())
    return _installed


def pinned_versions(module):
    """The installed versions of the packages a hook's module uses (the
    modules it imports and the functions and classes it takes from them)
    that lm-eval pins, with lm-eval's own."""
    import inspect
    from importlib import metadata

    used = set()
    for value in vars(module).values():
        if inspect.ismodule(value):
            used.add(value.__name__.split(".")[0])
        elif getattr(value, "__module__", None):
            used.add(value.__module__.split(".")[0])
    pinned, distributions = installed()
    found = {}
    for name in sorted(used):
        for dist in distributions.get(name, []):
            if _norm(dist) in pinned:
                try:
                    found[dist] = metadata.version(dist)
                except metadata.PackageNotFoundError:
                    continue
    return found


hooks = {}


def load(message):
    """Imports a hook as lm-eval's YAML loader does: the module file beside
    the config, executed under its own name, then the attribute."""
    path = message["file"]
    module_name = message["module"]
    if message.get("installed"):
        spec = importlib.util.find_spec("lm_eval")
        if spec is None or not spec.submodule_search_locations:
            return {"error": "lm-eval is not installed", "kind": "missing", "package": "lm_eval"}
        package = os.path.dirname(list(spec.submodule_search_locations)[0])
        path = os.path.join(package, path)
        if not os.path.isfile(path):
            version = versions().get("lm_eval", "?")
            return {
                "error": f"the installed lm-eval ({version}) at {package} has no {message['file']}",
                "kind": "not_installed",
            }
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        return {"error": f"cannot import {path}", "kind": "import"}
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as error:
        return {"error": last_line(error), "kind": "missing", "package": error.name}
    except Exception as error:
        return {"error": last_line(error), "kind": "import"}
    function = getattr(module, message["function"], None)
    if function is None:
        return {"error": f"{path} defines no `{message['function']}`", "kind": "attribute"}
    hooks[message["id"]] = function
    return {
        "ready": message["id"],
        "file": os.path.abspath(path),
        "sha256": digest,
        "imports": pinned_versions(module),
    }


def seed():
    import random

    random.seed(0)
    try:
        import numpy

        numpy.random.seed(1234)
    except ImportError:
        pass


class Raised(Exception):
    def __init__(self, index, error):
        self.index = index
        self.error = error


def each(items, call):
    out = []
    for index, item in enumerate(items):
        try:
            out.append(call(item))
        except Exception as error:
            raise Raised(index, error)
    return out


def call(message):
    function = hooks[message["id"]]
    kind = message["kind"]
    if kind == "docs":
        import datasets

        if message.get("seed"):
            seed()
        docs = datasets.Dataset.from_list(decode(message["docs"]))
        return [dict(d) for d in function(docs)]
    if kind == "each":
        return each(decode(message["docs"]), function)
    if kind == "results":
        return each(decode(message["items"]), lambda item: function(item[0], item[1]))
    if kind == "filter":
        kwargs = message.get("kwargs") or {}
        resps = decode(message["resps"])
        docs = decode(message["docs"])
        return [list(r) for r in function(**kwargs).apply(resps, docs)]
    if kind == "metric":
        kwargs = message.get("kwargs") or {}

        def score(item):
            gold, prediction = item
            try:
                return function(references=[gold], predictions=[prediction], **kwargs)
            except TypeError:
                return function([gold, prediction])

        return each(decode(message["items"]), score)
    if kind == "aggregate":
        return function(decode(message["items"]))
    if kind == "samples":
        return [dict(d) for d in function()]
    raise ValueError(f"unknown kind of call {kind!r}")


def main():
    send({"hello": {"protocol": PROTOCOL, "versions": versions()}})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            message = json.loads(line)
            op = message.get("op")
            if op == "hook":
                send(load(message))
            elif op == "call":
                try:
                    send({"value": encode(call(message))})
                except Raised as raised:
                    send({"error": last_line(raised.error), "kind": "raised", "index": raised.index})
                except Exception as error:
                    send({"error": last_line(error), "kind": "raised"})
            else:
                send({"error": f"unknown op {op!r}", "kind": "protocol"})
        except Exception as error:
            send({"error": last_line(error), "kind": "protocol"})


if __name__ == "__main__":
    main()
