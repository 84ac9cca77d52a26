//! eBPF adapter: loads the programs of `agent-ebpf`, pins them on bpffs, fills their maps and
//! attaches them to cgroups.
//!
//! Maps (see `agent_common` for the layouts), pinned in `<instance>/<version>/maps/`:
//! - `TARGETS`: protected addresses -> target index. Replaced from the policy set.
//! - `CGROUPS`: interception scope, cgroup id -> kind. Kept current by the agent's cgroup watch.
//! - `PROXY`: the proxy's listening addresses.
//! - `LISTENERS`: the proxy's listening sockets; the kernel drops them when they close, so an
//!   agent that stops, crashes or is killed leaves in-scope connects to targets refused
//!   (ECONNREFUSED), never direct.
//! - `LOCAL_ADDRS`, `LOCAL_PORTS`: this host's addresses and the ports of local targets (other
//!   local routes to a protected local server are refused).
//! - `SOCKETS`, `CONNECTIONS`: the records of redirected connections.
//!
//! Links are pinned in `<instance>/<version>/links/<cgroup id>/<program>`, so enforcement outlives
//! the agent (fail closed). A restarted agent adopts the pinned links of its own version (no
//! gap); links of another version are replaced: the new ones are attached first, then the old
//! ones removed. Only [`uninstall`] (or retiring an attach point) removes pins. See
//! `docs/fail-closed.md`. Link attachments coexist with other programs on the same cgroup; the
//! kernel refuses explicit attach flags on them, hence `CgroupAttachMode::Single` (flags 0).

mod bpffs;
pub mod local;
pub mod pins;
pub mod unix;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs::File,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
};

use agent_common::{
    ALL_MAPS, ConnInfo, LISTENER_V4, LISTENER_V6, MAP_CGROUPS, MAP_CONNECTIONS, MAP_LISTENERS,
    MAP_LOCAL_ADDRS, MAP_LOCAL_PORTS, MAP_PROXY, MAP_TARGETS, MAX_RECORD_AGE_NS, ProxyAddrs,
    SockAddr,
};
use aya::{
    Ebpf, EbpfError, EbpfLoader,
    maps::{Array, HashMap, MapData, MapError, SockMap},
    programs::{
        CgroupAttachMode, CgroupSockAddr, ProgramError, SockOps,
        links::{FdLink, LinkError, PinnedLink},
    },
};

pub use bpffs::UninstallReport;
use pins::{Layout, PinnedSet};

/// The eBPF object built by `agent/build.rs`.
static PROGRAMS_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/agent-ebpf"));

/// The cgroup/sock_addr programs, by name in the object.
const SOCK_ADDR_PROGRAMS: [&str; 4] = ["connect4", "connect6", "getpeername4", "getpeername6"];
const SOCK_OPS_PROGRAM: &str = "sock_ops_connect";

/// Every program, in attach order.
const ALL_PROGRAMS: [&str; 5] = [
    "connect4",
    "connect6",
    "getpeername4",
    "getpeername6",
    SOCK_OPS_PROGRAM,
];

/// The version of the embedded programs (names their pin directory).
pub fn programs_version() -> String {
    pins::version_of(PROGRAMS_OBJECT)
}

