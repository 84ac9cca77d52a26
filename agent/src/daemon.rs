//! `agent run`: wires the policy, the cgroup tree, the eBPF programs and the proxy together, keeps
//! the interception scope current as cgroups come and go, and cleans up on SIGTERM/SIGINT.

use std::{
    collections::{BTreeMap, HashMap},
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
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
    pg::{
        cancel::CancelRegistry,
        reaper,
        recording::Recording,
        serve::{PgSetupError, PgShared},
    },
    policy::{PolicySet, Protocol},
    proxy::{self, Generation, Proxy},
    scope,
};

/// How often the cgroup tree is rescanned for new or removed workload cgroups.
const RESCAN_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The policy directory, reloaded on SIGHUP and when its files change.
    pub policies: PathBuf,
    pub listen_port: u16,
    /// Parent of the agent's cgroups (`<base>/jobs/<workload>/<job>`), relative to the mount.
    pub cgroup_base: String,
    /// Pin directory on bpffs; `None`: `/sys/fs/bpf/chunk-agent<cgroup_base>`.
    pub bpffs_dir: Option<PathBuf>,
    pub audit: crate::audit::sink::AuditConfig,
    pub recording: RecordingSettings,
    /// The approval service (API address, approver authentication, webhook).
    pub approval: crate::approval::ApprovalConfig,
}

/// Session recording: where, how big, what happens when a write fails, how long kept.
#[derive(Debug, Clone)]
pub struct RecordingSettings {
    pub data_dir: PathBuf,
    pub limits: crate::record::Limits,
    pub on_error: crate::record::OnError,
    pub retention: crate::record::retention::Retention,
}

/// How often recording retention is enforced.
const RETENTION_INTERVAL: Duration = Duration::from_secs(300);

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
    #[error("cannot prepare the session recording directory in {path}: {source}")]
    Recording {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("upstream TLS settings: {0}")]
    PgSetup(#[from] PgSetupError),
    #[error("signal handling: {0}")]
    Signal(std::io::Error),
    #[error("approval service: {0}")]
    Approval(#[from] crate::approval::StartError),
}

/// The exec root of a cgroup base: where `agent exec` creates job cgroups.
pub fn exec_root(cgroup_base: &str) -> String {
    cgroup::join(cgroup_base, "jobs")
}

/// The protected destinations of a policy set, as the kernel's target map holds them.
fn target_map(policy: &PolicySet) -> BTreeMap<SockAddr, u32> {
    policy
        .targets
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            t.addresses
                .iter()
                .map(move |a| (proxy::sock_addr(*a), i as u32))
        })
        .collect()
}

/// Reports (log and audit) each unix socket of a protected local PostgreSQL server that
/// workload processes can reach: the route the programs do not cover.
fn report_open_unix_sockets(policy: &PolicySet, audit: &AuditLog) {
    let host = crate::intercept::local::host_addresses().unwrap_or_default();
    let postgres: BTreeMap<SockAddr, u32> = target_map(policy)
        .into_iter()
        .filter(|(_, i)| policy.targets[*i as usize].protocol == Protocol::Postgres)
        .collect();
    let ports: BTreeMap<u16, String> = crate::intercept::local::local_ports(&postgres, &host)
        .into_iter()
        .filter_map(|(port, i)| {
            Some((
                u16::try_from(port).ok()?,
                policy.targets[i as usize].name.clone(),
            ))
        })
        .collect();
    match crate::intercept::unix::find_open(&ports) {
        Ok(open) => {
            for socket in open {
                tracing::warn!(
                    path = %socket.path.display(), target = %socket.target, reach = %socket.reach,
                    "a protected local server's unix socket bypasses the agent"
                );
                audit.emit(audit::bypass_route_open(&socket));
            }
        }
        Err(err) => {
            tracing::error!(%err, "cannot check the unix sockets of local targets");
            audit.emit(audit::agent_error(&format!("unix socket check: {err}")));
        }
    }
}

