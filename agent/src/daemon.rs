//! `agent run`: wires the policy, the cgroup tree, the eBPF programs and the proxy together, keeps
//! the interception scope current as cgroups come and go, and cleans up on SIGTERM/SIGINT.

use std::{
    collections::{BTreeMap, HashMap},
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use agent_common::{ProxyAddrs, SockAddr};
use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
};

use crate::{
    audit::{self, AuditLog},
    cgroup::{self, Cgroup2, CgroupError},
    intercept::{Attachment, InterceptError, Interceptor},
    pg::{reaper, serve::PgShared, tls::TlsError},
    policy::PolicySet,
    proxy::{self, Proxy},
    scope,
};

/// How often the cgroup tree is rescanned for new or removed workload cgroups.
const RESCAN_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub listen_port: u16,
    /// Parent of the agent's cgroups (`<base>/jobs/<workload>/<job>`), relative to the mount.
    pub cgroup_base: String,
    pub audit_log: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Intercept(#[from] InterceptError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the audit log {path}: {source}")]
    Audit {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup base {0:?} must be a cgroup below the root, e.g. /chunk-agent")]
    BadBase(String),
    #[error("upstream TLS settings: {0}")]
    Tls(#[from] TlsError),
    #[error("signal handling: {0}")]
    Signal(std::io::Error),
}

/// The exec root of a cgroup base: where `agent exec` creates job cgroups.
pub fn exec_root(cgroup_base: &str) -> String {
    cgroup::join(cgroup_base, "jobs")
}

/// Keeps the kernel's scope and attachments equal to the plan for the current cgroup tree.
struct ScopeKeeper {
    interceptor: Interceptor,
    cgroups: Cgroup2,
    policy: Arc<PolicySet>,
    exec_root: String,
    own_cgroup: Option<String>,
    attached: HashMap<String, (u64, Attachment)>,
}

impl ScopeKeeper {
    fn refresh(&mut self) -> Result<(), InterceptError> {
        let tree = self.cgroups.walk("/");
        let plan = scope::plan(
            &self.policy,
            &self.exec_root,
            &tree,
            self.own_cgroup.as_deref(),
        );
        let ids: HashMap<&str, u64> = tree.iter().map(|(p, id)| (p.as_str(), *id)).collect();
        // Entries first, so a new attach point never runs with a stale classification.
        self.interceptor.set_scope(&plan.entries)?;
        // A cgroup removed and re-created under the same name has a new id: re-attach.
        self.attached.retain(|path, (id, _)| {
            plan.attach.contains(path) && ids.get(path.as_str()) == Some(id)
        });
        for path in &plan.attach {
            if self.attached.contains_key(path) {
                continue;
            }
            let Some(id) = ids.get(path.as_str()) else {
                continue;
            };
            let attachment = self.interceptor.attach(&self.cgroups.dir(path))?;
            tracing::info!(cgroup = %path, "attached");
            self.attached.insert(path.clone(), (*id, attachment));
        }
        Ok(())
    }
}

/// Runs the agent until SIGTERM or SIGINT.
pub async fn run(policy: PolicySet, config: RunConfig) -> Result<(), RunError> {
    if config.cgroup_base == "/" {
        return Err(RunError::BadBase(config.cgroup_base));
    }
    cgroup::validate_path(&config.cgroup_base)?;
    let audit = Arc::new(
        AuditLog::open(&config.audit_log).map_err(|source| RunError::Audit {
            path: config.audit_log.clone(),
            source,
        })?,
    );
    let cgroups = Cgroup2::discover()?;
    let exec_root = exec_root(&config.cgroup_base);
    for workload in &policy.workloads {
        cgroups.create(&cgroup::join(&exec_root, &workload.name))?;
    }

    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, config.listen_port));
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, config.listen_port));
    let mut listeners = Vec::new();
    for addr in [v4, v6] {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| RunError::Listen { addr, source })?;
        listeners.push(listener);
    }

    // Upstream TLS settings are checked before anything is attached.
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown-host".to_owned());
    let pg = Arc::new(PgShared::new(&policy, host)?);
    let (mut interceptor, connections) = Interceptor::load(ProxyAddrs {
        v4: proxy::sock_addr(v4),
        v6: proxy::sock_addr(v6),
    })?;
    let targets: BTreeMap<SockAddr, u32> = policy
        .targets
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            t.addresses
                .iter()
                .map(move |a| (proxy::sock_addr(*a), i as u32))
        })
        .collect();
    interceptor.set_targets(&targets)?;

    let policy = Arc::new(policy);
    let own_cgroup = cgroups.of_process(std::process::id()).ok();
    let mut keeper = ScopeKeeper {
        interceptor,
        cgroups: cgroups.clone(),
        policy: Arc::clone(&policy),
        exec_root: exec_root.clone(),
        own_cgroup,
        attached: HashMap::new(),
    };
    keeper.refresh()?;

    let reaper = tokio::spawn(reaper::run(
        Arc::clone(&pg),
        Arc::clone(&policy),
        Arc::clone(&audit),
    ));
    let proxy = Arc::new(Proxy::new(
        Arc::clone(&policy),
        exec_root.clone(),
        cgroups.clone(),
        connections,
        Arc::clone(&audit),
        pg,
    ));
    let mut servers = Vec::new();
    for listener in listeners {
        servers.push(tokio::spawn(Arc::clone(&proxy).serve(listener)));
    }
    let pid = std::process::id();
    audit.emit(audit::agent_started(
        pid,
        &[v4, v6],
        policy.workloads.len(),
        policy.targets.len(),
    ));
    tracing::info!(%v4, %v6, policy = %policy.summary(), "agent started");

    let mut term = signal(SignalKind::terminate()).map_err(RunError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(RunError::Signal)?;
    let mut tick = tokio::time::interval(RESCAN_INTERVAL);
    let reason = loop {
        tokio::select! {
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
            _ = tick.tick() => {
                let refreshed = tokio::task::block_in_place(|| keeper.refresh());
                if let Err(err) = refreshed {
                    tracing::error!(%err, "scope refresh failed");
                    audit.emit(audit::agent_error(&format!("scope refresh: {err}")));
                }
            }
        }
    };

    tracing::info!(reason, "stopping");
    for server in servers {
        server.abort();
    }
    reaper.abort();
    drop(keeper);
    for workload in &policy.workloads {
        // Busy (a job still runs there) is fine: it stays until its job ends.
        let _ = cgroups.remove(&cgroup::join(&exec_root, &workload.name));
    }
    let _ = cgroups.remove(&exec_root);
    let _ = cgroups.remove(&config.cgroup_base);
    audit.emit(audit::agent_stopped(pid, reason));
    audit.close();
    Ok(())
}
