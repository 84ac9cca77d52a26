//! This host's own addresses, and the ports of the protected targets that are this host: the
//! state behind the kernel's "another local route to a protected local server" refusal.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use agent_common::SockAddr;

/// The interface addresses of this host (network namespace), as `LOCAL_ADDRS` keys (port 0).
/// Loopback addresses are included; the kernel knows them anyway.
pub fn host_addresses() -> Result<BTreeSet<SockAddr>, nix::Error> {
    let mut out = BTreeSet::new();
    for ifa in nix::ifaddrs::getifaddrs()? {
        let Some(address) = ifa.address else {
            continue;
        };
        let ip = if let Some(v4) = address.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = address.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        out.insert(key(ip));
    }
    Ok(out)
}

/// The `LOCAL_ADDRS` key of an address.
pub fn key(ip: IpAddr) -> SockAddr {
    crate::proxy::sock_addr(std::net::SocketAddr::new(ip, 0))
}

/// `LOCAL_PORTS`: port -> target index, for every target address that is this host (loopback,
/// unspecified, or one of `host`). The first target wins a port shared by several.
pub fn local_ports(
    targets: &BTreeMap<SockAddr, u32>,
    host: &BTreeSet<SockAddr>,
) -> BTreeMap<u32, u32> {
    let mut out = BTreeMap::new();
    for (addr, index) in targets {
        if addr.is_always_local() || host.contains(&addr.without_port()) {
            out.entry(u32::from(addr.port)).or_insert(*index);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> SockAddr {
        crate::proxy::sock_addr(s.parse().unwrap())
    }

    #[test]
    fn loopback_and_host_targets_make_their_port_local() {
        let targets = BTreeMap::from([
            (target("127.0.0.1:5432"), 0),
            (target("[::1]:5432"), 0),
            (target("10.1.2.3:6432"), 1),
            (target("192.0.2.9:7000"), 2),
        ]);
        let host = BTreeSet::from([key("10.1.2.3".parse().unwrap())]);
        assert_eq!(
            local_ports(&targets, &host),
            BTreeMap::from([(5432, 0), (6432, 1)])
        );
    }

    #[test]
    fn remote_targets_have_no_local_port() {
        let targets = BTreeMap::from([(target("192.0.2.9:5432"), 0)]);
        assert!(local_ports(&targets, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn the_host_has_at_least_its_loopback_address() {
        let host = host_addresses().expect("getifaddrs");
        assert!(
            host.contains(&key("127.0.0.1".parse().unwrap())),
            "{host:?}"
        );
    }
}
