//! Workload tokens on the PostgreSQL path: where a session's token comes from, its
//! verification against the workload's `[workload.token]` section, the roles its groups grant,
//! and what the client is told when it is refused or expires.
//!
//! Sources, looked at in this order (only those the policy lists):
//! 1. `exec`: the file `agent exec --token-file` copied to `<exec token dir>/<workload>/<job>.jwt`
//!    (root-owned, mode 0600, in a 0700 directory) for the job cgroup
//!    `<exec root>/<workload>/<job>` the connecting process is in (or below);
//! 2. `cgroup`: the policy's `cgroup_token_path`, expanded for the process's cgroup, then for
//!    each of its ancestors (nearest first) when the path contains `{cgroup}`;
//! 3. `password`: the agent sends `AuthenticationCleartextPassword` (on the host-local hop) and
//!    takes the client's password as the token.
//!
//! The first token found is the one judged: an invalid token is refused, never passed over for
//! the next source. Token files must be regular files of at most 64 KiB, not writable by group
//! or others (exec token files: owned by root and readable by no one else). Nothing here logs
//! or returns a token.
//!
//! "Groups map to roles": with `[workload.token.roles]`, the union of the roles of the token's
//! groups is what the session may act as. A token whose groups map to no role is refused. For a
//! target with static credentials the login role (`username`) must be among them; for a target
//! with ephemeral credentials the per-session role is granted them (on top of `group_role`),
//! see [`login_roles`] and [`grant_roles_sql`].

use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use bytes::BytesMut;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    time::timeout,
};
use zeroize::Zeroizing;

use super::{
    codec::{
        BackendMessage, Caps, FrontendMessage,
        backend::{Authentication, ErrorResponse, Severity},
        decode_frontend,
    },
    ephemeral::quote_ident,
    sqlstate,
};
use crate::{
    identity::ConnectionFacts,
    oidc::{Claims, TokenError, fetch::KeySet},
    policy::{CredentialMode, Credentials, PolicySet, TokenSettings, TokenSource},
};

/// Where `agent exec --token-file` leaves job tokens for the proxy (one file per job cgroup).
pub const EXEC_TOKEN_DIR: &str = "/run/chunk-agent/exec-tokens";
/// Largest token file read.
pub const MAX_TOKEN_FILE: u64 = 64 * 1024;
/// How long a client may take to answer the password request.
const PASSWORD_TIMEOUT: Duration = Duration::from_secs(60);
/// What the client is told when its session outlives its token.
pub const EXPIRED_MESSAGE: &str = "chunk agent: the workload token expired";

/// A token accepted for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub claims: Claims,
    pub source: TokenSource,
    /// The roles the token's groups map to (empty when the workload maps no roles).
    pub roles: Vec<String>,
    /// When the session must end: the token's `exp` plus the configured leeway.
    pub valid_until: SystemTime,
}

/// Why a session was refused for its token (SQLSTATE 28000). Never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    #[error("workload {workload} requires a token and none was found (sources: {sources})")]
    Missing { workload: String, sources: String },
    #[error("the {origin} token was refused: {error}")]
    Invalid {
        origin: TokenSource,
        error: TokenError,
    },
    #[error("the {origin} token cannot be read: {reason}")]
    Unreadable { origin: TokenSource, reason: String },
    #[error("the client did not send a token as its password: {0}")]
    NoPassword(String),
    #[error("the token's groups grant no role of workload {workload}")]
    NoRole { workload: String, subject: String },
    #[error("the token does not grant role {role}, which target {target} logs in as")]
    RoleNotGranted {
        role: String,
        target: String,
        subject: String,
    },
    #[error("the token settings of workload {workload} are unusable: {reason}")]
    Misconfigured { workload: String, reason: String },
}

