//! Merging the shards of a run (`assay run --shard K/N`, one per job of a
//! CI matrix or a Kubernetes Indexed Job) into the run an unsharded
//! invocation would have written.
//!
//! The shards' run.json files must agree on the variant, the model, what
//! was asked for (the recorded [`Invocation`]) and the task configs, and
//! together cover shards 0..N. The run is then planned again without a
//! shard, each document's responses are taken from the shard that scored
//! it (its prompt must hash the same, or the data changed in between), and
//! the whole is scored as one run: every mean, standard error and group
//! score comes out as an unsharded run's.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::plan::Invocation;
use super::{Answers, EngineError, Plan, RequestCounts, SkippedDocument, TaskOptions};
use crate::backend::ModelIdentity;
use crate::request::{Request, Response};
use crate::results::{self, SampleRecord};
use crate::task::Registry;

/// One shard as read from its run folder.
struct Shard {
    dir: PathBuf,
    run: Value,
    invocation: Invocation,
    index: usize,
    count: usize,
}

/// A merged run, ready to be scored and written.
pub struct Merged {
    pub plan: Plan,
    pub answers: Answers,
    pub variant: String,
    pub model: ModelIdentity,
    pub model_args: BTreeMap<String, String>,
    pub invocation: Invocation,
    pub skipped_documents: Vec<SkippedDocument>,
    pub run_ids: Vec<String>,
    pub seconds_planning: f64,
}

fn input(message: String) -> EngineError {
    EngineError::Input(message)
}

fn read_shard(dir: &Path) -> Result<Shard, EngineError> {
    let path = dir.join("run.json");
    let run = crate::results::read_run(dir)
        .map_err(|e| input(format!("{e}; give the folders of complete shard runs")))?
        .run;
    let shard = &run["assay"]["shard"];
    let (Some(index), Some(count)) = (shard["index"].as_u64(), shard["count"].as_u64()) else {
        return Err(input(format!(
            "{}: not a shard (it was not run with --shard K/N)",
            path.display()
        )));
    };
    let invocation: Invocation = serde_json::from_value(run["assay"]["invocation"].clone())
        .ok()
        .filter(|i: &Invocation| !i.tasks.is_empty())
        .ok_or_else(|| {
            input(format!(
                "{}: records no invocation (written by an older assay); run the shards again",
                path.display()
            ))
        })?;
    Ok(Shard {
        dir: dir.to_path_buf(),
        run,
        invocation,
        index: index as usize,
        count: count as usize,
    })
}

