//! Writing policy files for tests (TOML text, see docs/policy-reference.md).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// TOML for one workload `workload` allowed to reach one target `target` with `protocol`
/// (`"tcp"` or `"postgres"`) at `addresses` (`"127.0.0.1:5432"`, `"[::1]:5432"`), whose
/// processes are identified by the cgroup glob patterns `cgroups` (may be empty: then only jobs
/// started with `agent exec --workload` belong to it).
pub fn single_target_policy(
    workload: &str,
    cgroups: &[&str],
    target: &str,
    protocol: &str,
    addresses: &[String],
) -> String {
    let mut toml = String::new();
    let _ = writeln!(toml, "[[workload]]");
    let _ = writeln!(toml, "name = {}", quote(workload));
    let _ = writeln!(toml, "cgroups = {}", array(cgroups.iter().copied()));
    let _ = writeln!(toml, "targets = [{}]", quote(target));
    let _ = writeln!(toml);
    let _ = writeln!(toml, "[[target]]");
    let _ = writeln!(toml, "name = {}", quote(target));
    let _ = writeln!(toml, "protocol = {}", quote(protocol));
    let _ = writeln!(
        toml,
        "addresses = {}",
        array(addresses.iter().map(String::as_str))
    );
    toml
}

/// TLS from the agent to a postgres target (`[target.tls]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamTls {
    /// `mode = "disable"`.
    Disable,
    /// `mode = "verify-full"`, with an optional `ca_file` and `server_name`.
    VerifyFull {
        ca_file: Option<PathBuf>,
        server_name: Option<String>,
    },
}

/// How the agent logs in upstream (`[target.credentials]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialMode {
    /// `mode = "static"`: as `username`.
    Static,
    /// `mode = "ephemeral"`: `username` is the admin role creating a per-session role that is a
    /// member of `group_role`, valid for `ttl` (e.g. `"15m"`).
    Ephemeral { group_role: String, ttl: String },
}

/// One workload allowed to reach one `protocol = "postgres"` target, with injected
/// credentials. Render with [`PostgresPolicy::to_toml`].
#[derive(Debug, Clone)]
pub struct PostgresPolicy {
    pub workload: String,
    /// Cgroup glob patterns of the workload (empty: only `agent exec` jobs).
    pub cgroups: Vec<String>,
    pub target: String,
    /// `"127.0.0.1:5432"`, `"[::1]:5432"`.
    pub addresses: Vec<String>,
    /// `database = ...` (forces the upstream database).
    pub database: Option<String>,
    /// `allow_replication = ...` (written only when set).
    pub allow_replication: Option<bool>,
    pub tls: UpstreamTls,
    pub username: String,
    /// `password = { file = ... }`.
    pub password_file: PathBuf,
    pub mode: CredentialMode,
    /// The body of the workload's `[[workload.access]]` table for the target (after its
    /// `target = ...` line); `None`: no access table (every statement is then denied).
    pub access: Option<String>,
}

/// An access table allowing every operation on every object, except `admin` and the built-in
/// denials: what the protocol tests need, so that they exercise the proxy, not the rules.
pub const PERMISSIVE_ACCESS: &str = "allow = [{ name = \"everything\", operations = [\"read\", \
     \"write\", \"bulk_write\", \"ddl\", \"maintenance\", \"lock\", \"copy_in\", \"copy_out\", \
     \"do\", \"listen\", \"notify\", \"set\"] }]";

impl PostgresPolicy {
    /// Static credentials `username` / the secret in `password_file`, TLS disabled.
    pub fn new(
        workload: &str,
        target: &str,
        addresses: Vec<String>,
        username: &str,
        password_file: &Path,
    ) -> Self {
        Self {
            workload: workload.into(),
            cgroups: Vec::new(),
            target: target.into(),
            addresses,
            database: None,
            allow_replication: None,
            tls: UpstreamTls::Disable,
            username: username.into(),
            password_file: password_file.into(),
            mode: CredentialMode::Static,
            access: Some(PERMISSIVE_ACCESS.to_string()),
        }
    }

