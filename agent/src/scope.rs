//! The interception scope: which cgroups run the programs (attach points) and how the kernel
//! classifies each cgroup (`CGROUPS` map entries). [`plan`] is pure: it takes the policy and a
//! snapshot of the cgroup tree and returns the wanted state; the agent applies it.
//!
//! Rules, deepest entry wins in the kernel:
//! - `<exec root>` (`<base>/jobs`): `BELOW`: every job cgroup is intercepted; the proxy refuses
//!   the ones of undeclared workloads.
//! - an exact pattern (`/system.slice/x.service`): `SUBTREE` on that cgroup, attached there.
//! - a glob pattern (`/chunk-jobs/nightly/*`): attached at its static prefix with `BELOW`, so a
//!   new cgroup there is intercepted from its first connect (no race with the agent's scan).
//!   Cgroups found below it are then classified: a match gets `SUBTREE`; a cgroup at or past the
//!   pattern's depth that matches no pattern gets `EXCLUDE` (none of its descendants can match),
//!   so unrelated processes reach their destinations untouched.
//! - the agent's own cgroup: `EXCLUDE`, whatever its ancestors say.
//!
//! Attach points are minimal: a cgroup below another attach point inherits the programs.

use std::collections::{BTreeMap, BTreeSet};

use agent_common::{CGROUP_BELOW, CGROUP_EXCLUDE, CGROUP_SUBTREE};

use crate::{identity::workload_of_cgroup, policy::PolicySet};

/// The wanted interception state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopePlan {
    /// cgroup id -> `CGROUP_*` kind.
    pub entries: BTreeMap<u64, u32>,
    /// cgroup paths to attach the programs to.
    pub attach: BTreeSet<String>,
}

fn depth(path: &str) -> usize {
    path.split('/').filter(|s| !s.is_empty()).count()
}