/// Reads and checks the shards in `dirs`, plans the whole run with the
/// registry `registry` builds from the recorded include paths, and fills
/// its answers from the shards' samples.
pub fn merge(
    dirs: &[PathBuf],
    registry: impl Fn(&[PathBuf]) -> Result<Registry, EngineError>,
    show_progress: bool,
) -> Result<Merged, EngineError> {
    let started = std::time::Instant::now();
    if dirs.is_empty() {
        return Err(input("give the run folders of the shards to merge".into()));
    }
    let shards: Vec<Shard> = dirs
        .iter()
        .map(|d| read_shard(d))
        .collect::<Result<_, _>>()?;
    let first = &shards[0];
    let name = |s: &Shard| s.dir.join("run.json").display().to_string();
    for s in &shards[1..] {
        for (what, a, b) in [
            (
                "variant",
                &first.run["assay"]["variant"],
                &s.run["assay"]["variant"],
            ),
            (
                "model",
                &first.run["assay"]["model"]["fingerprint"],
                &s.run["assay"]["model"]["fingerprint"],
            ),
            (
                "model details",
                &first.run["assay"]["model"]["details"],
                &s.run["assay"]["model"]["details"],
            ),
            (
                "shard count",
                &first.run["assay"]["shard"]["count"],
                &s.run["assay"]["shard"]["count"],
            ),
        ] {
            if a != b {
                return Err(input(format!(
                    "{} and {} differ in their {what} ({a} vs {b}); only shards of one run merge",
                    name(first),
                    name(s)
                )));
            }
        }
        if s.invocation != first.invocation {
            return Err(input(format!(
                "{} and {} were asked for different things (tasks or task options differ); \
                 only shards of one run merge",
                name(first),
                name(s)
            )));
        }
        for (task, info) in first.run["assay"]["tasks"]
            .as_object()
            .into_iter()
            .flatten()
        {
            let other = &s.run["assay"]["tasks"][task]["config_hash"];
            if &info["config_hash"] != other {
                return Err(input(format!(
                    "task `{task}`: its config changed between {} and {}",
                    name(first),
                    name(s)
                )));
            }
        }
    }
    let count = first.count;
    let mut seen = vec![None; count];
    for s in &shards {
        if let Some(prev) = seen[s.index].replace(name(s)) {
            return Err(input(format!(
                "shard {}/{count} given twice: {prev} and {}",
                s.index,
                name(s)
            )));
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|k| seen[*k].is_none())
        .map(|k| format!("{k}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(input(format!(
            "shard{} {} missing; merge all {count} shards of the run",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        )));
    }

    let invocation = first.invocation.clone();
    let chat_template = match &invocation.chat_template {
        Some(record) => Some(std::sync::Arc::new(record.compile().map_err(|e| {
            input(format!("{}: the recorded chat template: {e}", name(first)))
        })?)),
        None => None,
    };
    let options = TaskOptions {
        num_fewshot: invocation.num_fewshot,
        limit: invocation.limit,
        fewshot_seed: invocation.fewshot_seed,
        system_instruction: invocation.system_instruction.clone(),
        shard: None,
        show_progress,
        chat_template,
        fewshot_as_multiturn: invocation.fewshot_as_multiturn,
    };
    let registry = registry(&invocation.include_path)?;
    let mut plan = super::plan(&registry, &invocation.tasks, &options)?;

    // Each document's samples, from whichever shard has them.
    let mut samples: HashMap<(String, usize), SampleRecord> = HashMap::new();
    let mut skipped = Vec::new();
    for s in &shards {
        let path = s.dir.join("samples.parquet");
        let rows =
            results::read_samples(&path).map_err(|e| input(format!("{}: {e}", path.display())))?;
        for row in rows {
            samples.entry((row.task.clone(), row.doc_id)).or_insert(row);
        }
        if let Some(list) = s.run["assay"]["skipped_documents"].as_array() {
            for doc in list {
                if let Ok(doc) = serde_json::from_value::<SkippedDocument>(doc.clone()) {
                    skipped.push(doc);
                }
            }
        }
    }
    let skipped_ids: std::collections::HashSet<(String, usize)> =
        skipped.iter().map(|d| (d.task.clone(), d.doc_id)).collect();
    let mut by_hash = HashMap::new();
    let mut counts = RequestCounts::default();
    for task in &mut plan.tasks {
        let name = task.config.task.clone();
        let repeats = task.config.repeats;
        let mut problem = None;
        task.docs.retain(|doc| {
            if problem.is_some() || skipped_ids.contains(&(name.clone(), doc.doc_id)) {
                return false;
            }
            let Some(sample) = samples.get(&(name.clone(), doc.doc_id)) else {
                problem = Some(format!(
                    "task `{name}`, document {}: no shard has its samples",
                    doc.doc_id
                ));
                return false;
            };
            let prompt = doc.prompt();
            if crate::request::sha256_hex(prompt.as_bytes()) != sample.prompt_hash {
                problem = Some(format!(
                    "task `{name}`, document {}: its prompt is not the one the shard scored; \
                     the task's data or config changed since the shards ran",
                    doc.doc_id
                ));
                return false;
            }
            match responses(&doc.requests, &sample.resps, repeats) {
                Ok(answers) => {
                    for (request, response) in doc.requests.iter().zip(answers) {
                        by_hash.insert(request.hash(), response);
                    }
                    true
                }
                Err(why) => {
                    problem = Some(format!("task `{name}`, document {}: {why}", doc.doc_id));
                    false
                }
            }
        });
        if let Some(problem) = problem {
            return Err(input(problem));
        }
    }
    let mut inference = 0.0;
    let mut planning = 0.0;
    for s in &shards {
        if let Ok(c) = serde_json::from_value::<RequestCounts>(s.run["assay"]["requests"].clone()) {
            counts.total += c.total;
            counts.sent += c.sent;
            counts.cached += c.cached;
            counts.retried += c.retried;
            counts.failed += c.failed;
        }
        let timings = &s.run["assay"]["timings"];
        inference += timings["inference_seconds"].as_f64().unwrap_or(0.0);
        planning += timings["planning_seconds"].as_f64().unwrap_or(0.0);
    }
    let model: ModelIdentity = serde_json::from_value(first.run["assay"]["model"].clone())
        .map_err(|e| input(format!("{}: the model record: {e}", name(first))))?;
    let model_args: BTreeMap<String, String> =
        serde_json::from_value(first.run["config"]["model_args"].clone()).unwrap_or_default();
    Ok(Merged {
        plan,
        answers: Answers {
            by_hash,
            counts,
            seconds: inference,
            overlong: Vec::new(),
        },
        variant: first.run["assay"]["variant"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        model,
        model_args,
        invocation,
        skipped_documents: skipped,
        run_ids: shards
            .iter()
            .map(|s| {
                s.run["assay"]["run_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect(),
        seconds_planning: planning + started.elapsed().as_secs_f64(),
    })
}

/// A document's responses from its recorded raw responses: one per request,
/// each repeated `repeats` times for generation.
fn responses(requests: &[Request], resps: &Value, repeats: usize) -> Result<Vec<Response>, String> {
    let list = resps
        .as_array()
        .ok_or("its recorded responses are not a list")?;
    let mut out = Vec::with_capacity(requests.len());
    let mut at = 0;
    for request in requests {
        let item = list
            .get(at)
            .ok_or("it has fewer recorded responses than requests")?;
        let response = match request {
            Request::Loglikelihood { .. } => {
                let pair = item.as_array().filter(|p| p.len() == 2);
                let logprob = pair.and_then(|p| p[0].as_f64());
                let is_greedy = pair.and_then(|p| p[1].as_bool());
                match (logprob, is_greedy) {
                    (Some(logprob), Some(is_greedy)) => {
                        Response::Loglikelihood { logprob, is_greedy }
                    }
                    _ => {
                        return Err(format!(
                            "recorded response {at} is not [logprob, is_greedy]"
                        ))
                    }
                }
            }
            Request::Rolling { .. } => {
                let logprob = item
                    .as_array()
                    .and_then(|p| p.first())
                    .and_then(Value::as_f64)
                    .ok_or_else(|| format!("recorded response {at} is not [logprob]"))?;
                Response::Rolling { logprob }
            }
            Request::Generate { .. } => {
                let text = item
                    .as_str()
                    .ok_or_else(|| format!("recorded response {at} is not text"))?;
                Response::Generate {
                    text: text.to_string(),
                }
            }
        };
        at += match request {
            Request::Generate { .. } => repeats.max(1),
            _ => 1,
        };
        out.push(response);
    }
    Ok(out)
}
