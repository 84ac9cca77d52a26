//! Retention of recordings: by age and by the total size of the sessions directory.
//!
//! [`plan_retention`] decides (pure); [`enforce`] lists a directory, asks it, and deletes.

use std::{
    io,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use super::format::FILE_EXTENSION;

/// How long and how much to keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Recordings last modified longer ago than this are deleted.
    pub max_age: Option<Duration>,
    /// Beyond this total, the oldest recordings are deleted (the newest is always kept).
    pub max_total_bytes: Option<u64>,
}

/// A recording as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub name: String,
    pub size: u64,
    pub modified: SystemTime,
    /// Being written by a live session: never deleted (its size still counts).
    pub in_use: bool,
}

/// The names of the files to delete: first every file older than `max_age`, then, oldest
/// first, as many as needed to bring the total size to `max_total` or below. The newest file
/// and files in use are never deleted for size; files in use are never deleted at all.
pub fn plan_retention(
    files: &[StoredFile],
    now: SystemTime,
    max_age: Option<Duration>,
    max_total: Option<u64>,
) -> Vec<String> {
    let mut by_age: Vec<&StoredFile> = files.iter().collect();
    by_age.sort_by(|a, b| a.modified.cmp(&b.modified).then(a.name.cmp(&b.name)));
    let newest = by_age.last().map(|f| f.name.clone());
    let too_old = |f: &StoredFile| {
        max_age.is_some_and(|max| now.duration_since(f.modified).is_ok_and(|age| age > max))
    };
    let mut delete: Vec<String> = Vec::new();
    let mut kept: Vec<&StoredFile> = Vec::new();
    for f in by_age {
        if !f.in_use && too_old(f) {
            delete.push(f.name.clone());
        } else {
            kept.push(f);
        }
    }
    if let Some(max_total) = max_total {
        let mut total: u64 = kept.iter().map(|f| f.size).sum();
        for f in kept {
            if total <= max_total {
                break;
            }
            if f.in_use || Some(&f.name) == newest.as_ref() {
                continue;
            }
            total -= f.size;
            delete.push(f.name.clone());
        }
    }
    delete
}

/// The recordings of a sessions directory (`*.jsonl` regular files). A missing directory has
/// none.
pub fn list(dir: &Path, in_use: &dyn Fn(&str) -> bool) -> io::Result<Vec<StoredFile>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(stem) = name.strip_suffix(&format!(".{FILE_EXTENSION}")) else {
            continue;
        };
        // symlink_metadata: a link is not followed, and not a recording.
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        files.push(StoredFile {
            in_use: in_use(stem),
            name,
            size: meta.len(),
            modified: meta.modified()?,
        });
    }
    Ok(files)
}

/// Applies `retention` to a sessions directory; returns the files deleted. `in_use` says
/// which session ids are being recorded.
pub fn enforce(
    dir: &Path,
    retention: &Retention,
    now: SystemTime,
    in_use: &dyn Fn(&str) -> bool,
) -> io::Result<Vec<PathBuf>> {
    let files = list(dir, in_use)?;
    let mut deleted = Vec::new();
    for name in plan_retention(&files, now, retention.max_age, retention.max_total_bytes) {
        let path = dir.join(&name);
        match std::fs::remove_file(&path) {
            Ok(()) => deleted.push(path),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn now() -> SystemTime {
        humantime::parse_rfc3339("2026-01-10T00:00:00Z").unwrap()
    }

    fn file(name: &str, size: u64, hours_ago: u64) -> StoredFile {
        StoredFile {
            name: name.into(),
            size,
            modified: now() - HOUR * hours_ago as u32,
            in_use: false,
        }
    }

    #[test]
    fn files_older_than_the_max_age_are_deleted() {
        let files = [file("a", 1, 50), file("b", 1, 30), file("c", 1, 1)];
        let plan = plan_retention(&files, now(), Some(HOUR * 24), None);
        assert_eq!(plan, ["a", "b"]);
    }

    #[test]
    fn the_oldest_go_first_until_the_total_fits() {
        let files = [
            file("new", 40, 1),
            file("old", 40, 5),
            file("mid", 40, 3),
            file("older", 40, 4),
        ];
        let plan = plan_retention(&files, now(), None, Some(100));
        assert_eq!(plan, ["old", "older"]);
        assert!(plan_retention(&files, now(), None, Some(160)).is_empty());
    }

    #[test]
    fn the_newest_is_kept_even_alone_over_the_total() {
        let files = [file("big", 500, 1), file("small", 10, 2)];
        assert_eq!(plan_retention(&files, now(), None, Some(100)), ["small"]);
    }

    #[test]
    fn files_in_use_are_never_deleted_but_count() {
        let mut live = file("live", 80, 100);
        live.in_use = true;
        let files = [live, file("a", 30, 3), file("b", 30, 2)];
        let plan = plan_retention(&files, now(), Some(HOUR * 24), Some(100));
        assert_eq!(plan, ["a"]);
    }

    #[test]
    fn age_and_size_combine() {
        let files = [
            file("ancient", 10, 1000),
            file("a", 60, 3),
            file("b", 60, 2),
        ];
        let plan = plan_retention(&files, now(), Some(HOUR * 24), Some(100));
        assert_eq!(plan, ["ancient", "a"]);
    }

    #[test]
    fn enforce_deletes_only_recordings() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.jsonl", "b.jsonl", "c.jsonl", "notes.txt"] {
            std::fs::write(dir.path().join(name), vec![b'x'; 100]).unwrap();
        }
        let retention = Retention {
            max_age: None,
            max_total_bytes: Some(150),
        };
        // All have (nearly) the same mtime: the name breaks the tie, "c" is the newest.
        let later = SystemTime::now() + HOUR;
        let deleted = enforce(dir.path(), &retention, later, &|id| id == "b").unwrap();
        assert_eq!(deleted, [dir.path().join("a.jsonl")]);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["b.jsonl", "c.jsonl", "notes.txt"]);
        assert!(
            enforce(&dir.path().join("missing"), &retention, later, &|_| false)
                .unwrap()
                .is_empty()
        );
    }
}
