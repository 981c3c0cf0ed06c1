"""Documents and crafted answers for checking IFEval's and MATH's scoring
(tests/leaderboard_v2.rs). Python 3 standard library only; every document
and answer is written here.

    python make_v2_checks.py OUT LM_EVAL_TASKS

writes
  OUT/ifeval.jsonl     210 IFEval documents: the 14 of
                       tests/fixtures/hub/wis-k--instruction-following-eval
                       (every instruction type), each in 15 variants
  OUT/math.jsonl       100 MATH level-5 problems, gold answers in many forms
  OUT/math_train.jsonl a few training documents (the split the task names)
  OUT/answers.json     {PROMPT KEY: ANSWER}: the model's answer to the prompt
                       that contains KEY (the longest key found wins)
  OUT/tasks/*.yaml     lm-eval's own leaderboard_ifeval and
                       leaderboard_math_algebra_hard, reading those files
  OUT/own/*.yaml       assay's own configs of the same two tasks (in
                       tasks/standard/leaderboard), reading the same files

IFEval's answers switch features on and off from a seeded generator (the
doc's keywords, forbidden words, sections, highlights, JSON, case, bullets,
a title, a postscript, the end phrase, a chatty first line, quotes, commas,
another language, placeholders, the repeated prompt), so that every
instruction type passes in some answers and fails in others, strictly and
loosely. MATH's answers give each gold answer in equivalent and
non-equivalent forms, boxed or in the "Final Answer" line (that line only
when it equals the gold: lm-eval compares other ones through sympy under a
one-second alarm, which a loaded machine can miss).
"""

import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IFEVAL = ROOT / "tests/fixtures/hub/wis-k--instruction-following-eval/default/train.jsonl"


def ifeval_answer(doc, rnd):
    kw = {}
    for entry in doc["kwargs"]:
        kw.update({k: v for k, v in entry.items() if v is not None})
    on = lambda: rnd.random() < 0.5  # noqa: E731
    words = ["the", "quiet", "river", "bends", "past", "seven", "lamps", "and", "a", "kite"]
    body = [" ".join(rnd.choice(words) for _ in range(rnd.randint(6, 40))) + "."]
    if on() and kw.get("keywords"):
        body.append(" ".join(kw["keywords"]) + " appear here.")
    if on() and kw.get("forbidden_words"):
        body.append("We mention " + kw["forbidden_words"][0] + " once.")
    if on() and kw.get("keyword"):
        body.append((kw["keyword"] + " ") * int(kw.get("frequency") or 1))
    if on() and kw.get("letter"):
        body.append((kw["letter"] * 3 + " ") * int(kw.get("let_frequency") or 1))
    if on():
        n = int(kw.get("num_highlights") or 2)
        body.append(" ".join(f"*part {i}*" for i in range(n)))
    if on():
        n = int(kw.get("num_placeholders") or 2)
        body.append(" ".join(f"[place{i}]" for i in range(n)))
    if on():
        n = int(kw.get("num_bullets") or 3)
        body.append("\n".join(f"* point {i}" for i in range(n)))
    text = "\n".join(body)
    if on():
        n = int(kw.get("num_paragraphs") or 2)
        text = "\n\n***\n\n".join([text] * n)
    if on():
        spliter = kw.get("section_spliter") or "Section"
        n = int(kw.get("num_sections") or 2)
        text = "\n\n".join(f"{spliter} {i + 1}\n{text}" for i in range(n))
    if on():
        text = "<<A Title>>\n" + text
    if on() and kw.get("prompt_to_repeat"):
        text = kw["prompt_to_repeat"] + "\n" + text
    if on():
        text = text.replace(",", "")
    else:
        text = text + ", and so on"
    if on():
        text += "\nಇದು ಕನ್ನಡದಲ್ಲಿ ಬರೆದ ವಾಕ್ಯ, ನದಿಯ ಬಗ್ಗೆ."
    case = rnd.random()
    if case < 0.3:
        text = text.upper()
    elif case < 0.6:
        text = text.lower()
    if on():
        text += "\n" + (kw.get("postscript_marker") or "P.S.") + " one more thing."
    if on() and kw.get("end_phrase"):
        text += "\n" + kw["end_phrase"]
    if on():
        text = json.dumps({"answer": text})
        if on():
            text = "```json\n" + text + "\n```"
    if on():
        text = '"' + text + '"'
    if on():
        text = "Sure! Here it is:\n" + text
    if on():
        text = "My answer is yes."
    return text


