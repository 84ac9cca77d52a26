//! Tests of token sources, verification for a session, role mapping and the password request.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::*;
use crate::oidc::tests::{TestKey, jwks_json};
use crate::pg::codec::{BackendMessage, decode_backend, frontend::PasswordMessage};
use crate::policy::parse_sources;

const NOW: u64 = 1_800_000_000;
const EXEC_ROOT: &str = "/chunk-agent/jobs";

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// A policy with workload `w` whose token section is `token` (keys in `jwks`), reaching a
/// static target `st` (login role `chunker`) and an ephemeral target `et`.
fn policy(jwks: &Path, token: &str) -> PolicySet {
    let text = format!(
        r#"[[workload]]
name = "w"
targets = ["st", "et"]

[workload.token]
issuer = "https://idp.test"
audience = "chunk-agent"
jwks_file = "{}"
{token}

[[target]]
name = "st"
protocol = "postgres"
addresses = ["127.0.0.1:5432"]
[target.credentials]
username = "chunker"
password = {{ env = "PW" }}

[[target]]
name = "et"
protocol = "postgres"
addresses = ["127.0.0.1:5433"]
[target.credentials]
mode = "ephemeral"
username = "admin"
password = {{ env = "PW" }}
group_role = "base"
"#,
        jwks.display()
    );
    parse_sources(&[("p.toml".into(), text)]).unwrap_or_else(|e| panic!("{e}"))
}

fn facts(cgroup: &str) -> ConnectionFacts {
    ConnectionFacts {
        client: "127.0.0.1:40000".parse().unwrap(),
        original_destination: "127.0.0.1:5432".parse().unwrap(),
        pid: 42,
        uid: 1000,
        gid: 1000,
        process_name: "psql".into(),
        executable: None,
        cgroup_id: 7,
        cgroup_path: Some(cgroup.into()),
    }
}

fn claims(groups: &[&str]) -> serde_json::Value {
    json!({ "iss": "https://idp.test", "aud": "chunk-agent", "sub": "job-runner",
            "exp": NOW + 300, "groups": groups })
}

struct Fixture {
    dir: tempfile::TempDir,
    key: TestKey,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::es256("k1");
        std::fs::write(dir.path().join("jwks.json"), jwks_json(&[&key])).unwrap();
        Self { dir, key }
    }
    fn jwks(&self) -> PathBuf {
        self.dir.path().join("jwks.json")
    }
    fn exec_dir(&self) -> PathBuf {
        self.dir.path().join("exec")
    }
    /// Writes an exec token for job `job` of `w`, as `agent exec` does.
    fn exec_token(&self, job: &str, token: &str) {
        let path = exec_token_file(&self.exec_dir(), "w", job);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("{token}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    fn auth(&self, token_section: &str) -> TokenAuth {
        TokenAuth::new(
            &policy(&self.jwks(), token_section),
            EXEC_ROOT,
            &self.exec_dir(),
        )
    }
}

async fn run(
    auth: &TokenAuth,
    cgroup: &str,
    now: u64,
) -> Result<Option<VerifiedToken>, TokenRefusal> {
    // No password source in these tests: the client is never read.
    let (mut client, _peer) = tokio::io::duplex(1024);
    let mut buf = BytesMut::new();
    let clock = move || at(now);
    auth.authenticate(
        "w",
        &facts(cgroup),
        &mut client,
        &mut buf,
        &Caps::default(),
        &clock,
    )
    .await
}

#[test]
fn exec_job_is_found_at_or_below_the_job_cgroup() {
    assert_eq!(
        exec_job_of(EXEC_ROOT, "/chunk-agent/jobs/w/job-1-0"),
        Some(("w", "job-1-0"))
    );
    assert_eq!(
        exec_job_of(EXEC_ROOT, "/chunk-agent/jobs/w/job-1-0/sub"),
        Some(("w", "job-1-0"))
    );
    assert_eq!(exec_job_of(EXEC_ROOT, "/chunk-agent/jobs/w"), None);
    assert_eq!(exec_job_of(EXEC_ROOT, "/chunk-agent/jobsx/w/j"), None);
    assert_eq!(exec_job_of(EXEC_ROOT, "/other/w/j"), None);
}

