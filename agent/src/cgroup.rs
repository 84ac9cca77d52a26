//! cgroup v2 adapter: where the hierarchy is mounted, path <-> id, the job cgroups of
//! `agent exec`.
//!
//! Paths are always given relative to the cgroup2 mount, starting with `/` (as in
//! `/proc/PID/cgroup`). A cgroup's id (what `bpf_get_current_cgroup_id` returns) is the inode
//! number of its directory.

use std::{
    fs, io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup2 file system is mounted (looked in /proc/self/mountinfo)")]
    NoCgroup2,
    #[error("invalid cgroup path {0:?}: must start with '/' and contain no '.' or '..' segments")]
    InvalidPath(String),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CgroupError + use<> {
    let path = path.to_owned();
    move |source| CgroupError::Io {
        action,
        path,
        source,
    }
}

/// The mount point of the cgroup2 file system, from the text of `/proc/self/mountinfo`.
///
/// Each line is `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER`.
pub fn parse_mountinfo(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let fstype = after.split_whitespace().next()?;
        if fstype != "cgroup2" {
            return None;
        }
        let mount_point = before.split_whitespace().nth(4)?;
        Some(PathBuf::from(unescape_mount_path(mount_point)))
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape_mount_path(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                let v = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(v as u8);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup v2 path of a process from the text of `/proc/PID/cgroup` (the `0::` line).
pub fn parse_proc_cgroup(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end().to_owned())
}

/// Checks that `rel` is an absolute cgroup path without `.`/`..`/empty segments.
pub fn validate_path(rel: &str) -> Result<(), CgroupError> {
    let ok = rel.starts_with('/')
        && (rel == "/"
            || rel[1..]
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != ".."));
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidPath(rel.to_owned()))
    }
}

/// Joins cgroup paths: `join("/a", "b")` is `/a/b`.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// The mounted cgroup2 hierarchy.
#[derive(Debug, Clone)]
pub struct Cgroup2 {
    mount: PathBuf,
}

impl Cgroup2 {
    /// Finds the cgroup2 mount of this machine (e.g. `/sys/fs/cgroup` or, in hybrid mode,
    /// `/sys/fs/cgroup/unified`).
    pub fn discover() -> Result<Self, CgroupError> {
        let path = Path::new("/proc/self/mountinfo");
        let text = fs::read_to_string(path).map_err(io_err("read", path))?;
        let mount = parse_mountinfo(&text).ok_or(CgroupError::NoCgroup2)?;
        Ok(Self { mount })
    }

    pub fn at(mount: impl Into<PathBuf>) -> Self {
        Self {
            mount: mount.into(),
        }
    }

    pub fn mount(&self) -> &Path {
        &self.mount
    }

    /// The directory of cgroup `rel`.
    pub fn dir(&self, rel: &str) -> PathBuf {
        self.mount.join(rel.trim_start_matches('/'))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.dir(rel).is_dir()
    }

    /// The id of cgroup `rel` (its directory's inode number).
    pub fn id(&self, rel: &str) -> Result<u64, CgroupError> {
        let dir = self.dir(rel);
        Ok(fs::metadata(&dir).map_err(io_err("stat", &dir))?.ino())
    }

    /// Creates cgroup `rel` and any missing parents.
    pub fn create(&self, rel: &str) -> Result<(), CgroupError> {
        validate_path(rel)?;
        let dir = self.dir(rel);
        fs::create_dir_all(&dir).map_err(io_err("create cgroup", &dir))
    }

    /// Removes cgroup `rel` (it must hold no process and no child cgroup).
    pub fn remove(&self, rel: &str) -> Result<(), CgroupError> {
        let dir = self.dir(rel);
        fs::remove_dir(&dir).map_err(io_err("remove cgroup", &dir))
    }

    /// Moves process `pid` (all its threads) into cgroup `rel`.
    pub fn move_process(&self, rel: &str, pid: u32) -> Result<(), CgroupError> {
        let procs = self.dir(rel).join("cgroup.procs");
        fs::write(&procs, pid.to_string()).map_err(io_err("write", &procs))
    }

    /// Whether cgroup `rel` or a descendant still holds a process (`populated` in cgroup.events).
    pub fn is_populated(&self, rel: &str) -> Result<bool, CgroupError> {
        let events = self.dir(rel).join("cgroup.events");
        let text = fs::read_to_string(&events).map_err(io_err("read", &events))?;
        Ok(text.lines().any(|l| l == "populated 1"))
    }

