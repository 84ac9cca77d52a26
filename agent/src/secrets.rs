//! Secrets (passwords) resolved from a policy's [`SecretRef`] at use time.
//!
//! A policy holds only *references* to secrets; the value is read when it is
//! needed ([`resolve`], e.g. for each upstream login), so a rotated file or
//! a changed environment is picked up without reloading the policies.
//!
//! A value is held in a [`Secret`]: zeroed when dropped, never printed
//! (`Debug` and `Display` show `<redacted>`). Errors ([`SecretError`]) name the
//! reference (file path or variable name), never the value nor any part of it.
//!
//! [`resolve`] does blocking file I/O on a small file; from async code, call
//! it through `tokio::task::spawn_blocking` if that matters.

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use zeroize::Zeroizing;

use crate::policy::SecretRef;

/// A secret file larger than this is refused: it is not a password file.
pub const MAX_SECRET_FILE_LEN: u64 = 64 * 1024;

/// A secret value (e.g. a password). Zeroed when dropped; `Debug` and
/// `Display` print `<redacted>`. Read it with [`Secret::expose`], at the last
/// moment, and do not copy it around.
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret the agent made itself (e.g. a just-in-time role's password).
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a secret could not be resolved. Messages name the reference (file
/// path, environment variable name), never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret file {}: {source}", path.display())]
    FileUnreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("secret file {} is not a regular file", path.display())]
    NotARegularFile { path: PathBuf },
    #[error(
        "secret file {} is readable by other users (mode {mode:04o}): chmod 600 it",
        path.display()
    )]
    ReadableByOthers { path: PathBuf, mode: u32 },
    #[error(
        "secret file {} is larger than {MAX_SECRET_FILE_LEN} bytes: not a secret file?",
        path.display()
    )]
    FileTooLarge { path: PathBuf },
    #[error("secret file {} is empty", path.display())]
    EmptyFile { path: PathBuf },
    #[error("secret file {} is not valid UTF-8", path.display())]
    FileNotUtf8 { path: PathBuf },
    #[error("secret file {} contains a NUL byte, which a password cannot", path.display())]
    FileHasNul { path: PathBuf },
    #[error(
        "environment variable {name} (a secret reference) is not set in the agent's environment"
    )]
    EnvNotSet { name: String },
    #[error("environment variable {name} (a secret reference) is empty")]
    EnvEmpty { name: String },
    #[error("environment variable {name} (a secret reference) is not valid UTF-8")]
    EnvNotUtf8 { name: String },
}

/// Reads the secret `reference` points to.
///
/// - `file`: a regular file (symbolic links are followed), not readable by
///   "other" (mode `& 0o004 == 0`), at most [`MAX_SECRET_FILE_LEN`] bytes of
///   UTF-8 without NUL; ONE trailing `"\n"` or `"\r\n"` is stripped (as
///   written by `echo` or an editor); nothing else is trimmed. Empty (after
///   that) is an error.
/// - `env`: a variable of the agent's environment, set, non-empty, UTF-8;
///   taken as it is.
pub fn resolve(reference: &SecretRef) -> Result<Secret, SecretError> {
    resolve_with(reference, |name| std::env::var_os(name))
}

/// [`resolve`], with the environment looked up through `lookup_env` (tests
/// cannot set variables: `std::env::set_var` is unsafe).
fn resolve_with(
    reference: &SecretRef,
    lookup_env: impl FnOnce(&str) -> Option<OsString>,
) -> Result<Secret, SecretError> {
    match reference {
        SecretRef::File(path) => read_file(path),
        SecretRef::Env(name) => from_env(name, lookup_env(name)),
    }
}

