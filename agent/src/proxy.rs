//! The local proxy: accepts the connections the kernel redirected, ties each to its process and
//! workload, and relays it to the original destination. Unknown or unmapped connections are
//! refused (closed), never relayed.

use std::{
    fs,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    task::Poll,
    time::Duration,
};

use agent_common::{ConnInfo, SockAddr};
use bytes::BytesMut;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
    time::timeout,
};

use crate::{
    audit::{self, AuditLog, Transfer},
    cgroup::Cgroup2,
    identity::{self, ConnectionFacts},
    intercept::ConnectionTable,
    pg::serve::{self as pg_serve, PgShared},
    policy::{PolicySet, Protocol},
};

/// How long the agent waits for the original destination to accept.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes one read takes from a socket.
const RELAY_BUFFER: usize = 16 * 1024;

/// A policy set and what is derived from it. Replaced whole on a reload; a connection keeps
/// the generation it was accepted under.
pub struct Generation {
    pub policy: Arc<PolicySet>,
    pub pg: Arc<PgShared>,
}

/// What every connection handler shares.
pub struct Proxy {
    current: RwLock<Arc<Generation>>,
    pub exec_root: String,
    pub cgroups: Cgroup2,
    pub connections: Mutex<ConnectionTable>,
    pub audit: Arc<AuditLog>,
    next_id: AtomicU64,
}

impl Proxy {
    pub fn new(
        generation: Generation,
        exec_root: String,
        cgroups: Cgroup2,
        connections: ConnectionTable,
        audit: Arc<AuditLog>,
    ) -> Self {
        Self {
            current: RwLock::new(Arc::new(generation)),
            exec_root,
            cgroups,
            connections: Mutex::new(connections),
            audit,
            next_id: AtomicU64::new(1),
        }
    }