impl TokenRefusal {
    /// A short stable code, for audit events.
    pub fn code(&self) -> &'static str {
        match self {
            TokenRefusal::Missing { .. } => "token-missing",
            TokenRefusal::Invalid { error, .. } => match error {
                TokenError::Expired { .. } => "token-expired",
                TokenError::KeysUnavailable(_) => "token-keys-unavailable",
                _ => "token-invalid",
            },
            TokenRefusal::Unreadable { .. } => "token-unreadable",
            TokenRefusal::NoPassword(_) => "token-missing",
            TokenRefusal::NoRole { .. } | TokenRefusal::RoleNotGranted { .. } => "token-no-role",
            TokenRefusal::Misconfigured { .. } => "token-misconfigured",
        }
    }

    /// The SQLSTATE the client gets: 28000 `invalid_authorization_specification`.
    pub fn sqlstate(&self) -> &'static str {
        sqlstate::INVALID_AUTHORIZATION_SPECIFICATION
    }

    /// The message of the FATAL error the client gets.
    pub fn client_message(&self) -> String {
        format!("connection refused by the chunk agent: {self}")
    }

    /// The FATAL ErrorResponse to send to the client.
    pub fn error_response(&self) -> ErrorResponse {
        ErrorResponse::new(Severity::Fatal, self.sqlstate(), self.client_message())
    }

    /// The source of the token refused, if one was found.
    pub fn source(&self) -> Option<TokenSource> {
        match self {
            TokenRefusal::Invalid { origin, .. } | TokenRefusal::Unreadable { origin, .. } => {
                Some(*origin)
            }
            TokenRefusal::NoPassword(_) => Some(TokenSource::Password),
            _ => None,
        }
    }

    /// The token's subject, when the token itself was valid.
    pub fn subject(&self) -> Option<&str> {
        match self {
            TokenRefusal::NoRole { subject, .. } | TokenRefusal::RoleNotGranted { subject, .. } => {
                Some(subject)
            }
            _ => None,
        }
    }
}

/// Where to look for a session's token, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    /// Files of one source, first existing one wins.
    File {
        source: TokenSource,
        paths: Vec<PathBuf>,
    },
    /// Ask the client for its password.
    Password,
}

/// The job cgroup (`workload`, `job`) of a process in cgroup `cgroup`, when it is at or below
/// `<exec_root>/<workload>/<job>`.
pub fn exec_job_of<'c>(exec_root: &str, cgroup: &'c str) -> Option<(&'c str, &'c str)> {
    let rest = cgroup.strip_prefix(exec_root)?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let workload = parts.next().filter(|w| valid_component(w))?;
    let job = parts.next().filter(|j| valid_component(j))?;
    Some((workload, job))
}

fn valid_component(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.starts_with('.')
}

/// The file holding the exec token of job `job` of `workload`.
pub fn exec_token_file(dir: &Path, workload: &str, job: &str) -> PathBuf {
    dir.join(workload).join(format!("{job}.jwt"))
}

/// Where to look for the token of a process of `workload` in cgroup `cgroup` (pure).
pub fn candidates(
    settings: &TokenSettings,
    workload: &str,
    cgroup: Option<&str>,
    exec_root: &str,
    exec_token_dir: &Path,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    for source in &settings.sources {
        match source {
            TokenSource::Exec => {
                let paths: Vec<PathBuf> = cgroup
                    .and_then(|c| exec_job_of(exec_root, c))
                    .filter(|(w, _)| *w == workload)
                    .map(|(w, job)| exec_token_file(exec_token_dir, w, job))
                    .into_iter()
                    .collect();
                if !paths.is_empty() {
                    out.push(Candidate::File {
                        source: TokenSource::Exec,
                        paths,
                    });
                }
            }
            TokenSource::Cgroup => {
                let Some(template) = &settings.cgroup_token_path else {
                    continue;
                };
                let mut paths = Vec::new();
                if template.uses_cgroup() {
                    let mut at = cgroup;
                    while let Some(c) = at {
                        if let Some(p) = template.expand(c, workload)
                            && !paths.contains(&p)
                        {
                            paths.push(p);
                        }
                        at = match c.rsplit_once('/') {
                            Some(("", _)) if c != "/" => Some("/"),
                            Some((parent, _)) if !parent.is_empty() => Some(parent),
                            _ => None,
                        };
                    }
                } else if let Some(p) = template.expand("/", workload) {
                    paths.push(p);
                }
                if !paths.is_empty() {
                    out.push(Candidate::File {
                        source: TokenSource::Cgroup,
                        paths,
                    });
                }
            }
            TokenSource::Password => out.push(Candidate::Password),
        }
    }
    out
}

/// Reads a token file: `Ok(None)` when it does not exist. `root_only`: the file must be owned
/// by root and readable by no one else, and not be a symbolic link.
pub async fn read_token_file(
    path: &Path,
    root_only: bool,
) -> Result<Option<Zeroizing<String>>, String> {
    let meta = if root_only {
        tokio::fs::symlink_metadata(path).await
    } else {
        tokio::fs::metadata(path).await
    };
    let meta = match meta {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let shown = path.display();
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!("{shown} is writable by group or others"));
    }
    if root_only && (meta.uid() != 0 || meta.mode() & 0o077 != 0) {
        return Err(format!("{shown} must be owned by root with mode 0600"));
    }
    if meta.len() > MAX_TOKEN_FILE {
        return Err(format!("{shown} is larger than 64 KiB"));
    }
    let bytes = Zeroizing::new(
        tokio::fs::read(path)
            .await
            .map_err(|e| format!("{shown}: {e}"))?,
    );
    let text = std::str::from_utf8(&bytes).map_err(|_| format!("{shown} is not UTF-8"))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("{shown} is empty"));
    }
    Ok(Some(Zeroizing::new(token.to_owned())))
}

