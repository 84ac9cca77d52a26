//! Types shared by the eBPF programs (`agent-ebpf`) and the userspace agent.
//!
//! Every map key and value is `#[repr(C)]`, has explicit padding fields (so no byte is ever
//! uninitialised when the kernel hashes a key) and a compile-time size assertion: both sides must
//! agree on the layout bit for bit.
//!
//! Addresses are always stored in IPv6 form: an IPv4 address `a.b.c.d` is stored as the
//! IPv4-mapped `::ffff:a.b.c.d`, so one map serves `connect4` and `connect6` alike. Ports are in
//! host byte order.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(feature = "user"), forbid(unsafe_code))]

/// Protected destinations: [`SockAddr`] -> target index (u32) in the loaded policy set.
pub const MAP_TARGETS: &str = "TARGETS";
/// Interception scope: cgroup id (u64) -> one of the `CGROUP_*` kinds (u32).
pub const MAP_CGROUPS: &str = "CGROUPS";
/// Where redirected connections go: one [`ProxyAddrs`] at index 0.
pub const MAP_PROXY: &str = "PROXY";
/// Redirected sockets, by socket cookie (u64) -> [`ConnInfo`]. Read by `getpeername` and by
/// `sock_ops` when the connection gets its local port; removed when the socket closes.
pub const MAP_SOCKETS: &str = "SOCKETS";
/// Redirected connections, by the client's local address [`SockAddr`] -> [`ConnInfo`]. The proxy
/// looks its accepted peer up here and removes the entry.
pub const MAP_CONNECTIONS: &str = "CONNECTIONS";
/// Liveness of the proxy: a SOCKMAP holding the proxy's listening sockets ([`LISTENER_V4`],
/// [`LISTENER_V6`]). The kernel drops an entry by itself when its socket closes (agent stopped,
/// crashed or killed), so "the entry is there and listens on the proxy port" is exactly "a proxy
/// is serving". Redirects are refused (ECONNREFUSED) otherwise.
pub const MAP_LISTENERS: &str = "LISTENERS";
/// This host's own addresses (interface addresses, as [`SockAddr`] with port 0) -> 1.
/// Loopback (`127.0.0.0/8`, `::1`) and unspecified (`0.0.0.0`, `::`) addresses are local without
/// an entry.
pub const MAP_LOCAL_ADDRS: &str = "LOCAL_ADDRS";
/// Ports (u32) of the protected targets that are this host itself -> target index (u32). A
/// connect from the scope to *another* local address on such a port (127.0.0.2, the host's LAN
/// address, `0.0.0.0`, ...) reaches the same server by another route: it is refused (EPERM).
pub const MAP_LOCAL_PORTS: &str = "LOCAL_PORTS";

/// Every map of the programs, in the order the agent pins them.
pub const ALL_MAPS: [&str; 8] = [
    MAP_TARGETS,
    MAP_CGROUPS,
    MAP_PROXY,
    MAP_SOCKETS,
    MAP_CONNECTIONS,
    MAP_LISTENERS,
    MAP_LOCAL_ADDRS,
    MAP_LOCAL_PORTS,
];

/// [`MAP_LISTENERS`] index of the IPv4 listener (also serves IPv4-mapped destinations).
pub const LISTENER_V4: u32 = 0;
/// [`MAP_LISTENERS`] index of the IPv6 listener.
pub const LISTENER_V6: u32 = 1;
/// Capacity of [`MAP_LOCAL_ADDRS`] and [`MAP_LOCAL_PORTS`].
pub const MAX_LOCAL_ADDRS: u32 = 1_024;

/// errno of a redirect refused because no proxy serves (the agent is stopped or dead).
pub const ECONNREFUSED: i32 = 111;
/// errno of a connect refused by policy (another local route to a protected local server), or
/// of an intercepted connect that could not be recorded.
pub const EPERM: i32 = 1;

/// Capacity of the two connection maps (LRU: the oldest entries go first if they ever fill).
pub const MAX_TRACKED_SOCKETS: u32 = 65_536;
/// How long a record filed at connect stays valid for the proxy. A record outlives a client
/// that closed before the proxy accepted (the proxy still serves what it sent, e.g. a cancel
/// request); one whose connection never reached the proxy must not be reusable later by
/// another socket that happens to get the same client address.
pub const MAX_RECORD_AGE_NS: u64 = 10_000_000_000;
/// Capacity of the target and cgroup maps.
pub const MAX_TARGET_ADDRS: u32 = 4_096;
pub const MAX_SCOPE_CGROUPS: u32 = 16_384;
/// How many cgroup ancestors the programs walk. cgroup v2 trees are rarely deeper than 10.
pub const MAX_CGROUP_DEPTH: u32 = 32;

/// The cgroup and everything below it belongs to the interception scope.
pub const CGROUP_SUBTREE: u32 = 1;
/// Only cgroups strictly below this one may belong to a workload (the static prefix of a glob
/// pattern such as `/chunk-jobs/nightly/*`). The proxy decides which workload, if any.
pub const CGROUP_BELOW: u32 = 2;
/// Never intercepted: the agent's own cgroup, whatever its ancestors say.
pub const CGROUP_EXCLUDE: u32 = 3;

/// An IP address (IPv4 as IPv4-mapped IPv6) and a port in host byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SockAddr {
    pub addr: [u8; 16],
    pub port: u16,
    pub _pad: [u8; 2],
}

