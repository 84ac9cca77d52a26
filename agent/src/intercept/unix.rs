//! PostgreSQL unix sockets of protected local servers: the one route around the proxy that the
//! eBPF programs cannot cover here (no `cgroup/connect_unix` in aya 0.14, BPF LSM refused by the
//! kernel: see `docs/fail-closed.md`). The agent does not let it pass silently: at start and on
//! every policy reload it finds the listening `.s.PGSQL.<port>` sockets of local targets and
//! reports each one that processes other than its owner can connect to.
//!
//! Parsing and the permission rule are pure; [`find_open`] reads `/proc/net/unix` and stats the
//! paths.

use std::{
    collections::BTreeMap,
    fmt,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

/// `__SO_ACCEPTCON` in `/proc/net/unix`'s `Flags` column: a listening socket.
const LISTENING: u32 = 0x0001_0000;

/// Who besides the socket's owner (and root) may connect to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Every local user.
    Everyone,
    /// Members of this group.
    Group(u32),
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Everyone => f.write_str("every local user"),
            Self::Group(gid) => write!(f, "members of group {gid}"),
        }
    }
}

/// A protected local server's unix socket that workload processes may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSocket {
    pub path: PathBuf,
    /// The protected target whose port the socket is named after.
    pub target: String,
    pub reach: Reach,
}

/// Owner, group and mode of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perm {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// The listening PostgreSQL sockets (`<dir>/.s.PGSQL.<port>`) in `/proc/net/unix` for the
/// given ports, with their port.
pub fn pg_sockets(proc_net_unix: &str, ports: &BTreeMap<u16, String>) -> Vec<(PathBuf, u16)> {
    proc_net_unix
        .lines()
        .skip(1)
        .filter_map(|line| {
            // Num RefCount Protocol Flags Type St Inode [Path]
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = u32::from_str_radix(fields.get(3)?, 16).ok()?;
            let path = Path::new(fields.get(7)?);
            if flags & LISTENING == 0 || !path.is_absolute() {
                return None;
            }
            let port: u16 = path
                .file_name()?
                .to_str()?
                .strip_prefix(".s.PGSQL.")?
                .parse()
                .ok()?;
            ports
                .contains_key(&port)
                .then(|| (path.to_path_buf(), port))
        })
        .collect()
}

/// Who may connect to a socket with permissions `socket` under the directories `dirs` (each
/// must be searchable): connecting needs write permission on the socket itself.
pub fn reach(socket: Perm, dirs: &[Perm]) -> Option<Reach> {
    let others = socket.mode & 0o002 != 0 && dirs.iter().all(|d| d.mode & 0o001 != 0);
    if others {
        return Some(Reach::Everyone);
    }
    let group = socket.mode & 0o020 != 0
        && dirs
            .iter()
            .all(|d| d.mode & 0o001 != 0 || (d.gid == socket.gid && d.mode & 0o010 != 0));
    group.then_some(Reach::Group(socket.gid))
}

/// The reachable unix sockets of the local PostgreSQL servers listening on `ports` (port ->
/// target name). A socket that cannot be examined is reported as reachable by everyone: the
/// agent does not assume a route is closed.
pub fn find_open(ports: &BTreeMap<u16, String>) -> std::io::Result<Vec<OpenSocket>> {
    if ports.is_empty() {
        return Ok(Vec::new());
    }
    let table = std::fs::read_to_string("/proc/net/unix")?;
    let mut open = Vec::new();
    for (path, port) in pg_sockets(&table, ports) {
        let reach = perms_along(&path).map_or(Some(Reach::Everyone), |(s, d)| reach(s, &d));
        if let Some(reach) = reach {
            open.push(OpenSocket {
                path,
                target: ports[&port].clone(),
                reach,
            });
        }
    }
    Ok(open)
}

fn perms_along(path: &Path) -> std::io::Result<(Perm, Vec<Perm>)> {
    let perm = |p: &Path| -> std::io::Result<Perm> {
        let m = std::fs::metadata(p)?;
        Ok(Perm {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode(),
        })
    };
    let dirs = path
        .ancestors()
        .skip(1)
        .map(perm)
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok((perm(path)?, dirs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 31337 /var/run/postgresql/.s.PGSQL.5432
0000000000000000: 00000002 00000000 00010000 0001 01 31338 /tmp/pg/.s.PGSQL.6543
0000000000000000: 00000003 00000000 00000000 0001 03 31339 /var/run/postgresql/.s.PGSQL.5432
0000000000000000: 00000002 00000000 00010000 0001 01 31340 /run/other.sock
0000000000000000: 00000002 00000000 00010000 0001 01 31341 @/abstract/.s.PGSQL.5432
0000000000000000: 00000002 00000000 00010000 0001 01 31342
0000000000000000: 00000002 00000000 00010000 0001 01 31343 /tmp/.s.PGSQL.5432.lock
";

    #[test]
    fn only_listening_pg_sockets_of_protected_ports_are_found() {
        let ports = BTreeMap::from([(5432, "db".to_owned())]);
        assert_eq!(
            pg_sockets(TABLE, &ports),
            vec![(PathBuf::from("/var/run/postgresql/.s.PGSQL.5432"), 5432)]
        );
        let ports = BTreeMap::from([(5432, "a".to_owned()), (6543, "b".to_owned())]);
        assert_eq!(pg_sockets(TABLE, &ports).len(), 2);
        assert!(pg_sockets(TABLE, &BTreeMap::new()).is_empty());
    }

    fn p(mode: u32, gid: u32) -> Perm {
        Perm { uid: 0, gid, mode }
    }

    #[test]
    fn postgres_defaults_are_open_to_everyone() {
        // unix_socket_permissions = 0777 in a 2775 /var/run/postgresql.
        let dirs = [p(0o2775, 110), p(0o755, 0), p(0o755, 0), p(0o755, 0)];
        assert_eq!(reach(p(0o777, 110), &dirs), Some(Reach::Everyone));
    }

    #[test]
    fn group_only_socket_is_reachable_by_its_group() {
        let dirs = [p(0o2775, 110), p(0o755, 0)];
        assert_eq!(reach(p(0o770, 110), &dirs), Some(Reach::Group(110)));
        // A directory that only its own (other) group may search closes the route.
        assert_eq!(reach(p(0o770, 110), &[p(0o750, 7)]), None);
    }

    #[test]
    fn owner_only_socket_or_closed_directory_is_not_reachable() {
        assert_eq!(reach(p(0o700, 110), &[p(0o755, 0)]), None);
        assert_eq!(reach(p(0o777, 110), &[p(0o700, 110), p(0o755, 0)]), None);
        // Read without write does not allow connecting.
        assert_eq!(reach(p(0o744, 110), &[p(0o755, 0)]), None);
    }
}
