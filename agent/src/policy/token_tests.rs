//! Tests of the `[workload.token]` section: files in, token settings or positioned errors out.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::oidc::JwksSource;

const TARGET: &str = r#"[[target]]
name = "db"
protocol = "postgres"
addresses = ["127.0.0.1:5432"]

[target.credentials]
username = "chunker"
password = { env = "PW" }
"#;

/// A workload `w` (lines 1-3) with `token` from line 4.
fn policy(token: &str) -> Vec<(PathBuf, String)> {
    vec![
        (
            PathBuf::from("w.toml"),
            format!("[[workload]]\nname = \"w\"\ntargets = [\"db\"]\n{token}"),
        ),
        (PathBuf::from("db.toml"), TARGET.to_owned()),
    ]
}

fn token_of(token: &str) -> TokenSettings {
    let set = parse_sources(&policy(token)).unwrap_or_else(|e| panic!("expected success:\n{e}"));
    set.workload("w")
        .unwrap()
        .token
        .clone()
        .expect("a token section")
}

/// The errors, as `line:column: message`.
fn errors_of(token: &str) -> Vec<String> {
    match parse_sources(&policy(token)) {
        Ok(set) => panic!(
            "expected errors, got {:?}",
            set.workload("w").unwrap().token
        ),
        Err(errors) => errors
            .iter()
            .map(|e| {
                assert_eq!(e.file, PathBuf::from("w.toml"), "{e}");
                format!("{}:{}: {}", e.line, e.column, e.message)
            })
            .collect(),
    }
}

fn only_error(token: &str, at: &str, needle: &str) {
    let errors = errors_of(token);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with(at), "expected at {at}: {}", errors[0]);
    assert!(
        errors[0].contains(needle),
        "`{needle}` not in {}",
        errors[0]
    );
}

const MINIMAL: &str = "[workload.token]\nissuer = \"https://idp.test\"\naudience = \"chunk-agent\"\njwks_file = \"/etc/chunk-agent/idp.jwks.json\"\n";

#[test]
fn minimal_token_section_has_safe_defaults() {
    let t = token_of(MINIMAL);
    assert!(t.required);
    assert_eq!(t.issuer, "https://idp.test");
    assert_eq!(t.audiences, ["chunk-agent"]);
    assert_eq!(
        t.jwks,
        JwksSource::File("/etc/chunk-agent/idp.jwks.json".into())
    );
    assert_eq!(t.groups_claim, "groups");
    assert_eq!(t.leeway, Duration::from_secs(60));
    assert_eq!(t.sources, [TokenSource::Exec, TokenSource::Password]);
    assert_eq!(t.cgroup_token_path, None);
    assert!(!t.maps_roles());
    assert_eq!(t.source.line, 4);
}

#[test]
fn full_token_section_parses() {
    let t = token_of(
        r#"[workload.token]
required = false
issuer = "https://kubernetes.default.svc"
audience = ["chunk-agent", "pg"]
jwks_url = "https://idp.test/.well-known/jwks.json"
groups_claim = "roles"
leeway = "30s"
sources = ["password", "cgroup", "exec"]
cgroup_token_path = "/run/chunk-agent/tokens{cgroup}/token"

[workload.token.roles]
analysts = "reporting_reader"
"/org/etl" = ["reporting_reader", "Reporting Writer"]
"#,
    );
    assert!(!t.required);
    assert_eq!(t.audiences, ["chunk-agent", "pg"]);
    assert!(
        matches!(&t.jwks, JwksSource::Url(u) if u.as_str() == "https://idp.test/.well-known/jwks.json")
    );
    assert_eq!(t.groups_claim, "roles");
    assert_eq!(t.leeway, Duration::from_secs(30));
    // Always looked at in this order, whatever the order written.
    assert_eq!(
        t.sources,
        [
            TokenSource::Exec,
            TokenSource::Cgroup,
            TokenSource::Password
        ]
    );
    assert_eq!(
        t.cgroup_token_path.as_ref().unwrap().as_str(),
        "/run/chunk-agent/tokens{cgroup}/token"
    );
    assert_eq!(t.roles["analysts"], ["reporting_reader"]);
    assert_eq!(
        t.roles["/org/etl"],
        ["reporting_reader", "Reporting Writer"]
    );
}