#[derive(Debug, thiserror::Error)]
pub enum InterceptError {
    #[error("cannot load the eBPF object (are you root, with a BTF-enabled kernel?): {0}")]
    Load(#[from] EbpfError),
    #[error("eBPF program {name}: {source}")]
    Program {
        name: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("eBPF program {0} is missing from the object or has an unexpected type")]
    MissingProgram(&'static str),
    #[error("eBPF map {0} is missing from the object")]
    MissingMap(&'static str),
    #[error("eBPF map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("cannot open cgroup directory {path}: {source}")]
    OpenCgroup {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot attach {program} to cgroup {path}: {source}")]
    Attach {
        program: &'static str,
        path: String,
        #[source]
        source: ProgramError,
    },
    #[error("link of {program} cannot be pinned: {source}")]
    Link {
        program: &'static str,
        #[source]
        source: LinkError,
    },
    #[error("cannot pin {path}: {message}")]
    Pin { path: PathBuf, message: String },
    #[error("bpffs {path}: {source}")]
    Bpffs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "another agent is running with the pin directory {0} (it holds its lock); stop it first"
    )]
    AgentRunning(PathBuf),
    #[error("cannot list this host's addresses: {0}")]
    HostAddresses(nix::Error),
}

/// The (pinned) links of the programs attached to one cgroup. Dropping it only closes the
/// agent's handles: the pins keep the programs attached (fail closed). [`Interceptor::detach`]
/// removes them.
pub struct Attachment {
    cgroup_id: u64,
    links: Vec<PinnedLink>,
}

/// Loaded programs, their pinned maps, and the lock on the pin directory.
pub struct Interceptor {
    ebpf: Ebpf,
    layout: Layout,
    _lock: bpffs::InstanceLock,
    targets: HashMap<MapData, SockAddr, u32>,
    scope: HashMap<MapData, u64, u32>,
    listeners: SockMap<MapData>,
    local_addrs: HashMap<MapData, SockAddr, u32>,
    local_ports: HashMap<MapData, u32, u32>,
    /// The wanted targets, kept to recompute `LOCAL_PORTS` when the host's addresses change.
    wanted_targets: BTreeMap<SockAddr, u32>,
    /// cgroup ids with a live [`Attachment`].
    attached: BTreeSet<u64>,
}

fn map_err(name: &'static str) -> impl FnOnce(MapError) -> InterceptError {
    move |source| InterceptError::Map { name, source }
}

fn typed_map<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, InterceptError>
where
    T: TryFrom<aya::maps::Map, Error = MapError>,
{
    T::try_from(take_map(ebpf, name)?).map_err(map_err(name))
}

impl Interceptor {
    /// Takes the pin directory `instance` (refused while another agent holds it), loads and
    /// verifies the programs with the maps pinned there (reusing the pinned maps of the same
    /// version: their state carries over), and points them at the proxy. Nothing new is
    /// attached yet; links pinned by a previous run stay in force.
    pub fn load(
        proxy: ProxyAddrs,
        instance: &Path,
    ) -> Result<(Self, ConnectionTable), InterceptError> {
        bpffs::ensure_mounted(instance)?;
        let lock = bpffs::InstanceLock::acquire(instance)?
            .ok_or_else(|| InterceptError::AgentRunning(instance.to_owned()))?;
        let layout = Layout::new(instance, programs_version());
        bpffs::create_dir(&layout.maps_dir())?;
        bpffs::create_dir(&layout.links_dir())?;

        let map_paths: Vec<(&str, PathBuf)> =
            ALL_MAPS.iter().map(|m| (*m, layout.map(m))).collect();
        let mut loader = EbpfLoader::new();
        for (name, path) in &map_paths {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(PROGRAMS_OBJECT)?;
        for name in SOCK_ADDR_PROGRAMS {
            sock_addr_program(&mut ebpf, name)?
                .load()
                .map_err(|source| InterceptError::Program { name, source })?;
        }
        sock_ops_program(&mut ebpf)?
            .load()
            .map_err(|source| InterceptError::Program {
                name: SOCK_OPS_PROGRAM,
                source,
            })?;

        let mut proxy_map: Array<_, ProxyAddrs> = Array::try_from(
            ebpf.map_mut(MAP_PROXY)
                .ok_or(InterceptError::MissingMap(MAP_PROXY))?,
        )
        .map_err(map_err(MAP_PROXY))?;
        proxy_map.set(0, proxy, 0).map_err(map_err(MAP_PROXY))?;

        let targets = typed_map(&mut ebpf, MAP_TARGETS)?;
        let scope = typed_map(&mut ebpf, MAP_CGROUPS)?;
        let listeners = typed_map(&mut ebpf, MAP_LISTENERS)?;
        let local_addrs = typed_map(&mut ebpf, MAP_LOCAL_ADDRS)?;
        let local_ports = typed_map(&mut ebpf, MAP_LOCAL_PORTS)?;
        let mut connections = ConnectionTable {
            map: typed_map(&mut ebpf, MAP_CONNECTIONS)?,
        };
        // No listener is registered (a previous agent's closed with it): nothing redirected
        // can be pending.
        connections.clear().map_err(map_err(MAP_CONNECTIONS))?;
        let mut interceptor = Self {
            ebpf,
            layout,
            _lock: lock,
            targets,
            scope,
            listeners,
            local_addrs,
            local_ports,
            wanted_targets: BTreeMap::new(),
            attached: BTreeSet::new(),
        };
        interceptor.refresh_local_addresses()?;
        Ok((interceptor, connections))
    }

    /// The pin directory of this instance.
    pub fn instance_dir(&self) -> &Path {
        &self.layout.instance
    }

    /// Makes the protected destinations exactly `wanted` (and the local ports derived from
    /// them).
    pub fn set_targets(&mut self, wanted: &BTreeMap<SockAddr, u32>) -> Result<(), InterceptError> {
        self.wanted_targets = wanted.clone();
        // Local ports first: a new local target never has a moment without its alias guard.
        let host: BTreeSet<SockAddr> = self.local_addrs.keys().filter_map(Result::ok).collect();
        sync_map(&mut self.local_ports, &local::local_ports(wanted, &host))
            .map_err(map_err(MAP_LOCAL_PORTS))?;
        sync_map(&mut self.targets, wanted).map_err(map_err(MAP_TARGETS))
    }

    /// Re-reads this host's addresses into `LOCAL_ADDRS` (and the local ports that depend on
    /// them). Called at every scope refresh: a new address is covered within one rescan.
    pub fn refresh_local_addresses(&mut self) -> Result<(), InterceptError> {
        let host = local::host_addresses().map_err(InterceptError::HostAddresses)?;
        let wanted: BTreeMap<SockAddr, u32> = host.iter().map(|a| (*a, 1)).collect();
        sync_map(&mut self.local_addrs, &wanted).map_err(map_err(MAP_LOCAL_ADDRS))?;
        sync_map(
            &mut self.local_ports,
            &local::local_ports(&self.wanted_targets, &host),
        )
        .map_err(map_err(MAP_LOCAL_PORTS))
    }

    /// Makes the interception scope exactly `wanted` (cgroup id -> `CGROUP_*` kind).
    pub fn set_scope(&mut self, wanted: &BTreeMap<u64, u32>) -> Result<(), InterceptError> {
        sync_map(&mut self.scope, wanted).map_err(map_err(MAP_CGROUPS))
    }

    /// Registers the proxy's listening sockets (IPv4, IPv6): from now on in-scope connects to
    /// targets are redirected to them. The kernel unregisters a socket when it closes.
    pub fn serve_on<L: AsRawFd>(&mut self, v4: &L, v6: &L) -> Result<(), InterceptError> {
        self.listeners
            .set(LISTENER_V4, v4, 0)
            .map_err(map_err(MAP_LISTENERS))?;
        self.listeners
            .set(LISTENER_V6, v6, 0)
            .map_err(map_err(MAP_LISTENERS))
    }

    /// Unregisters the proxy's listeners: in-scope connects to targets are refused from now on.
    pub fn stop_serving(&mut self) {
        for index in [LISTENER_V4, LISTENER_V6] {
            // Absent already (the socket closed): nothing to do.
            let _ = self.listeners.clear_index(&index);
        }
    }

    /// Attaches every program to the cgroup directory `dir` (id `cgroup_id`), or adopts the
    /// links a previous run pinned there (no moment without programs).
    pub fn attach(&mut self, dir: &Path, cgroup_id: u64) -> Result<Attachment, InterceptError> {
        let path = dir.display().to_string();
        let mut cgroup: Option<File> = None;
        bpffs::create_dir(&self.layout.link_dir(cgroup_id))?;
        let mut links = Vec::with_capacity(ALL_PROGRAMS.len());
        for name in ALL_PROGRAMS {
            let pin = self.layout.link(cgroup_id, name);
            if pin.exists() {
                match PinnedLink::from_pin(&pin) {
                    Ok(link) => {
                        links.push(link);
                        continue;
                    }
                    Err(err) => {
                        tracing::warn!(pin = %pin.display(), %err, "unusable pin: replaced");
                    }
                }
            }
            let cgroup =
                match &cgroup {
                    Some(f) => f,
                    None => cgroup.insert(File::open(dir).map_err(|source| {
                        InterceptError::OpenCgroup {
                            path: path.clone(),
                            source,
                        }
                    })?),
                };
            let link = self.attach_one(name, cgroup, &path)?;
            let _ = std::fs::remove_file(&pin);
            let pinned = link.pin(&pin).map_err(|e| InterceptError::Pin {
                path: pin.clone(),
                message: e.to_string(),
            })?;
            links.push(pinned);
        }
        self.attached.insert(cgroup_id);
        Ok(Attachment { cgroup_id, links })
    }

    fn attach_one(
        &mut self,
        name: &'static str,
        cgroup: &File,
        path: &str,
    ) -> Result<FdLink, InterceptError> {
        let attach_err = |source| InterceptError::Attach {
            program: name,
            path: path.to_owned(),
            source,
        };
        let link_err = |source: LinkError| InterceptError::Link {
            program: name,
            source,
        };
        if name == SOCK_OPS_PROGRAM {
            let prog = sock_ops_program(&mut self.ebpf)?;
            let id = prog
                .attach(cgroup, CgroupAttachMode::Single)
                .map_err(attach_err)?;
            FdLink::try_from(prog.take_link(id).map_err(attach_err)?).map_err(link_err)
        } else {
            let prog = sock_addr_program(&mut self.ebpf, name)?;
            let id = prog
                .attach(cgroup, CgroupAttachMode::Single)
                .map_err(attach_err)?;
            FdLink::try_from(prog.take_link(id).map_err(attach_err)?).map_err(link_err)
        }
    }

    /// Detaches the programs of an attachment: its pins are removed, then its links closed.
    pub fn detach(&mut self, attachment: Attachment) -> Result<(), InterceptError> {
        self.attached.remove(&attachment.cgroup_id);
        for link in attachment.links {
            if let Err(err) = link.unpin() {
                tracing::warn!(%err, "cannot remove a link pin");
            }
        }
        let _ = std::fs::remove_dir(self.layout.link_dir(attachment.cgroup_id));
        Ok(())
    }

    /// Removes the pinned links this agent does not hold (another version's, after this one's
    /// are attached; cgroups no longer attach points), and the other versions' maps once their
    /// links are gone.
    pub fn retire_stale(&mut self) -> Result<(), InterceptError> {
        let found = bpffs::pinned_sets(&self.layout.instance)?;
        let retire = pins::to_retire(&found, &self.layout.version, &self.attached);
        for set in &retire {
            let dir = Layout::new(&self.layout.instance, &set.version).link_dir(set.cgroup_id);
            tracing::info!(pins = %dir.display(), "retiring stale pinned links");
            bpffs::remove_tree(&dir)?;
        }
        let remaining: Vec<PinnedSet> = found.into_iter().filter(|s| !retire.contains(s)).collect();
        let versions = bpffs::version_dirs(&self.layout.instance)?;
        for version in pins::versions_to_remove(&versions, &self.layout.version, &remaining) {
            tracing::info!(%version, "removing the pins of a previous program version");
            bpffs::remove_tree(&self.layout.instance.join(version))?;
        }
        Ok(())
    }
}

/// Removes everything an agent pinned in `instance`: links first (detaching the programs), then
/// maps. Refused while an agent holds the directory, unless `force` (a running agent's own
/// handles then keep its links until it exits). Idempotent: nothing pinned is not an error.
pub fn uninstall(instance: &Path, force: bool) -> Result<UninstallReport, InterceptError> {
    bpffs::uninstall(instance, force)
}

fn sock_addr_program<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut CgroupSockAddr, InterceptError> {
    ebpf.program_mut(name)
        .ok_or(InterceptError::MissingProgram(name))?
        .try_into()
        .map_err(|_| InterceptError::MissingProgram(name))
}

fn sock_ops_program(ebpf: &mut Ebpf) -> Result<&mut SockOps, InterceptError> {
    ebpf.program_mut(SOCK_OPS_PROGRAM)
        .ok_or(InterceptError::MissingProgram(SOCK_OPS_PROGRAM))?
        .try_into()
        .map_err(|_| InterceptError::MissingProgram(SOCK_OPS_PROGRAM))
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, InterceptError> {
    ebpf.take_map(name).ok_or(InterceptError::MissingMap(name))
}

fn sync_map<K, V>(map: &mut HashMap<MapData, K, V>, wanted: &BTreeMap<K, V>) -> Result<(), MapError>
where
    K: aya::Pod + Ord,
    V: aya::Pod + PartialEq,
{
    let stale: Vec<K> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|k| !wanted.contains_key(k))
        .collect();
    for (k, v) in wanted {
        if map.get(k, 0).ok().as_ref() != Some(v) {
            map.insert(k, v, 0)?;
        }
    }
    for k in stale {
        map.remove(&k)?;
    }
    Ok(())
}

/// Why the proxy has no usable record for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unrecorded {
    #[error("no interception record for this connection")]
    Missing,
    #[error("the interception record of this client address is {age_ms} ms old (at most {} ms)", MAX_RECORD_AGE_NS / 1_000_000)]
    Stale { age_ms: u64 },
}

impl Unrecorded {
    /// The short code of the refusal in audit events.
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "unrecorded",
            Self::Stale { .. } => "stale-record",
        }
    }
}

