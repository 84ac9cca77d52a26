//! The programs and their maps. See the crate docs for the flow.

use core::{ffi::c_void, ptr::read_volatile};

use agent_common::{
    CGROUP_BELOW, CGROUP_SUBTREE, ConnInfo, ECONNREFUSED, EPERM, LISTENER_V4, LISTENER_V6,
    MAX_CGROUP_DEPTH, MAX_LOCAL_ADDRS, MAX_SCOPE_CGROUPS, MAX_TARGET_ADDRS, MAX_TRACKED_SOCKETS,
    ProxyAddrs, SockAddr,
};
use aya_ebpf::{
    bindings::{
        BPF_SOCK_OPS_STATE_CB, BPF_SOCK_OPS_STATE_CB_FLAG, BPF_SOCK_OPS_TCP_CONNECT_CB,
        BPF_TCP_CLOSE, BPF_TCP_LISTEN, BPF_TCP_SYN_SENT, bpf_sock,
    },
    helpers::{
        bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id, bpf_get_current_comm,
        bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_get_socket_cookie, bpf_ktime_get_ns,
        bpf_set_retval, bpf_sk_release, generated::bpf_map_lookup_elem,
    },
    macros::{cgroup_sock_addr, map, sock_ops},
    maps::{Array, HashMap, LruHashMap, SockMap},
    programs::{SockAddrContext, SockOpsContext},
};

const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
const SOCK_STREAM: u32 = 1;
/// cgroup sock_addr verdicts.
const ALLOW: i32 = 1;
const REFUSE: i32 = 0;

// Map names must match `agent_common::MAP_*` (checked by the agent's tests).

/// Protected destinations -> target index. Filled by the agent from the policy set.
#[map]
static TARGETS: HashMap<SockAddr, u32> = HashMap::with_max_entries(MAX_TARGET_ADDRS, 0);

/// Interception scope: cgroup id -> `CGROUP_*` kind. Filled by the agent.
#[map]
static CGROUPS: HashMap<u64, u32> = HashMap::with_max_entries(MAX_SCOPE_CGROUPS, 0);

/// The proxy's listening addresses, at index 0. Set by the agent before any attach.
#[map]
static PROXY: Array<ProxyAddrs> = Array::with_max_entries(1, 0);

/// Redirected sockets by socket cookie; written at connect, read by getpeername and sock_ops.
#[map]
static SOCKETS: LruHashMap<u64, ConnInfo> = LruHashMap::with_max_entries(MAX_TRACKED_SOCKETS, 0);

/// Redirected connections by the client's local address; the proxy reads and removes them.
#[map]
static CONNECTIONS: LruHashMap<SockAddr, ConnInfo> =
    LruHashMap::with_max_entries(MAX_TRACKED_SOCKETS, 0);

/// The proxy's listening sockets (liveness): see `agent_common::MAP_LISTENERS`.
#[map]
static LISTENERS: SockMap = SockMap::with_max_entries(2, 0);

/// This host's interface addresses (port 0) -> 1. Filled by the agent.
#[map]
static LOCAL_ADDRS: HashMap<SockAddr, u32> = HashMap::with_max_entries(MAX_LOCAL_ADDRS, 0);

/// Ports of protected targets that are this host -> target index. Filled by the agent.
#[map]
static LOCAL_PORTS: HashMap<u32, u32> = HashMap::with_max_entries(MAX_LOCAL_ADDRS, 0);

/// What happens to a connect.
enum Verdict {
    /// Not ours: untouched.
    Pass,
    /// Refused with this errno.
    Refuse(i32),
    /// Recorded: rewrite it to this proxy address.
    Redirect(SockAddr),
}