#[test]
fn groups_map_to_the_union_of_their_roles() {
    let t = token_of(&format!(
        "{MINIMAL}[workload.token.roles]\nanalysts = \"reader\"\netl = [\"writer\", \"reader\"]\nops = \"admin\"\n"
    ));
    let groups = |g: &[&str]| t.roles_for(&g.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(groups(&["etl", "analysts"]), ["reader", "writer"]);
    assert_eq!(groups(&["analysts", "unknown"]), ["reader"]);
    assert!(groups(&["unknown"]).is_empty());
    assert!(groups(&[]).is_empty());
    assert!(t.maps_roles());
}

#[test]
fn cgroup_path_is_a_default_source_when_given() {
    let t = token_of(&format!(
        "{MINIMAL}cgroup_token_path = \"/run/tokens/{{workload}}.jwt\"\n"
    ));
    assert_eq!(
        t.sources,
        [
            TokenSource::Exec,
            TokenSource::Cgroup,
            TokenSource::Password
        ]
    );
    let path = t.cgroup_token_path.unwrap();
    assert_eq!(
        path.expand("/a/b", "w"),
        Some(PathBuf::from("/run/tokens/w.jwt"))
    );
}

#[test]
fn token_path_template_expands_the_cgroup_and_refuses_dot_segments() {
    let p = TokenPathTemplate::parse("/run/tokens{cgroup}/token").unwrap();
    assert!(p.uses_cgroup());
    assert_eq!(
        p.expand("/chunk-jobs/nightly/run-1", "w"),
        Some(PathBuf::from("/run/tokens/chunk-jobs/nightly/run-1/token"))
    );
    assert_eq!(p.expand("/", "w"), Some(PathBuf::from("/run/tokens/token")));
    assert_eq!(p.expand("/a/../etc", "w"), None);
    assert_eq!(p.expand("relative", "w"), None);
    assert_eq!(p.expand("/a//b", "w"), None);
    for bad in [
        "{cgroup}/token",
        "run/token",
        "/run/{pod}/token",
        "/run/{cgroup/token",
        "/run/../token",
        "/run/tokens/",
    ] {
        assert!(TokenPathTemplate::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn unknown_field_in_the_token_section_is_refused_with_its_line() {
    only_error(
        &format!("{MINIMAL}audiences = [\"x\"]\n"),
        "8:1:",
        "unknown field `audiences`",
    );
}

#[test]
fn missing_issuer_or_keys_are_refused() {
    only_error(
        "[workload.token]\naudience = \"a\"\njwks_file = \"/k.json\"\n",
        "4:1:",
        "missing field `issuer`",
    );
    only_error(
        "[workload.token]\nissuer = \"https://idp.test\"\naudience = \"a\"\n",
        "4:1:",
        "needs the issuer's public keys",
    );
}

#[test]
fn both_jwks_file_and_url_are_refused() {
    only_error(
        &format!("{MINIMAL}jwks_url = \"https://idp.test/jwks\"\n"),
        "8:12:",
        "not both",
    );
}

#[test]
fn relative_jwks_file_and_plain_http_url_are_refused() {
    only_error(
        "[workload.token]\nissuer = \"i\"\naudience = \"a\"\njwks_file = \"keys.json\"\n",
        "7:13:",
        "must be absolute",
    );
    only_error(
        "[workload.token]\nissuer = \"i\"\naudience = \"a\"\njwks_url = \"http://idp.test/jwks\"\n",
        "7:12:",
        "must use https",
    );
    // Plain http to a loopback address is accepted (a local key server).
    let t = token_of(
        "[workload.token]\nissuer = \"i\"\naudience = \"a\"\njwks_url = \"http://127.0.0.1:8080/jwks\"\n",
    );
    assert!(matches!(t.jwks, JwksSource::Url(_)));
}

#[test]
fn bad_sources_are_refused_at_their_position() {
    only_error(
        &format!("{MINIMAL}sources = [\"env\"]\n"),
        "8:12:",
        "unknown token source `env`",
    );
    only_error(
        &format!("{MINIMAL}sources = []\n"),
        "8:11:",
        "must not be empty",
    );
    only_error(
        &format!("{MINIMAL}sources = [\"exec\", \"exec\"]\n"),
        "8:20:",
        "listed twice",
    );
    only_error(
        &format!("{MINIMAL}sources = [\"cgroup\"]\n"),
        "8:11:",
        "needs `cgroup_token_path`",
    );
    only_error(
        &format!("{MINIMAL}sources = [\"exec\"]\ncgroup_token_path = \"/run/t{{cgroup}}/token\"\n"),
        "9:21:",
        "only used with the token source `cgroup`",
    );
    only_error(
        &format!("{MINIMAL}cgroup_token_path = \"tokens/{{cgroup}}\"\n"),
        "8:21:",
        "must be an absolute path",
    );
}

#[test]
fn bad_leeway_and_audience_are_refused() {
    only_error(
        &format!("{MINIMAL}leeway = \"1h\"\n"),
        "8:10:",
        "at most 5m",
    );
    only_error(
        &format!("{MINIMAL}leeway = \"soon\"\n"),
        "8:10:",
        "invalid leeway",
    );
    only_error(
        "[workload.token]\nissuer = \"i\"\naudience = []\njwks_file = \"/k.json\"\n",
        "6:12:",
        "at least one audience",
    );
    only_error(
        "[workload.token]\nissuer = \"i\"\naudience = 5\njwks_file = \"/k.json\"\n",
        "6:12:",
        "a string or an array of strings",
    );
}

#[test]
fn bad_role_mappings_are_refused() {
    only_error(
        &format!("{MINIMAL}[workload.token.roles]\n"),
        "8:1:",
        "is empty",
    );
    only_error(
        &format!("{MINIMAL}[workload.token.roles]\netl = []\n"),
        "9:7:",
        "maps to no role",
    );
    only_error(
        &format!("{MINIMAL}[workload.token.roles]\netl = [\"r\", \"r\"]\n"),
        "9:7:",
        "listed twice",
    );
    only_error(
        &format!(
            "{MINIMAL}[workload.token.roles]\netl = \"{}\"\n",
            "r".repeat(64)
        ),
        "9:7:",
        "at most 63 bytes",
    );
}

#[test]
fn a_token_section_error_does_not_hide_other_workload_errors() {
    let errors = errors_of(&format!(
        "{MINIMAL}leeway = \"1h\"\n[[workload.access]]\ntarget = \"nope\"\n"
    ));
    assert_eq!(errors.len(), 2, "{errors:#?}");
}