#[test]
fn candidates_follow_the_fixed_order_and_walk_up_the_cgroups() {
    let f = Fixture::new();
    let set = policy(
        &f.jwks(),
        "sources = [\"password\", \"cgroup\", \"exec\"]\ncgroup_token_path = \"/run/t{cgroup}/token\"",
    );
    let settings = set.workload("w").unwrap().token.as_ref().unwrap();
    let got = candidates(
        settings,
        "w",
        Some("/chunk-agent/jobs/w/job-1/sub"),
        EXEC_ROOT,
        Path::new("/x"),
    );
    assert_eq!(
        got,
        [
            Candidate::File {
                source: TokenSource::Exec,
                paths: vec!["/x/w/job-1.jwt".into()]
            },
            Candidate::File {
                source: TokenSource::Cgroup,
                paths: vec![
                    "/run/t/chunk-agent/jobs/w/job-1/sub/token".into(),
                    "/run/t/chunk-agent/jobs/w/job-1/token".into(),
                    "/run/t/chunk-agent/jobs/w/token".into(),
                    "/run/t/chunk-agent/jobs/token".into(),
                    "/run/t/chunk-agent/token".into(),
                    "/run/t/token".into(),
                ]
            },
            Candidate::Password,
        ]
    );
    // A pattern-matched cgroup has no exec token, whatever its name.
    let got = candidates(
        settings,
        "w",
        Some("/elsewhere/jobs/w/job-1"),
        EXEC_ROOT,
        Path::new("/x"),
    );
    assert!(!got.iter().any(|c| matches!(
        c,
        Candidate::File {
            source: TokenSource::Exec,
            ..
        }
    )));
    // Another workload's job cgroup is not this workload's token.
    let got = candidates(
        settings,
        "w",
        Some("/chunk-agent/jobs/v/job-1"),
        EXEC_ROOT,
        Path::new("/x"),
    );
    assert!(!got.iter().any(|c| matches!(
        c,
        Candidate::File {
            source: TokenSource::Exec,
            ..
        }
    )));
}

#[tokio::test]
async fn exec_token_is_verified_and_its_groups_mapped_to_roles() {
    let f = Fixture::new();
    f.exec_token("job-1-0", &f.key.sign(&claims(&["etl", "other"])));
    let auth = f.auth("sources = [\"exec\"]\n[workload.token.roles]\netl = [\"writer\", \"reader\"]\nanalysts = \"reader\"");
    let token = run(&auth, "/chunk-agent/jobs/w/job-1-0/worker", NOW)
        .await
        .unwrap()
        .expect("a token");
    assert_eq!(token.source, TokenSource::Exec);
    assert_eq!(token.claims.subject, "job-runner");
    assert_eq!(token.roles, ["reader", "writer"]);
    assert_eq!(token.valid_until, at(NOW + 300 + 60));
    assert_eq!(
        time_left(token.valid_until, at(NOW + 100)),
        Duration::from_secs(260)
    );
    assert_eq!(time_left(token.valid_until, at(NOW + 999)), Duration::ZERO);
}