    /// Kills every process of cgroup `rel` and its descendants (`cgroup.kill`, Linux 5.14+).
    pub fn kill_all(&self, rel: &str) -> Result<(), CgroupError> {
        let kill = self.dir(rel).join("cgroup.kill");
        fs::write(&kill, "1").map_err(io_err("write", &kill))
    }

    /// The cgroup of process `pid`.
    pub fn of_process(&self, pid: u32) -> Result<String, CgroupError> {
        let path = PathBuf::from(format!("/proc/{pid}/cgroup"));
        let text = fs::read_to_string(&path).map_err(io_err("read", &path))?;
        parse_proc_cgroup(&text).ok_or_else(|| CgroupError::Io {
            action: "parse",
            path,
            source: io::Error::new(io::ErrorKind::InvalidData, "no cgroup v2 (0::) line"),
        })
    }

    /// Every cgroup at or below `rel` with its id, parents before children. Cgroups that vanish
    /// during the walk are skipped.
    pub fn walk(&self, rel: &str) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut stack = vec![rel.to_owned()];
        while let Some(cg) = stack.pop() {
            let dir = self.dir(&cg);
            let Ok(meta) = fs::metadata(&dir) else {
                continue;
            };
            out.push((cg.clone(), meta.ino()));
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            let mut children: Vec<String> = entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect();
            children.sort_unstable_by(|a, b| b.cmp(a));
            stack.extend(children.into_iter().map(|c| join(&cg, &c)));
        }
        out
    }

    /// The path of the cgroup with id `id`: first the given hint (e.g. from `/proc/PID/cgroup`),
    /// checked against the id, then a walk of the whole hierarchy.
    pub fn path_of_id(&self, id: u64, hint: Option<&str>) -> Option<String> {
        if let Some(hint) = hint
            && self.id(hint).ok() == Some(id)
        {
            return Some(hint.to_owned());
        }
        self.walk("/")
            .into_iter()
            .find_map(|(path, ino)| (ino == id).then_some(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
33 31 0:28 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,name=systemd
";

    #[test]
    fn hybrid_mode_mount_is_found_under_unified() {
        assert_eq!(
            parse_mountinfo(HYBRID),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn unified_mode_mount_is_found() {
        let text =
            "30 1 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(parse_mountinfo(text), Some(PathBuf::from("/sys/fs/cgroup")));
    }

    #[test]
    fn optional_fields_and_escaped_spaces_are_handled() {
        let text = "30 1 0:26 / /mnt/my\\040cg rw shared:4 master:1 - cgroup2 none rw\n";
        assert_eq!(parse_mountinfo(text), Some(PathBuf::from("/mnt/my cg")));
    }

    #[test]
    fn no_cgroup2_means_none() {
        let text = "33 31 0:28 / /sys/fs/cgroup/cpu rw shared:11 - cgroup cgroup rw,cpu\n";
        assert_eq!(parse_mountinfo(text), None);
    }

    #[test]
    fn proc_cgroup_v2_line_is_used_in_hybrid_mode() {
        let text = "4:memory:/x\n1:name=systemd:/user.slice\n0::/chunk-agent/jobs/w/job-1\n";
        assert_eq!(
            parse_proc_cgroup(text).as_deref(),
            Some("/chunk-agent/jobs/w/job-1")
        );
    }

    #[test]
    fn dot_segments_are_invalid_paths() {
        assert!(validate_path("/a/../b").is_err());
        assert!(validate_path("a/b").is_err());
        assert!(validate_path("/a//b").is_err());
        assert!(validate_path("/a/b").is_ok());
    }

    #[test]
    fn join_handles_the_root() {
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }

    #[test]
    fn walk_lists_parents_before_children_with_inode_ids() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("a/b")).unwrap();
        fs::create_dir_all(tmp.path().join("c")).unwrap();
        let cg = Cgroup2::at(tmp.path());
        let walked: Vec<String> = cg.walk("/").into_iter().map(|(p, _)| p).collect();
        assert_eq!(walked, ["/", "/a", "/a/b", "/c"]);
        let id = cg.id("/a/b").unwrap();
        assert_eq!(cg.path_of_id(id, None).as_deref(), Some("/a/b"));
        assert_eq!(cg.path_of_id(id, Some("/c")).as_deref(), Some("/a/b"));
    }
}
