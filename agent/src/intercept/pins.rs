//! Where the agent pins its maps and links on bpffs, and which pins a running agent retires
//! (pure: paths and decisions only).
//!
//! ```text
//! <instance>/                          flock'ed by the running agent
//!   v-<hash>/                          one set per eBPF object (hash of the embedded programs)
//!     maps/<MAP>                       every map of the programs
//!     links/<cgroup id>/<program>      one link per program and attach cgroup
//! ```
//!
//! `<instance>` is `/sys/fs/bpf/chunk-agent<cgroup base>` unless `--bpffs-dir` says otherwise,
//! so agents with different cgroup bases never share (or lock each other out of) their pins.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

/// Where bpffs is normally mounted.
pub const BPFFS_MOUNT: &str = "/sys/fs/bpf";
/// The agent's directory on bpffs.
pub const BPFFS_PREFIX: &str = "/sys/fs/bpf/chunk-agent";
const VERSION_PREFIX: &str = "v-";

/// The default pin directory of the agent with cgroup base `cgroup_base` (e.g. `/chunk-agent`
/// pins in `/sys/fs/bpf/chunk-agent/chunk-agent`).
pub fn default_instance_dir(cgroup_base: &str) -> PathBuf {
    Path::new(BPFFS_PREFIX).join(cgroup_base.trim_start_matches('/'))
}

/// The version name of an eBPF object: `v-` and the first 16 hex digits of its SHA-256.
pub fn version_of(object: &[u8]) -> String {
    let digest = Sha256::digest(object);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{VERSION_PREFIX}{hex}")
}

/// Whether a directory name is a version directory.
pub fn is_version_name(name: &str) -> bool {
    name.strip_prefix(VERSION_PREFIX)
        .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The pin paths of one agent instance running one version of the programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub instance: PathBuf,
    pub version: String,
}

impl Layout {
    pub fn new(instance: impl Into<PathBuf>, version: impl Into<String>) -> Self {
        Self {
            instance: instance.into(),
            version: version.into(),
        }
    }

    pub fn version_dir(&self) -> PathBuf {
        self.instance.join(&self.version)
    }

    pub fn maps_dir(&self) -> PathBuf {
        self.version_dir().join("maps")
    }

    pub fn map(&self, name: &str) -> PathBuf {
        self.maps_dir().join(name)
    }

    pub fn links_dir(&self) -> PathBuf {
        self.version_dir().join("links")
    }

    pub fn link_dir(&self, cgroup_id: u64) -> PathBuf {
        self.links_dir().join(cgroup_id.to_string())
    }

    pub fn link(&self, cgroup_id: u64, program: &str) -> PathBuf {
        self.link_dir(cgroup_id).join(program)
    }
}

/// A set of pinned links found on bpffs: its version and attach cgroup.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PinnedSet {
    pub version: String,
    pub cgroup_id: u64,
}

/// The pinned link sets to remove: those of another version (the current version's links are
/// attached to the same cgroups first, so the cgroup is never without programs), and those of a
/// cgroup the running agent no longer attaches to (`attached`).
pub fn to_retire(found: &[PinnedSet], current: &str, attached: &BTreeSet<u64>) -> Vec<PinnedSet> {
    found
        .iter()
        .filter(|s| s.version != current || !attached.contains(&s.cgroup_id))
        .cloned()
        .collect()
}

/// The version directories that can go entirely: not the current one, and without links left.
pub fn versions_to_remove(
    versions: &[String],
    current: &str,
    remaining_links: &[PinnedSet],
) -> Vec<String> {
    versions
        .iter()
        .filter(|v| v.as_str() != current && !remaining_links.iter().any(|s| &s.version == *v))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(version: &str, cgroup_id: u64) -> PinnedSet {
        PinnedSet {
            version: version.into(),
            cgroup_id,
        }
    }

    #[test]
    fn instance_dir_follows_the_cgroup_base() {
        assert_eq!(
            default_instance_dir("/chunk-agent"),
            PathBuf::from("/sys/fs/bpf/chunk-agent/chunk-agent")
        );
        assert_eq!(
            default_instance_dir("/a/b"),
            PathBuf::from("/sys/fs/bpf/chunk-agent/a/b")
        );
    }

    #[test]
    fn version_names_the_object_content() {
        let a = version_of(b"one");
        assert_eq!(a, version_of(b"one"));
        assert_ne!(a, version_of(b"two"));
        assert!(is_version_name(&a), "{a}");
        assert_eq!(a.len(), 2 + 16);
        assert!(!is_version_name("v-"));
        assert!(!is_version_name("links"));
        assert!(!is_version_name("v-xyz"));
    }

    #[test]
    fn layout_paths() {
        let l = Layout::new("/sys/fs/bpf/chunk-agent/x", "v-ab");
        assert_eq!(
            l.map("TARGETS"),
            PathBuf::from("/sys/fs/bpf/chunk-agent/x/v-ab/maps/TARGETS")
        );
        assert_eq!(
            l.link(42, "connect4"),
            PathBuf::from("/sys/fs/bpf/chunk-agent/x/v-ab/links/42/connect4")
        );
    }

    #[test]
    fn other_versions_and_unattached_cgroups_are_retired() {
        let found = [set("v-old", 1), set("v-new", 1), set("v-new", 2)];
        let attached = BTreeSet::from([1]);
        assert_eq!(
            to_retire(&found, "v-new", &attached),
            [set("v-old", 1), set("v-new", 2)]
        );
    }

    #[test]
    fn the_current_versions_attached_links_are_kept() {
        let found = [set("v-new", 1), set("v-new", 2)];
        assert!(to_retire(&found, "v-new", &BTreeSet::from([1, 2])).is_empty());
    }

    #[test]
    fn an_old_version_goes_once_its_links_are_gone() {
        let versions = ["v-old".to_owned(), "v-new".to_owned(), "v-older".to_owned()];
        let remaining = [set("v-older", 3), set("v-new", 1)];
        assert_eq!(
            versions_to_remove(&versions, "v-new", &remaining),
            ["v-old"]
        );
    }
}
