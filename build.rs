//! Records the git revision assay was built from, for run provenance, and
//! embeds the built-in task configs and suites (`tasks/`) in the binary, so
//! a copied binary has them without a source tree.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every file under `dir` that a task can read (configs and their data, not
/// the generator scripts), sorted.
fn task_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') || name == "__pycache__" {
            continue;
        }
        if path.is_dir() {
            task_files(&path, out);
        } else if path.extension().is_none_or(|e| e != "py") {
            out.push(path);
        }
    }
}

fn embed_tasks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tasks");
    let mut files = Vec::new();
    task_files(&root, &mut files);
    files.sort();
    let mut code = String::from("/// The built-in task files: path under `tasks/`, contents.\n");
    code.push_str("pub const FILES: &[(&str, &[u8])] = &[\n");
    for file in &files {
        let relative = file.strip_prefix(&root).unwrap_or(file);
        let name: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        code.push_str(&format!(
            "    ({:?}, include_bytes!({:?})),\n",
            name.join("/"),
            file.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("builtin_tasks.rs"), code).expect("OUT_DIR is writable");
    println!("cargo:rerun-if-changed=tasks");
}

fn main() {
    embed_tasks();
    let revision = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .is_some_and(|o| !o.stdout.is_empty());
    let suffix = if dirty { "-dirty" } else { "" };
    println!("cargo:rustc-env=ASSAY_GIT_REVISION={revision}{suffix}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
}