/// Whether a record filed at `connected_ns` may still be used at `now_ns` (both
/// `CLOCK_MONOTONIC`).
fn check_age(connected_ns: u64, now_ns: u64) -> Result<(), Unrecorded> {
    let age = now_ns.saturating_sub(connected_ns);
    if connected_ns == 0 || age > MAX_RECORD_AGE_NS {
        return Err(Unrecorded::Stale {
            age_ms: age / 1_000_000,
        });
    }
    Ok(())
}

/// The kernel's records of redirected connections, as the proxy consumes them.
pub struct ConnectionTable {
    map: HashMap<MapData, SockAddr, ConnInfo>,
}

impl ConnectionTable {
    /// Takes the record of the connection whose client end is `client`. A record is used once,
    /// and only while fresh.
    pub fn take(&mut self, client: SockAddr) -> Result<ConnInfo, Unrecorded> {
        let info = self.map.get(&client, 0).map_err(|_| Unrecorded::Missing)?;
        // A failed delete only leaves the entry to the LRU; the record itself is valid.
        let _ = self.map.remove(&client);
        check_age(info.connected_ns, monotonic_ns())?;
        Ok(info)
    }

    /// Drops every record: called before the proxy serves, when records left by a previous
    /// agent can only belong to connections its closed listener reset.
    fn clear(&mut self) -> Result<(), MapError> {
        let keys: Vec<SockAddr> = self.map.keys().filter_map(Result::ok).collect();
        for key in keys {
            self.map.remove(&key)?;
        }
        Ok(())
    }
}

