//! The binary's work: parse the command line, call the library, print, and
//! turn every error into one message and an exit code.
//!
//! Each subcommand is a few lines: the work is in `run` (the pipeline and
//! `tasks`), `gate`, `leaderboard` and `variant`. Exit codes come from the
//! error's kind ([`ErrorKind::exit_code`]), or from the gate's verdict.

mod args;

use std::io::Write;

use clap::Parser;

use crate::engine::Overlong;
use crate::error::{exit, ErrorKind};
use crate::invocation::{parse_shard, Limit};
use crate::ports::python::HookMode;
use crate::run::{self, Job, Model};
use args::{
    Cli, Command, GateArgs, LeaderboardArgs, MergeArgs, RequestsArgs, RunArgs, ScoreArgs,
    TasksCommand, VariantsCommand,
};

/// A command's failure: its message (with the causes) and its kind.
struct Failure {
    message: String,
    kind: ErrorKind,
}

impl Failure {
    fn input(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            kind: ErrorKind::Input,
        }
    }

    /// The error and each `#[source]` it names that it does not already
    /// show.
    fn of(e: &dyn std::error::Error, kind: ErrorKind) -> Failure {
        let mut message = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            let text = c.to_string();
            if !message.contains(&text) {
                message.push_str(&format!(": {text}"));
            }
            cause = c.source();
        }
        Failure { message, kind }
    }
}

macro_rules! failure_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Failure {
                let kind = e.kind();
                Failure::of(&e, kind)
            }
        }
    )*};
}
failure_from!(
    run::Error,
    crate::task::TaskError,
    crate::gate::GateError,
    crate::leaderboard::LeaderboardError,
    crate::scaffold::InitError
);

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    let outcome = match cli.command {
        Command::Run(args) => run_command(args),
        Command::Requests(args) => requests(args),
        Command::Tasks(cmd) => tasks(cmd),
        Command::Merge(args) => merge(args),
        Command::Score(args) => score(args),
        Command::Variants(VariantsCommand::Validate { paths }) => validate_variants(paths),
        Command::Variants(VariantsCommand::Fetch { names, variants }) => {
            fetch_variants(&names, &variants)
        }
        Command::Leaderboard(args) => leaderboard(args),
        Command::Gate(args) => gate(args),
        Command::Init { dir } => init(&dir),
    };
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            failure.kind.exit_code()
        }
    }
}

fn warn(message: &str) {
    eprintln!("warning: {message}");
}

/// Prints what a run wrote: lm-eval's summary table and the folder.
fn report(written: &run::Written) -> Result<i32, Failure> {
    print!("{}", crate::results::summary::markdown(&written.run));
    println!("\nwrote {}", written.dir.display());
    Ok(exit::OK)
}

fn run_command(args: RunArgs) -> Result<i32, Failure> {
    let invocation = args.task.invocation().map_err(Failure::input)?;
    let model = Model {
        spec: args.model,
        args: args::model_args(&args.model_arg).map_err(Failure::input)?,
    };
    let mut job = Job::new(invocation, model, args.out);
    job.variant = args.variant;
    job.overlong = match args.skip_overlong {
        true => Overlong::Skip,
        false => Overlong::Fail,
    };
    job.cache = args.cache.place();
    job.show_progress = !args.quiet;
    job.on_warning = warn;
    report(&run::run(job)?)
}

fn score(args: ScoreArgs) -> Result<i32, Failure> {
    let mut job = run::variant_job(&args.manifest, &args.suite, &args.include_path, args.out)?;
    if let Some(limit) = args.limit {
        job.invocation.limit = Some(Limit::from_arg(limit).map_err(Failure::input)?);
    }
    if let Some(shard) = &args.shard {
        job.invocation.shard = Some(parse_shard(shard).map_err(Failure::input)?);
    }
    job.invocation.python_hooks =
        HookMode::from_flag(args.python_hooks.as_deref()).map_err(Failure::input)?;
    job.cache = args.cache.place();
    job.show_progress = !args.quiet;
    job.on_warning = warn;
    report(&run::run(job)?)
}

fn merge(args: MergeArgs) -> Result<i32, Failure> {
    let python_hooks = HookMode::from_flag(args.python_hooks.as_deref()).map_err(Failure::input)?;
    report(&run::merge_shards(
        &args.runs,
        &args.out,
        !args.quiet,
        python_hooks,
    )?)
}

