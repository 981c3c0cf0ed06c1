//! Variant manifests: `assay variants validate` names each problem of each
//! manifest, and `assay score` runs the suite only for a sound manifest
//! whose weights match.

#[path = "support/runs.rs"]
mod runs;
#[path = "support/tiny_gguf.rs"]
mod tiny_gguf;

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn assay(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("ASSAY_CACHE_DIR", dir.join("cache"));
    cmd
}

const ORIGINAL: &str = r#"
name = "tiny"
display_name = "Tiny <b>original</b>"
relation = "original"
contributor = "assay tests"
license = "MIT"
parameters = 100000
precision = "F32"
notes = "random weights"

[backend]
spec = "llama:models/tiny.gguf"
args = { n_ctx = "512" }
"#;

fn quantization(base: &str) -> String {
    format!(
        "name = \"tiny-q\"\nbase = \"{base}\"\nrelation = \"quantization\"\nprecision = \"Q8_0\"\n\
         bits_per_weight = 8.5\n[backend]\nspec = \"llama:models/tiny.gguf\"\n"
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir.join("variants")).unwrap();
    std::fs::write(dir.join("variants").join(format!("{name}.toml")), text).unwrap();
}

fn validate(dir: &Path) -> assert_cmd::assert::Assert {
    assay(dir)
        .args(["variants", "validate"])
        .arg(dir.join("variants"))
        .assert()
}

#[test]
fn sound_manifests_validate() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tiny", ORIGINAL);
    write(dir.path(), "tiny-q", &quantization("tiny"));
    validate(dir.path())
        .success()
        .stdout(predicate::str::contains("2 manifest(s) valid"));
}

#[test]
fn each_problem_is_named() {
    let cases: &[(&str, String, &str)] = &[
        (
            "unknown-key",
            ORIGINAL.replace(
                "tiny\"\ndisplay",
                "unknown-key\"\ncolour = \"red\"\ndisplay",
            ),
            "unknown field `colour`",
        ),
        (
            "no-relation",
            ORIGINAL
                .replace("name = \"tiny\"", "name = \"no-relation\"")
                .replace("relation = \"original\"\n", ""),
            "missing field `relation`",
        ),
        (
            "bad-relation",
            ORIGINAL
                .replace("name = \"tiny\"", "name = \"bad-relation\"")
                .replace("\"original\"", "\"distillation\""),
            "original, fine-tune, quantization, merge, adapter",
        ),
        (
            "orphan",
            quantization("nobody").replace("tiny-q", "orphan"),
            "base \"nobody\" has no manifest",
        ),
        (
            "no-base",
            quantization("x")
                .replace("base = \"x\"\n", "")
                .replace("tiny-q", "no-base"),
            "there is no base",
        ),
        (
            "Mismatch",
            ORIGINAL.replace("\"tiny\"", "\"other-name\""),
            "differs from the file name",
        ),
        (
            "bad-hash",
            ORIGINAL.replace(
                "name = \"tiny\"",
                "name = \"bad-hash\"\nweights_sha256 = \"abc\"",
            ),
            "not 64 hexadecimal digits",
        ),
        (
            "bad-toml",
            "name = \"bad-toml\"\nrelation = \n".to_string(),
            "line 2",
        ),
    ];
    for (file, text, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), file, text);
        validate(dir.path()).code(2).stderr(
            predicate::str::contains(format!("{file}.toml"))
                .and(predicate::str::contains(*expected)),
        );
    }
}

#[test]
fn unsafe_names_and_cycles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a", &quantization("b").replace("tiny-q", "a"));
    write(dir.path(), "b", &quantization("a").replace("tiny-q", "b"));
    validate(dir.path())
        .code(2)
        .stderr(predicate::str::contains("lineage cycle: a -> b -> a"));

    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "evil",
        &ORIGINAL.replace("\"tiny\"", "\"../evil\""),
    );
    validate(dir.path())
        .code(2)
        .stderr(predicate::str::contains("not safe as a file name"));
}