#[cgroup_sock_addr(connect4)]
pub fn connect4(ctx: SockAddrContext) -> i32 {
    // SAFETY: the kernel hands the program a valid bpf_sock_addr for its whole run.
    let sa = unsafe { &mut *ctx.sock_addr };
    if sa.type_ != SOCK_STREAM {
        return ALLOW;
    }
    let dst = SockAddr::from_ipv4(sa.user_ip4.to_ne_bytes(), u16::from_be(sa.user_port as u16));
    match intercept(&ctx, &dst) {
        Verdict::Pass => ALLOW,
        Verdict::Refuse(errno) => refuse(errno),
        Verdict::Redirect(to) => match to.ipv4() {
            Some(ip) => {
                sa.user_ip4 = u32::from_ne_bytes(ip);
                sa.user_port = u32::from(to.port.to_be());
                ALLOW
            }
            None => refuse(EPERM),
        },
    }
}

#[cgroup_sock_addr(connect6)]
pub fn connect6(ctx: SockAddrContext) -> i32 {
    // SAFETY: as in connect4.
    let sa = unsafe { &mut *ctx.sock_addr };
    if sa.type_ != SOCK_STREAM {
        return ALLOW;
    }
    // An IPv4-mapped destination (`::ffff:a.b.c.d`) is keyed exactly like the IPv4 one, so the
    // same targets, aliases and scope apply; it goes to the IPv4 listener (see `intercept`).
    let dst = SockAddr::new(ip6_bytes(&sa.user_ip6), u16::from_be(sa.user_port as u16));
    match intercept(&ctx, &dst) {
        Verdict::Pass => ALLOW,
        Verdict::Refuse(errno) => refuse(errno),
        Verdict::Redirect(to) => {
            sa.user_ip6 = ip6_words(&to.addr);
            sa.user_port = u32::from(to.port.to_be());
            ALLOW
        }
    }
}

/// Refuses the syscall with `errno` (cgroup hooks may set the error since Linux 5.18; without
/// it the kernel answers EPERM).
#[inline(always)]
fn refuse(errno: i32) -> i32 {
    // SAFETY: helper without preconditions; allowed in connect hooks.
    unsafe { bpf_set_retval(-errno) };
    REFUSE
}

/// Decides a connect to `dst`.
///
/// - `dst` is a protected target, from the scope: redirected to the proxy if one serves,
///   refused with ECONNREFUSED otherwise (never let through).
/// - `dst` is another local address (127.0.0.2, the host's LAN address, `0.0.0.0`, ...) on the
///   port of a protected local target, from the scope: refused (EPERM).
#[inline(always)]
fn intercept(ctx: &SockAddrContext, dst: &SockAddr) -> Verdict {
    // SAFETY: map values are plain `#[repr(C)]` data only written by userspace.
    let target = match unsafe { TARGETS.get(dst) } {
        Some(t) => *t,
        None => {
            // SAFETY: as above.
            if unsafe { LOCAL_PORTS.get(&u32::from(dst.port)) }.is_some()
                && is_local(dst)
                && in_scope()
            {
                return Verdict::Refuse(EPERM);
            }
            return Verdict::Pass;
        }
    };
    if !in_scope() {
        return Verdict::Pass;
    }
    let Some(proxy) = PROXY.get_ptr(0) else {
        return Verdict::Refuse(ECONNREFUSED);
    };
    // SAFETY: non-null pointer to a map value, valid for the program's run.
    let (to, listener) = unsafe {
        if dst.ipv4().is_some() {
            ((*proxy).v4, LISTENER_V4)
        } else {
            ((*proxy).v6, LISTENER_V6)
        }
    };
    if !proxy_serving(listener, to.port) {
        return Verdict::Refuse(ECONNREFUSED);
    }
    if !record(ctx, dst, target) {
        return Verdict::Refuse(EPERM);
    }
    Verdict::Redirect(to)
}