impl SockAddr {
    pub const fn new(addr: [u8; 16], port: u16) -> Self {
        Self {
            addr,
            port,
            _pad: [0; 2],
        }
    }

    /// `a.b.c.d` (as the big-endian bytes of the address) to `::ffff:a.b.c.d`.
    pub const fn from_ipv4(octets: [u8; 4], port: u16) -> Self {
        let [a, b, c, d] = octets;
        Self::new([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d], port)
    }

    /// Whether this address is the host itself whatever its interfaces: IPv4 loopback
    /// (`127.0.0.0/8`), `::1`, or unspecified (`0.0.0.0`, `::`: a connect to it reaches the
    /// host).
    pub const fn is_always_local(&self) -> bool {
        if let Some([a, b, c, d]) = self.ipv4() {
            return a == 127 || (a == 0 && b == 0 && c == 0 && d == 0);
        }
        let a = &self.addr;
        let mut i = 0;
        while i < 15 {
            if a[i] != 0 {
                return false;
            }
            i += 1;
        }
        a[15] == 0 || a[15] == 1
    }

    /// The same address with port 0 (the key form of [`MAP_LOCAL_ADDRS`]).
    pub const fn without_port(&self) -> Self {
        Self::new(self.addr, 0)
    }

    /// The IPv4 address, if this is an IPv4-mapped address.
    pub const fn ipv4(&self) -> Option<[u8; 4]> {
        let a = &self.addr;
        if a[0] == 0
            && a[1] == 0
            && a[2] == 0
            && a[3] == 0
            && a[4] == 0
            && a[5] == 0
            && a[6] == 0
            && a[7] == 0
            && a[8] == 0
            && a[9] == 0
            && a[10] == 0xff
            && a[11] == 0xff
        {
            Some([a[12], a[13], a[14], a[15]])
        } else {
            None
        }
    }
}

/// The proxy's listening addresses: one for IPv4 (and IPv4-mapped) clients, one for IPv6.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ProxyAddrs {
    pub v4: SockAddr,
    pub v6: SockAddr,
}

/// What the kernel knew about a redirected connection when the client called `connect()`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// The destination the client asked for.
    pub orig_dst: SockAddr,
    /// Index of the target in the policy set loaded into [`MAP_TARGETS`].
    pub target: u32,
    /// Thread-group id (the process id as userspace sees it in the root pid namespace).
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
    pub _pad: u32,
    /// cgroup v2 id of the connecting task (the inode number of its cgroup directory).
    pub cgroup_id: u64,
    /// `comm` of the connecting task, NUL-padded.
    pub comm: [u8; 16],
    /// When the connection got its local address and its record was filed under it
    /// (`CLOCK_MONOTONIC`, ns); 0 until then. The proxy refuses records older than
    /// [`MAX_RECORD_AGE_NS`].
    pub connected_ns: u64,
}

const _: () = assert!(core::mem::size_of::<SockAddr>() == 20);
const _: () = assert!(core::mem::size_of::<ProxyAddrs>() == 40);
const _: () = assert!(core::mem::size_of::<ConnInfo>() == 72);
const _: () = assert!(core::mem::align_of::<ConnInfo>() == 8);

#[cfg(feature = "user")]
mod pod {
    use super::{ConnInfo, ProxyAddrs, SockAddr};
    // SAFETY: `#[repr(C)]`, only integer fields, explicit padding fields, no implicit padding
    // (checked by the size assertions above): every bit pattern is a valid value.
    unsafe impl aya::Pod for SockAddr {}
    // SAFETY: as above; two `SockAddr` back to back.
    unsafe impl aya::Pod for ProxyAddrs {}
    // SAFETY: as above; `_pad` fills the hole before the 8-byte aligned `cgroup_id`.
    unsafe impl aya::Pod for ConnInfo {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_round_trips_through_the_mapped_form() {
        let a = SockAddr::from_ipv4([127, 0, 0, 1], 5432);
        assert_eq!(a.ipv4(), Some([127, 0, 0, 1]));
        assert_eq!(a.port, 5432);
    }

    fn v6(s: &str) -> SockAddr {
        let ip: std::net::Ipv6Addr = s.parse().unwrap();
        SockAddr::new(ip.octets(), 5432)
    }

    #[test]
    fn loopback_range_and_unspecified_addresses_are_always_local() {
        for ip in [
            [127, 0, 0, 1],
            [127, 0, 0, 2],
            [127, 255, 1, 9],
            [0, 0, 0, 0],
        ] {
            assert!(SockAddr::from_ipv4(ip, 1).is_always_local(), "{ip:?}");
        }
        assert!(v6("::1").is_always_local());
        assert!(v6("::").is_always_local());
        assert!(v6("::ffff:127.0.0.3").is_always_local());
        assert!(!SockAddr::from_ipv4([10, 0, 0, 1], 1).is_always_local());
        assert!(!SockAddr::from_ipv4([128, 0, 0, 1], 1).is_always_local());
        assert!(!v6("::2").is_always_local());
        assert!(!v6("fe80::1").is_always_local());
        // IPv4-compatible (deprecated) ::127.0.0.1 is not routed as IPv4 by Linux.
        assert!(!v6("::127.0.0.1").is_always_local());
    }

    #[test]
    fn loopback_v6_is_not_mapped_v4() {
        let mut addr = [0u8; 16];
        addr[15] = 1;
        assert_eq!(SockAddr::new(addr, 1).ipv4(), None);
    }
}
