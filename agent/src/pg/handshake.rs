//! What the proxy sends upstream for a client's startup: pure decisions on the startup
//! parameters.
//!
//! - `user` is the role the agent logs in as (the client's `user` is only a claim and is dropped);
//! - `database` is the policy's, else the client's, else (as libpq does) the client's user name;
//! - `application_name` carries the workload identity: `chunk:<workload>`, followed by the
//!   client's own name in parentheses when it sent one;
//! - `replication` is refused unless the target allows it;
//! - `options` may set ordinary settings (`-c statement_timeout=5s`) but never `role` or
//!   `session_authorization`, which would switch the identity the agent logged in with;
//! - protocol extension options (`_pq_.*`) are not forwarded: upstream speaks protocol 3.0, and the
//!   client is told they were not recognised.

use crate::pg::sqlstate;

/// Longest identifier PostgreSQL keeps (NAMEDATALEN - 1).
const MAX_IDENTIFIER: usize = 63;

/// Settings that `options` must not carry.
const FORBIDDEN_OPTIONS: [&str; 2] = ["role", "session_authorization"];

/// Inputs of the decision.
#[derive(Debug, Clone, Copy)]
pub struct HandshakeContext<'a> {
    pub workload: &'a str,
    pub target: &'a str,
    /// The role the agent logs in as upstream.
    pub login_role: &'a str,
    /// The policy's forced database, if any.
    pub database: Option<&'a str>,
    pub allow_replication: bool,
}

/// The upstream startup parameters and what to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamStartup {
    pub params: Vec<(String, String)>,
    pub database: String,
    /// Protocol options the client asked for and will not get (for NegotiateProtocolVersion).
    pub unrecognized_options: Vec<String>,
}

impl UpstreamStartup {
    /// Logs in as `role` instead (a just-in-time role made after the startup was decided).
    pub fn set_login_role(&mut self, role: &str) {
        if let Some((_, user)) = self.params.iter_mut().find(|(k, _)| k == "user") {
            *user = role.to_owned();
        }
    }
}

/// Why a startup is refused; sent to the client as a FATAL ErrorResponse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeRefusal {
    #[error("replication connections to target {target} are not allowed for workload {workload}")]
    Replication { workload: String, target: String },
    #[error(
        "startup option {setting:?} is not allowed through the agent: it would change the session \
         identity"
    )]
    ForbiddenOption { setting: String },
    #[error("malformed startup options: {0}")]
    MalformedOptions(String),
}

impl HandshakeRefusal {
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Self::Replication { .. } | Self::ForbiddenOption { .. } => {
                sqlstate::INVALID_AUTHORIZATION_SPECIFICATION
            }
            Self::MalformedOptions(_) => sqlstate::PROTOCOL_VIOLATION,
        }
    }
}

fn is_replication_requested(value: &str) -> bool {
    !matches!(
        value.to_ascii_lowercase().as_str(),
        "false" | "off" | "no" | "0"
    )
}

