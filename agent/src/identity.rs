//! Who is behind an intercepted connection. Pure: takes what the kernel and /proc said about the
//! connecting process and the policy set, returns the workload identity or why there is none.
//!
//! A cgroup belongs to a workload when
//! - it is at or below `<exec root>/<workload>` (the job cgroups `agent exec` creates), or
//! - one of the workload's cgroup patterns matches it (or one of its ancestors).
//!
//! Exactly one workload must match; several is a refusal (ambiguous policy), not a guess.

use std::net::SocketAddr;

use crate::policy::{PolicySet, Target, Workload};

/// What the agent knows about an intercepted connection before deciding anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionFacts {
    /// The client's address as the proxy sees it.
    pub client: SocketAddr,
    /// The destination the client asked for (the protected target's address).
    pub original_destination: SocketAddr,
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
    /// `comm` as the kernel recorded it at connect time.
    pub process_name: String,
    /// `/proc/PID/exe`, if the process was still there to ask.
    pub executable: Option<String>,
    pub cgroup_id: u64,
    /// The cgroup's path, if it could be resolved from its id.
    pub cgroup_path: Option<String>,
}

/// A connection tied to a workload and a target it may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub workload: String,
    pub target: String,
    pub target_index: usize,
}

/// Why a connection has no identity. Each says which side is at fault in its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the connecting cgroup (id {0}) could not be resolved to a path")]
    UnknownCgroup(u64),
    #[error("cgroup {path} belongs to no workload")]
    NoWorkload { path: String },
    #[error("cgroup {path} matches several workloads ({}): fix the policy", names.join(", "))]
    AmbiguousWorkload { path: String, names: Vec<String> },
    #[error("cgroup {path} is an exec cgroup of undeclared workload {name:?}")]
    UndeclaredExecWorkload { path: String, name: String },
    #[error("{0} is not a protected target in the current policy")]
    UnknownTarget(SocketAddr),
    #[error("workload {workload} may not reach target {target}")]
    TargetNotAllowed { workload: String, target: String },
}

impl Refusal {
    /// A short stable code for audit events.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownCgroup(_) => "unknown-cgroup",
            Self::NoWorkload { .. } => "no-workload",
            Self::AmbiguousWorkload { .. } => "ambiguous-workload",
            Self::UndeclaredExecWorkload { .. } => "undeclared-exec-workload",
            Self::UnknownTarget(_) => "unknown-target",
            Self::TargetNotAllowed { .. } => "target-not-allowed",
        }
    }
}

/// The workload of cgroup `path`. `exec_root` is where `agent exec` creates job cgroups
/// (`<cgroup base>/jobs`).
pub fn workload_of_cgroup<'p>(
    policy: &'p PolicySet,
    exec_root: &str,
    path: &str,
) -> Result<&'p Workload, Refusal> {
    if let Some(rest) = path
        .strip_prefix(exec_root)
        .and_then(|r| r.strip_prefix('/'))
    {
        let name = rest.split('/').next().unwrap_or_default();
        return policy
            .workload(name)
            .ok_or_else(|| Refusal::UndeclaredExecWorkload {
                path: path.to_owned(),
                name: name.to_owned(),
            });
    }
    match policy.workloads_for_cgroup(path).as_slice() {
        [one] => Ok(one),
        [] => Err(Refusal::NoWorkload {
            path: path.to_owned(),
        }),
        many => Err(Refusal::AmbiguousWorkload {
            path: path.to_owned(),
            names: many.iter().map(|w| w.name.clone()).collect(),
        }),
    }
}

/// The identity of an intercepted connection, or why it must be refused.
pub fn resolve(
    policy: &PolicySet,
    exec_root: &str,
    facts: &ConnectionFacts,
) -> Result<Identity, Refusal> {
    let path = facts
        .cgroup_path
        .as_deref()
        .ok_or(Refusal::UnknownCgroup(facts.cgroup_id))?;
    let workload = workload_of_cgroup(policy, exec_root, path)?;
    let (target_index, target) = target_at(policy, facts.original_destination)?;
    if !workload.targets.contains(&target.name) {
        return Err(Refusal::TargetNotAllowed {
            workload: workload.name.clone(),
            target: target.name.clone(),
        });
    }
    Ok(Identity {
        workload: workload.name.clone(),
        target: target.name.clone(),
        target_index,
    })
}

