//! The fingerprint of a model file: the SHA-256 of its bytes, remembered.
//!
//! Hashing a multi-gigabyte GGUF takes seconds to minutes, and the same file
//! is scored again and again, so the digest is memoised in a small JSON file
//! keyed by the file's canonical path, size and modification time. A memo
//! that cannot be read or written is ignored: the digest is then simply
//! computed again.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

const MEMO_FILE: &str = "model-sha256.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    size: u64,
    mtime_ns: u128,
    sha256: String,
}

/// Lower-case hex SHA-256 of the file at `path`, looked up in (and added to)
/// the memo in `memo_dir` when there is one.
pub fn file_sha256_remembered(path: &Path, memo_dir: Option<&Path>) -> io::Result<String> {
    let canonical = fs::canonicalize(path)?;
    let meta = fs::metadata(&canonical)?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let key = canonical.to_string_lossy().into_owned();
    let memo_path = memo_dir.map(|d| d.join(MEMO_FILE));

    let mut memo: BTreeMap<String, Entry> = memo_path
        .as_deref()
        .and_then(|p| fs::read(p).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    if let Some(entry) = memo.get(&key) {
        if entry.size == meta.len() && entry.mtime_ns == mtime_ns {
            return Ok(entry.sha256.clone());
        }
    }

    let sha256 = super::sha256_file(&canonical)?;
    if let (Some(dir), Some(memo_path)) = (memo_dir, memo_path) {
        // Forget files that are gone (test models in temporary folders).
        memo.retain(|path, _| Path::new(path).exists());
        memo.insert(
            key,
            Entry {
                size: meta.len(),
                mtime_ns,
                sha256: sha256.clone(),
            },
        );
        // Best effort: write a sibling and rename it over the memo, so a
        // concurrent reader never sees half a file.
        let _ = fs::create_dir_all(dir).and_then(|()| {
            let tmp = dir.join(format!("{MEMO_FILE}.{}.tmp", std::process::id()));
            let text = serde_json::to_vec_pretty(&memo).map_err(io::Error::other)?;
            fs::write(&tmp, text)?;
            fs::rename(&tmp, &memo_path)
        });
    }
    Ok(sha256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256_and_is_remembered_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.gguf");
        fs::write(&model, b"abc").unwrap();
        let memo = dir.path().join("cache");
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(file_sha256_remembered(&model, Some(&memo)).unwrap(), abc);
        assert_eq!(crate::hash::sha256_hex(b"abc"), abc);

        // The memo answers while size and mtime are unchanged...
        let text = fs::read_to_string(memo.join(MEMO_FILE)).unwrap();
        fs::write(memo.join(MEMO_FILE), text.replace(abc, "remembered")).unwrap();
        assert_eq!(
            file_sha256_remembered(&model, Some(&memo)).unwrap(),
            "remembered"
        );

        // ...and not once the file changes.
        fs::write(&model, b"abcd").unwrap();
        assert_eq!(
            file_sha256_remembered(&model, Some(&memo)).unwrap(),
            crate::hash::sha256_hex(b"abcd")
        );
        assert_eq!(
            file_sha256_remembered(&model, None).unwrap(),
            crate::hash::sha256_hex(b"abcd")
        );
    }

    #[test]
    fn an_unreadable_memo_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.gguf");
        fs::write(&model, b"abc").unwrap();
        fs::write(dir.path().join(MEMO_FILE), b"not json").unwrap();
        assert_eq!(
            file_sha256_remembered(&model, Some(dir.path())).unwrap(),
            crate::hash::sha256_hex(b"abc")
        );
    }
}
