//! The gate's policy file (TOML): defaults, and rules per task.
//!
//! ```toml
//! [default]
//! mode = "average"      # average (the default) | per-task
//! margin = 1.0          # allowed regression, in points (percent of the metric's range):
//!                       # of the average (mode average) or of each task (mode per-task)
//! guard = 5.0           # mode average: a task regressing beyond this fails the gate
//! alpha = 0.05          # chance of a wrong verdict per gate (Holm across tasks)
//! power = 0.8           # for the minimum detectable effect
//! underpowered = "warn" # an inconclusive decision that could not have passed: pass | fail | warn
//! inconclusive = "fail" # what an INCONCLUSIVE gate means for the exit code: pass | fail
//! average = false       # mode per-task: the average over tasks must also hold the margin
//! min_overlap = 0.9     # share of documents both runs must have answered
//!
//! [tasks.assay_dates]
//! guard = 8.0           # mode average: this task's guard
//! margin = 2.0          # mode per-task: this task's margin
//! required = false      # its verdict is reported, not counted (nor in the average)
//! metric = "acc"
//! filter = "none"
//! include = true        # false leaves the task out
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::GateError;

/// What an underpowered, inconclusive task counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Underpowered {
    Pass,
    Fail,
    #[default]
    Warn,
}

/// How the gate decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One primary decision on the suite's average (paired, pooled over
    /// every document), plus a guard per task against a large regression.
    #[default]
    Average,
    /// Non-inferiority of every task at the margin (Holm across tasks).
    PerTask,
}

/// What an INCONCLUSIVE gate means for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Inconclusive {
    Pass,
    #[default]
    Fail,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    pub mode: Mode,
    pub margin: f64,
    pub guard: f64,
    pub alpha: f64,
    pub power: f64,
    pub underpowered: Underpowered,
    pub inconclusive: Inconclusive,
    pub average: bool,
    pub min_overlap: f64,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            mode: Mode::Average,
            margin: 1.0,
            guard: 5.0,
            alpha: 0.05,
            power: 0.8,
            underpowered: Underpowered::Warn,
            inconclusive: Inconclusive::Fail,
            average: false,
            min_overlap: 0.9,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRules {
    pub margin: Option<f64>,
    pub guard: Option<f64>,
    pub required: Option<bool>,
    pub metric: Option<String>,
    pub filter: Option<String>,
    pub underpowered: Option<Underpowered>,
    pub include: Option<bool>,
}

/// One task's rules with the defaults filled in.
#[derive(Debug, Clone)]
pub struct TaskPolicy {
    pub margin: f64,
    pub guard: f64,
    pub required: bool,
    pub metric: Option<String>,
    pub filter: Option<String>,
    pub underpowered: Underpowered,
    pub include: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub default: Defaults,
    #[serde(default)]
    pub tasks: BTreeMap<String, TaskRules>,
}

impl Policy {
    /// Reads and checks a policy file.
    pub fn read(path: &Path) -> Result<Policy, GateError> {
        let at = |m: String| GateError::Input(format!("{}: {m}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
        let policy: Policy = toml::from_str(&text).map_err(|e| at(e.message().to_string()))?;
        policy.check().map_err(at)?;
        Ok(policy)
    }

    /// The defaults with a different margin (`--margin`).
    pub fn with_margin(mut self, margin: f64) -> Policy {
        self.default.margin = margin;
        self
    }

    pub fn check(&self) -> Result<(), String> {
        let d = &self.default;
        if !(d.alpha > 0.0 && d.alpha < 0.5) {
            return Err(format!("default.alpha = {} must be in (0, 0.5)", d.alpha));
        }
        if !(d.power > 0.5 && d.power < 1.0) {
            return Err(format!("default.power = {} must be in (0.5, 1)", d.power));
        }
        if !(0.0..=1.0).contains(&d.min_overlap) {
            return Err(format!(
                "default.min_overlap = {} must be in [0, 1]",
                d.min_overlap
            ));
        }
        let margins = [
            ("default.margin".to_string(), Some(d.margin)),
            ("default.guard".to_string(), Some(d.guard)),
        ]
        .into_iter()
        .chain(self.tasks.iter().flat_map(|(t, r)| {
            [
                (format!("tasks.{t}.margin"), r.margin),
                (format!("tasks.{t}.guard"), r.guard),
            ]
        }));
        for (place, margin) in margins {
            if let Some(m) = margin {
                if !(0.0..100.0).contains(&m) {
                    return Err(format!("{place} = {m} must be in [0, 100) points"));
                }
            }
        }
        // A rule that the mode would ignore is a policy that does not say
        // what its author thinks.
        for (task, rules) in &self.tasks {
            match d.mode {
                Mode::Average if rules.margin.is_some() => {
                    return Err(format!(
                        "tasks.{task}.margin applies with mode = \"per-task\"; the default mode \
                         gates the suite's average at default.margin and guards each task: \
                         write tasks.{task}.guard, or set default.mode = \"per-task\""
                    ));
                }
                Mode::PerTask if rules.guard.is_some() => {
                    return Err(format!(
                        "tasks.{task}.guard applies with mode = \"average\"; with mode = \
                         \"per-task\" write tasks.{task}.margin"
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn task(&self, name: &str) -> TaskPolicy {
        let rules = self.tasks.get(name).cloned().unwrap_or_default();
        TaskPolicy {
            margin: rules.margin.unwrap_or(self.default.margin),
            guard: rules.guard.unwrap_or(self.default.guard),
            required: rules.required.unwrap_or(true),
            metric: rules.metric,
            filter: rules.filter,
            underpowered: rules.underpowered.unwrap_or(self.default.underpowered),
            include: rules.include.unwrap_or(true),
        }
    }

    /// The policy for a suite (`assay gate --suite`): each of `suite`'s tasks
    /// is gated on the metric and filter the suite ranks it by, unless the
    /// policy names others; the other `tasks` are left out unless the
    /// policy includes them.
    pub fn for_suite<'a>(
        mut self,
        suite: &BTreeMap<String, (String, String)>,
        tasks: impl Iterator<Item = &'a String>,
    ) -> Policy {
        for task in tasks {
            let rules = self.tasks.entry(task.clone()).or_default();
            match suite.get(task) {
                Some((metric, filter)) if rules.metric.is_none() => {
                    rules.metric = Some(metric.clone());
                    rules.filter.get_or_insert_with(|| filter.clone());
                }
                Some(_) => {}
                None => {
                    rules.include.get_or_insert(false);
                }
            }
        }
        self
    }

    /// Tasks the policy names as required: both runs must have them.
    pub fn required_tasks(&self) -> Vec<String> {
        self.tasks
            .iter()
            .filter(|(_, r)| r.required == Some(true))
            .map(|(t, _)| t.clone())
            .collect()
    }
}
