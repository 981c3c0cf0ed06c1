//! The response cache: an embedded SQLite database keyed by (model identity,
//! request hash), so no answer is paid for twice.
//!
//! Every response is committed as it arrives (WAL journal), so a run killed
//! at any point, SIGKILL included, loses nothing it was told; started again,
//! it sends only what is missing. Several processes (the shards of one run on
//! one machine) may share a database: SQLite serialises their writes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::request::Response;

/// Why the cache could not be used.
#[derive(Debug, thiserror::Error)]
#[error("response cache {path}: {message}")]
pub struct CacheError {
    pub path: PathBuf,
    pub message: String,
}

/// An open cache, bound to one model identity.
pub struct Cache {
    conn: Connection,
    path: PathBuf,
    model: String,
}

/// The SHA-256 (hex) of a file (a model's weights), remembered by path,
/// size and modification time in assay's cache folder.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    crate::hash::file_sha256_remembered(path, cache_dir().as_deref())
}

/// Makes the file `path` once: `write` fills a file of this process's own
/// beside it, which is then renamed into place whole, so a reader never
/// sees half a file and two processes making it at once do not collide. A
/// file already there is kept; a failed write leaves nothing behind.
/// `io` turns the folder's and the rename's I/O errors into `E`.
pub fn write_once<E>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
    io: impl Fn(std::io::Error) -> E,
) -> Result<(), E> {
    if path.is_file() {
        return Ok(());
    }
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).map_err(&io)?;
    }
    let mut part = path.as_os_str().to_owned();
    part.push(format!(".{}.part", std::process::id()));
    let part = PathBuf::from(part);
    let written = write(&part).and_then(|()| std::fs::rename(&part, path).map_err(&io));
    if written.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    written
}

/// Where assay keeps caches: `$ASSAY_CACHE_DIR`, else `$XDG_CACHE_HOME/assay`,
/// else `~/.cache/assay`.
pub fn cache_dir() -> Option<PathBuf> {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from_env("ASSAY_CACHE_DIR")
        .or_else(|| from_env("XDG_CACHE_HOME").map(|d| d.join("assay")))
        .or_else(|| from_env("HOME").map(|d| d.join(".cache").join("assay")))
}

/// The response cache's default location: `responses.sqlite` in [`cache_dir`].
pub fn default_path() -> Option<PathBuf> {
    cache_dir().map(|dir| dir.join("responses.sqlite"))
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS responses (
    model    TEXT NOT NULL,
    request  TEXT NOT NULL,
    response TEXT NOT NULL,
    created  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (model, request)
) WITHOUT ROWID;
";

impl Cache {
    /// Opens (creating if needed) the database at `path` for answers of the
    /// model whose cache key is `model`.
    pub fn open(path: &Path, model: &str) -> Result<Cache, CacheError> {
        let error = |message: String| CacheError {
            path: path.to_path_buf(),
            message,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| error(format!("cannot create its folder: {e}")))?;
        }
        let conn = Connection::open(path).map_err(|e| error(e.to_string()))?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(|e| error(e.to_string()))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| error(format!("cannot switch to WAL: {e}")))?;
        // WAL + NORMAL: a commit survives the process being killed (not a
        // power cut), at a fraction of FULL's cost.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| error(e.to_string()))?;
        conn.execute_batch(SCHEMA).map_err(|e| {
            error(format!(
                "{e}; if the file is not an assay cache, point --cache elsewhere"
            ))
        })?;
        Ok(Cache {
            conn,
            path: path.to_path_buf(),
            model: model.to_string(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, message: impl std::fmt::Display) -> CacheError {
        CacheError {
            path: self.path.clone(),
            message: message.to_string(),
        }
    }

    /// The cached answer to one request, if any. An entry that no longer
    /// parses (written by an incompatible version) counts as missing.
    pub fn get(&self, request: &str) -> Result<Option<Response>, CacheError> {
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT response FROM responses WHERE model = ?1 AND request = ?2")
            .and_then(|mut s| {
                s.query_row(params![self.model, request], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| self.error(e))?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// The cached answers among `requests`, by request hash.
    pub fn get_many<'a>(
        &self,
        requests: impl IntoIterator<Item = &'a str>,
    ) -> Result<HashMap<String, Response>, CacheError> {
        let mut found = HashMap::new();
        for request in requests {
            if let Some(response) = self.get(request)? {
                found.insert(request.to_string(), response);
            }
        }
        Ok(found)
    }

    /// Stores one answer, committed before this returns.
    pub fn put(&self, request: &str, response: &Response) -> Result<(), CacheError> {
        let text = serde_json::to_string(response).map_err(|e| self.error(e))?;
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO responses (model, request, response) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![self.model, request, text]))
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// How many answers this model has in the cache.
    pub fn len(&self) -> Result<usize, CacheError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM responses WHERE model = ?1",
                params![self.model],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(|e| self.error(e))
    }

    pub fn is_empty(&self) -> Result<bool, CacheError> {
        Ok(self.len()? == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_kept_per_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("c.sqlite");
        let a = Cache::open(&path, "model-a").unwrap();
        let b = Cache::open(&path, "model-b").unwrap();
        let answer = Response::Loglikelihood {
            logprob: -1.25,
            is_greedy: true,
        };
        a.put("h1", &answer).unwrap();
        assert_eq!(a.get("h1").unwrap(), Some(answer.clone()));
        assert_eq!(b.get("h1").unwrap(), None);
        assert_eq!(a.len().unwrap(), 1);
        // A second connection (another process) sees committed answers.
        let again = Cache::open(&path, "model-a").unwrap();
        let found = again.get_many(["h1", "h2"]).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found["h1"], answer);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite");
        std::fs::write(
            &path,
            "this is not sqlite, just some text that is long enough",
        )
        .unwrap();
        let err = Cache::open(&path, "m").err().unwrap().to_string();
        assert!(err.contains("c.sqlite"), "{err}");
    }
}
