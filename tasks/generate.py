#!/usr/bin/env python3
"""Deterministic generator for assay's built-in offline task suite.

Usage:  python3 tasks/generate.py            (from anywhere; writes next to this file)
        python3 tasks/generate.py --check    (regenerate in memory, fail if any file differs)

Python 3 standard library only.  Every document is produced procedurally by this
script from a fixed seed (SEED below, one derived random.Random per task), so the
output is byte-identical on every run and every platform; no benchmark item is
copied from anywhere.  The generated files are committed together with this
script; re-running it must not change them (CI may run --check).

Files written (all JSON Lines, UTF-8, one object per line, keys in a fixed order
that is the same on every line; every line of a file has exactly the same keys
with the same JSON types, so loaders that infer a schema, such as Hugging Face
`datasets`, do not coerce anything):

  assay_arithmetic/assay_arithmetic_{test,train}.jsonl   300 / 40 docs
      {"id", "question", "choices": [4 numeric strings], "label": int}
      "What is 37 + 48?"-style add / subtract / multiply questions.
  assay_ordering/assay_ordering_{test,train}.jsonl       200 / 30 docs
      {"id", "kind": "alpha"|"largest", "opt_a".."opt_d": str, "answer": str}
      which made-up word comes first alphabetically / which number is largest.
  assay_counting/assay_counting_{test,train}.jsonl       200 / 30 docs
      {"id", "word", "letter", "count": int}
      "How many times does the letter 'r' appear in 'borrarim'?" over made-up words.
  assay_dates/assay_dates_{test,train}.jsonl             200 / 30 docs
      {"id", "kind": "weekday"|"date", "question", "choices": [4 str], "label": int}
      weekday and calendar-date arithmetic (leap years included).
  assay_wordlist/assay_wordlist_test.jsonl               100 docs
      {"id", "text"}  short paragraphs from a small English grammar written here.

The task YAML files next to the data are hand-written (lm-evaluation-harness
dialect); data_files paths in them are relative to the YAML file's folder.
File names carry the task name so that every data file name is unique across
the suite (tests/golden/make_goldens.py relies on that to run the whole group
from one working directory).
"""

from __future__ import annotations

import datetime
import json
import random
import sys
from pathlib import Path

SEED = 20240611
HERE = Path(__file__).resolve().parent


def rng_for(task: str) -> random.Random:
    # Derive a per-task seed without using hash() (which is salted per process).
    return random.Random(f"{SEED}:{task}")


# --------------------------------------------------------------------------
# made-up words from syllables (shared by ordering and counting)

ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
          "br", "dr", "st", "tr", "pl", "sk", "sh", "ch", "gr", "fl"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ee", "oo", "ou"]
CODAS = ["", "", "", "n", "r", "l", "s", "t", "m", "rr", "ck", "ss"]


def make_word(rnd: random.Random, min_syl: int = 2, max_syl: int = 4) -> str:
    n = rnd.randint(min_syl, max_syl)
    return "".join(rnd.choice(ONSETS) + rnd.choice(VOWELS) + rnd.choice(CODAS) for _ in range(n))


# --------------------------------------------------------------------------
# assay_arithmetic

def arithmetic_doc(rnd: random.Random) -> dict:
    op = rnd.choice(["+", "-", "×"])
    if op == "+":
        a, b = rnd.randint(2, 99), rnd.randint(2, 99)
        result = a + b
    elif op == "-":
        a = rnd.randint(10, 99)
        b = rnd.randint(1, a)
        result = a - b
    else:
        a, b = rnd.randint(2, 12), rnd.randint(2, 12)
        result = a * b
    candidates = [result + d for d in (1, -1, 2, -2, 10, -10, 9, 11, -9, -11)]
    if op == "×":
        candidates += [result + a, result - a, result + b, result - b]
    candidates = [c for c in candidates if c >= 0 and c != result]
    # dedupe keeping order, then draw three distractors
    seen: list[int] = []
    for c in candidates:
        if c not in seen:
            seen.append(c)
    distractors = rnd.sample(seen, 3)
    options = [result] + distractors
    rnd.shuffle(options)
    return {
        "question": f"What is {a} {op} {b}?",
        "choices": [str(x) for x in options],
        "label": options.index(result),
    }


