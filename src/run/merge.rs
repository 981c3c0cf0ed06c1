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

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Error, Plan, Record};
use crate::engine::{Answers, RequestCounts};
use crate::request::{Request, Response};
use crate::results::{self, Run, SampleRecord};

/// One shard as read from its run folder.
struct Shard {
    dir: PathBuf,
    run: Run,
    index: usize,
    count: usize,
}

/// A merged run, ready to be scored and written.
pub struct Merged {
    pub plan: Plan,
    pub answers: Answers,
    pub record: Record,
}

fn input(message: String) -> Error {
    Error::Input(message)
}

/// A recorded value as run.json shows it, for messages.
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn read_shard(dir: &Path) -> Result<Shard, Error> {
    let path = dir.join("run.json");
    let run = crate::results::read_run(dir)
        .map_err(|e| input(format!("{e}; give the folders of complete shard runs")))?
        .run;
    let Some(shard) = run.assay.shard else {
        return Err(input(format!(
            "{}: not a shard (it was not run with --shard K/N)",
            path.display()
        )));
    };
    if run.assay.invocation.tasks.is_empty() {
        return Err(input(format!(
            "{}: records no invocation (written by an older assay); run the shards again",
            path.display()
        )));
    }
    Ok(Shard {
        dir: dir.to_path_buf(),
        run,
        index: shard.index,
        count: shard.count,
    })
}

/// Reads and checks the shards in `dirs`, plans the whole run with the
/// recorded invocation, and fills its answers from the shards' samples.
pub fn merge(
    dirs: &[PathBuf],
    show_progress: bool,
    python_hooks: crate::ports::python::HookMode,
) -> Result<Merged, Error> {
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
        let (a, b) = (&first.run.assay, &s.run.assay);
        let model_details = |r: &Run| json(&r.assay.model.as_ref().map(|m| &m.details));
        for (what, x, y) in [
            ("variant", json(&a.variant), json(&b.variant)),
            (
                "model",
                json(&first.run.fingerprint()),
                json(&s.run.fingerprint()),
            ),
            (
                "model details",
                model_details(&first.run),
                model_details(&s.run),
            ),
            ("shard count", json(&first.count), json(&s.count)),
        ] {
            if x != y {
                return Err(input(format!(
                    "{} and {} differ in their {what} ({x} vs {y}); only shards of one run merge",
                    name(first),
                    name(s)
                )));
            }
        }
        if b.invocation != a.invocation {
            return Err(input(format!(
                "{} and {} were asked for different things (tasks or task options differ); \
                 only shards of one run merge",
                name(first),
                name(s)
            )));
        }
        for task in a.tasks.keys() {
            if first.run.config_hash(task) != s.run.config_hash(task) {
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
        if let Some(prev) = seen.get_mut(s.index).and_then(|slot| slot.replace(name(s))) {
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

    let mut invocation = first.run.assay.invocation.clone();
    invocation.python_hooks = python_hooks;
    let registry = super::registry(&invocation.include_path, python_hooks)?;
    invocation
        .compiled_chat_template()
        .map_err(|e| input(format!("{}: the recorded chat template: {e}", name(first))))?;
    let mut plan = super::plan(&registry, &invocation, show_progress)?;

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
        skipped.extend(s.run.assay.skipped_documents.iter().cloned());
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
            if crate::hash::sha256_hex(prompt.as_bytes()) != sample.prompt_hash {
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
        let c = &s.run.assay.requests;
        counts.total += c.total;
        counts.sent += c.sent;
        counts.cached += c.cached;
        counts.retried += c.retried;
        counts.failed += c.failed;
        inference += s.run.assay.timings.inference_seconds;
        planning += s.run.assay.timings.planning_seconds;
    }
    let model = first
        .run
        .assay
        .model
        .clone()
        .ok_or_else(|| input(format!("{}: records no model", name(first))))?;
    Ok(Merged {
        plan,
        answers: Answers {
            by_hash,
            counts: counts.clone(),
            seconds: inference,
            overlong: Vec::new(),
        },
        record: Record {
            variant: first.run.assay.variant.clone().unwrap_or_default(),
            model,
            model_args: first.run.config.model_args.clone(),
            invocation,
            counts,
            skipped_documents: skipped,
            merged_from: shards.iter().map(|s| s.run.assay.run_id.clone()).collect(),
            seconds_planning: planning + started.elapsed().as_secs_f64(),
            seconds_inference: inference,
        },
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