/// Whether the proxy's listener `index` is registered and still listens on `port`. The kernel
/// removes a socket from the SOCKMAP when it closes, so a dead agent reads as "not serving" at
/// once, and another process that grabs the port meanwhile is never trusted.
#[inline(never)]
fn proxy_serving(index: u32, port: u16) -> bool {
    let key = index;
    // SAFETY: lookup in a SOCKMAP returns a referenced socket or null; it is released below on
    // every path.
    let sk = unsafe {
        bpf_map_lookup_elem(
            core::ptr::addr_of!(LISTENERS) as *mut c_void,
            core::ptr::addr_of!(key) as *const c_void,
        )
    } as *mut bpf_sock;
    if sk.is_null() {
        return false;
    }
    // SAFETY: non-null socket from the lookup; these fields are readable.
    let (state, src_port) =
        unsafe { (read_volatile(&(*sk).state), read_volatile(&(*sk).src_port)) };
    // SAFETY: releases the reference taken by the lookup.
    unsafe { bpf_sk_release(sk as *mut c_void) };
    state == BPF_TCP_LISTEN && src_port == u32::from(port)
}

/// Whether `dst` is this host: loopback, unspecified, or one of its interface addresses.
#[inline(always)]
fn is_local(dst: &SockAddr) -> bool {
    if dst.is_always_local() {
        return true;
    }
    let key = dst.without_port();
    // SAFETY: plain u32 values.
    unsafe { LOCAL_ADDRS.get(&key) }.is_some()
}

/// Stores what the kernel knows of the caller, by socket cookie. Out of line: its 64-byte record
/// must not share a frame with the caller's temporaries (512-byte BPF stack).
#[inline(never)]
fn record(ctx: &SockAddrContext, dst: &SockAddr, target: u32) -> bool {
    let uid_gid = bpf_get_current_uid_gid();
    let info = ConnInfo {
        orig_dst: *dst,
        target,
        pid: (bpf_get_current_pid_tgid() >> 32) as u32,
        uid: uid_gid as u32,
        gid: (uid_gid >> 32) as u32,
        _pad: 0,
        // SAFETY: helper without preconditions.
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
        connected_ns: 0,
    };
    // SAFETY: the context pointer is the one the kernel gave us.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.sock_addr as *mut c_void) };
    SOCKETS.insert(&cookie, &info, 0).is_ok()
}

/// Walks the caller's cgroup ancestors (root first); the deepest scope entry decides.
///
/// Not inlined, and with a single key slot: an unrolled walk with one stack slot per level would
/// not fit the 512-byte BPF stack of the connect programs.
#[inline(never)]
fn in_scope() -> bool {
    // SAFETY: helpers without preconditions.
    let current = unsafe { bpf_get_current_cgroup_id() };
    let mut kind = 0u32;
    let mut at_self = false;
    let mut key: u64;
    let mut level = 0i32;
    while level < MAX_CGROUP_DEPTH as i32 {
        // SAFETY: as above; returns 0 past the caller's own level.
        key = unsafe { bpf_get_current_ancestor_cgroup_id(level) };
        if key == 0 {
            break;
        }
        // SAFETY: plain u32 values.
        if let Some(k) = unsafe { CGROUPS.get(&key) } {
            kind = *k;
            at_self = key == current;
        }
        if key == current {
            break;
        }
        level += 1;
    }
    match kind {
        CGROUP_SUBTREE => true,
        CGROUP_BELOW => !at_self,
        _ => false,
    }
}

#[sock_ops]
pub fn sock_ops_connect(ctx: SockOpsContext) -> u32 {
    match ctx.op() {
        BPF_SOCK_OPS_TCP_CONNECT_CB => on_tcp_connect(&ctx),
        BPF_SOCK_OPS_STATE_CB if ctx.arg(1) == BPF_TCP_CLOSE => on_tcp_close(&ctx),
        _ => {}
    }
    1
}

/// The socket has its local port now: re-key its record by the client's local address.
#[inline(always)]
fn on_tcp_connect(ctx: &SockOpsContext) {
    // SAFETY: the context pointer is the one the kernel gave us.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.ops as *mut c_void) };
    // SAFETY: plain data written by connect4/6.
    let Some(mut info) = (unsafe { SOCKETS.get(&cookie) }).copied() else {
        return;
    };
    // SAFETY: helper without preconditions.
    info.connected_ns = unsafe { bpf_ktime_get_ns() };
    let Some(local) = local_addr(ctx) else {
        return;
    };
    // A failed insert leaves the proxy without a record: it then refuses the connection.
    let _ = CONNECTIONS.insert(&local, &info, 0);
    // Ask for state changes so the records go away when the socket closes.
    let _ = ctx.set_cb_flags(BPF_SOCK_OPS_STATE_CB_FLAG as i32);
}