/// What identifies the state of a policy directory: its `*.toml` files with their size and
/// modification time. A change triggers a reload.
fn policy_dir_signature(dir: &Path) -> Vec<(String, u64, Option<SystemTime>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                meta.len(),
                meta.modified().ok(),
            ))
        })
        .collect();
    files.sort();
    files
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
        self.interceptor.refresh_local_addresses()?;
        // Entries first, so a new attach point never runs with a stale classification.
        self.interceptor.set_scope(&plan.entries)?;
        // A cgroup removed and re-created under the same name has a new id: re-attach.
        let stale: Vec<String> = self
            .attached
            .iter()
            .filter(|(path, (id, _))| {
                !(plan.attach.contains(*path) && ids.get(path.as_str()) == Some(id))
            })
            .map(|(path, _)| path.clone())
            .collect();
        for path in stale {
            if let Some((_, attachment)) = self.attached.remove(&path) {
                self.interceptor.detach(attachment)?;
            }
        }
        for path in &plan.attach {
            if self.attached.contains_key(path) {
                continue;
            }
            let Some(id) = ids.get(path.as_str()) else {
                continue;
            };
            let attachment = self.interceptor.attach(&self.cgroups.dir(path), *id)?;
            tracing::info!(cgroup = %path, "attached");
            self.attached.insert(path.clone(), (*id, attachment));
        }
        // After attaching: pins of an older program version give way to this one's.
        self.interceptor.retire_stale()
    }
}

/// Deletes old recordings (by age and total size) now and every [`RETENTION_INTERVAL`];
/// recordings of live sessions are never deleted.
async fn enforce_retention(
    recording: Arc<Recording>,
    retention: crate::record::retention::Retention,
    audit: Arc<AuditLog>,
) {
    let mut tick = tokio::time::interval(RETENTION_INTERVAL);
    loop {
        tick.tick().await;
        let recording = Arc::clone(&recording);
        let result = tokio::task::spawn_blocking(move || {
            crate::record::retention::enforce(
                &recording.sessions_dir,
                &retention,
                SystemTime::now(),
                &|id| recording.is_open(id),
            )
        })
        .await;
        match result {
            Ok(Ok(deleted)) if !deleted.is_empty() => {
                tracing::info!(count = deleted.len(), "old session recordings deleted");
            }
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                tracing::error!(%err, "recording retention failed");
                audit.emit(audit::agent_error(&format!("recording retention: {err}")));
            }
            Err(err) => tracing::error!(%err, "recording retention task failed"),
        }
    }
}

/// Loads and prepares a new policy set; each error as `file:line:column: message`.
fn reload_policy(
    dir: &Path,
    host: &str,
    cancel: &CancelRegistry,
    recording: &Arc<Recording>,
    approvals: &crate::approval::ApprovalHub,
    exec_root: &str,
) -> Result<(PolicySet, Arc<PgShared>), Vec<String>> {
    let set = crate::policy::load_dir(dir)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let pg = PgShared::new(
        &set,
        host.to_owned(),
        cancel.clone(),
        Arc::clone(recording),
        approvals.clone(),
        exec_root,
    )
    .map_err(|e| vec![e.to_string()])?;
    Ok((set, Arc::new(pg)))
}

/// Each session holds three descriptors (client, upstream, recording): the default soft limit
/// of 1,024 would cap the agent near 330 sessions, so it is raised to the hard limit.
fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "open file limit raised"),
            Err(e) => tracing::warn!(error = %e, soft, "cannot raise the open file limit"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the open file limit"),
    }
}

