//! eBPF programs of the chunk agent.
//!
//! Attached by the agent to workload cgroups only (never to the cgroup root):
//! - `connect4` / `connect6` (cgroup/connect4, cgroup/connect6): a TCP connect from a task in the
//!   interception scope to a protected target is rewritten to the agent's local proxy; what the
//!   kernel knows of the caller (pid, uid, gid, cgroup, comm) is stored by socket cookie.
//! - `sock_ops_connect` (sock_ops): when the redirected socket gets its local port
//!   (TCP_CONNECT_CB, before the SYN leaves), the entry is re-keyed by the client's local address
//!   so the proxy can find it from `accept()`'s peer address, and stamped with the time. The
//!   proxy takes the entry when it accepts, even after the client closed (a cancel request is
//!   sent and closed at once); a connect that never completes drops it; the proxy refuses an
//!   entry older than `MAX_RECORD_AGE_NS`, so a stale one is never reused by another socket.
//! - `getpeername4` / `getpeername6`: the client sees the original destination as its peer.
//!
//! Scope (map `CGROUPS`): the programs walk the caller's cgroup ancestors; the deepest entry
//! decides: `CGROUP_EXCLUDE` never redirects (the agent's own cgroup), `CGROUP_SUBTREE` redirects
//! from the cgroup and below, `CGROUP_BELOW` only from strictly below. No entry: untouched.
//!
//! Failure policy (fail closed): a connection that should be intercepted is redirected only while
//! the proxy's listening socket is registered in `LISTENERS` (the kernel removes it when the
//! agent dies); otherwise it is refused with ECONNREFUSED. One that cannot be recorded is refused
//! (EPERM). Another local address of a protected local server on its port is refused (EPERM).
//! Nothing in the scope is ever let through directly to a protected target over TCP. Unix
//! sockets are not covered (see docs/fail-closed.md).
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod programs;

/// The programs only exist for the bpf target; this keeps `cargo build --workspace` and clippy
/// working on the host.
#[cfg(not(target_arch = "bpf"))]
fn main() {}