def gen_arithmetic() -> dict[str, list[dict]]:
    rnd = rng_for("assay_arithmetic")
    seen: set[str] = set()
    out: dict[str, list[dict]] = {"test": [], "train": []}
    for split, n in (("test", 300), ("train", 40)):
        while len(out[split]) < n:
            d = arithmetic_doc(rnd)
            if d["question"] in seen:
                continue
            seen.add(d["question"])
            out[split].append({"id": f"arith-{split}-{len(out[split]):04d}", **d})
    return out


# --------------------------------------------------------------------------
# assay_ordering

def ordering_doc(rnd: random.Random) -> dict:
    kind = rnd.choice(["alpha", "largest"])
    if kind == "alpha":
        opts: list[str] = []
        while len(opts) < 4:
            w = make_word(rnd, 2, 3)
            if w not in opts:
                opts.append(w)
        answer = min(opts)
    else:
        nums: list[int] = []
        while len(nums) < 4:
            x = rnd.randint(10, 999)
            if x not in nums:
                nums.append(x)
        opts = [str(x) for x in nums]
        answer = str(max(nums))
    return {"kind": kind, "opt_a": opts[0], "opt_b": opts[1], "opt_c": opts[2],
            "opt_d": opts[3], "answer": answer}


def gen_ordering() -> dict[str, list[dict]]:
    rnd = rng_for("assay_ordering")
    out: dict[str, list[dict]] = {"test": [], "train": []}
    for split, n in (("test", 200), ("train", 30)):
        for i in range(n):
            out[split].append({"id": f"order-{split}-{i:04d}", **ordering_doc(rnd)})
    return out


# --------------------------------------------------------------------------
# assay_counting

def counting_doc(rnd: random.Random) -> dict:
    word = make_word(rnd, 2, 4)
    present = sorted(set(word))
    if rnd.random() < 0.85:
        letter = rnd.choice(present)
    else:
        absent = [c for c in "abcdefghijklmnopqrstuvwxyz" if c not in present]
        letter = rnd.choice(absent)
    return {"word": word, "letter": letter, "count": word.count(letter)}


def gen_counting() -> dict[str, list[dict]]:
    rnd = rng_for("assay_counting")
    seen: set[tuple[str, str]] = set()
    out: dict[str, list[dict]] = {"test": [], "train": []}
    for split, n in (("test", 200), ("train", 30)):
        while len(out[split]) < n:
            d = counting_doc(rnd)
            key = (d["word"], d["letter"])
            if key in seen:
                continue
            seen.add(key)
            out[split].append({"id": f"count-{split}-{len(out[split]):04d}", **d})
    return out


# --------------------------------------------------------------------------
# assay_dates

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def dates_doc(rnd: random.Random) -> dict:
    kind = rnd.choice(["weekday", "date"])
    direction = rnd.choice(["after", "before"])
    sign = 1 if direction == "after" else -1
    if kind == "weekday":
        start = rnd.randrange(7)
        n = rnd.randint(1, 30)
        correct = WEEKDAYS[(start + sign * n) % 7]
        others = [w for w in WEEKDAYS if w != correct]
        options = [correct] + rnd.sample(others, 3)
        day_word = "day" if n == 1 else "days"
        question = f"What day of the week is {n} {day_word} {direction} {WEEKDAYS[start]}?"
    else:
        base = datetime.date(2023, 1, 1) + datetime.timedelta(days=rnd.randrange(3 * 365))
        n = rnd.randint(1, 60)
        target = base + datetime.timedelta(days=sign * n)
        offsets = [1, -1, 2, -2, 7, -7, 30, -30, 365, -365]
        wrong = rnd.sample(offsets, 3)
        options = [target.isoformat()] + [(target + datetime.timedelta(days=o)).isoformat() for o in wrong]
        correct = options[0]
        day_word = "day" if n == 1 else "days"
        question = f"What date is {n} {day_word} {direction} {base.isoformat()}?"
    rnd.shuffle(options)
    return {"kind": kind, "question": question, "choices": options, "label": options.index(correct)}


