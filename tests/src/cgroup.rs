//! cgroup v2 helpers: find the mount, create throwaway cgroups, run commands inside them.

use crate::process::shell_quote;
use anyhow::{Context, Result, bail};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// The mount point of the cgroup v2 hierarchy, from `/proc/self/mountinfo` (the first mount of
/// fstype `cgroup2`: `/sys/fs/cgroup` on a pure v2 system, `/sys/fs/cgroup/unified` in hybrid
/// mode).
pub fn cgroup2_mount() -> io::Result<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    find_mount_of_type(&mountinfo, "cgroup2").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no cgroup2 filesystem is mounted (see /proc/self/mountinfo); \
             the agent needs the cgroup v2 hierarchy (pure v2 or hybrid mode)",
        )
    })
}

/// The mount point of the first mount of `fstype` in a mountinfo text.
pub fn find_mount_of_type(mountinfo: &str, fstype: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        // "<id> <parent> <maj:min> <root> <mount point> <options> [optional...] - <fstype> ..."
        let (before, after) = line.split_once(" - ")?;
        if after.split_whitespace().next()? != fstype {
            return None;
        }
        let mount_point = before.split_whitespace().nth(4)?;
        Some(PathBuf::from(unescape_mountinfo(mount_point)))
    })
}

/// Undoes the octal escapes (`\040` for a space, ...) of mountinfo fields.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(u8::try_from(value).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup v2 path (relative to the mount, e.g. `/chunk-agent/jobs/w/1`) of process `pid`
/// (`"self"` for this process), from the `0::` line of `/proc/<pid>/cgroup`.
pub fn current_cgroup(pid: &str) -> Result<String> {
    let path = format!("/proc/{pid}/cgroup");
    let text = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    cgroup_from_proc_text(&text).with_context(|| format!("no cgroup v2 (0::) line in {path}"))
}

/// The path on the `0::` line of a `/proc/<pid>/cgroup` text.
pub fn cgroup_from_proc_text(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_string)
}

/// A `Command` that runs `program args...` inside the cgroup directory `cgroup_dir` (an absolute
/// path under the cgroup2 mount): a `sh` writes its own pid to `cgroup.procs`, then `exec`s the
/// program, so the program keeps that pid and starts inside the cgroup.
pub fn command_in_cgroup<S: AsRef<str>>(cgroup_dir: &Path, program: &str, args: &[S]) -> Command {
    let procs = cgroup_dir.join("cgroup.procs");
    let script = format!(
        "echo $$ > {} && exec \"$@\"",
        shell_quote(&procs.to_string_lossy())
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg("sh").arg(program);
    cmd.args(args.iter().map(AsRef::as_ref));
    cmd
}

/// A cgroup subtree created for a test; removed (processes killed first) when dropped.
#[derive(Debug)]
pub struct TestCgroup {
    rel: String,
    abs: PathBuf,
}

impl TestCgroup {
    /// Creates `/<unique name>` right below the cgroup2 mount.
    pub fn create_unique(prefix: &str) -> Result<Self> {
        Self::create(&format!("/{}", crate::unique_name(prefix)))
    }

    /// Creates the cgroup `rel` (a path relative to the mount, starting with `/`), which must not
    /// exist yet (it and everything below it will be removed on drop). Missing parents are
    /// created too but are not removed.
    pub fn create(rel: &str) -> Result<Self> {
        if !rel.starts_with('/') || rel.len() < 2 || rel.contains("..") {
            bail!("cgroup path must be absolute below the mount, like /itest-x: {rel:?}");
        }
        let rel = rel.trim_end_matches('/').to_string();
        let abs = cgroup2_mount()?.join(rel.trim_start_matches('/'));
        if abs.exists() {
            bail!("cgroup {} already exists", abs.display());
        }
        fs::create_dir_all(&abs)
            .with_context(|| format!("cannot create cgroup {} (are you root?)", abs.display()))?;
        Ok(Self { rel, abs })
    }

    /// The cgroup path relative to the mount (`/itest-...`), as used in policies and audit events.
    pub fn path(&self) -> &str {
        &self.rel
    }

    /// The cgroup directory.
    pub fn abs_path(&self) -> &Path {
        &self.abs
    }

    /// Creates the descendant `sub` (`"nightly/run-1"`) and returns `(relative path, directory)`.
    pub fn mkdir(&self, sub: &str) -> Result<(String, PathBuf)> {
        let sub = sub.trim_matches('/');
        let abs = self.abs.join(sub);
        fs::create_dir_all(&abs)
            .with_context(|| format!("cannot create cgroup {}", abs.display()))?;
        Ok((format!("{}/{sub}", self.rel), abs))
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        if let Err(e) = remove_cgroup_tree(&self.abs) {
            eprintln!(
                "warning: cannot remove test cgroup {}: {e:#}",
                self.abs.display()
            );
        }
    }
}

/// Removes a cgroup directory and all its descendants, killing any process left in them
/// (`cgroup.kill`) and retrying while they exit. A missing directory is fine.
pub fn remove_cgroup_tree(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_cgroup_tree(&entry.path())?;
        }
    }
    let has_processes = fs::read_to_string(dir.join("cgroup.procs"))
        .map(|procs| !procs.trim().is_empty())
        .unwrap_or(false);
    if has_processes {
        let _ = fs::write(dir.join("cgroup.kill"), "1");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e).with_context(|| format!("cannot rmdir {}", dir.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{OutputExt, run_with_timeout};

    #[test]
    fn finds_the_cgroup2_mount_in_mountinfo() {
        let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/uni\\040fied rw,relatime shared:9 - cgroup2 cgroup2 rw
";
        assert_eq!(
            find_mount_of_type(text, "cgroup2"),
            Some(PathBuf::from("/sys/fs/cgroup/uni fied"))
        );
        assert_eq!(find_mount_of_type(text, "bpf"), None);
    }

    #[test]
    fn parses_the_v2_line_of_proc_cgroup() {
        let text = "12:pids:/user.slice\n1:name=systemd:/init.scope\n0::/itest/a\n";
        assert_eq!(cgroup_from_proc_text(text), Some("/itest/a".to_string()));
        assert_eq!(cgroup_from_proc_text("1:cpu:/\n"), None);
    }

    /// Real cgroup: a command started with `command_in_cgroup` runs inside it, and the tree is
    /// removed on drop.
    #[test]
    fn command_runs_inside_a_test_cgroup() {
        let cg = TestCgroup::create_unique("itest-harness").unwrap();
        let (rel, abs) = cg.mkdir("a/b").unwrap();
        let out = run_with_timeout(
            &mut command_in_cgroup(&abs, "cat", &["/proc/self/cgroup"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(out.status.success(), "{}", out.describe());
        assert_eq!(cgroup_from_proc_text(&out.stdout_text()), Some(rel));
        let top = cg.abs_path().to_path_buf();
        drop(cg);
        assert!(!top.exists(), "{} was not removed", top.display());
    }
}