    /// Puts a new policy generation in force for connections accepted from now on.
    pub fn replace_generation(&self, generation: Generation) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(generation);
    }

    fn generation(&self) -> Arc<Generation> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Accepts on `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((client, peer)) => {
                    let proxy = Arc::clone(&self);
                    tokio::spawn(async move { proxy.handle(client, peer).await });
                }
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn handle(self: Arc<Self>, mut client: TcpStream, peer: SocketAddr) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let taken = self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(sock_addr(peer));
        let record = match taken {
            Ok(record) => record,
            Err(unrecorded) => {
                tracing::warn!(%peer, reason = %unrecorded, "refused");
                self.audit
                    .emit(audit::connection_unrecorded(id, peer, unrecorded));
                return;
            }
        };
        let cgroups = self.cgroups.clone();
        let facts = match tokio::task::spawn_blocking(move || gather_facts(&cgroups, peer, &record))
            .await
        {
            Ok(facts) => facts,
            Err(err) => {
                tracing::error!(%err, "fact gathering panicked");
                return;
            }
        };
        let generation = self.generation();
        let identity = match identity::resolve(&generation.policy, &self.exec_root, &facts) {
            Ok(identity) => identity,
            Err(refusal) => {
                tracing::info!(%peer, pid = facts.pid, reason = %refusal, "refused");
                self.audit.emit(audit::connection_refused(
                    id,
                    &facts,
                    refusal.code(),
                    &refusal.to_string(),
                ));
                if protocol_at(&generation.policy, facts.original_destination)
                    == Some(Protocol::Postgres)
                {
                    pg_serve::refuse(client, &generation.pg.caps, &refusal.to_string()).await;
                }
                return;
            }
        };
        tracing::info!(
            %peer, pid = facts.pid, workload = %identity.workload, target = %identity.target,
            "accepted"
        );
        self.audit
            .emit(audit::connection_accepted(id, &facts, &identity));
        let target = &generation.policy.targets[identity.target_index];
        let (transfer, error) = match target.protocol {
            Protocol::Tcp => relay(&mut client, facts.original_destination).await,
            // Boxed: a PostgreSQL session's state machine is about ten times the size of the
            // TCP relay's, and an unboxed one would size every connection's task for it.
            Protocol::Postgres => {
                Box::pin(pg_serve::serve(
                    Arc::clone(&generation.pg),
                    Arc::clone(&self.audit),
                    client,
                    id,
                    &facts,
                    &identity,
                    target,
                ))
                .await
            }
        };
        self.audit.emit(audit::connection_closed(
            id,
            &facts,
            Some(&identity.workload),
            transfer,
            error.as_deref(),
        ));
    }
}

fn protocol_at(policy: &PolicySet, destination: SocketAddr) -> Option<Protocol> {
    policy
        .target_index_by_addr(destination)
        .map(|i| policy.targets[i].protocol)
}

/// Connects to `destination` and copies both ways until both sides are done, or until either
/// fails (then both are dropped, so neither peer hangs on a half-dead relay).
async fn relay(client: &mut TcpStream, destination: SocketAddr) -> (Transfer, Option<String>) {
    let mut upstream =
        match timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(destination)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => {
                return (
                    Transfer::default(),
                    Some(format!("upstream {destination}: connect: {err}")),
                );
            }
            Err(_) => {
                return (
                    Transfer::default(),
                    Some(format!("upstream {destination}: connect timed out")),
                );
            }
        };
    let _ = upstream.set_nodelay(true);
    let _ = client.set_nodelay(true);
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    let up = AtomicU64::new(0);
    let down = AtomicU64::new(0);
    let c2s = pipe(client_read, upstream_write, &up);
    let s2c = pipe(upstream_read, client_write, &down);
    tokio::pin!(c2s, s2c);
    let (mut c2s_done, mut s2c_done) = (false, false);
    let error = loop {
        tokio::select! {
            r = &mut c2s, if !c2s_done => match r {
                Ok(()) => c2s_done = true,
                Err(err) => break Some(format!("client side: {err}")),
            },
            r = &mut s2c, if !s2c_done => match r {
                Ok(()) => s2c_done = true,
                Err(err) => break Some(format!("upstream side: {err}")),
            },
        }
        if c2s_done && s2c_done {
            break None;
        }
    };
    let transfer = Transfer {
        client_to_server: up.load(Ordering::Relaxed),
        server_to_client: down.load(Ordering::Relaxed),
    };
    (transfer, error)
}

/// Copies until end of stream, then shuts the writer down; counts what it copied. Holds no
/// buffer while waiting (see [`read_some`]).
async fn pipe(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    copied: &AtomicU64,
) -> std::io::Result<()> {
    loop {
        let mut buf = BytesMut::new();
        let n = read_some(&mut from, &mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf).await?;
        copied.fetch_add(n as u64, Ordering::Relaxed);
    }
}

thread_local! {
    /// What each runtime thread reads sockets into before the bytes go to the connection's own
    /// buffer: a connection waiting for data then holds no buffer at all.
    static READ_SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; RELAY_BUFFER].into_boxed_slice());
}

/// Reads what `from` has (up to [`RELAY_BUFFER`] bytes) and appends it to `buf`; `Ok(0)` at the
/// end of the stream. The read goes through the thread's scratch buffer, so `buf` needs no
/// room while the connection waits: it grows only by what arrived.
pub(crate) async fn read_some(
    from: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
) -> std::io::Result<usize> {
    std::future::poll_fn(|cx| {
        READ_SCRATCH.with_borrow_mut(|scratch| {
            let mut read = ReadBuf::new(scratch);
            match Pin::new(&mut *from).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    buf.extend_from_slice(read.filled());
                    Poll::Ready(Ok(read.filled().len()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
    })
    .await
}

/// The map key of a peer address: IPv4 as IPv4-mapped IPv6.
pub fn sock_addr(addr: SocketAddr) -> SockAddr {
    match addr.ip() {
        IpAddr::V4(v4) => SockAddr::from_ipv4(v4.octets(), addr.port()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SockAddr::from_ipv4(v4.octets(), addr.port()),
            None => SockAddr::new(v6.octets(), addr.port()),
        },
    }
}

/// The socket address of a map value.
pub fn socket_addr(addr: &SockAddr) -> SocketAddr {
    match addr.ipv4() {
        Some(v4) => SocketAddr::from((v4, addr.port)),
        None => SocketAddr::from((addr.addr, addr.port)),
    }
}

/// Completes the kernel's record with what /proc and the cgroup tree say (blocking I/O).
fn gather_facts(cgroups: &Cgroup2, client: SocketAddr, record: &ConnInfo) -> ConnectionFacts {
    let hint = cgroups.of_process(record.pid).ok();
    let executable = fs::read_link(format!("/proc/{}/exe", record.pid))
        .ok()
        .map(|p| p.display().to_string());
    let comm_len = record.comm.iter().position(|b| *b == 0).unwrap_or(16);
    ConnectionFacts {
        client,
        original_destination: socket_addr(&record.orig_dst),
        pid: record.pid,
        uid: record.uid,
        gid: record.gid,
        process_name: String::from_utf8_lossy(&record.comm[..comm_len]).into_owned(),
        executable,
        cgroup_id: record.cgroup_id,
        cgroup_path: cgroups.path_of_id(record.cgroup_id, hint.as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_addresses_map_to_the_kernel_key_form() {
        let v4: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:40000".parse().unwrap();
        assert_eq!(sock_addr(v4), sock_addr(mapped));
        assert_eq!(socket_addr(&sock_addr(v4)), v4);
        let v6: SocketAddr = "[::1]:5432".parse().unwrap();
        assert_eq!(socket_addr(&sock_addr(v6)), v6);
    }
}
