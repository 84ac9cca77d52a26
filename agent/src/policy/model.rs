//! The validated policy model: plain data, built by [`super::parse_sources`].

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::access::Access;
use super::pattern::CgroupPattern;

/// A validated set of policies (all files of a policy directory).
///
/// Workloads and targets are in source order: files sorted by name, then in
/// the order they appear in each file.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub workloads: Vec<Workload>,
    pub targets: Vec<Target>,
}

/// A class of batch jobs, identified by the cgroups its processes run in.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    pub description: Option<String>,
    /// May be empty: then only `agent exec --workload NAME` puts jobs in it.
    pub cgroups: Vec<CgroupPattern>,
    /// Names of the targets this workload may reach (all exist in the set).
    pub targets: Vec<String>,
    /// SQL access rules, at most one per target, only for postgres targets listed in
    /// `targets`. A postgres target without one: every statement is denied.
    pub access: Vec<Access>,
    /// `[workload.recording]` (defaults when absent).
    pub recording: super::recording::RecordingSettings,
    /// `[workload.token]`: the JWT its sessions must (or may) present.
    pub token: Option<super::token::TokenSettings>,
    pub source: SourceLocation,
}

impl Workload {
    /// The SQL access rules of this workload for `target`, if it has some.
    pub fn access_for(&self, target: &str) -> Option<&Access> {
        self.access.iter().find(|a| a.target == target)
    }
}

/// A database (or other TCP service) whose connections are intercepted.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub protocol: Protocol,
    /// As written (an IPv4-mapped IPv6 address is kept as such); compare with
    /// [`normalize_addr`] applied on both sides.
    pub addresses: Vec<SocketAddr>,
    /// Always `Some` for a postgres target (required there); optional and
    /// unused for a tcp target.
    pub credentials: Option<Credentials>,
    /// `Some` iff `protocol` is [`Protocol::Postgres`].
    pub postgres: Option<PostgresSettings>,
    pub source: SourceLocation,
}

/// What the agent does on a PostgreSQL target's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// When set, the upstream database is forced to this one (the client's
    /// `dbname` is ignored); when `None`, the client's choice is used. A
    /// PostgreSQL identifier as written (1 to 63 bytes, no NUL), to be quoted
    /// when used in SQL.
    pub database: Option<String>,
    /// Whether the startup parameter `replication` is accepted (else refused).
    pub allow_replication: bool,
    pub tls: TlsSettings,
}

/// TLS from the agent to the target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: TlsMode,
    /// Absolute path of a PEM file of CA certificates to trust instead of the
    /// system roots (read at use time). Only with [`TlsMode::VerifyFull`].
    pub ca_file: Option<PathBuf>,
    /// The DNS name (or IP address) the certificate is verified against;
    /// `None`: the IP address the job connected to. Only with
    /// [`TlsMode::VerifyFull`].
    pub server_name: Option<String>,
}

/// Whether and how the agent uses TLS towards a target. There is no
/// "prefer"/"require": TLS without verification is not offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TlsMode {
    /// TLS required; the certificate chain and the server name are verified.
    #[default]
    VerifyFull,
    /// Plain text (e.g. a database on the loopback interface).
    Disable,
}

impl TlsMode {
    /// As written in a policy file: `verify-full` or `disable`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::VerifyFull => "verify-full",
            TlsMode::Disable => "disable",
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The protocol spoken to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Postgres,
    Tcp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Postgres => "postgres",
            Protocol::Tcp => "tcp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Credentials the agent uses towards a target. Holds only a *reference* to
/// the password, never the password itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Static: the role the agent logs in as. Ephemeral: the admin role that
    /// creates the per-session roles. 1 to 63 bytes, no NUL.
    pub username: String,
    /// The password of `username`.
    pub password: SecretRef,
    pub mode: CredentialMode,
}

/// How the agent logs in upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CredentialMode {
    /// As `username`, for every session.
    Static,
    /// As a role that `username` creates for each session: a member of
    /// `group_role`, with a fresh random password, valid until now + `ttl`.
    Ephemeral {
        /// The least-privilege group role granted to each per-session role
        /// (a PostgreSQL identifier as written, 1 to 63 bytes, no NUL).
        group_role: String,
        /// Between 1 minute and 24 hours (default 15 minutes).
        ttl: Duration,
    },
}

/// Where a secret is to be read from (at use time, by the caller). Never the
/// secret value itself, so `Debug`/`Display` are safe to log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretRef {
    /// An absolute path to a file holding the secret.
    File(PathBuf),
    /// The name of an environment variable of the agent holding the secret.
    Env(String),
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::File(path) => write!(f, "file:{}", path.display()),
            SecretRef::Env(name) => write!(f, "env:{name}"),
        }
    }
}

/// Where a workload or target is defined: file and 1-based line of its
/// `[[workload]]` / `[[target]]` header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceLocation {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// Turns an IPv4-mapped IPv6 address (`[::ffff:a.b.c.d]:port`) into the
/// plain IPv4 one (`a.b.c.d:port`); any other address is returned unchanged.
pub fn normalize_addr(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

impl PolicySet {
    /// The workload with this name.
    pub fn workload(&self, name: &str) -> Option<&Workload> {
        self.workloads.iter().find(|w| w.name == name)
    }

    /// The target with this name.
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// Index in [`PolicySet::targets`] of the target owning `addr`
    /// (IPv4-mapped IPv6 addresses are normalised to IPv4 on both sides).
    pub fn target_index_by_addr(&self, addr: SocketAddr) -> Option<usize> {
        let addr = normalize_addr(addr);
        self.targets
            .iter()
            .position(|t| t.addresses.iter().any(|&a| normalize_addr(a) == addr))
    }

    /// All workloads having a cgroup pattern that matches `cgroup_path` (or
    /// one of its ancestors). The caller must refuse a connection unless
    /// exactly one workload is returned.
    pub fn workloads_for_cgroup(&self, cgroup_path: &str) -> Vec<&Workload> {
        self.workloads
            .iter()
            .filter(|w| w.cgroups.iter().any(|p| p.matches(cgroup_path)))
            .collect()
    }

    /// One warning per (workload, postgres target) pair without SQL access rules: every
    /// statement of those sessions will be denied. For `agent check` to print; the set is
    /// valid anyway (failing closed is the intended behaviour, but may be an oversight).
    pub fn access_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for w in &self.workloads {
            for t in &w.targets {
                let is_postgres = self
                    .target(t)
                    .is_some_and(|t| t.protocol == Protocol::Postgres);
                if is_postgres && w.access_for(t).is_none() {
                    warnings.push(format!(
                        "{}: workload `{}` reaches postgres target `{t}` but has no \
                         [[workload.access]] table for it: every SQL statement will be denied",
                        w.source, w.name
                    ));
                }
            }
        }
        warnings
    }

    /// A one-line summary, e.g. `2 workloads, 1 target`.
    pub fn summary(&self) -> String {
        format!(
            "{}, {}",
            plural(self.workloads.len(), "workload"),
            plural(self.targets.len(), "target")
        )
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
