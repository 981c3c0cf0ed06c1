//! The built-in tasks and suites, embedded in the binary at build time and
//! written out once, on first use, to a folder named by their hash under
//! assay's cache (a copied binary needs no source tree). `ASSAY_TASKS_DIR`
//! names another folder instead.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

include!(concat!(env!("OUT_DIR"), "/builtin_tasks.rs"));

/// The folder of the built-in tasks: `$ASSAY_TASKS_DIR`, else the embedded
/// files written out under assay's cache folder (or the system's temporary
/// folder without one). None if they cannot be written.
pub fn dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ASSAY_TASKS_DIR") {
        return Some(PathBuf::from(dir));
    }
    static WRITTEN: OnceLock<Option<PathBuf>> = OnceLock::new();
    WRITTEN
        .get_or_init(|| {
            let base = crate::cache::cache_dir().unwrap_or_else(std::env::temp_dir);
            write_out(&base.join("builtin-tasks")).ok()
        })
        .clone()
}

/// A short hash of every embedded file's name and contents.
fn fingerprint() -> String {
    let mut all = Vec::new();
    for (name, bytes) in FILES {
        all.extend_from_slice(name.as_bytes());
        all.push(0);
        all.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        all.extend_from_slice(bytes);
    }
    crate::hash::sha256_hex(&all)[..16].to_string()
}

/// Writes the files into `<parent>/<hash>/` unless they are there already:
/// into a private folder first, renamed into place whole, so a reader never
/// sees a half-written set (another process may win the rename; its copy is
/// the same).
fn write_out(parent: &Path) -> std::io::Result<PathBuf> {
    let dir = parent.join(fingerprint());
    if dir.is_dir() {
        return Ok(dir);
    }
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(".{}.{}", fingerprint(), std::process::id()));
    for (name, bytes) in FILES {
        let path = tmp.join(name);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(path, bytes)?;
    }
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        Err(_) if dir.is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_files_are_the_source_trees_tasks() {
        assert!(FILES.iter().any(|(n, _)| *n == "suites/default.yaml"));
        for (name, bytes) in FILES {
            let source = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tasks")
                .join(name);
            assert_eq!(std::fs::read(&source).unwrap(), *bytes, "{name}");
        }
        let dir = tempfile::tempdir().unwrap();
        let written = write_out(dir.path()).unwrap();
        assert_eq!(write_out(dir.path()).unwrap(), written, "written once");
        assert!(written.join("suites/default.yaml").is_file());
    }
}