/// Asks the client for its password (`AuthenticationCleartextPassword`) and returns it. `buf`
/// holds what the client sent after its startup message, and keeps what follows the password.
pub async fn ask_password<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut S,
    buf: &mut BytesMut,
    caps: &Caps,
) -> Result<Zeroizing<String>, TokenRefusal> {
    let mut out = BytesMut::new();
    BackendMessage::Authentication(Authentication::CleartextPassword).encode(&mut out);
    client
        .write_all(&out)
        .await
        .map_err(|e| TokenRefusal::NoPassword(format!("client side: {e}")))?;
    let read = async {
        loop {
            match decode_frontend(buf, caps) {
                Ok(Some(FrontendMessage::PasswordMessage(p))) => {
                    return match p.password() {
                        Ok(password) => Ok(Zeroizing::new(password.trim().to_owned())),
                        Err(_) => Err(TokenRefusal::NoPassword(
                            "malformed password message".into(),
                        )),
                    };
                }
                Ok(Some(FrontendMessage::Terminate)) => {
                    return Err(TokenRefusal::NoPassword(
                        "the client closed the connection".into(),
                    ));
                }
                Ok(Some(_)) => {
                    return Err(TokenRefusal::NoPassword(
                        "the client sent another message instead of a password".into(),
                    ));
                }
                Err(e) => return Err(TokenRefusal::NoPassword(e.to_string())),
                Ok(None) => match client.read_buf(buf).await {
                    Ok(0) | Err(_) => {
                        return Err(TokenRefusal::NoPassword(
                            "the client closed the connection".into(),
                        ));
                    }
                    Ok(_) => {}
                },
            }
        }
    };
    match timeout(PASSWORD_TIMEOUT, read).await {
        Ok(result) => result,
        Err(_) => Err(TokenRefusal::NoPassword("no answer in time".into())),
    }
}

/// One workload's token verification.
struct WorkloadTokens {
    settings: TokenSettings,
    /// `Err`: the key source is unusable (e.g. an HTTP client could not be built).
    keys: Result<KeySet, String>,
}

/// The token verification of every workload of a policy generation. Building it reads
/// nothing: key sets are loaded on first use and cached.
pub struct TokenAuth {
    workloads: HashMap<String, Arc<WorkloadTokens>>,
    exec_root: String,
    exec_token_dir: PathBuf,
}

impl TokenAuth {
    /// `exec_root`: where `agent exec` creates job cgroups; `exec_token_dir`: where it leaves
    /// their tokens ([`EXEC_TOKEN_DIR`]).
    pub fn new(policy: &PolicySet, exec_root: &str, exec_token_dir: &Path) -> Self {
        let workloads = policy
            .workloads
            .iter()
            .filter_map(|w| {
                let settings = w.token.clone()?;
                let keys = KeySet::from_config(settings.oidc_config());
                Some((w.name.clone(), Arc::new(WorkloadTokens { settings, keys })))
            })
            .collect();
        Self {
            workloads,
            exec_root: exec_root.to_owned(),
            exec_token_dir: exec_token_dir.to_owned(),
        }
    }

    /// The token settings of `workload`, if it has a `[workload.token]` section.
    pub fn settings(&self, workload: &str) -> Option<&TokenSettings> {
        self.workloads.get(workload).map(|w| &w.settings)
    }