#[tokio::test]
async fn expired_forged_and_wrong_audience_tokens_are_refused_with_28000() {
    let f = Fixture::new();
    let auth = f.auth("sources = [\"exec\"]");
    let forger = TestKey::es256("k1");
    let mut wrong_aud = claims(&[]);
    wrong_aud["aud"] = json!("someone-else");
    for (job, token, code, what) in [
        (
            "job-1-0",
            f.key.sign(&claims(&[])),
            "token-expired",
            "expired",
        ),
        (
            "job-2-0",
            forger.sign(&claims(&[])),
            "token-invalid",
            "signature",
        ),
        (
            "job-3-0",
            f.key.sign(&wrong_aud),
            "token-invalid",
            "audience",
        ),
    ] {
        f.exec_token(job, &token);
        let now = if code == "token-expired" {
            NOW + 400
        } else {
            NOW
        };
        let refusal = run(&auth, &format!("/chunk-agent/jobs/w/{job}"), now)
            .await
            .unwrap_err();
        assert_eq!(refusal.code(), code, "{refusal}");
        assert_eq!(refusal.sqlstate(), "28000");
        assert!(refusal.client_message().contains(what), "{refusal}");
        assert!(!refusal.client_message().contains(&token));
        assert_eq!(refusal.source(), Some(TokenSource::Exec));
    }
}

#[tokio::test]
async fn missing_token_is_refused_when_required_and_ignored_when_optional() {
    let f = Fixture::new();
    let refusal = run(
        &f.auth("sources = [\"exec\"]"),
        "/chunk-agent/jobs/w/job-9-0",
        NOW,
    )
    .await
    .unwrap_err();
    assert_eq!(refusal.code(), "token-missing");
    assert!(
        refusal.to_string().contains("requires a token"),
        "{refusal}"
    );
    let optional = f.auth("required = false\nsources = [\"exec\"]");
    assert_eq!(
        run(&optional, "/chunk-agent/jobs/w/job-9-0", NOW).await,
        Ok(None)
    );
}

#[tokio::test]
async fn a_present_but_invalid_token_is_refused_even_when_optional() {
    let f = Fixture::new();
    f.exec_token("job-1-0", "not-a-jwt");
    let optional = f.auth("required = false\nsources = [\"exec\"]");
    let refusal = run(&optional, "/chunk-agent/jobs/w/job-1-0", NOW)
        .await
        .unwrap_err();
    assert_eq!(refusal.code(), "token-invalid");
}

#[tokio::test]
async fn token_whose_groups_map_to_no_role_is_refused() {
    let f = Fixture::new();
    f.exec_token("job-1-0", &f.key.sign(&claims(&["interns"])));
    let auth = f.auth("sources = [\"exec\"]\n[workload.token.roles]\netl = \"writer\"");
    let refusal = run(&auth, "/chunk-agent/jobs/w/job-1-0", NOW)
        .await
        .unwrap_err();
    assert_eq!(refusal.code(), "token-no-role");
    assert_eq!(refusal.subject(), Some("job-runner"));
}

#[tokio::test]
async fn cgroup_token_file_of_an_ancestor_is_used_and_group_writable_files_are_refused() {
    let f = Fixture::new();
    let root = f.dir.path().join("tokens");
    let template = format!(
        "cgroup_token_path = \"{}{{cgroup}}/token\"\nsources = [\"cgroup\"]",
        root.display()
    );
    let dir = root.join("pods/p1");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, f.key.sign(&claims(&[]))).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let auth = f.auth(&template);
    let token = run(&auth, "/pods/p1/container-a", NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.source, TokenSource::Cgroup);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let refusal = run(&auth, "/pods/p1/container-a", NOW).await.unwrap_err();
    assert_eq!(refusal.code(), "token-unreadable");
    assert!(refusal.to_string().contains("writable"), "{refusal}");
}

#[tokio::test]
async fn exec_token_file_readable_by_others_is_refused() {
    let f = Fixture::new();
    f.exec_token("job-1-0", &f.key.sign(&claims(&[])));
    let path = exec_token_file(&f.exec_dir(), "w", "job-1-0");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refusal = run(
        &f.auth("sources = [\"exec\"]"),
        "/chunk-agent/jobs/w/job-1-0",
        NOW,
    )
    .await
    .unwrap_err();
    assert_eq!(refusal.code(), "token-unreadable");
}