#[test]
fn weights_must_match_their_hash() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    tiny_gguf::write_tiny_llama(&models.join("tiny.gguf"), 4).unwrap();
    let actual = assay::hash::sha256_hex(&std::fs::read(models.join("tiny.gguf")).unwrap());
    let wrong = "0".repeat(64);
    write(
        dir.path(),
        "tiny",
        &ORIGINAL.replace("notes =", &format!("weights_sha256 = \"{wrong}\"\nnotes =")),
    );
    validate(dir.path()).code(2).stderr(
        predicate::str::contains(actual.as_str()).and(predicate::str::contains(wrong.as_str())),
    );
    // `assay score` refuses before running anything.
    assay(dir.path())
        .args(["score", "--quiet", "--limit", "2", "--out"])
        .arg(dir.path().join("runs"))
        .arg(dir.path().join("variants/tiny.toml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("SHA-256"));
    assert!(!dir.path().join("runs").exists());

    // With the right hash, the suite runs and the run is filed under the name.
    write(
        dir.path(),
        "tiny",
        &ORIGINAL.replace(
            "notes =",
            &format!("weights_sha256 = \"{actual}\"\nnotes ="),
        ),
    );
    assay(dir.path())
        .args(["score", "--quiet", "--limit", "2", "--out"])
        .arg(dir.path().join("runs"))
        .arg(dir.path().join("variants/tiny.toml"))
        .assert()
        .success()
        .stdout(predicate::str::contains("default"));
    let run = std::fs::read_dir(dir.path().join("runs/tiny"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(json["assay"]["variant"], "tiny");
    assert!(json["results"]["assay_arithmetic"].is_object());
    assert!(json["groups"]["default"].is_object());

    // The leaderboard tables pick the run up, with the manifest's fields.
    assay(dir.path())
        .args(["leaderboard", "--results"])
        .arg(dir.path())
        .arg("--variants")
        .arg(dir.path().join("variants"))
        .assert()
        .success()
        .stdout(predicate::str::contains("1 variant(s)"));
    let csv = std::fs::read_to_string(dir.path().join("leaderboard/leaderboard.csv")).unwrap();
    assert!(csv.contains("tiny") && csv.contains("original"), "{csv}");
    // The manifest gives parameters and precision; bits per weight, which it
    // leaves out, is read from the file, and the page says which is which.
    let page = std::fs::read_to_string(dir.path().join("leaderboard/variants/tiny.html")).unwrap();
    assert!(page.contains("100000 (declared)"), "{page}");
    assert!(page.contains("(from the file)"), "{page}");

    // The run recorded which prompts each task asked: the hash a reader
    // computes from the samples' own prompt hashes, which names the site's
    // prompt file, and each multiple-choice row's chosen option.
    let recorded = json["assay"]["tasks"]["assay_arithmetic"]["prompts_hash"]
        .as_str()
        .unwrap()
        .to_string();
    let key = assay::results::MetricKey {
        task: "assay_arithmetic".into(),
        filter: "none".into(),
        metric: "acc".into(),
    };
    let rows = assay::results::read_documents(
        &run.join("samples.parquet"),
        std::slice::from_ref(&key),
        true,
    )
    .unwrap();
    let computed = assay::results::prompts_hash(
        rows[&key]
            .iter()
            .map(|r| (r.doc_id, r.prompt_hash.as_deref().unwrap())),
    );
    assert_eq!(computed, recorded);
    let docs = std::fs::read_dir(dir.path().join("leaderboard/docs/tiny"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(docs).unwrap();
    let prompts = format!("prompts/assay_arithmetic-{}.js", &recorded[..16]);
    assert!(text.contains(&prompts), "{text}");
    assert!(dir.path().join("leaderboard/docs").join(&prompts).is_file());
    // Rows are [doc id, value, chosen option]: two documents, a number each.
    let rows_text = text
        .split("\"assay_arithmetic\":")
        .nth(1)
        .unwrap()
        .split("\"rows\":[")
        .nth(1)
        .unwrap();
    assert!(
        rows_text.starts_with("[0,") && rows_text.contains("],[1,"),
        "{rows_text}"
    );
}

#[test]
fn an_unknown_suite_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tiny", ORIGINAL);
    assay(dir.path())
        .args(["score", "--suite", "nope"])
        .arg(dir.path().join("variants/tiny.toml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("tasks/suites/nope.yaml"));
    assay(dir.path())
        .args(["leaderboard", "--suite", "nope", "--results"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("tasks/suites/nope.yaml"));
    // A suite file that is not a group config is named.
    let file = dir.path().join("mine.yaml");
    std::fs::write(&file, "task: [assay_arithmetic]\n").unwrap();
    assay(dir.path())
        .args(["score", "--suite"])
        .arg(&file)
        .arg(dir.path().join("variants/tiny.toml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("mine.yaml").and(predicate::str::contains("group")));
}

#[test]
fn a_hubs_own_suite_scores_in_shards_that_merge_into_the_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("models")).unwrap();
    tiny_gguf::write_tiny_llama(&d.join("models/tiny.gguf"), 4).unwrap();
    write(d, "tiny", ORIGINAL);
    // The hub's own task, and its suite of that task and a built-in one.
    let tasks = d.join("hub-tasks");
    std::fs::create_dir_all(&tasks).unwrap();
    std::fs::write(
        tasks.join("d.jsonl"),
        (0..6)
            .map(|i| {
                format!(
                    "{{\"q\": \"{i} + 1 =\", \"a\": 0, \"c\": [\" {}\", \" 0\"]}}\n",
                    i + 1
                )
            })
            .collect::<String>(),
    )
    .unwrap();
    std::fs::write(
        tasks.join("hub_sums.yaml"),
        "task: hub_sums\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: d.jsonl\n\
         test_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{q}}\"\ndoc_to_target: a\n\
         doc_to_choice: c\n",
    )
    .unwrap();
    let suite = d.join("hub.yaml");
    std::fs::write(&suite, "group: hub\ntask: [hub_sums, assay_arithmetic]\n").unwrap();
    let score = |out: &str, shard: Option<&str>| {
        let mut cmd = assay(d);
        cmd.args(["score", "--quiet", "--limit", "4", "--suite"])
            .arg(&suite)
            .arg("--include-path")
            .arg(&tasks)
            .arg("--out")
            .arg(d.join(out));
        if let Some(s) = shard {
            cmd.args(["--shard", s]);
        }
        cmd.arg(d.join("variants/tiny.toml")).assert().success();
        std::fs::read_dir(d.join(out).join("tiny"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect::<Vec<_>>()
    };
    assert_eq!(score("whole", None).len(), 1);
    let mut shards = score("shards", Some("0/2"));
    shards.extend(score("shards", Some("1/2")));
    shards.sort();
    shards.dedup();
    assert_eq!(shards.len(), 2, "{shards:?}");
    assay(d)
        .args(["merge", "--quiet", "--out"])
        .arg(d.join("merged"))
        .args(&shards)
        .assert()
        .success();
    let read = |dir: &Path| runs::read(&runs::only_run(dir));
    let (whole, merged) = (read(&d.join("whole/tiny")), read(&d.join("merged/tiny")));
    for name in ["hub", "hub_sums", "assay_arithmetic"] {
        assert_eq!(
            whole.results[name].scores, merged.results[name].scores,
            "{name}"
        );
    }
    assert_eq!(whole.n_samples["hub_sums"].effective, 4);
}

#[test]
fn lineage_is_checked_against_the_weights_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let models = d.join("models");
    std::fs::create_dir_all(&models).unwrap();
    tiny_gguf::write_tiny_llama(&models.join("tiny.gguf"), 4).unwrap();
    // Another architecture's file, and the tiny model with one token changed.
    tiny_gguf::write_tiny_model(&models.join("other-arch.gguf"), 4, "gemma3").unwrap();
    let mut bytes = std::fs::read(models.join("tiny.gguf")).unwrap();
    let token = "\u{2581}mat".as_bytes();
    let at = bytes
        .windows(token.len())
        .position(|w| w == token)
        .expect("the vocabulary has the token");
    bytes[at + token.len() - 2] = b'o';
    std::fs::write(models.join("other-vocab.gguf"), bytes).unwrap();
    let derived = |name: &str, file: &str| {
        format!(
            "name = \"{name}\"\nbase = \"tiny\"\nrelation = \"quantization\"\n\
             [backend]\nspec = \"llama:models/{file}\"\n"
        )
    };
    write(d, "tiny", &ORIGINAL.replace("parameters = 100000\n", ""));
    write(d, "same", &derived("same", "tiny.gguf"));
    validate(d).success();
    write(d, "arch", &derived("arch", "other-arch.gguf"));
    write(d, "vocab", &derived("vocab", "other-vocab.gguf"));
    write(
        d,
        "count",
        &derived("count", "tiny.gguf").replace("[backend]", "parameters = 7\n[backend]"),
    );
    // An adapter over other weights than its base variant's.
    tiny_gguf::write_tiny_llama(&models.join("other-seed.gguf"), 5).unwrap();
    write(
        d,
        "adapted",
        "name = \"adapted\"\nbase = \"tiny\"\nrelation = \"adapter\"\n[backend]\n\
         spec = \"llama:models/other-seed.gguf\"\nargs = { lora = \"models/lora.gguf\" }\n",
    );
    validate(d).code(2).stderr(
        predicate::str::contains(
            "arch.toml: its base `tiny` is a `llama` model, but its weights are `gemma3`",
        )
        .and(predicate::str::contains(
            "vocab.toml: its weights have another vocabulary",
        ))
        .and(predicate::str::contains(
            "count.toml: parameters = 7, but the weights file has",
        ))
        .and(predicate::str::contains(
            "adapted.toml: an adapter of `tiny`, but the weights it applies over are not `tiny`'s",
        ))
        .and(predicate::str::contains("same.toml").not()),
    );
}

#[test]
fn lm_eval_manifests_pin_their_revision_and_name_their_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = |name: &str, relation: &str, args: &str| {
        let base = if relation == "original" {
            String::new()
        } else {
            "base = \"hub-model\"\n".to_string()
        };
        write(
            d,
            name,
            &format!(
                "name = \"{name}\"\n{base}relation = \"{relation}\"\n[backend]\n\
                 spec = \"lm-eval:hf\"\nargs = {{ {args} }}\n"
            ),
        );
    };
    let commit = "0123456789abcdef0123456789abcdef01234567";
    model(
        "hub-model",
        "original",
        &format!("pretrained = \"org/model\", revision = \"{commit}\""),
    );
    // A branch, not a commit: valid, with a warning.
    model(
        "tuned",
        "fine-tune",
        "pretrained = \"org/tuned\", revision = \"main\"",
    );
    model(
        "peft-ok",
        "adapter",
        &format!("pretrained = \"org/model\", revision = \"{commit}\", peft = \"org/lora\""),
    );
    validate(d)
        .success()
        .stderr(predicate::str::contains(
            "tuned.toml: backend.args revision of org/tuned is `main`, not a commit",
        ))
        .stderr(predicate::str::contains("hub-model.toml").not());
    // An adapter that names no adapter, or applies over other weights.
    model(
        "no-peft",
        "adapter",
        &format!("pretrained = \"org/model\", revision = \"{commit}\""),
    );
    model(
        "elsewhere",
        "adapter",
        "pretrained = \"org/other\", peft = \"org/lora\"",
    );
    validate(d)
        .code(2)
        .stderr(predicate::str::contains(
            "no-peft.toml: relation is adapter but backend.args names no adapter: give peft",
        ))
        .stderr(predicate::str::contains(
            "elsewhere.toml: an adapter of `hub-model`, but its backend.args pretrained/revision \
             (org/other@main) are not its base's (org/model@0123456789abcdef0123456789abcdef01234567)",
        ));
}