/// `CLOCK_MONOTONIC` in ns: the clock of `bpf_ktime_get_ns`.
fn monotonic_ns() -> u64 {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available");
    u64::try_from(now.tv_sec()).unwrap_or(0) * 1_000_000_000
        + u64::try_from(now.tv_nsec()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_usable_only_while_fresh() {
        let filed = 5_000_000_000;
        assert_eq!(check_age(filed, filed), Ok(()));
        assert_eq!(check_age(filed, filed + MAX_RECORD_AGE_NS), Ok(()));
        assert_eq!(
            check_age(filed, filed + MAX_RECORD_AGE_NS + 1_000_000),
            Err(Unrecorded::Stale { age_ms: 10_001 })
        );
        // Never re-keyed at connect: not a record the proxy may use.
        assert!(check_age(0, filed).is_err());
    }

    #[test]
    fn embedded_object_declares_every_shared_map() {
        let obj = aya_obj::Object::parse(PROGRAMS_OBJECT).expect("valid eBPF object");
        for name in ALL_MAPS {
            assert!(obj.maps.contains_key(name), "map {name} missing");
        }
        for name in ALL_PROGRAMS {
            assert!(obj.programs.contains_key(name), "program {name} missing");
        }
        assert!(SOCK_ADDR_PROGRAMS.iter().all(|p| ALL_PROGRAMS.contains(p)));
    }
}
