//! `assay init`: a hub repository to start from. The files are embedded in
//! the binary (templates/hub/) and written where missing; an existing file
//! is never overwritten, so `init` also fills in what a hub lacks.

use std::path::{Path, PathBuf};

/// Each file of a new hub: its path in the hub, its contents.
const FILES: &[(&str, &str)] = &[
    ("README.md", include_str!("../templates/hub/README.md")),
    (".gitignore", include_str!("../templates/hub/gitignore")),
    ("gate.toml", include_str!("../templates/hub/gate.toml")),
    (
        "variants/example.toml",
        include_str!("../templates/hub/variants/example.toml"),
    ),
    (
        "tasks/suites/hub.yaml",
        include_str!("../templates/hub/tasks/suites/hub.yaml"),
    ),
    (
        "tasks/hub_sums.yaml",
        include_str!("../templates/hub/tasks/hub_sums.yaml"),
    ),
    (
        "tasks/hub_sums.jsonl",
        include_str!("../templates/hub/tasks/hub_sums.jsonl"),
    ),
    (
        ".github/workflows/pull-request.yml",
        include_str!("../templates/hub/.github/workflows/pull-request.yml"),
    ),
    (
        ".github/workflows/main.yml",
        include_str!("../templates/hub/.github/workflows/main.yml"),
    ),
];

/// What `init` did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Written(PathBuf),
    /// The file was there already and is left as it is.
    Kept(PathBuf),
}

/// A file of the hub that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct InitError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl InitError {
    /// A file where the hub's folder should be is the user's to move;
    /// otherwise the disk refused, and the same command, run again, fills
    /// in the rest.
    pub fn kind(&self) -> crate::error::ErrorKind {
        use std::io::ErrorKind as Io;
        match self.source.kind() {
            Io::NotADirectory | Io::AlreadyExists => crate::error::ErrorKind::Input,
            _ => crate::error::ErrorKind::NotFinished,
        }
    }
}

/// Writes the hub's files under `dir` where they are missing.
pub fn init(dir: &Path) -> Result<Vec<Outcome>, InitError> {
    if dir.exists() && !dir.is_dir() {
        return Err(InitError {
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "is a file, not a folder: give a folder (new or existing) for the hub",
            ),
        });
    }
    let mut done = Vec::new();
    for (name, text) in FILES {
        let path = dir.join(name);
        if path.exists() {
            done.push(Outcome::Kept(path));
            continue;
        }
        let error = |source| InitError {
            path: path.clone(),
            source,
        };
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(error)?;
        }
        // create_new: a file that appeared meanwhile is not replaced.
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                done.push(Outcome::Kept(path));
                continue;
            }
            Err(e) => return Err(error(e)),
        };
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(error)?;
        done.push(Outcome::Written(path));
    }
    Ok(done)
}
