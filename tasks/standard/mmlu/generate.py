#!/usr/bin/env python3
"""Writes assay's MMLU task and group configs from one table.

Usage:  python3 tasks/standard/mmlu/generate.py          (writes next to this file)
        python3 tasks/standard/mmlu/generate.py --check  (fails if a file would change)

MMLU (cais/mmlu) is 57 subjects, each its own dataset config and its own task;
writing 57 near-identical files by hand invites typos, so they come from
SUBJECTS below. Python 3 standard library only; the output is the same on
every run.

Files written:

  subjects/mmlu_<subject>.yaml  one task per subject: includes
                                subjects/_template.yaml (hand-written: the
                                prompt, splits, sampler and metric) and adds the
                                task name, alias, tag, dataset config and the
                                description "The following are multiple choice
                                questions (with answers) about <subject>.\\n\\n"
  mmlu_<category>.yaml          the four categories (stem, other,
                                social_sciences, humanities): their subjects'
                                acc, averaged weighted by document count
  mmlu.yaml                     the four categories, weighted by document count
                                again: the accuracy over all 14,042 questions
  mmlu_subject_mean.yaml        the 57 subjects with equal weight each: MMLU as
                                the Open LLM Leaderboard (v1) reported it

Names, aliases, tags, weights and versions are those of lm-eval 0.4.13's
`mmlu` (default variant), so `--tasks mmlu`, `mmlu_stem`, `mmlu_anatomy` or the
tag `mmlu_stem_tasks` mean the same documents and requests in both tools. The
categories list their subjects by name rather than through the tag, so a
category's children are the subject tasks themselves.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Subject (the cais/mmlu config name) -> category.
SUBJECTS: dict[str, str] = {
    "abstract_algebra": "stem",
    "anatomy": "stem",
    "astronomy": "stem",
    "business_ethics": "other",
    "clinical_knowledge": "other",
    "college_biology": "stem",
    "college_chemistry": "stem",
    "college_computer_science": "stem",
    "college_mathematics": "stem",
    "college_medicine": "other",
    "college_physics": "stem",
    "computer_security": "stem",
    "conceptual_physics": "stem",
    "econometrics": "social_sciences",
    "electrical_engineering": "stem",
    "elementary_mathematics": "stem",
    "formal_logic": "humanities",
    "global_facts": "other",
    "high_school_biology": "stem",
    "high_school_chemistry": "stem",
    "high_school_computer_science": "stem",
    "high_school_european_history": "humanities",
    "high_school_geography": "social_sciences",
    "high_school_government_and_politics": "social_sciences",
    "high_school_macroeconomics": "social_sciences",
    "high_school_mathematics": "stem",
    "high_school_microeconomics": "social_sciences",
    "high_school_physics": "stem",
    "high_school_psychology": "social_sciences",
    "high_school_statistics": "stem",
    "high_school_us_history": "humanities",
    "high_school_world_history": "humanities",
    "human_aging": "other",
    "human_sexuality": "social_sciences",
    "international_law": "humanities",
    "jurisprudence": "humanities",
    "logical_fallacies": "humanities",
    "machine_learning": "stem",
    "management": "other",
    "marketing": "other",
    "medical_genetics": "other",
    "miscellaneous": "other",
    "moral_disputes": "humanities",
    "moral_scenarios": "humanities",
    "nutrition": "other",
    "philosophy": "humanities",
    "prehistory": "humanities",
    "professional_accounting": "other",
    "professional_law": "humanities",
    "professional_medicine": "other",
    "professional_psychology": "social_sciences",
    "public_relations": "social_sciences",
    "security_studies": "social_sciences",
    "sociology": "social_sciences",
    "us_foreign_policy": "social_sciences",
    "virology": "other",
    "world_religions": "humanities",
}

# Category -> the alias lm-eval shows for its group, in the order `mmlu`
# lists them.
CATEGORIES: dict[str, str] = {
    "stem": "stem",
    "other": "other",
    "social_sciences": "social sciences",
    "humanities": "humanities",
}



def generated_by(script: str) -> str:
    """The first line of every written file; `script` is relative to that file."""
    return f"# Written by {script} from its SUBJECTS table; edit that, not this file.\n"


def quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is a subset of it)."""
    return json.dumps(text, ensure_ascii=False)


def subject_file(subject: str, category: str) -> str:
    topic = subject.replace("_", " ")
    description = f"The following are multiple choice questions (with answers) about {topic}.\n\n"
    return (
        generated_by("../generate.py")
        + f"# MMLU, {topic} ({CATEGORIES[category]}).\n"
        + "include: _template.yaml\n"
        + f"task: mmlu_{subject}\n"
        + f"task_alias: {subject}\n"
        + f"tag: mmlu_{category}_tasks\n"
        + f"dataset_name: {subject}\n"
        + f"description: {quoted(description)}\n"
    )


def group_file(header: list[str], name: str, alias: str | None, members: list[str],
               weight_by_size: bool) -> str:
    lines = [generated_by("generate.py").rstrip("\n")]
    lines += [f"# {h}" if h else "#" for h in header]
    lines.append(f"group: {name}")
    if alias is not None:
        lines.append(f"group_alias: {alias}")
    lines.append("task:")
    lines += [f"  - {m}" for m in members]
    lines += [
        "aggregate_metric_list:",
        "  - metric: acc",
        "    aggregation: mean",
        f"    weight_by_size: {'true' if weight_by_size else 'false'}",
        "metadata:",
        "  version: 2",
    ]
    return "\n".join(lines) + "\n"


def outputs() -> dict[Path, str]:
    files: dict[Path, str] = {}
    for subject, category in SUBJECTS.items():
        files[HERE / "subjects" / f"mmlu_{subject}.yaml"] = subject_file(subject, category)
    for category, alias in CATEGORIES.items():
        members = sorted(f"mmlu_{s}" for s, c in SUBJECTS.items() if c == category)
        files[HERE / f"mmlu_{category}.yaml"] = group_file(
            [f"MMLU, {alias}: {len(members)} subjects, each weighted by its number of",
             "test questions (lm-eval's micro average)."],
            f"mmlu_{category}", alias, members, True)
    files[HERE / "mmlu.yaml"] = group_file(
        ["MMLU: the four categories, weighted by their number of test questions, so",
         "the score is the accuracy over all questions of all 57 subjects, as",
         "lm-eval's `mmlu` group reports it."],
        "mmlu", None, [f"mmlu_{c}" for c in CATEGORIES], True)
    files[HERE / "mmlu_subject_mean.yaml"] = group_file(
        ["MMLU as the Open LLM Leaderboard (v1) averaged it: the 57 subjects' acc",
         "with equal weight each, however many questions a subject has. Not an",
         "lm-eval group; tasks/suites/open-llm-v1.yaml uses it. The same requests",
         "as `mmlu`, only the average differs."],
        "mmlu_subject_mean", "mmlu (mean of subjects)",
        sorted(f"mmlu_{s}" for s in SUBJECTS), False)
    return files


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = 0
    for path, text in outputs().items():
        data = text.encode("utf-8")
        if check:
            if not path.exists() or path.read_bytes() != data:
                print(f"differs: {path.relative_to(HERE)}")
                stale += 1
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    if not check:
        print(f"wrote {len(outputs())} files under {HERE}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