/// The socket is closed. Its connection record stays if it reached the proxy's listener: a
/// client may close before the proxy accepts (a cancel request is sent and closed at once), and
/// the proxy still serves what it sent. A connect that never completed never reaches the proxy:
/// its record goes.
#[inline(always)]
fn on_tcp_close(ctx: &SockOpsContext) {
    // SAFETY: as above.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.ops as *mut c_void) };
    let _ = SOCKETS.remove(&cookie);
    if ctx.arg(0) == BPF_TCP_SYN_SENT {
        if let Some(local) = local_addr(ctx) {
            let _ = CONNECTIONS.remove(&local);
        }
    }
}

/// The client's local address. Every context field is read up front with its own volatile
/// load, before any branch: LLVM otherwise merges the IPv4 and IPv6 reads into one load through a
/// computed `ctx + offset`, which the verifier refuses ("dereference of modified ctx ptr").
#[inline(always)]
fn local_addr(ctx: &SockOpsContext) -> Option<SockAddr> {
    let ops = ctx.ops;
    // SAFETY: `ops` is the context the kernel gave us; these fields are readable in sock_ops.
    let (family, port, ip4, ip6) = unsafe {
        (
            read_volatile(&(*ops).family),
            read_volatile(&(*ops).local_port) as u16,
            read_volatile(&(*ops).local_ip4),
            [
                read_volatile(&(*ops).local_ip6[0]),
                read_volatile(&(*ops).local_ip6[1]),
                read_volatile(&(*ops).local_ip6[2]),
                read_volatile(&(*ops).local_ip6[3]),
            ],
        )
    };
    match family {
        AF_INET => Some(SockAddr::from_ipv4(ip4.to_ne_bytes(), port)),
        AF_INET6 => Some(SockAddr::new(ip6_bytes(&ip6), port)),
        _ => None,
    }
}

#[cgroup_sock_addr(getpeername4)]
pub fn getpeername4(ctx: SockAddrContext) -> i32 {
    // SAFETY: as in connect4.
    let sa = unsafe { &mut *ctx.sock_addr };
    if let Some(orig) = original_destination(&ctx) {
        if let Some(ip) = orig.ipv4() {
            sa.user_ip4 = u32::from_ne_bytes(ip);
            sa.user_port = u32::from(orig.port.to_be());
        }
    }
    ALLOW
}

#[cgroup_sock_addr(getpeername6)]
pub fn getpeername6(ctx: SockAddrContext) -> i32 {
    // SAFETY: as in connect4.
    let sa = unsafe { &mut *ctx.sock_addr };
    if let Some(orig) = original_destination(&ctx) {
        sa.user_ip6 = ip6_words(&orig.addr);
        sa.user_port = u32::from(orig.port.to_be());
    }
    ALLOW
}

#[inline(always)]
fn original_destination(ctx: &SockAddrContext) -> Option<SockAddr> {
    // SAFETY: the context pointer is the one the kernel gave us.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.sock_addr as *mut c_void) };
    // SAFETY: plain data.
    unsafe { SOCKETS.get(&cookie) }.map(|info| info.orig_dst)
}

/// The kernel keeps IPv6 addresses as four u32 words in network order.
#[inline(always)]
fn ip6_bytes(words: &[u32; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 4 {
        let b = words[i].to_ne_bytes();
        out[i * 4] = b[0];
        out[i * 4 + 1] = b[1];
        out[i * 4 + 2] = b[2];
        out[i * 4 + 3] = b[3];
        i += 1;
    }
    out
}

#[inline(always)]
fn ip6_words(bytes: &[u8; 16]) -> [u32; 4] {
    [
        u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
        u32::from_ne_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        u32::from_ne_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
        u32::from_ne_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]),
    ]
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the verifier rejects any program with a reachable panic path.
    unsafe { core::hint::unreachable_unchecked() }
}