fn target_at(policy: &PolicySet, addr: SocketAddr) -> Result<(usize, &Target), Refusal> {
    policy
        .target_index_by_addr(addr)
        .map(|i| (i, &policy.targets[i]))
        .ok_or(Refusal::UnknownTarget(addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse_sources;
    use std::path::PathBuf;

    fn policy() -> PolicySet {
        let text = r#"
[[workload]]
name = "nightly"
cgroups = ["/chunk-jobs/nightly/*"]
targets = ["orders"]

[[workload]]
name = "reports"
cgroups = ["/system.slice/reports.service"]
targets = ["other"]

[[target]]
name = "orders"
protocol = "tcp"
addresses = ["127.0.0.1:5432", "[::1]:5432"]

[[target]]
name = "other"
protocol = "tcp"
addresses = ["127.0.0.1:6000"]
"#;
        parse_sources(&[(PathBuf::from("p.toml"), text.to_owned())]).expect("valid policy")
    }

    fn facts(path: Option<&str>, dst: &str) -> ConnectionFacts {
        ConnectionFacts {
            client: "127.0.0.1:40000".parse().unwrap(),
            original_destination: dst.parse().unwrap(),
            pid: 42,
            uid: 1000,
            gid: 1000,
            process_name: "psql".into(),
            executable: None,
            cgroup_id: 7,
            cgroup_path: path.map(str::to_owned),
        }
    }

    const EXEC: &str = "/chunk-agent/jobs";

    #[test]
    fn exec_job_cgroup_maps_to_its_workload() {
        let id = resolve(
            &policy(),
            EXEC,
            &facts(Some("/chunk-agent/jobs/nightly/job-1"), "127.0.0.1:5432"),
        )
        .unwrap();
        assert_eq!(id.workload, "nightly");
        assert_eq!(id.target, "orders");
    }

    #[test]
    fn glob_pattern_cgroup_maps_to_its_workload_also_for_ipv6_and_mapped_addresses() {
        for dst in ["[::1]:5432", "[::ffff:127.0.0.1]:5432"] {
            let id = resolve(
                &policy(),
                EXEC,
                &facts(Some("/chunk-jobs/nightly/r1/x"), dst),
            );
            assert_eq!(id.unwrap().workload, "nightly", "{dst}");
        }
    }

    #[test]
    fn undeclared_exec_workload_is_refused() {
        let err = resolve(
            &policy(),
            EXEC,
            &facts(Some("/chunk-agent/jobs/ghost/job-1"), "127.0.0.1:5432"),
        )
        .unwrap_err();
        assert_eq!(err.code(), "undeclared-exec-workload");
    }

    #[test]
    fn cgroup_matching_no_workload_is_refused() {
        let err = resolve(
            &policy(),
            EXEC,
            &facts(Some("/chunk-jobs/nightly"), "127.0.0.1:5432"),
        )
        .unwrap_err();
        assert_eq!(err.code(), "no-workload");
    }

    #[test]
    fn unresolvable_cgroup_is_refused() {
        let err = resolve(&policy(), EXEC, &facts(None, "127.0.0.1:5432")).unwrap_err();
        assert_eq!(err, Refusal::UnknownCgroup(7));
    }

    #[test]
    fn target_outside_the_workload_grant_is_refused() {
        let err = resolve(
            &policy(),
            EXEC,
            &facts(Some("/system.slice/reports.service"), "127.0.0.1:5432"),
        )
        .unwrap_err();
        assert_eq!(err.code(), "target-not-allowed");
    }

    #[test]
    fn unknown_destination_is_refused() {
        let err = resolve(
            &policy(),
            EXEC,
            &facts(Some("/chunk-agent/jobs/nightly/j"), "127.0.0.1:9"),
        )
        .unwrap_err();
        assert_eq!(err.code(), "unknown-target");
    }
}