def gen_dates() -> dict[str, list[dict]]:
    rnd = rng_for("assay_dates")
    seen: set[str] = set()
    out: dict[str, list[dict]] = {"test": [], "train": []}
    for split, n in (("test", 200), ("train", 30)):
        while len(out[split]) < n:
            d = dates_doc(rnd)
            if d["question"] in seen:
                continue
            seen.add(d["question"])
            out[split].append({"id": f"date-{split}-{len(out[split]):04d}", **d})
    return out


# --------------------------------------------------------------------------
# assay_wordlist: a tiny grammar

DETS = ["the", "a", "every", "one", "that"]
ADJS = ["small", "quiet", "bright", "old", "curious", "patient", "green", "heavy",
        "gentle", "clever", "distant", "wooden", "silver", "tired", "busy"]
NOUNS = ["cat", "river", "teacher", "lantern", "garden", "robot", "baker", "window",
         "mountain", "letter", "sailor", "kettle", "village", "painter", "clock",
         "farmer", "bridge", "child", "engine", "owl"]
VERBS_T = ["watches", "finds", "carries", "paints", "follows", "repairs", "visits",
           "remembers", "builds", "hears"]
VERBS_I = ["sleeps", "waits", "sings", "wanders", "laughs", "rests", "shines", "listens"]
ADVS = ["slowly", "quietly", "again", "today", "often", "happily", "at night", "alone"]
PREPS = ["near", "behind", "under", "beside", "across", "towards"]
CONJ = ["and", "but", "so", "while"]


def np_(rnd: random.Random) -> str:
    parts = [rnd.choice(DETS)]
    if rnd.random() < 0.6:
        parts.append(rnd.choice(ADJS))
    parts.append(rnd.choice(NOUNS))
    phrase = " ".join(parts)
    if phrase.startswith("a ") and phrase[2] in "aeiou":
        phrase = "an " + phrase[2:]
    return phrase


def vp(rnd: random.Random) -> str:
    r = rnd.random()
    if r < 0.45:
        return f"{rnd.choice(VERBS_T)} {np_(rnd)}"
    if r < 0.75:
        return f"{rnd.choice(VERBS_I)} {rnd.choice(ADVS)}"
    return f"{rnd.choice(VERBS_I)} {rnd.choice(PREPS)} {np_(rnd)}"


def sentence(rnd: random.Random) -> str:
    s = f"{np_(rnd)} {vp(rnd)}"
    if rnd.random() < 0.3:
        s += f", {rnd.choice(CONJ)} {np_(rnd)} {vp(rnd)}"
    end = "." if rnd.random() < 0.85 else "!"
    return s[0].upper() + s[1:] + end


def gen_wordlist() -> dict[str, list[dict]]:
    rnd = rng_for("assay_wordlist")
    docs = []
    for i in range(100):
        n = rnd.randint(1, 4)
        docs.append({"id": f"words-{i:04d}", "text": " ".join(sentence(rnd) for _ in range(n))})
    return {"test": docs}


# --------------------------------------------------------------------------

GENERATORS = {
    "assay_arithmetic": gen_arithmetic,
    "assay_ordering": gen_ordering,
    "assay_counting": gen_counting,
    "assay_dates": gen_dates,
    "assay_wordlist": gen_wordlist,
}


def render(docs: list[dict]) -> bytes:
    return "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")


def main(argv: list[str]) -> int:
    check = "--check" in argv
    bad = 0
    for task, gen in GENERATORS.items():
        for split, docs in gen().items():
            path = HERE / task / f"{task}_{split}.jsonl"
            data = render(docs)
            if check:
                if not path.exists() or path.read_bytes() != data:
                    print(f"differs: {path.relative_to(HERE)}")
                    bad += 1
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                print(f"wrote {path.relative_to(HERE)} ({len(docs)} docs)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
