//! A scored plan as the run format holds it: the typed `run.json` and the
//! rows of `samples.parquet`.

use indexmap::IndexMap;
use serde_json::{json, Value};

use super::plan::Plan;
use super::score::{GroupScores, Score, TaskScores};
use super::Record;
use crate::hash::sha256_hex;
use crate::python::value::py_str;
use crate::results::{
    doc_hashes, prompts_hash, HookRecord, MetricBlock, Provenance, Run, RunConfig, SampleCounts,
    SampleRow, ShardRecord, TaskRecord, Timings,
};

fn block(alias: &str, scores: &std::collections::BTreeMap<String, Score>) -> MetricBlock {
    MetricBlock {
        alias: alias.to_string(),
        scores: scores.iter().map(|(k, s)| (k.clone(), *s)).collect(),
    }
}

/// The run and its sample rows.
pub fn build(
    plan: &Plan,
    tasks: &[TaskScores],
    groups: &[GroupScores],
    record: &Record,
    run_id: &str,
) -> (Run, Vec<SampleRow>) {
    let mut run = Run::default();
    for g in groups {
        let b = block(&g.alias, &g.scores);
        run.results.insert(g.group.clone(), b.clone());
        run.groups.insert(g.group.clone(), b);
        run.group_subtasks
            .insert(g.group.clone(), g.subtasks.clone());
    }
    let mut rows = Vec::new();
    let mut tasks_record = IndexMap::new();
    for (planned, scored) in plan.tasks.iter().zip(tasks) {
        let name = &planned.config.task;
        let alias = planned.config.task_alias.as_deref().unwrap_or(name);
        run.results
            .insert(name.clone(), block(alias, &scored.scores));
        if !run.group_subtasks.values().any(|v| v.contains(name)) {
            run.group_subtasks.insert(name.clone(), Vec::new());
        }
        let mut cfg = planned.config.raw.clone();
        cfg.insert("num_fewshot".into(), json!(planned.num_fewshot));
        run.configs.insert(name.clone(), cfg);
        run.versions.insert(name.clone(), planned.config.version());
        run.n_shot.insert(name.clone(), planned.num_fewshot);
        run.higher_is_better.insert(
            name.clone(),
            planned
                .metrics
                .iter()
                .map(|m| (m.name.clone(), m.higher_is_better))
                .collect(),
        );
        run.n_samples.insert(
            name.clone(),
            SampleCounts {
                original: planned.total_docs,
                effective: planned.docs.len(),
            },
        );
        let prompts = task_rows(planned, scored, &mut rows);
        tasks_record.insert(
            name.clone(),
            TaskRecord {
                config_path: planned.config.source.display().to_string(),
                config_hash: planned.config_hash.clone(),
                data_files: planned.data_files.clone(),
                dataset: planned.data_source.clone(),
                output_type: planned.config.output_type.name().to_string(),
                prompts_hash: Some(prompts),
                hooks: hook_records(&planned.ports),
            },
        );
    }
    let invocation = &record.invocation;
    run.config = RunConfig {
        model: record.model.spec.clone(),
        model_args: record.model_args.clone(),
        limit: invocation.limit.map(|l| l.as_given()),
        fewshot_seed: invocation.fewshot_seed,
        ..RunConfig::default()
    };
    run.assay = Provenance {
        version: env!("CARGO_PKG_VERSION").to_string(),
        git_revision: option_env!("ASSAY_GIT_REVISION")
            .unwrap_or("unknown")
            .to_string(),
        run_id: run_id.to_string(),
        variant: Some(record.variant.clone()),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        complete: true,
        shard: invocation
            .shard
            .map(|(index, count)| ShardRecord { index, count }),
        model: Some(record.model.clone()),
        tasks: tasks_record,
        requests: record.counts.clone(),
        skipped_documents: record.skipped_documents.clone(),
        invocation: invocation.clone(),
        merged_from: record.merged_from.clone(),
        timings: Timings {
            planning_seconds: record.seconds_planning,
            inference_seconds: record.seconds_inference,
        },
    };
    (run, rows)
}

/// How each of a task's hooks ran, with the Python file's digest and the
/// versions that computed it.
fn hook_records(ports: &crate::task::ports::TaskPorts) -> Vec<HookRecord> {
    ports
        .uses
        .iter()
        .map(|u| {
            let python = u.python.as_ref().map(|h| (h, h.provenance()));
            HookRecord {
                field: u.field.clone(),
                function: u.function.clone(),
                implementation: if python.is_some() { "python" } else { "native" }.into(),
                file: python.as_ref().map(|(h, p)| match p {
                    Ok(p) => p.file.display().to_string(),
                    Err(_) => h.file.display().to_string(),
                }),
                sha256: python
                    .as_ref()
                    .and_then(|(_, p)| p.as_ref().ok())
                    .map(|p| p.sha256.clone()),
                versions: python
                    .and_then(|(_, p)| p.ok())
                    .map(|p| p.versions)
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// Appends one task's sample rows; returns the task's prompts hash.
fn task_rows(
    planned: &super::PlannedTask,
    scored: &TaskScores,
    rows: &mut Vec<SampleRow>,
) -> String {
    let hashes: Vec<(u32, String)> = planned
        .docs
        .iter()
        .map(|d| {
            let id = u32::try_from(d.doc_id).unwrap_or(u32::MAX);
            (id, sha256_hex(d.prompt().as_bytes()))
        })
        .collect();
    let prompts = prompts_hash(hashes.iter().map(|(id, h)| (*id, h.as_str())));
    // Samples repeat per filter; look documents up by id, not by scan.
    let by_id: std::collections::HashMap<usize, &crate::prompt::Prepared> =
        planned.docs.iter().map(|d| (d.doc_id, d)).collect();
    for sample in &scored.samples {
        let Some(doc) = by_id.get(&sample.doc_id) else {
            continue;
        };
        let prompt = doc.prompt();
        let (doc_hash, prompt_hash, target_hash) = doc_hashes(&doc.doc, &prompt, &doc.target);
        rows.push(SampleRow {
            task: planned.config.task.clone(),
            doc_id: doc.doc_id,
            filter: sample.filter.clone(),
            doc_hash,
            prompt_hash,
            target_hash,
            doc: Value::Object(doc.doc.clone()).to_string(),
            target: py_str(&doc.target),
            arguments: Value::Array(doc.requests.iter().map(|r| r.arguments()).collect())
                .to_string(),
            resps: Value::Array(sample.resps.clone()).to_string(),
            filtered: sample.filtered.clone(),
            metrics: sample.metrics.clone(),
        });
    }
    prompts
}