# (gold answer in the solution's box, [answers that equal it, answers that
# do not]).
MATH_ANSWERS = [
    ("\\frac{1}{2}", ["\\frac12", "0.5", "\\dfrac{1}{2}", "1/2", "\\tfrac{1}{2}"], ["2", "\\frac{1}{3}"]),
    ("3\\sqrt{2}", ["3\\sqrt2", "\\sqrt{18}", "3 \\sqrt{2}"], ["4.24", "2\\sqrt{3}"]),
    ("10", ["10", "10.0", "\\boxed{10}"], ["11", "ten"]),
    ("(1,2)", ["(1, 2)", "\\left(1,2\\right)"], ["(2,1)", "[1,2]"]),
    ("\\pi", ["\\pi"], ["3.14159", "180^\\circ"]),
    ("x^2+1", ["1+x^2", "x^{2}+1"], ["x^2-1"]),
    ("\\text{(B)}", ["\\text{(B)}", "(B)"], ["(C)"]),
    ("5\\%", ["5\\%", "5"], ["0.5"]),
    ("[2,5)", ["[2,5)", "[2, 5)"], ["(2,5]", "[2,5]"]),
    ("-\\frac{2}{3}", ["-\\frac23", "\\frac{-2}{3}", "-0.\\overline{6}"], ["\\frac{2}{3}"]),
    ("2^{10}", ["1024", "2^{10}"], ["2^{9}"]),
    ("\\$12", ["12", "\\$12"], ["13"]),
]


def math_docs_and_answers():
    docs, answers = [], {}
    rnd = random.Random(7)
    forms = ["final", "boxed", "both", "neither"]
    i = 0
    while len(docs) < 100:
        for gold, same, other in MATH_ANSWERS:
            for candidate in same + other:
                if len(docs) >= 100:
                    break
                i += 1
                problem = f"Problem number {i}: find the value the checker calls {gold}, case {i}."
                docs.append({
                    "problem": problem,
                    "level": "Level 5",
                    "type": "Algebra",
                    "solution": f"Working it out gives $\\boxed{{{gold}}}$.",
                })
                # lm-eval's exact_match_original compares a "Final Answer"
                # that differs from the gold through sympy under a 1-second
                # alarm, so its score depends on the machine's load: only
                # answers equal to the gold carry that line. The other
                # forms are compared by exact_match (math-verify).
                choices = forms if candidate == gold else ["boxed", "neither"]
                form = choices[rnd.randrange(len(choices))]
                if form == "final":
                    text = f" We compute.\nFinal Answer: The final answer is ${candidate}$. I hope it is correct."
                elif form == "boxed":
                    text = f" So the result is $\\boxed{{{candidate}}}$."
                elif form == "both":
                    text = (f" Thus $\\boxed{{{candidate}}}$.\nFinal Answer: The final answer is "
                            f"${candidate}$. I hope it is correct.")
                else:
                    text = f" The answer might be {candidate} or so."
                answers[problem] = text
    return docs, answers


def main(argv):
    out, lm_eval_tasks = Path(argv[0]), Path(argv[1]).resolve()
    (out / "tasks").mkdir(parents=True, exist_ok=True)
    (out / "own").mkdir(parents=True, exist_ok=True)
    rnd = random.Random(2024)
    answers = {}
    ifeval = []
    base = [json.loads(line) for line in IFEVAL.read_text(encoding="utf-8").splitlines()]
    for k in range(15):
        for doc in base:
            d = dict(doc)
            d["key"] = doc["key"] * 100 + k
            d["prompt"] = doc["prompt"] + (f" (Variant {k}.)" if k else "")
            ifeval.append(d)
            answers[d["prompt"]] = ifeval_answer(d, rnd)
    math, math_answers = math_docs_and_answers()
    answers.update(math_answers)
    write = lambda name, rows: (out / name).write_text(  # noqa: E731
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    write("ifeval.jsonl", ifeval)
    write("math.jsonl", math)
    write("math_train.jsonl", math[:3])
    (out / "answers.json").write_text(json.dumps(answers, ensure_ascii=False, indent=1), encoding="utf-8")
    ifeval_files = {"train": out / "ifeval.jsonl"}
    math_files = {"train": out / "math_train.jsonl", "test": out / "math.jsonl"}
    own = ROOT / "tasks/standard/leaderboard"
    overlays = {
        "tasks/v2_ifeval": (lm_eval_tasks / "leaderboard/ifeval/ifeval.yaml", ifeval_files),
        "tasks/v2_math": (lm_eval_tasks / "leaderboard/math/math_algebra.yaml", math_files),
        "own/v2own_ifeval": (own / "leaderboard_ifeval.yaml", ifeval_files),
        "own/v2own_math": (own / "leaderboard_math_algebra_hard.yaml", math_files),
    }
    for name, (yaml, files) in overlays.items():
        cfg = {
            "include": str(yaml),
            "task": name.split("/")[1],
            "dataset_path": "json",
            "dataset_name": None,
            "dataset_kwargs": {"data_files": {s: str(p.resolve()) for s, p in files.items()}},
        }
        (out / f"{name}.yaml").write_text(json.dumps(cfg, indent=1) + "\n", encoding="utf-8")
    print(f"{len(ifeval)} IFEval documents, {len(math)} MATH problems")


if __name__ == "__main__":
    main(sys.argv[1:])