fn requests(args: RequestsArgs) -> Result<i32, Failure> {
    let invocation = args.task.invocation().map_err(Failure::input)?;
    let model = match args.model {
        Some(spec) => Some(Model {
            spec,
            args: args::model_args(&args.model_arg).map_err(Failure::input)?,
        }),
        None => None,
    };
    let plan = run::plan_only(invocation, model.as_ref(), false)?;
    for (name, why) in plan.skipped() {
        warn(&format!("skipped task `{name}`: {why}"));
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written: std::io::Result<()> = (|| {
        for task in &plan.tasks {
            for doc in &task.docs {
                for (idx, request) in doc.requests.iter().enumerate() {
                    let line = serde_json::json!({
                        "task": task.config.task,
                        "doc_id": doc.doc_id,
                        "request_type": request.kind(),
                        "idx": idx,
                        "arguments": request.arguments(),
                    });
                    writeln!(out, "{line}")?;
                }
            }
        }
        out.flush()
    })();
    written.map_err(|e| Failure {
        message: format!("writing to stdout: {e}"),
        kind: ErrorKind::NotFinished,
    })?;
    Ok(exit::OK)
}

fn tasks(cmd: TasksCommand) -> Result<i32, Failure> {
    match cmd {
        TasksCommand::List {
            names,
            include_path,
            python_hooks,
        } => {
            let mode = HookMode::from_flag(python_hooks.as_deref()).map_err(Failure::input)?;
            let (table, unreadable) = run::catalog::list(&names, &include_path, mode)?;
            // A closed pipe (`| head`) ends the listing quietly.
            let _ = std::io::stdout().lock().write_all(table.as_bytes());
            // Files that could not be read are errors, listed after the
            // table; the listing itself still succeeds.
            for file in &unreadable {
                eprintln!("error: {file}");
            }
        }
        TasksCommand::Fetch {
            names,
            include_path,
        } => run::catalog::fetch(&names, &include_path, &mut |line| println!("{line}"))?,
        TasksCommand::Show { name, include_path } => {
            for config in run::catalog::show(&name, &include_path)? {
                println!("{config}");
            }
        }
        TasksCommand::Validate {
            paths,
            include_path,
            python_hooks,
        } => match run::catalog::validate(
            &paths,
            &include_path,
            HookMode::from_flag(python_hooks.as_deref()).map_err(Failure::input)?,
        ) {
            Ok(checked) => println!("ok: {checked} task and group configs are valid"),
            Err(failures) => {
                for f in &failures[1..] {
                    eprintln!("error: {f}");
                }
                return Err(Failure::input(failures[0].clone()));
            }
        },
    }
    Ok(exit::OK)
}

fn gate(args: GateArgs) -> Result<i32, Failure> {
    let outcome = crate::gate::command::run(&crate::gate::command::Request {
        baseline: args.baseline,
        candidate: args.candidate,
        policy: args.policy,
        margin: args.margin,
        results: args.results,
        suite: args
            .suite
            .as_deref()
            .map(crate::task::registry::suite_file)
            .transpose()?,
        markdown: args.markdown,
        junit: args.junit,
        json: args.json,
        site_url: args.site_url,
        github: args.github,
        plan: args.plan,
        changed: args.changed,
    })?;
    print!("{}", outcome.stdout);
    Ok(outcome.exit_code)
}

fn init(dir: &std::path::Path) -> Result<i32, Failure> {
    use crate::scaffold::Outcome;
    for outcome in crate::scaffold::init(dir)? {
        match outcome {
            Outcome::Written(path) => println!("wrote {}", path.display()),
            Outcome::Kept(path) => println!("kept  {} (already there)", path.display()),
        }
    }
    println!(
        "next: add a variant's manifest under variants/, then `assay variants validate variants/`"
    );
    Ok(exit::OK)
}

fn leaderboard(args: LeaderboardArgs) -> Result<i32, Failure> {
    let suite = crate::task::registry::suite_file(&args.suite)?;
    let out = args.out.unwrap_or_else(|| args.results.join("leaderboard"));
    let hashes = crate::leaderboard::current_config_hashes(&suite, &args.include_path)?;
    let inputs = crate::leaderboard::Inputs {
        results: &args.results,
        variants: &args.variants,
        suite: &suite,
        config_hashes: Some(&hashes),
    };
    let written = crate::leaderboard::build(&inputs, &out)?;
    println!("{} variant(s)", written.variants);
    if written.stale > 0 {
        println!(
            "{} variant(s) have stale runs (a suite task's config changed): flagged, not ranked; score them again",
            written.stale
        );
    }
    for file in &written.files {
        println!("wrote {}", file.display());
    }
    Ok(exit::OK)
}

fn fetch_variants(names: &[String], folder: &std::path::Path) -> Result<i32, Failure> {
    let (variants, problems) = crate::variant::read_all(&[folder.to_path_buf()]);
    if let Some(p) = problems.first() {
        return Err(Failure::input(p.to_string()));
    }
    for name in names {
        if !variants.iter().any(|v| &v.name == name) {
            return Err(Failure::input(format!(
                "no manifest named `{name}` in {}",
                folder.display()
            )));
        }
    }
    let mut worst: Option<Failure> = None;
    for v in variants
        .iter()
        .filter(|v| names.is_empty() || names.contains(&v.name))
    {
        match crate::variant::fetch_weights(v) {
            Ok(place) => println!("{}: {place}", v.name),
            Err(e) => {
                eprintln!("error: {e}");
                // A failure a retry may fix outranks one of input.
                if worst.as_ref().is_none_or(|w| w.kind == ErrorKind::Input) {
                    worst = Some(Failure {
                        message: format!("the weights of `{}` are not at hand", v.name),
                        kind: e.kind(),
                    });
                }
            }
        }
    }
    match worst {
        Some(failure) => Err(failure),
        None => Ok(exit::OK),
    }
}

fn validate_variants(paths: Vec<std::path::PathBuf>) -> Result<i32, Failure> {
    let paths = if paths.is_empty() {
        vec![std::path::PathBuf::from("variants")]
    } else {
        paths
    };
    let (variants, mut problems) = crate::variant::read_all(&paths);
    problems.extend(crate::variant::validate(&variants));
    for w in crate::variant::warnings(&variants) {
        warn(&w.to_string());
    }
    if problems.is_empty() {
        println!("{} manifest(s) valid", variants.len());
        return Ok(exit::OK);
    }
    for p in &problems {
        eprintln!("error: {p}");
    }
    Err(Failure::input(format!(
        "{} problem(s) in {} manifest(s)",
        problems.len(),
        variants.len()
    )))
}