/// Truncates to PostgreSQL's identifier length on a character boundary.
fn truncate_identifier(mut s: String) -> String {
    if s.len() > MAX_IDENTIFIER {
        let mut end = MAX_IDENTIFIER;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The setting names an `options` value sets (`-c name=value`, `-cname=value`, `--name=value`),
/// with backslash-escaped spaces as PostgreSQL parses them.
fn option_settings(options: &str) -> Result<Vec<String>, HandshakeRefusal> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_ascii_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut names = Vec::new();
    let mut iter = words.into_iter();
    while let Some(w) = iter.next() {
        let assignment = if w == "-c" {
            iter.next()
                .ok_or_else(|| HandshakeRefusal::MalformedOptions("-c without a setting".into()))?
        } else if let Some(rest) = w.strip_prefix("-c") {
            rest.to_owned()
        } else if let Some(rest) = w.strip_prefix("--") {
            rest.to_owned()
        } else {
            return Err(HandshakeRefusal::MalformedOptions(format!(
                "unsupported switch {w:?}: only -c name=value and --name=value are accepted"
            )));
        };
        let name = assignment.split_once('=').map(|(n, _)| n).ok_or_else(|| {
            HandshakeRefusal::MalformedOptions(format!("{assignment:?} has no value"))
        })?;
        // PostgreSQL folds '-' to '_' in option names.
        names.push(name.replace('-', "_").to_ascii_lowercase());
    }
    Ok(names)
}

/// Decides the upstream startup parameters for a client's `params`.
pub fn upstream_startup(
    client_params: &[(String, String)],
    ctx: &HandshakeContext<'_>,
) -> Result<UpstreamStartup, HandshakeRefusal> {
    let get = |name: &str| {
        client_params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut params: Vec<(String, String)> = Vec::with_capacity(client_params.len() + 2);
    let mut unrecognized_options = Vec::new();
    if let Some(value) = get("replication")
        && is_replication_requested(value)
    {
        if !ctx.allow_replication {
            return Err(HandshakeRefusal::Replication {
                workload: ctx.workload.to_owned(),
                target: ctx.target.to_owned(),
            });
        }
        params.push(("replication".into(), value.to_owned()));
    }
    if let Some(options) = get("options")
        && let Some(setting) = option_settings(options)?
            .into_iter()
            .find(|n| FORBIDDEN_OPTIONS.contains(&n.as_str()))
    {
        return Err(HandshakeRefusal::ForbiddenOption { setting });
    }
    let database = ctx
        .database
        .or(get("database"))
        .or(get("user"))
        .unwrap_or(ctx.login_role)
        .to_owned();
    let application_name = match get("application_name").filter(|a| !a.is_empty()) {
        Some(client) => format!("chunk:{} ({client})", ctx.workload),
        None => format!("chunk:{}", ctx.workload),
    };
    params.push(("user".into(), ctx.login_role.to_owned()));
    params.push(("database".into(), database.clone()));
    params.push((
        "application_name".into(),
        truncate_identifier(application_name),
    ));
    for (name, value) in client_params {
        match name.as_str() {
            "user" | "database" | "application_name" | "replication" => {}
            n if n.starts_with("_pq_.") => unrecognized_options.push(n.to_owned()),
            _ => params.push((name.clone(), value.clone())),
        }
    }
    Ok(UpstreamStartup {
        params,
        database,
        unrecognized_options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> HandshakeContext<'static> {
        HandshakeContext {
            workload: "nightly",
            target: "orders",
            login_role: "chunker",
            database: None,
            allow_replication: false,
        }
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn get<'a>(p: &'a UpstreamStartup, name: &str) -> Option<&'a str> {
        p.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_client_user_is_replaced_by_the_login_role() {
        let up =
            upstream_startup(&params(&[("user", "root"), ("database", "app")]), &ctx()).unwrap();
        assert_eq!(get(&up, "user"), Some("chunker"));
        assert_eq!(get(&up, "database"), Some("app"));
        assert_eq!(up.params.iter().filter(|(k, _)| k == "user").count(), 1);
    }

    #[test]
    fn a_later_login_role_replaces_the_user_only() {
        let mut up =
            upstream_startup(&params(&[("user", "u"), ("database", "app")]), &ctx()).unwrap();
        up.set_login_role("jit_nightly_01");
        assert_eq!(get(&up, "user"), Some("jit_nightly_01"));
        assert_eq!(get(&up, "database"), Some("app"));
        assert_eq!(up.params.iter().filter(|(k, _)| k == "user").count(), 1);
    }

    #[test]
    fn the_database_defaults_to_the_client_user_like_libpq() {
        let up = upstream_startup(&params(&[("user", "jobuser")]), &ctx()).unwrap();
        assert_eq!(up.database, "jobuser");
    }

    #[test]
    fn the_policy_database_wins() {
        let mut c = ctx();
        c.database = Some("orders");
        let up = upstream_startup(&params(&[("user", "u"), ("database", "other")]), &c).unwrap();
        assert_eq!(up.database, "orders");
    }

    #[test]
    fn application_name_carries_the_workload_and_the_clients_name() {
        let up = upstream_startup(
            &params(&[("user", "u"), ("application_name", "psql")]),
            &ctx(),
        )
        .unwrap();
        assert_eq!(get(&up, "application_name"), Some("chunk:nightly (psql)"));
        let up = upstream_startup(&params(&[("user", "u")]), &ctx()).unwrap();
        assert_eq!(get(&up, "application_name"), Some("chunk:nightly"));
    }

    #[test]
    fn application_name_is_cut_to_63_bytes_on_a_char_boundary() {
        let long = "é".repeat(60);
        let up = upstream_startup(
            &params(&[("user", "u"), ("application_name", &long)]),
            &ctx(),
        )
        .unwrap();
        let name = get(&up, "application_name").unwrap();
        assert!(name.len() <= 63 && name.starts_with("chunk:nightly"));
    }

    #[test]
    fn replication_is_refused_unless_allowed() {
        let p = params(&[("user", "u"), ("replication", "database")]);
        assert!(matches!(
            upstream_startup(&p, &ctx()),
            Err(HandshakeRefusal::Replication { .. })
        ));
        let mut c = ctx();
        c.allow_replication = true;
        assert_eq!(
            get(&upstream_startup(&p, &c).unwrap(), "replication"),
            Some("database")
        );
        let off = params(&[("user", "u"), ("replication", "false")]);
        assert!(upstream_startup(&off, &ctx()).is_ok());
    }

    #[test]
    fn options_switching_the_role_are_refused_in_every_spelling() {
        for options in [
            "-c role=admin",
            "-crole=admin",
            "--role=admin",
            "-c statement_timeout=5s -c session-authorization=postgres",
            "-c ROLE=admin",
        ] {
            let err = upstream_startup(&params(&[("user", "u"), ("options", options)]), &ctx())
                .unwrap_err();
            assert!(
                matches!(err, HandshakeRefusal::ForbiddenOption { .. }),
                "{options}: {err}"
            );
        }
    }

    #[test]
    fn ordinary_options_pass_through() {
        let up = upstream_startup(
            &params(&[
                ("user", "u"),
                ("options", "-c statement_timeout=5s --work_mem=64MB"),
            ]),
            &ctx(),
        )
        .unwrap();
        assert_eq!(
            get(&up, "options"),
            Some("-c statement_timeout=5s --work_mem=64MB")
        );
    }

    #[test]
    fn unknown_switches_in_options_are_refused() {
        let err = upstream_startup(&params(&[("user", "u"), ("options", "-D /tmp")]), &ctx())
            .unwrap_err();
        assert!(matches!(err, HandshakeRefusal::MalformedOptions(_)));
    }

    #[test]
    fn protocol_options_are_reported_not_forwarded() {
        let up = upstream_startup(
            &params(&[
                ("user", "u"),
                ("_pq_.compression", "on"),
                ("DateStyle", "ISO"),
            ]),
            &ctx(),
        )
        .unwrap();
        assert_eq!(up.unrecognized_options, ["_pq_.compression"]);
        assert_eq!(get(&up, "_pq_.compression"), None);
        assert_eq!(get(&up, "DateStyle"), Some("ISO"));
    }
}