/// Runs the agent until SIGTERM or SIGINT; SIGHUP, or a change in the policy directory, reloads
/// the policy (an invalid new set is refused and the previous one stays in force).
pub async fn run(policy: PolicySet, config: RunConfig) -> Result<(), RunError> {
    if config.cgroup_base == "/" {
        return Err(RunError::BadBase(config.cgroup_base));
    }
    cgroup::validate_path(&config.cgroup_base)?;
    raise_open_file_limit();
    let audit =
        Arc::new(
            AuditLog::open_config(&config.audit).map_err(|source| RunError::Audit {
                path: config.audit.log.clone().unwrap_or_default(),
                source,
            })?,
        );
    // Statements needing approval wait on `approvals.hub` (refused when no approver
    // authentication is configured).
    let mut approvals = crate::approval::start(
        config.approval.clone(),
        Arc::clone(&audit) as Arc<dyn crate::approval::Audit>,
        Arc::new(crate::approval::SystemClock),
    )
    .await?;
    let recording = Arc::new(
        Recording::prepare(
            &config.recording.data_dir,
            config.recording.limits,
            config.recording.on_error,
        )
        .map_err(|source| RunError::Recording {
            path: config.recording.data_dir.clone(),
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
    let cancel = CancelRegistry::default();
    let pg = Arc::new(PgShared::new(
        &policy,
        host.clone(),
        cancel.clone(),
        Arc::clone(&recording),
        approvals.hub.clone(),
        &exec_root,
    )?);
    let pin_dir = config
        .bpffs_dir
        .clone()
        .unwrap_or_else(|| crate::intercept::pins::default_instance_dir(&config.cgroup_base));
    let (mut interceptor, connections) = Interceptor::load(
        ProxyAddrs {
            v4: proxy::sock_addr(v4),
            v6: proxy::sock_addr(v6),
        },
        &pin_dir,
    )?;
    interceptor.set_targets(&target_map(&policy))?;

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

    let mut reaper = tokio::spawn(reaper::run(
        Arc::clone(&pg),
        Arc::clone(&policy),
        Arc::clone(&audit),
        true,
    ));
    let retention = tokio::spawn(enforce_retention(
        Arc::clone(&recording),
        config.recording.retention,
        Arc::clone(&audit),
    ));
    let proxy = Arc::new(Proxy::new(
        Generation {
            policy: Arc::clone(&policy),
            pg,
        },
        exec_root.clone(),
        cgroups.clone(),
        connections,
        Arc::clone(&audit),
    ));
    // From here on, in-scope connects to targets are redirected to these listeners (refused
    // while none is registered: fail closed).
    keeper.interceptor.serve_on(&listeners[0], &listeners[1])?;
    let mut servers = Vec::new();
    for listener in listeners {
        servers.push(tokio::spawn(Arc::clone(&proxy).serve(listener)));
    }
    report_open_unix_sockets(&policy, &audit);
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
    let mut hup = signal(SignalKind::hangup()).map_err(RunError::Signal)?;
    let mut tick = tokio::time::interval(RESCAN_INTERVAL);
    let mut signature = policy_dir_signature(&config.policies);
    let mut workloads: Vec<String> = policy.workloads.iter().map(|w| w.name.clone()).collect();
    let reason = loop {
        let reload = tokio::select! {
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
            _ = hup.recv() => Some("SIGHUP"),
            _ = tick.tick() => {
                let refreshed = tokio::task::block_in_place(|| keeper.refresh());
                if let Err(err) = refreshed {
                    tracing::error!(%err, "scope refresh failed");
                    audit.emit(audit::agent_error(&format!("scope refresh: {err}")));
                }
                let now = policy_dir_signature(&config.policies);
                (now != signature).then_some("policy files changed")
            }
        };
        let Some(trigger) = reload else {
            continue;
        };
        signature = policy_dir_signature(&config.policies);
        match reload_policy(
            &config.policies,
            &host,
            &cancel,
            &recording,
            &approvals.hub,
            &exec_root,
        ) {
            Ok((set, pg)) => {
                let set = Arc::new(set);
                for workload in &set.workloads {
                    if let Err(err) = cgroups.create(&cgroup::join(&exec_root, &workload.name)) {
                        tracing::error!(%err, "cannot create a workload's exec cgroup");
                    }
                }
                let applied = keeper
                    .interceptor
                    .set_targets(&target_map(&set))
                    .and_then(|()| {
                        keeper.policy = Arc::clone(&set);
                        tokio::task::block_in_place(|| keeper.refresh())
                    });
                if let Err(err) = applied {
                    tracing::error!(%err, "applying the reloaded policy to the kernel failed");
                    audit.emit(audit::agent_error(&format!("policy reload: {err}")));
                }
                proxy.replace_generation(Generation {
                    policy: Arc::clone(&set),
                    pg: Arc::clone(&pg),
                });
                reaper.abort();
                reaper = tokio::spawn(reaper::run(pg, Arc::clone(&set), Arc::clone(&audit), false));
                let now: Vec<String> = set.workloads.iter().map(|w| w.name.clone()).collect();
                for gone in workloads.iter().filter(|w| !now.contains(w)) {
                    let _ = cgroups.remove(&cgroup::join(&exec_root, gone));
                }
                workloads = now;
                report_open_unix_sockets(&set, &audit);
                tracing::info!(trigger, policy = %set.summary(), "policy reloaded");
                audit.emit(audit::policy_reloaded(trigger, &set.summary()));
            }
            Err(errors) => {
                for error in &errors {
                    tracing::error!("{error}");
                }
                tracing::error!(
                    trigger,
                    "the new policy set is invalid: the previous one stays in force"
                );
                audit.emit(audit::policy_reload_failed(trigger, &errors));
            }
        }
    };

    tracing::info!(reason, "stopping");
    // New connects from the scope are refused from now on; the pinned programs stay (fail
    // closed: `agent uninstall` removes them).
    keeper.interceptor.stop_serving();
    for server in servers {
        server.abort();
    }
    reaper.abort();
    retention.abort();
    approvals.stop();
    drop(keeper);
    for workload in &workloads {
        // Busy (a job still runs there) is fine: it stays until its job ends.
        let _ = cgroups.remove(&cgroup::join(&exec_root, workload));
    }
    let _ = cgroups.remove(&exec_root);
    let _ = cgroups.remove(&config.cgroup_base);
    audit.emit(audit::agent_stopped(pid, reason));
    audit.close();
    Ok(())
}
