//! bpffs adapter: mounting, the instance lock, listing and removing pins.

use std::{
    fs::{self, File},
    io,
    path::{Path, PathBuf},
};

use nix::{
    fcntl::{Flock, FlockArg},
    sys::statfs::{BPF_FS_MAGIC, statfs},
};

use super::{
    InterceptError,
    pins::{self, BPFFS_MOUNT, PinnedSet},
};

fn bpffs_err(path: &Path) -> impl FnOnce(io::Error) -> InterceptError + use<> {
    let path = path.to_owned();
    move |source| InterceptError::Bpffs { path, source }
}

/// Makes sure `instance` can live on a bpf file system: `/sys/fs/bpf` is mounted if it is not
/// (the usual place); any other location must be on bpffs already.
pub fn ensure_mounted(instance: &Path) -> Result<(), InterceptError> {
    let is_bpffs = |p: &Path| statfs(p).is_ok_and(|s| s.filesystem_type() == BPF_FS_MAGIC);
    if instance.starts_with(BPFFS_MOUNT) && !is_bpffs(Path::new(BPFFS_MOUNT)) {
        tracing::info!("mounting bpffs on {BPFFS_MOUNT}");
        nix::mount::mount(
            Some("bpf"),
            BPFFS_MOUNT,
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|e| InterceptError::Bpffs {
            path: BPFFS_MOUNT.into(),
            source: e.into(),
        })?;
    }
    let existing = instance
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    if !is_bpffs(existing) {
        return Err(InterceptError::Bpffs {
            path: instance.to_owned(),
            source: io::Error::other("not on a bpf file system (mount -t bpf bpf <dir>)"),
        });
    }
    Ok(())
}

pub fn create_dir(dir: &Path) -> Result<(), InterceptError> {
    fs::create_dir_all(dir).map_err(bpffs_err(dir))
}

/// An exclusive `flock` on the instance directory, held for the agent's lifetime (released by
/// the kernel when the agent exits, however it exits).
pub struct InstanceLock(#[allow(dead_code)] Flock<File>);

impl InstanceLock {
    /// Takes the lock, creating the directory if needed; `None` if another process holds it.
    pub fn acquire(instance: &Path) -> Result<Option<Self>, InterceptError> {
        create_dir(instance)?;
        Self::try_existing(instance)
    }

    fn try_existing(instance: &Path) -> Result<Option<Self>, InterceptError> {
        let dir = File::open(instance).map_err(bpffs_err(instance))?;
        match Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(Self(lock))),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(InterceptError::Bpffs {
                path: instance.to_owned(),
                source: errno.into(),
            }),
        }
    }
}

fn names(dir: &Path) -> Result<Vec<String>, InterceptError> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(bpffs_err(dir)(e)),
    }
}

/// The version directories of an instance.
pub fn version_dirs(instance: &Path) -> Result<Vec<String>, InterceptError> {
    let mut out: Vec<String> = names(instance)?
        .into_iter()
        .filter(|n| pins::is_version_name(n))
        .collect();
    out.sort();
    Ok(out)
}

/// Every pinned link set of an instance.
pub fn pinned_sets(instance: &Path) -> Result<Vec<PinnedSet>, InterceptError> {
    let mut out = Vec::new();
    for version in version_dirs(instance)? {
        let links = pins::Layout::new(instance, version.clone()).links_dir();
        for id in names(&links)? {
            if let Ok(cgroup_id) = id.parse() {
                out.push(PinnedSet {
                    version: version.clone(),
                    cgroup_id,
                });
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Removes a directory of pins and everything below it: link pins first (unlinking the last
/// reference to a link detaches its program), then the rest. Returns how many pins went.
pub fn remove_tree(dir: &Path) -> Result<usize, InterceptError> {
    let mut removed = 0;
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(bpffs_err(dir)(e)),
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    // "links" sorts before "maps": links go first.
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            removed += remove_tree(&path)?;
        } else {
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(bpffs_err(&path)(e)),
            }
        }
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(removed),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(removed),
        Err(e) => Err(bpffs_err(dir)(e)),
    }
}

/// What [`uninstall`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UninstallReport {
    pub instance: PathBuf,
    /// Pinned objects removed (links and maps).
    pub removed: usize,
    /// An agent held the directory (only with `force`).
    pub agent_was_running: bool,
}

pub fn uninstall(instance: &Path, force: bool) -> Result<UninstallReport, InterceptError> {
    let mut report = UninstallReport {
        instance: instance.to_owned(),
        removed: 0,
        agent_was_running: false,
    };
    if !instance.exists() {
        return Ok(report);
    }
    let _lock = match InstanceLock::try_existing(instance)? {
        Some(lock) => Some(lock),
        None if force => {
            report.agent_was_running = true;
            None
        }
        None => return Err(InterceptError::AgentRunning(instance.to_owned())),
    };
    for version in version_dirs(instance)? {
        report.removed += remove_tree(&instance.join(version))?;
    }
    // Left alone if something else lives there (e.g. the instance of a nested cgroup base).
    match fs::remove_dir(instance) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(bpffs_err(instance)(e)),
    }
    Ok(report)
}
