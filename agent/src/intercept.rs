//! eBPF adapter: loads the programs of `agent-ebpf`, fills their maps and attaches them to cgroups.
//!
//! Maps (see `agent_common` for the layouts):
//! - `TARGETS`: protected addresses -> target index. Replaced wholesale from the policy set.
//! - `CGROUPS`: interception scope, cgroup id -> kind. Kept current by the agent's cgroup watch.
//! - `PROXY`: the proxy's listening addresses; set once, before anything is attached.
//! - `SOCKETS`: kernel-only bookkeeping (by socket cookie).
//! - `CONNECTIONS`: the record of each redirected connection, by client address; the proxy
//!   takes (reads and deletes) its entry when it accepts the connection.
//!
//! Programs are attached with bpf links, one set per attach cgroup; dropping an [`Attachment`]
//! detaches it, and links also go away when the agent exits. Link attachments always coexist
//! with other programs on the same cgroup; the kernel refuses explicit attach flags on them, hence
//! `CgroupAttachMode::Single` (flags 0).

use std::{collections::BTreeMap, fs::File, path::Path};

use agent_common::{
    ConnInfo, MAP_CGROUPS, MAP_CONNECTIONS, MAP_PROXY, MAP_TARGETS, ProxyAddrs, SockAddr,
};
use aya::{
    Ebpf, EbpfError,
    maps::{Array, HashMap, MapData, MapError},
    programs::{
        CgroupAttachMode, CgroupSockAddr, ProgramError, SockOps,
        cgroup_sock_addr::CgroupSockAddrLink, sock_ops::SockOpsLink,
    },
};

/// The eBPF object built by `agent/build.rs`.
static PROGRAMS_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/agent-ebpf"));

/// The cgroup/sock_addr programs, by name in the object.
const SOCK_ADDR_PROGRAMS: [&str; 4] = ["connect4", "connect6", "getpeername4", "getpeername6"];
const SOCK_OPS_PROGRAM: &str = "sock_ops_connect";

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
}

/// The links of the programs attached to one cgroup. Dropping it detaches them.
pub struct Attachment {
    _sock_addr: Vec<CgroupSockAddrLink>,
    _sock_ops: SockOpsLink,
}

/// Loaded programs and the maps the agent writes.
pub struct Interceptor {
    ebpf: Ebpf,
    targets: HashMap<MapData, SockAddr, u32>,
    scope: HashMap<MapData, u64, u32>,
}

fn map_err(name: &'static str) -> impl FnOnce(MapError) -> InterceptError {
    move |source| InterceptError::Map { name, source }
}

impl Interceptor {
    /// Loads and verifies the programs and points them at the proxy. Nothing is attached yet.
    pub fn load(proxy: ProxyAddrs) -> Result<(Self, ConnectionTable), InterceptError> {
        let mut ebpf = Ebpf::load(PROGRAMS_OBJECT)?;
        for name in SOCK_ADDR_PROGRAMS {
            let prog: &mut CgroupSockAddr = ebpf
                .program_mut(name)
                .ok_or(InterceptError::MissingProgram(name))?
                .try_into()
                .map_err(|_| InterceptError::MissingProgram(name))?;
            prog.load()
                .map_err(|source| InterceptError::Program { name, source })?;
        }
        let ops: &mut SockOps = ebpf
            .program_mut(SOCK_OPS_PROGRAM)
            .ok_or(InterceptError::MissingProgram(SOCK_OPS_PROGRAM))?
            .try_into()
            .map_err(|_| InterceptError::MissingProgram(SOCK_OPS_PROGRAM))?;
        ops.load().map_err(|source| InterceptError::Program {
            name: SOCK_OPS_PROGRAM,
            source,
        })?;

        let mut proxy_map: Array<_, ProxyAddrs> = Array::try_from(
            ebpf.map_mut(MAP_PROXY)
                .ok_or(InterceptError::MissingMap(MAP_PROXY))?,
        )
        .map_err(map_err(MAP_PROXY))?;
        proxy_map.set(0, proxy, 0).map_err(map_err(MAP_PROXY))?;

        let targets =
            HashMap::try_from(take_map(&mut ebpf, MAP_TARGETS)?).map_err(map_err(MAP_TARGETS))?;
        let scope =
            HashMap::try_from(take_map(&mut ebpf, MAP_CGROUPS)?).map_err(map_err(MAP_CGROUPS))?;
        let connections = HashMap::try_from(take_map(&mut ebpf, MAP_CONNECTIONS)?)
            .map_err(map_err(MAP_CONNECTIONS))?;
        Ok((
            Self {
                ebpf,
                targets,
                scope,
            },
            ConnectionTable { map: connections },
        ))
    }