/// Whether `path` is `ancestor` or below it.
pub fn is_within(path: &str, ancestor: &str) -> bool {
    ancestor == "/"
        || path == ancestor
        || path
            .strip_prefix(ancestor)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Plans the scope. `tree` is every existing cgroup (path, id), parents before children (as
/// [`crate::cgroup::Cgroup2::walk`] returns it); `own_cgroup` is the agent's.
pub fn plan(
    policy: &PolicySet,
    exec_root: &str,
    tree: &[(String, u64)],
    own_cgroup: Option<&str>,
) -> ScopePlan {
    let ids: BTreeMap<&str, u64> = tree.iter().map(|(p, id)| (p.as_str(), *id)).collect();
    let mut plan = ScopePlan::default();
    let mut roots: Vec<(String, u32)> = vec![(exec_root.to_owned(), CGROUP_BELOW)];
    // Glob roots with the depth past which a non-matching cgroup can be excluded.
    let mut glob_roots: BTreeMap<String, usize> = BTreeMap::new();
    for workload in &policy.workloads {
        for pattern in &workload.cgroups {
            let prefix = pattern.static_prefix().to_owned();
            if pattern.is_exact() {
                roots.push((prefix, CGROUP_SUBTREE));
            } else {
                let d = glob_roots.entry(prefix.clone()).or_default();
                *d = (*d).max(depth(pattern.as_str()));
                roots.push((prefix, CGROUP_BELOW));
            }
        }
    }
    for (path, kind) in &roots {
        if let Some(id) = ids.get(path.as_str()) {
            // SUBTREE wins over BELOW for the same cgroup: it is the wider grant.
            let entry = plan.entries.entry(*id).or_insert(*kind);
            if *kind == CGROUP_SUBTREE {
                *entry = CGROUP_SUBTREE;
            }
            plan.attach.insert(path.clone());
        }
    }
    for (root, max_depth) in &glob_roots {
        let mut decided: Vec<&str> = Vec::new();
        for (path, id) in tree {
            if path == root || !is_within(path, root) {
                continue;
            }
            if decided.iter().any(|d| is_within(path, d)) {
                continue;
            }
            if workload_of_cgroup(policy, exec_root, path).is_ok() {
                plan.entries.insert(*id, CGROUP_SUBTREE);
                decided.push(path);
            } else if depth(path) >= *max_depth {
                plan.entries.entry(*id).or_insert(CGROUP_EXCLUDE);
                decided.push(path);
            }
        }
    }
    if let Some(own) = own_cgroup.and_then(|p| ids.get(p)) {
        plan.entries.insert(*own, CGROUP_EXCLUDE);
    }
    let all: Vec<String> = plan.attach.iter().cloned().collect();
    plan.attach
        .retain(|p| !all.iter().any(|a| a != p && is_within(p, a)));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse_sources;
    use std::path::PathBuf;

    fn policy(cgroups: &str) -> PolicySet {
        let text = format!(
            r#"
[[workload]]
name = "nightly"
cgroups = [{cgroups}]
targets = ["db"]

[[target]]
name = "db"
protocol = "tcp"
addresses = ["127.0.0.1:5432"]
"#
        );
        parse_sources(&[(PathBuf::from("p.toml"), text)]).expect("valid policy")
    }

    fn tree(paths: &[&str]) -> Vec<(String, u64)> {
        paths
            .iter()
            .enumerate()
            .map(|(i, p)| ((*p).to_owned(), i as u64 + 100))
            .collect()
    }

    const EXEC: &str = "/agent/jobs";

    #[test]
    fn exec_root_is_attached_and_intercepts_below() {
        let t = tree(&["/", "/agent", "/agent/jobs", "/agent/jobs/nightly"]);
        let p = plan(&policy(""), EXEC, &t, None);
        assert_eq!(p.attach, BTreeSet::from(["/agent/jobs".to_owned()]));
        assert_eq!(p.entries.get(&102), Some(&CGROUP_BELOW));
        assert_eq!(p.entries.len(), 1);
    }

    #[test]
    fn glob_root_is_below_and_its_cgroups_are_classified() {
        let t = tree(&[
            "/",
            "/cj",
            "/cj/nightly",
            "/cj/nightly/run-1",
            "/cj/nightly/run-1/sub",
            "/cj/other",
        ]);
        let p = plan(&policy(r#""/cj/*/run-*""#), EXEC, &t, None);
        assert!(p.attach.contains("/cj"));
        assert_eq!(p.entries.get(&101), Some(&CGROUP_BELOW), "glob root");
        assert_eq!(
            p.entries.get(&102),
            None,
            "shallower than the pattern: undecided"
        );
        assert_eq!(p.entries.get(&103), Some(&CGROUP_SUBTREE), "match");
        assert_eq!(p.entries.get(&104), None, "inherits its matching parent");
        assert_eq!(
            p.entries.get(&105),
            None,
            "shallower than the pattern: undecided"
        );
    }

    #[test]
    fn non_matching_cgroup_at_pattern_depth_is_excluded() {
        let t = tree(&[
            "/",
            "/cj",
            "/cj/nightly",
            "/cj/nightly/tmp",
            "/cj/nightly/job",
        ]);
        let p = plan(&policy(r#""/cj/nightly/job*""#), EXEC, &t, None);
        assert_eq!(p.entries.get(&103), Some(&CGROUP_EXCLUDE));
        assert_eq!(p.entries.get(&104), Some(&CGROUP_SUBTREE));
    }

    #[test]
    fn exact_pattern_is_a_subtree_attach_point() {
        let t = tree(&["/", "/system.slice", "/system.slice/n.service"]);
        let p = plan(&policy(r#""/system.slice/n.service""#), EXEC, &t, None);
        assert_eq!(
            p.attach,
            BTreeSet::from(["/system.slice/n.service".to_owned()])
        );
        assert_eq!(p.entries.get(&102), Some(&CGROUP_SUBTREE));
    }

    #[test]
    fn missing_pattern_cgroups_are_neither_attached_nor_mapped() {
        let p = plan(&policy(r#""/not/there""#), EXEC, &tree(&["/"]), None);
        assert!(p.attach.is_empty());
        assert!(p.entries.is_empty());
    }

    #[test]
    fn nested_attach_points_collapse_to_the_outermost() {
        let t = tree(&["/", "/cj", "/cj/a", "/cj/a/b"]);
        let p = plan(&policy(r#""/cj/*", "/cj/a/b""#), EXEC, &t, None);
        assert_eq!(p.attach, BTreeSet::from(["/cj".to_owned()]));
        assert_eq!(p.entries.get(&103), Some(&CGROUP_SUBTREE));
    }

    #[test]
    fn the_agents_own_cgroup_is_excluded() {
        let t = tree(&["/", "/cj", "/cj/agent"]);
        let p = plan(&policy(r#""/cj""#), EXEC, &t, Some("/cj/agent"));
        assert_eq!(p.entries.get(&101), Some(&CGROUP_SUBTREE));
        assert_eq!(p.entries.get(&102), Some(&CGROUP_EXCLUDE));
    }

    #[test]
    fn within_requires_a_segment_boundary() {
        assert!(is_within("/a/b", "/a"));
        assert!(is_within("/a", "/a"));
        assert!(!is_within("/ab", "/a"));
        assert!(is_within("/x", "/"));
    }
}