    /// Finds and verifies the token of a session of `workload`. `Ok(None)`: the workload has no
    /// token section, or its token is optional and none was presented. `clock` gives the time
    /// of the verification (after the client answered, for the password source).
    pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        workload: &str,
        facts: &ConnectionFacts,
        client: &mut S,
        buf: &mut BytesMut,
        caps: &Caps,
        clock: &(dyn Fn() -> SystemTime + Sync),
    ) -> Result<Option<VerifiedToken>, TokenRefusal> {
        let Some(entry) = self.workloads.get(workload) else {
            return Ok(None);
        };
        let settings = &entry.settings;
        let keys = entry
            .keys
            .as_ref()
            .map_err(|reason| TokenRefusal::Misconfigured {
                workload: workload.to_owned(),
                reason: reason.clone(),
            })?;
        let found = candidates(
            settings,
            workload,
            facts.cgroup_path.as_deref(),
            &self.exec_root,
            &self.exec_token_dir,
        );
        for candidate in found {
            let (source, token) = match candidate {
                Candidate::File { source, paths } => {
                    let mut token = None;
                    for path in paths {
                        let read = read_token_file(&path, source == TokenSource::Exec)
                            .await
                            .map_err(|reason| TokenRefusal::Unreadable {
                                origin: source,
                                reason,
                            })?;
                        if read.is_some() {
                            token = read;
                            break;
                        }
                    }
                    match token {
                        Some(token) => (source, token),
                        None => continue,
                    }
                }
                Candidate::Password => {
                    let password = ask_password(client, buf, caps).await?;
                    if password.is_empty() {
                        if settings.required {
                            return Err(TokenRefusal::NoPassword("the password is empty".into()));
                        }
                        return Ok(None);
                    }
                    (TokenSource::Password, password)
                }
            };
            let claims =
                keys.verify(&token, clock())
                    .await
                    .map_err(|error| TokenRefusal::Invalid {
                        origin: source,
                        error,
                    })?;
            return accept(settings, workload, source, claims).map(Some);
        }
        if settings.required {
            Err(TokenRefusal::Missing {
                workload: workload.to_owned(),
                sources: settings
                    .sources
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        } else {
            Ok(None)
        }
    }
}

/// A verified token's roles and end of validity; refused when the workload maps roles and the
/// token's groups map to none (pure).
pub fn accept(
    settings: &TokenSettings,
    workload: &str,
    source: TokenSource,
    claims: Claims,
) -> Result<VerifiedToken, TokenRefusal> {
    let roles = settings.roles_for(&claims.groups);
    if settings.maps_roles() && roles.is_empty() {
        return Err(TokenRefusal::NoRole {
            workload: workload.to_owned(),
            subject: claims.subject,
        });
    }
    let valid_until = claims.expires_at + settings.leeway;
    Ok(VerifiedToken {
        claims,
        source,
        roles,
        valid_until,
    })
}

/// What a session's token changes in its upstream login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleGrant {
    /// Log in as the credentials say.
    Unchanged,
    /// Ephemeral credentials: also grant these roles to the per-session role.
    Grant(Vec<String>),
}

/// How the token's roles apply to a login with `credentials` to `target` (pure). Without a
/// token or a role mapping: unchanged. Static credentials: the login role must be among the
/// token's roles. Ephemeral: the per-session role is granted them.
pub fn login_roles(
    credentials: &Credentials,
    target: &str,
    token: Option<&VerifiedToken>,
    settings: Option<&TokenSettings>,
) -> Result<RoleGrant, TokenRefusal> {
    let (Some(token), Some(settings)) = (token, settings) else {
        return Ok(RoleGrant::Unchanged);
    };
    if !settings.maps_roles() {
        return Ok(RoleGrant::Unchanged);
    }
    match &credentials.mode {
        CredentialMode::Static if token.roles.contains(&credentials.username) => {
            Ok(RoleGrant::Unchanged)
        }
        CredentialMode::Static => Err(TokenRefusal::RoleNotGranted {
            role: credentials.username.clone(),
            target: target.to_owned(),
            subject: token.claims.subject.clone(),
        }),
        CredentialMode::Ephemeral { .. } => Ok(RoleGrant::Grant(token.roles.clone())),
    }
}

/// `GRANT "r1", "r2" TO "role"`: appended (after `; `) to the statements creating a per-session
/// role when [`login_roles`] says [`RoleGrant::Grant`]. `None` for no role.
pub fn grant_roles_sql(role: &str, roles: &[String]) -> Option<String> {
    if roles.is_empty() {
        return None;
    }
    let list: Vec<String> = roles.iter().map(|r| quote_ident(r)).collect();
    Some(format!(
        "GRANT {} TO {}",
        list.join(", "),
        quote_ident(role)
    ))
}

/// How long a session may still run on its token (zero when already expired).
pub fn time_left(valid_until: SystemTime, now: SystemTime) -> Duration {
    valid_until.duration_since(now).unwrap_or(Duration::ZERO)
}

/// The FATAL error ending a session whose token expired: SQLSTATE 57P01 `admin_shutdown`, the
/// code PostgreSQL itself uses when a healthy session is ended on purpose (drivers and pools
/// then discard the connection), rather than a class 08 code that reads as a network failure.
pub fn expired_error() -> ErrorResponse {
    ErrorResponse::new(Severity::Fatal, sqlstate::ADMIN_SHUTDOWN, EXPIRED_MESSAGE)
}

#[cfg(test)]
mod tests;