#[tokio::test]
async fn password_source_asks_for_cleartext_password_and_verifies_it() {
    let f = Fixture::new();
    let auth = f.auth("sources = [\"password\"]");
    let token = f.key.sign(&claims(&["etl"]));
    let (mut proxy_side, mut client_side) = tokio::io::duplex(64 * 1024);
    let client = tokio::spawn({
        let token = token.clone();
        async move {
            let mut got = BytesMut::new();
            // The request arrives before the client answers.
            loop {
                if let Some(msg) = decode_backend(&mut got, &Caps::default()).unwrap() {
                    assert_eq!(
                        msg,
                        BackendMessage::Authentication(Authentication::CleartextPassword)
                    );
                    break;
                }
                client_side.read_buf(&mut got).await.unwrap();
            }
            let mut out = BytesMut::new();
            PasswordMessage::from_password(&token).encode(&mut out);
            out.extend_from_slice(b"Q\0\0\0\x0dselect 1\0");
            client_side.write_all(&out).await.unwrap();
            client_side
        }
    });
    let mut buf = BytesMut::new();
    let clock = || at(NOW);
    let verified = auth
        .authenticate(
            "w",
            &facts("/x"),
            &mut proxy_side,
            &mut buf,
            &Caps::default(),
            &clock,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(verified.source, TokenSource::Password);
    assert_eq!(verified.claims.groups, ["etl"]);
    // What followed the password stays for the session.
    assert_eq!(&buf[..], b"Q\0\0\0\x0dselect 1\0");
    drop(client.await.unwrap());
}

#[tokio::test]
async fn client_that_leaves_instead_of_sending_a_password_is_refused() {
    let (mut proxy_side, client_side) = tokio::io::duplex(1024);
    drop(client_side);
    let mut buf = BytesMut::new();
    let refusal = ask_password(&mut proxy_side, &mut buf, &Caps::default())
        .await
        .unwrap_err();
    assert_eq!(refusal.code(), "token-missing");
}

fn verified(roles: &[&str]) -> VerifiedToken {
    VerifiedToken {
        claims: Claims {
            subject: "s".into(),
            issuer: "i".into(),
            groups: vec![],
            expires_at: at(NOW),
            not_before: None,
            jwt_id: None,
        },
        source: TokenSource::Exec,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        valid_until: at(NOW),
    }
}

#[test]
fn static_login_role_must_be_granted_and_ephemeral_roles_are_granted() {
    let f = Fixture::new();
    let set = policy(
        &f.jwks(),
        "[workload.token.roles]\netl = [\"chunker\", \"writer\"]",
    );
    let settings = set.workload("w").unwrap().token.as_ref();
    let st = set.target("st").unwrap().credentials.as_ref().unwrap();
    let et = set.target("et").unwrap().credentials.as_ref().unwrap();
    let granted = verified(&["chunker", "writer"]);
    let other = verified(&["writer"]);
    assert_eq!(
        login_roles(st, "st", Some(&granted), settings),
        Ok(RoleGrant::Unchanged)
    );
    let refusal = login_roles(st, "st", Some(&other), settings).unwrap_err();
    assert_eq!(refusal.code(), "token-no-role");
    assert!(refusal.to_string().contains("chunker"), "{refusal}");
    assert_eq!(
        login_roles(et, "et", Some(&other), settings),
        Ok(RoleGrant::Grant(vec!["writer".into()]))
    );
    assert_eq!(
        login_roles(et, "et", None, settings),
        Ok(RoleGrant::Unchanged)
    );
    assert_eq!(
        grant_roles_sql("jit_w_1", &["writer".into(), "we\"ird".into()]).unwrap(),
        r#"GRANT "writer", "we""ird" TO "jit_w_1""#
    );
    assert_eq!(grant_roles_sql("jit_w_1", &[]), None);
}

#[test]
fn expired_session_error_is_fatal_57p01_with_the_documented_message() {
    let mut out = BytesMut::new();
    expired_error().encode(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("FATAL"), "{text}");
    assert!(text.contains("57P01"), "{text}");
    assert!(
        text.contains("chunk agent: the workload token expired"),
        "{text}"
    );
}
