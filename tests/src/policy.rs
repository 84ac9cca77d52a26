//! Writing policy files for tests (TOML text, see docs/policy-reference.md).

use std::fmt::Write as _;

/// TOML for one workload `workload` allowed to reach one target `target` with `protocol`
/// (`"tcp"` or `"postgres"`) at `addresses` (`"127.0.0.1:5432"`, `"[::1]:5432"`), whose
/// processes are identified by the cgroup glob patterns `cgroups` (may be empty: then only jobs
/// started with `agent exec --workload` belong to it).
pub fn single_target_policy(
    workload: &str,
    cgroups: &[&str],
    target: &str,
    protocol: &str,
    addresses: &[String],
) -> String {
    let mut toml = String::new();
    let _ = writeln!(toml, "[[workload]]");
    let _ = writeln!(toml, "name = {}", quote(workload));
    let _ = writeln!(toml, "cgroups = {}", array(cgroups.iter().copied()));
    let _ = writeln!(toml, "targets = [{}]", quote(target));
    let _ = writeln!(toml);
    let _ = writeln!(toml, "[[target]]");
    let _ = writeln!(toml, "name = {}", quote(target));
    let _ = writeln!(toml, "protocol = {}", quote(protocol));
    let _ = writeln!(
        toml,
        "addresses = {}",
        array(addresses.iter().map(String::as_str))
    );
    toml
}

/// The loopback addresses of a server on `port`: `["127.0.0.1:port", "[::1]:port"]`.
pub fn loopback_addresses(port: u16) -> Vec<String> {
    vec![format!("127.0.0.1:{port}"), format!("[::1]:{port}")]
}

/// A TOML basic string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn array<'a>(items: impl Iterator<Item = &'a str>) -> String {
    format!("[{}]", items.map(quote).collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_single_target_policy() {
        let toml = single_target_policy("w", &["/a/*"], "db", "tcp", &loopback_addresses(5432));
        assert_eq!(
            toml,
            "[[workload]]\nname = \"w\"\ncgroups = [\"/a/*\"]\ntargets = [\"db\"]\n\n\
             [[target]]\nname = \"db\"\nprotocol = \"tcp\"\n\
             addresses = [\"127.0.0.1:5432\", \"[::1]:5432\"]\n"
        );
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
    }
}