    /// The policy file.
    pub fn to_toml(&self) -> String {
        let cgroups: Vec<&str> = self.cgroups.iter().map(String::as_str).collect();
        let mut toml = single_target_policy(
            &self.workload,
            &cgroups,
            &self.target,
            "postgres",
            &self.addresses,
        );
        if let Some(database) = &self.database {
            let _ = writeln!(toml, "database = {}", quote(database));
        }
        if let Some(allow) = self.allow_replication {
            let _ = writeln!(toml, "allow_replication = {allow}");
        }
        let _ = writeln!(toml, "\n[target.tls]");
        match &self.tls {
            UpstreamTls::Disable => {
                let _ = writeln!(toml, "mode = \"disable\"");
            }
            UpstreamTls::VerifyFull {
                ca_file,
                server_name,
            } => {
                let _ = writeln!(toml, "mode = \"verify-full\"");
                if let Some(ca_file) = ca_file {
                    let _ = writeln!(toml, "ca_file = {}", quote(&ca_file.to_string_lossy()));
                }
                if let Some(server_name) = server_name {
                    let _ = writeln!(toml, "server_name = {}", quote(server_name));
                }
            }
        }
        let _ = writeln!(toml, "\n[target.credentials]");
        match &self.mode {
            CredentialMode::Static => {
                let _ = writeln!(toml, "mode = \"static\"");
            }
            CredentialMode::Ephemeral { .. } => {
                let _ = writeln!(toml, "mode = \"ephemeral\"");
            }
        }
        let _ = writeln!(toml, "username = {}", quote(&self.username));
        let _ = writeln!(
            toml,
            "password = {{ file = {} }}",
            quote(&self.password_file.to_string_lossy())
        );
        if let CredentialMode::Ephemeral { group_role, ttl } = &self.mode {
            let _ = writeln!(toml, "group_role = {}", quote(group_role));
            let _ = writeln!(toml, "ttl = {}", quote(ttl));
        }
        if let Some(access) = &self.access {
            // Appends to the (only) workload defined above.
            let _ = writeln!(toml, "\n[[workload.access]]");
            let _ = writeln!(toml, "target = {}", quote(&self.target));
            let _ = writeln!(toml, "{access}");
        }
        toml
    }
}

/// The loopback addresses of a server on `port`: `["127.0.0.1:port", "[::1]:port"]`.
pub fn loopback_addresses(port: u16) -> Vec<String> {
    vec![format!("127.0.0.1:{port}"), format!("[::1]:{port}")]
}

/// A TOML basic string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn array<'a>(items: impl Iterator<Item = &'a str>) -> String {
    format!("[{}]", items.map(quote).collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_single_target_policy() {
        let toml = single_target_policy("w", &["/a/*"], "db", "tcp", &loopback_addresses(5432));
        assert_eq!(
            toml,
            "[[workload]]\nname = \"w\"\ncgroups = [\"/a/*\"]\ntargets = [\"db\"]\n\n\
             [[target]]\nname = \"db\"\nprotocol = \"tcp\"\n\
             addresses = [\"127.0.0.1:5432\", \"[::1]:5432\"]\n"
        );
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
    }

    #[test]
    fn renders_a_postgres_policy() {
        let mut policy = PostgresPolicy::new(
            "w1",
            "db",
            loopback_addresses(5432),
            "chunker",
            Path::new("/s/pw"),
        );
        assert_eq!(
            policy.to_toml(),
            "[[workload]]\nname = \"w1\"\ncgroups = []\ntargets = [\"db\"]\n\n\
             [[target]]\nname = \"db\"\nprotocol = \"postgres\"\n\
             addresses = [\"127.0.0.1:5432\", \"[::1]:5432\"]\n\
             \n[target.tls]\nmode = \"disable\"\n\
             \n[target.credentials]\nmode = \"static\"\nusername = \"chunker\"\n\
             password = { file = \"/s/pw\" }\n\
             \n[[workload.access]]\ntarget = \"db\"\n"
                .to_string()
                + PERMISSIVE_ACCESS
                + "\n"
        );
        policy.access = None;
        assert!(!policy.to_toml().contains("[[workload.access]]"));
        policy.database = Some("orders".into());
        policy.allow_replication = Some(true);
        policy.tls = UpstreamTls::VerifyFull {
            ca_file: Some("/ca.pem".into()),
            server_name: Some("db.local".into()),
        };
        policy.mode = CredentialMode::Ephemeral {
            group_role: "orders_reader".into(),
            ttl: "15m".into(),
        };
        let toml = policy.to_toml();
        for line in [
            "database = \"orders\"\nallow_replication = true\n",
            "mode = \"verify-full\"\nca_file = \"/ca.pem\"\nserver_name = \"db.local\"\n",
            "mode = \"ephemeral\"\n",
            "group_role = \"orders_reader\"\nttl = \"15m\"\n",
        ] {
            assert!(toml.contains(line), "{line:?} not in:\n{toml}");
        }
    }
}
