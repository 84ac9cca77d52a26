//! Free TCP ports on the loopback addresses.

use anyhow::{Result, bail};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::{Mutex, PoisonError};

/// Ports already handed out by this process: never hand the same one out twice, even after
/// the server that used it is gone (parallel tests would otherwise race for it).
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// The addresses a test server may listen on: IPv4 loopback, a second IPv4 loopback address
/// (for "not a target" tests) and IPv6 loopback.
pub const TEST_ADDRESSES: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

/// Whether `port` can be bound right now on every one of [`TEST_ADDRESSES`].
pub fn port_is_free(port: u16) -> bool {
    // Hold all the listeners at once, then let them go together.
    let listeners: Vec<_> = TEST_ADDRESSES
        .iter()
        .map(|ip| TcpListener::bind(SocketAddr::new(*ip, port)))
        .collect();
    listeners.iter().all(|l| l.is_ok())
}

/// A TCP port that is currently free on 127.0.0.1, 127.0.0.2 and ::1 and that this process has
/// not handed out before. There is an unavoidable window between this check and the server's
/// own bind: servers started by the harness retry with another port when the bind fails.
pub fn free_port() -> Result<u16> {
    for _ in 0..200 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        drop(listener);
        if try_reserve(port) {
            return Ok(port);
        }
    }
    bail!("could not find a free TCP port on 127.0.0.1, 127.0.0.2 and ::1")
}

/// `preferred` if it is free (and not handed out before), else any free port.
pub fn preferred_or_free_port(preferred: u16) -> Result<u16> {
    if try_reserve(preferred) {
        Ok(preferred)
    } else {
        free_port()
    }
}

fn try_reserve(port: u16) -> bool {
    let mut guard = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let set = guard.get_or_insert_with(HashSet::new);
    if set.contains(&port) || !port_is_free(port) {
        return false;
    }
    set.insert(port);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let a = free_port().unwrap();
        let b = free_port().unwrap();
        assert_ne!(a, b);
        // A free port can be taken by anyone between two binds (the other tests' client
        // connections get ephemeral source ports from the same range): retry with a new
        // port a few times before calling it a failure.
        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port().unwrap();
            if !port_is_free(port) {
                continue;
            }
            match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                Ok(_listener) => {
                    assert!(!port_is_free(port));
                    return;
                }
                Err(e) => last_error = Some(e),
            }
        }
        panic!("no port from free_port() could be bound: {last_error:?}");
    }
}
