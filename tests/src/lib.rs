//! Test harness for the chunk agent.
//!
//! Everything here drives real things: a throwaway PostgreSQL cluster ([`PgServer`]), the real
//! agent binary ([`AgentProcess`]), real cgroup v2 directories ([`TestCgroup`]) and real client
//! programs. It is shared by the end-to-end tests in `tests/tests/` and by `cargo xtask demo`.
//!
//! Nothing here skips: when a prerequisite is missing (root, cgroup v2, PostgreSQL, the agent
//! binary) the functions return an error or panic with a message telling what to install or
//! build. Names (cgroups, ports, directories) are unique per call so that tests can run in
//! parallel threads of one process and in parallel processes.

#![forbid(unsafe_code)]

pub mod agent;
pub mod audit;
pub mod cgroup;
pub mod job;
pub mod jwt;
pub mod net;
pub mod pg;
pub mod pgbouncer;
pub mod policy;
pub mod process;
pub mod tls;

pub use agent::{AgentOptions, AgentProcess, agent_bin};
pub use audit::{JsonPath, action_of};
pub use cgroup::{TestCgroup, cgroup2_mount, command_in_cgroup, current_cgroup};
pub use net::free_port;
pub use pg::{PgAuth, PgOptions, PgServer, Secret, pg_bin_dir};
pub use pgbouncer::{PgBouncer, PgBouncerOptions};
pub use policy::{loopback_addresses, single_target_policy};
pub use process::{OutputExt, run_with_timeout};

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` if set, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// A short name that is unique within this machine for the lifetime of the process:
/// `<prefix>-<pid>-<counter><random>` (lowercase hex, safe for cgroup and file names).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // A little time-derived noise so that a reused pid does not reuse a leftover name.
    let noise = (nanos ^ (nanos >> 13)) & 0xfff;
    format!("{prefix}-{:x}-{n:x}{noise:03x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ() {
        let a = unique_name("x");
        let b = unique_name("x");
        assert_ne!(a, b);
        assert!(a.starts_with("x-"));
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn workspace_root_has_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }
}