    /// Makes the protected destinations exactly `wanted`.
    pub fn set_targets(&mut self, wanted: &BTreeMap<SockAddr, u32>) -> Result<(), InterceptError> {
        sync_map(&mut self.targets, wanted).map_err(map_err(MAP_TARGETS))
    }

    /// Makes the interception scope exactly `wanted` (cgroup id -> `CGROUP_*` kind).
    pub fn set_scope(&mut self, wanted: &BTreeMap<u64, u32>) -> Result<(), InterceptError> {
        sync_map(&mut self.scope, wanted).map_err(map_err(MAP_CGROUPS))
    }

    /// Attaches every program to the cgroup directory `dir`.
    pub fn attach(&mut self, dir: &Path) -> Result<Attachment, InterceptError> {
        let path = dir.display().to_string();
        let cgroup = File::open(dir).map_err(|source| InterceptError::OpenCgroup {
            path: path.clone(),
            source,
        })?;
        let mut sock_addr = Vec::with_capacity(SOCK_ADDR_PROGRAMS.len());
        for name in SOCK_ADDR_PROGRAMS {
            let prog: &mut CgroupSockAddr = self
                .ebpf
                .program_mut(name)
                .ok_or(InterceptError::MissingProgram(name))?
                .try_into()
                .map_err(|_| InterceptError::MissingProgram(name))?;
            let attach_err = |source| InterceptError::Attach {
                program: name,
                path: path.clone(),
                source,
            };
            let id = prog
                .attach(&cgroup, CgroupAttachMode::Single)
                .map_err(attach_err)?;
            sock_addr.push(prog.take_link(id).map_err(attach_err)?);
        }
        let ops: &mut SockOps = self
            .ebpf
            .program_mut(SOCK_OPS_PROGRAM)
            .ok_or(InterceptError::MissingProgram(SOCK_OPS_PROGRAM))?
            .try_into()
            .map_err(|_| InterceptError::MissingProgram(SOCK_OPS_PROGRAM))?;
        let attach_err = |source| InterceptError::Attach {
            program: SOCK_OPS_PROGRAM,
            path: path.clone(),
            source,
        };
        let id = ops
            .attach(&cgroup, CgroupAttachMode::Single)
            .map_err(attach_err)?;
        let sock_ops = ops.take_link(id).map_err(attach_err)?;
        Ok(Attachment {
            _sock_addr: sock_addr,
            _sock_ops: sock_ops,
        })
    }
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

/// The kernel's records of redirected connections, as the proxy consumes them.
pub struct ConnectionTable {
    map: HashMap<MapData, SockAddr, ConnInfo>,
}

impl ConnectionTable {
    /// Takes the record of the connection whose client end is `client`.
    pub fn take(&mut self, client: SockAddr) -> Option<ConnInfo> {
        let info = self.map.get(&client, 0).ok()?;
        // A failed delete only leaves the entry to the LRU; the record itself is valid.
        let _ = self.map.remove(&client);
        Some(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_object_declares_every_shared_map() {
        let obj = aya_obj::Object::parse(PROGRAMS_OBJECT).expect("valid eBPF object");
        for name in [
            MAP_TARGETS,
            MAP_CGROUPS,
            MAP_PROXY,
            agent_common::MAP_SOCKETS,
            MAP_CONNECTIONS,
        ] {
            assert!(obj.maps.contains_key(name), "map {name} missing");
        }
        for name in SOCK_ADDR_PROGRAMS.iter().chain([&SOCK_OPS_PROGRAM]) {
            assert!(obj.programs.contains_key(*name), "program {name} missing");
        }
    }
}
