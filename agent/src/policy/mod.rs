//! Policy files (TOML) to a validated, plain-data [`PolicySet`].
//!
//! Pure: parsing and validation work on in-memory sources
//! ([`parse_sources`]); only [`load_dir`] touches the file system.
//!
//! A policy directory holds `*.toml` files (non-recursive, read in name
//! order), each with any number of `[[workload]]` and `[[target]]` tables; a workload may
//! carry SQL access rules (`[[workload.access]]`, see [`Access`]) for its postgres targets,
//! with masking rules for their results ([`Masking`]).
//! Parsing is strict (unknown fields are errors) and every error found in
//! every file is reported, each with its file, line and column. The schema is
//! documented in `docs/policy-reference.md`.

mod access;
mod error;
mod mask;
mod model;
mod pattern;
mod recording;
mod schema;
mod token;
mod validate;

use std::path::{Path, PathBuf};

pub use access::{
    Access, AccessRule, ApprovalRule, FunctionPattern, FunctionRules, ObjectPattern, Operation,
};
pub use error::{PolicyError, PolicyErrors};
pub use mask::{
    ColumnPattern, CopyOutMasked, Detector, MaskRule, MaskStrategy, Masking, NamePattern,
};
pub use model::{
    CredentialMode, Credentials, PolicySet, PostgresSettings, Protocol, SecretRef, SourceLocation,
    Target, TlsMode, TlsSettings, Workload, normalize_addr,
};
pub use pattern::CgroupPattern;
pub use recording::{MAX_RESULT_ROWS, RecordingFailure, RecordingSettings, Values};
pub use token::{TokenPathTemplate, TokenSettings, TokenSource};

/// Parses and validates policy sources, given as `(path, content)` pairs in
/// the order they should be read (the path is only used in error messages
/// and source locations).
///
/// Collects all errors across all sources rather than stopping at the first.
pub fn parse_sources(sources: &[(PathBuf, String)]) -> Result<PolicySet, PolicyErrors> {
    validate::parse_sources(sources)
}

/// Reads every `*.toml` file directly in `dir` (sorted by name; files whose
/// name starts with `.` are ignored) and parses them with [`parse_sources`].
///
/// A missing or unreadable directory or file is an error (with line 0), and
/// so is a directory without any policy file.
pub fn load_dir(dir: &Path) -> Result<PolicySet, PolicyErrors> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        PolicyErrors(vec![PolicyError::whole_file(
            dir,
            format!("cannot read policy directory: {e}"),
        )])
    })?;

    let mut errors = Vec::new();
    let mut paths = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                errors.push(PolicyError::whole_file(
                    dir,
                    format!("cannot read policy directory: {e}"),
                ));
                continue;
            }
        };
        let name = entry.file_name();
        let is_policy = Path::new(&name)
            .extension()
            .is_some_and(|ext| ext == "toml")
            && !name.as_encoded_bytes().starts_with(b".");
        if !is_policy {
            continue;
        }
        let path = entry.path();
        // Follow symlinks; a directory named `x.toml` is not a policy file.
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => paths.push(path),
            Err(e) => errors.push(PolicyError::whole_file(path, format!("cannot read: {e}"))),
        }
    }
    paths.sort();
    if paths.is_empty() && errors.is_empty() {
        return Err(PolicyErrors(vec![PolicyError::whole_file(
            dir,
            format!("no policy files (*.toml) in {}", dir.display()),
        )]));
    }

    let mut sources = Vec::with_capacity(paths.len());
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push((path, text)),
            Err(e) => errors.push(PolicyError::whole_file(path, format!("cannot read: {e}"))),
        }
    }
    let parsed = parse_sources(&sources);
    if errors.is_empty() {
        return parsed;
    }
    if let Err(PolicyErrors(more)) = parsed {
        errors.extend(more);
    }
    errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    Err(PolicyErrors(errors))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod token_tests;