fn read_file(path: &Path) -> Result<Secret, SecretError> {
    let unreadable = |source| SecretError::FileUnreadable {
        path: path.to_path_buf(),
        source,
    };
    let path_buf = || path.to_path_buf();

    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused
    // just below); no effect on a regular file. The checks are done on the
    // opened file, so the file checked is the file read.
    let mut file = File::options()
        .read(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(SecretError::NotARegularFile { path: path_buf() });
    }
    let mode = meta.permissions().mode();
    if mode & 0o004 != 0 {
        return Err(SecretError::ReadableByOthers {
            path: path_buf(),
            mode: mode & 0o7777,
        });
    }
    if meta.len() > MAX_SECRET_FILE_LEN {
        return Err(SecretError::FileTooLarge { path: path_buf() });
    }

    // Sized up front so that the buffer is not reallocated (which would leave
    // copies behind); the whole capacity is zeroed on drop.
    let capacity = usize::try_from(meta.len()).unwrap_or(0) + 1;
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    (&mut file)
        .take(MAX_SECRET_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_SECRET_FILE_LEN {
        return Err(SecretError::FileTooLarge { path: path_buf() });
    }

    let end = if bytes.ends_with(b"\r\n") {
        bytes.len() - 2
    } else if bytes.ends_with(b"\n") {
        bytes.len() - 1
    } else {
        bytes.len()
    };
    let value = &bytes[..end];
    if value.is_empty() {
        return Err(SecretError::EmptyFile { path: path_buf() });
    }
    if value.contains(&0) {
        return Err(SecretError::FileHasNul { path: path_buf() });
    }
    match std::str::from_utf8(value) {
        Ok(value) => Ok(Secret(Zeroizing::new(value.to_owned()))),
        Err(_) => Err(SecretError::FileNotUtf8 { path: path_buf() }),
    }
}

fn from_env(name: &str, value: Option<OsString>) -> Result<Secret, SecretError> {
    let name = || name.to_string();
    let Some(value) = value else {
        return Err(SecretError::EnvNotSet { name: name() });
    };
    let bytes = Zeroizing::new(value.into_vec());
    if bytes.is_empty() {
        return Err(SecretError::EnvEmpty { name: name() });
    }
    match std::str::from_utf8(&bytes) {
        Ok(value) => Ok(Secret(Zeroizing::new(value.to_owned()))),
        Err(_) => Err(SecretError::EnvNotUtf8 { name: name() }),
    }
}

#[cfg(test)]
mod tests {
    use std::fs::Permissions;

    use super::*;

    const VALUE: &str = "hunter2";

    /// A file with `content` and `mode`, in a fresh temporary directory.
    fn secret_file(content: &[u8], mode: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.password");
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(mode)).unwrap();
        (dir, path)
    }

    fn resolve_file(path: &Path) -> Result<Secret, SecretError> {
        resolve(&SecretRef::File(path.to_path_buf()))
    }

    /// The error for a file with `content` and `mode`, checked to name the
    /// file and not to contain the value.
    fn file_error(content: &[u8], mode: u32) -> SecretError {
        let (_dir, path) = secret_file(content, mode);
        let e = resolve_file(&path)
            .map(|s| s.expose().to_owned())
            .unwrap_err();
        let message = e.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(!message.contains(VALUE), "{message}");
        assert!(!format!("{e:?}").contains(VALUE), "{e:?}");
        e
    }

    fn fake_env(value: Option<&[u8]>) -> impl FnOnce(&str) -> Option<OsString> {
        let value = value.map(|v| OsString::from_vec(v.to_vec()));
        move |name| {
            assert_eq!(name, "ORDERS_DB_PASSWORD");
            value
        }
    }

    fn env_ref() -> SecretRef {
        SecretRef::Env("ORDERS_DB_PASSWORD".into())
    }

    #[test]
    fn file_secret_is_read_with_one_trailing_newline_stripped() {
        let cases: [(&[u8], &str); 7] = [
            (b"hunter2", "hunter2"),
            (b"hunter2\n", "hunter2"),
            (b"hunter2\r\n", "hunter2"),
            (b"hunter2\n\n", "hunter2\n"),
            (b" hunter2 \t", " hunter2 \t"),
            (b"pass\nword\n", "pass\nword"),
            ("pässwörd\n".as_bytes(), "pässwörd"),
        ];
        for (content, expected) in cases {
            let (_dir, path) = secret_file(content, 0o600);
            assert_eq!(resolve_file(&path).unwrap().expose(), expected);
        }
    }

    #[test]
    fn file_readable_by_its_group_or_owner_only_is_accepted() {
        for mode in [0o400, 0o600, 0o640, 0o660] {
            let (_dir, path) = secret_file(b"hunter2\n", mode);
            assert_eq!(resolve_file(&path).unwrap().expose(), VALUE, "{mode:o}");
        }
    }

    #[test]
    fn file_readable_by_other_users_is_refused() {
        for mode in [0o644, 0o604, 0o666] {
            let e = file_error(b"hunter2\n", mode);
            assert!(
                matches!(e, SecretError::ReadableByOthers { mode: m, .. } if m == mode),
                "{e:?}"
            );
            let message = e.to_string();
            assert!(
                message.ends_with(&format!(
                    "is readable by other users (mode 0{mode:o}): chmod 600 it"
                )),
                "{message}"
            );
        }
    }

    #[test]
    fn empty_file_is_refused() {
        for content in [&b""[..], b"\n", b"\r\n"] {
            let e = file_error(content, 0o600);
            assert!(matches!(e, SecretError::EmptyFile { .. }), "{e:?}");
            assert!(e.to_string().ends_with("is empty"), "{e}");
        }
    }

    #[test]
    fn missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.password");
        let e = resolve_file(&path).unwrap_err();
        assert!(matches!(e, SecretError::FileUnreadable { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with(&format!("cannot read secret file {}: ", path.display())),
            "{e}"
        );
    }

    #[test]
    fn directory_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = resolve_file(dir.path()).unwrap_err();
        assert!(matches!(e, SecretError::NotARegularFile { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("secret file {} is not a regular file", dir.path().display())
        );
    }

    #[test]
    fn fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = resolve_file(&path).unwrap_err();
        assert!(matches!(e, SecretError::NotARegularFile { .. }), "{e:?}");
    }

    #[test]
    fn symlink_to_a_secret_file_is_followed() {
        let (dir, path) = secret_file(b"hunter2\n", 0o600);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(resolve_file(&link).unwrap().expose(), VALUE);
    }

    #[test]
    fn invalid_file_contents_are_refused_without_echoing_them() {
        let e = file_error(b"hunter2\xff\n", 0o600);
        assert!(matches!(e, SecretError::FileNotUtf8 { .. }), "{e:?}");
        let e = file_error(b"hunter2\0x", 0o600);
        assert!(matches!(e, SecretError::FileHasNul { .. }), "{e:?}");
        let mut big = VALUE.as_bytes().repeat(10_000);
        big.truncate(usize::try_from(MAX_SECRET_FILE_LEN).unwrap() + 1);
        let e = file_error(&big, 0o600);
        assert!(matches!(e, SecretError::FileTooLarge { .. }), "{e:?}");
    }

    #[test]
    fn file_of_the_maximum_size_is_accepted() {
        let max = usize::try_from(MAX_SECRET_FILE_LEN).unwrap();
        let (_dir, path) = secret_file(&b"x".repeat(max), 0o600);
        assert_eq!(resolve_file(&path).unwrap().expose().len(), max);
    }

    #[test]
    fn env_secret_is_taken_as_it_is() {
        let secret = resolve_with(&env_ref(), fake_env(Some(b" hunter2\n"))).unwrap();
        assert_eq!(secret.expose(), " hunter2\n");
    }

    #[test]
    fn unset_env_variable_is_an_error_naming_it() {
        let e = resolve_with(&env_ref(), fake_env(None)).unwrap_err();
        assert!(matches!(e, SecretError::EnvNotSet { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "environment variable ORDERS_DB_PASSWORD (a secret reference) is not set in the \
             agent's environment"
        );
    }

    #[test]
    fn empty_env_variable_is_refused() {
        let e = resolve_with(&env_ref(), fake_env(Some(b""))).unwrap_err();
        assert!(matches!(e, SecretError::EnvEmpty { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "environment variable ORDERS_DB_PASSWORD (a secret reference) is empty"
        );
    }

    #[test]
    fn non_utf8_env_variable_is_refused_without_echoing_it() {
        let e = resolve_with(&env_ref(), fake_env(Some(b"hunter2\xff"))).unwrap_err();
        assert!(matches!(e, SecretError::EnvNotUtf8 { .. }), "{e:?}");
        assert!(e.to_string().contains("ORDERS_DB_PASSWORD"), "{e}");
        assert!(!format!("{e} {e:?}").contains(VALUE), "{e:?}");
    }

    #[test]
    fn resolve_reads_the_process_environment() {
        // A name no environment sets (the tests cannot set one: set_var is unsafe).
        let name = "CHUNK_AGENT_TEST_UNSET_SECRET_7D3F0A";
        assert!(std::env::var_os(name).is_none());
        let e = resolve(&SecretRef::Env(name.into())).unwrap_err();
        assert!(matches!(e, SecretError::EnvNotSet { name: n } if n == name));
    }

    #[test]
    fn secret_is_redacted_when_printed() {
        let secret = resolve_with(&env_ref(), fake_env(Some(VALUE.as_bytes()))).unwrap();
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(<redacted>)");
        assert_eq!(secret.expose(), VALUE);
    }
}
