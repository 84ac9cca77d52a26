//! The programs and their maps. See the crate docs for the flow.

use core::{ffi::c_void, ptr::read_volatile};

use agent_common::{
    CGROUP_BELOW, CGROUP_SUBTREE, ConnInfo, MAX_CGROUP_DEPTH, MAX_SCOPE_CGROUPS, MAX_TARGET_ADDRS,
    MAX_TRACKED_SOCKETS, ProxyAddrs, SockAddr,
};
use aya_ebpf::{
    bindings::{
        BPF_SOCK_OPS_STATE_CB, BPF_SOCK_OPS_STATE_CB_FLAG, BPF_SOCK_OPS_TCP_CONNECT_CB,
        BPF_TCP_CLOSE,
    },
    helpers::{
        bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id, bpf_get_current_comm,
        bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_get_socket_cookie,
    },
    macros::{cgroup_sock_addr, map, sock_ops},
    maps::{Array, HashMap, LruHashMap},
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

#[cgroup_sock_addr(connect4)]
pub fn connect4(ctx: SockAddrContext) -> i32 {
    // SAFETY: the kernel hands the program a valid bpf_sock_addr for its whole run.
    let sa = unsafe { &mut *ctx.sock_addr };
    if sa.type_ != SOCK_STREAM {
        return ALLOW;
    }
    let dst = SockAddr::from_ipv4(sa.user_ip4.to_ne_bytes(), u16::from_be(sa.user_port as u16));
    let Some(proxy) = intercept(&ctx, &dst) else {
        return ALLOW;
    };
    if proxy.is_null() {
        return REFUSE;
    }
    // SAFETY: non-null pointer to a map value, valid for the program's run.
    let to = unsafe { &(*proxy).v4 };
    match to.ipv4() {
        Some(ip) => {
            sa.user_ip4 = u32::from_ne_bytes(ip);
            sa.user_port = u32::from(to.port.to_be());
            ALLOW
        }
        None => REFUSE,
    }
}

#[cgroup_sock_addr(connect6)]
pub fn connect6(ctx: SockAddrContext) -> i32 {
    // SAFETY: as in connect4.
    let sa = unsafe { &mut *ctx.sock_addr };
    if sa.type_ != SOCK_STREAM {
        return ALLOW;
    }
    let dst = SockAddr::new(ip6_bytes(&sa.user_ip6), u16::from_be(sa.user_port as u16));
    let Some(proxy) = intercept(&ctx, &dst) else {
        return ALLOW;
    };
    if proxy.is_null() {
        return REFUSE;
    }
    // An IPv4-mapped destination travels over IPv4: send it to the proxy's IPv4 listener, which
    // `ProxyAddrs::v4` holds in mapped form already.
    // SAFETY: non-null pointer to a map value, valid for the program's run.
    let to = unsafe {
        if dst.ipv4().is_some() {
            &(*proxy).v4
        } else {
            &(*proxy).v6
        }
    };
    sa.user_ip6 = ip6_words(&to.addr);
    sa.user_port = u32::from(to.port.to_be());
    ALLOW
}

/// Decides whether this connect is intercepted. `None`: leave it alone. `Some(null)`: it must be
/// intercepted but cannot be (no proxy configured, or the record could not be stored): refuse.
/// `Some(proxy)`: recorded, rewrite it to `proxy`.
#[inline(always)]
fn intercept(ctx: &SockAddrContext, dst: &SockAddr) -> Option<*const ProxyAddrs> {
    // SAFETY: map values are plain `#[repr(C)]` data only written by userspace.
    let target = *unsafe { TARGETS.get(dst) }?;
    if !in_scope() {
        return None;
    }
    let Some(proxy) = PROXY.get_ptr(0) else {
        return Some(core::ptr::null());
    };
    if !record(ctx, dst, target) {
        return Some(core::ptr::null());
    }
    Some(proxy)
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
    let Some(info) = (unsafe { SOCKETS.get(&cookie) }).copied() else {
        return;
    };
    let Some(local) = local_addr(ctx) else {
        return;
    };
    // A failed insert leaves the proxy without a record: it then refuses the connection.
    let _ = CONNECTIONS.insert(&local, &info, 0);
    // Ask for state changes so the records go away when the socket closes.
    let _ = ctx.set_cb_flags(BPF_SOCK_OPS_STATE_CB_FLAG as i32);
}

#[inline(always)]
fn on_tcp_close(ctx: &SockOpsContext) {
    // SAFETY: as above.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.ops as *mut c_void) };
    let _ = SOCKETS.remove(&cookie);
    if let Some(local) = local_addr(ctx) {
        let _ = CONNECTIONS.remove(&local);
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
