//! Just-in-time roles: names and SQL (pure). For each session of a target in `ephemeral` mode
//! the agent, logged in as the target's admin role, creates a login role named after the
//! workload, valid for the policy's TTL and member of the policy's least-privilege group role;
//! the session runs as that role, which is dropped when the session ends. A reaper drops what a
//! crash left behind: this host's roles at start-up, and anyone's expired roles.
//!
//! The role's password never travels in clear: `CREATE ROLE` carries its SCRAM verifier, so
//! even a server that logs every statement does not learn it.

/// Prefix of every role the agent creates.
pub const ROLE_PREFIX: &str = "jit_";
/// Marker put in the role's comment, followed by the host that created it.
pub const COMMENT_MARKER: &str = "chunk-agent ephemeral role; host=";

const MAX_IDENTIFIER: usize = 63;

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with embedded quotes doubled, as an escape string if it holds a backslash (so the
/// result does not depend on `standard_conforming_strings`).
pub fn quote_literal(text: &str) -> String {
    let body = text.replace('\'', "''");
    if body.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    }
}

/// `jit_<workload>_<suffix>`, with `-` turned into `_` and the workload part shortened so the
/// name fits PostgreSQL's 63 bytes.
pub fn role_name(workload: &str, suffix: &str) -> String {
    let workload: String = workload
        .chars()
        .map(|c| if c == '-' { '_' } else { c })
        .collect();
    let room = MAX_IDENTIFIER - ROLE_PREFIX.len() - 1 - suffix.len();
    let mut end = workload.len().min(room);
    while !workload.is_char_boundary(end) {
        end -= 1;
    }
    format!("{ROLE_PREFIX}{}_{suffix}", &workload[..end])
}

/// The statements creating a session role. `verifier` is the SCRAM verifier of its password,
/// `valid_until` an RFC 3339 timestamp.
pub fn create_role_sql(
    role: &str,
    verifier: &str,
    valid_until: &str,
    group_role: &str,
    host: &str,
    workload: &str,
) -> String {
    let role_q = quote_ident(role);
    format!(
        "CREATE ROLE {role_q} LOGIN INHERIT PASSWORD {} VALID UNTIL {} IN ROLE {}; \
         COMMENT ON ROLE {role_q} IS {}",
        quote_literal(verifier),
        quote_literal(valid_until),
        quote_ident(group_role),
        quote_literal(&format!("{COMMENT_MARKER}{host}; workload={workload}")),
    )
}

/// The statements dropping a session role and whatever it owns in the current database. The
/// admin first makes itself a member of the role: `DROP OWNED` needs that, and before
/// PostgreSQL 16 a role's creator is not a member.
pub fn drop_role_sql(role: &str) -> String {
    let role_q = quote_ident(role);
    let role_l = quote_literal(role);
    format!(
        "DO $chunk$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {role_l}) THEN \
         EXECUTE 'GRANT ' || quote_ident({role_l}) || ' TO CURRENT_USER'; \
         EXECUTE 'DROP OWNED BY ' || quote_ident({role_l}); END IF; END $chunk$; \
         DROP ROLE IF EXISTS {role_q}",
    )
}

/// The query listing leftover roles to reap: any host's expired roles, and with `this_host`
/// (at start-up, when none of this host's sessions can be alive) all of this host's roles.
pub fn leftover_roles_sql(this_host: Option<&str>) -> String {
    let this_host = match this_host {
        Some(host) => format!(
            "d.description LIKE {} OR ",
            quote_literal(&format!("{COMMENT_MARKER}{host};%"))
        ),
        None => String::new(),
    };
    format!(
        "SELECT r.rolname FROM pg_roles r \
         JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass \
         WHERE r.rolname LIKE 'jit\\_%' ESCAPE '\\' \
         AND d.description LIKE {} \
         AND ({this_host}r.rolvaliduntil < now())",
        quote_literal(&format!("{COMMENT_MARKER}%")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_show_the_workload() {
        assert_eq!(
            role_name("nightly-chunker", "1a2b3c4d5e6f"),
            "jit_nightly_chunker_1a2b3c4d5e6f"
        );
    }

    #[test]
    fn long_workload_names_are_shortened_to_fit_63_bytes() {
        let name = role_name(&"w".repeat(48), "1a2b3c4d5e6f");
        assert_eq!(name.len(), 63);
        assert!(name.ends_with("_1a2b3c4d5e6f"));
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(r"a\b"), r"E'a\\b'");
    }

    #[test]
    fn create_sql_carries_the_verifier_expiry_group_and_marker() {
        let sql = create_role_sql(
            "jit_w_01",
            "SCRAM-SHA-256$4096:abc",
            "2026-01-01T00:00:00Z",
            "orders reader",
            "host1",
            "w",
        );
        assert!(sql.starts_with(
            r#"CREATE ROLE "jit_w_01" LOGIN INHERIT PASSWORD 'SCRAM-SHA-256$4096:abc'"#
        ));
        assert!(sql.contains(r#"VALID UNTIL '2026-01-01T00:00:00Z' IN ROLE "orders reader""#));
        assert!(sql.contains("host=host1; workload=w"));
    }

    #[test]
    fn drop_sql_drops_owned_objects_then_the_role() {
        let sql = drop_role_sql("jit_w_01");
        assert!(sql.contains("TO CURRENT_USER"));
        assert!(sql.contains("DROP OWNED BY"));
        assert!(sql.ends_with(r#"DROP ROLE IF EXISTS "jit_w_01""#));
    }

    #[test]
    fn leftover_query_is_scoped_to_the_marker() {
        let sql = leftover_roles_sql(Some("host1"));
        assert!(sql.contains("chunk-agent ephemeral role; host=host1;%"));
        assert!(sql.contains("rolvaliduntil < now()"));
        let expired_only = leftover_roles_sql(None);
        assert!(!expired_only.contains("host=host1"));
        assert!(expired_only.contains("AND (r.rolvaliduntil < now())"));
    }
}
