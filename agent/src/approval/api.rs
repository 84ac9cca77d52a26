//! The approval API: HTTP/1.1 + JSON on the agent's approval address (loopback only: the API
//! has no TLS of its own). Every request needs `Authorization: Bearer <JWT>`, verified by an
//! [`ApproverAuth`] (the OIDC key set in production).
//!
//! | Method and path | Does | Answers |
//! |---|---|---|
//! | `GET /approvals` | pending requests, live grants, recent decisions | 200 |
//! | `GET /approvals/{id}` | one request | 200, 404 |
//! | `POST /approvals/{id}/approve` | approve | 200, 403 (group, self), 404, 409 (decided, expired) |
//! | `POST /approvals/{id}/deny` | deny | as approve |
//! | `POST /grants` | create a grant (JSON body) | 201, 400, 403 (own workload) |
//! | `DELETE /grants/{id}` | revoke a grant | 200, 404 |
//!
//! A missing or refused token is 401 with the reason (never the token) and an
//! `approval-auth-failed` audit event. Errors are `{"error": "..."}`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{ConnectInfo, Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::book::{Approver, GrantError, GrantSpec, RevokeError, Vote, VoteError, VoteOutcome};
use super::hub::ApprovalHub;
use crate::audit;
use crate::policy::Operation;

/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024;

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct AuthError {
    /// A short stable code for audit events (`expired`, `bad-signature`, ...).
    pub code: &'static str,
    /// What failed; never contains the token.
    pub reason: String,
}

pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Approver, AuthError>> + Send + 'a>>;

/// Turns a bearer token into an authenticated approver.
pub trait ApproverAuth: Send + Sync + 'static {
    fn authenticate<'a>(&'a self, bearer: &'a str, now: SystemTime) -> AuthFuture<'a>;
}

impl<F: crate::oidc::fetch::FetchJwks + 'static> ApproverAuth for crate::oidc::fetch::KeySet<F> {
    fn authenticate<'a>(&'a self, bearer: &'a str, now: SystemTime) -> AuthFuture<'a> {
        Box::pin(async move {
            self.verify(bearer, now)
                .await
                .map(|claims| Approver {
                    subject: claims.subject,
                    groups: claims.groups,
                })
                .map_err(|e| AuthError {
                    code: e.code(),
                    reason: e.to_string(),
                })
        })
    }
}

struct Api {
    hub: ApprovalHub,
    auth: Arc<dyn ApproverAuth>,
}

type Shared = State<Arc<Api>>;
type Peer = ConnectInfo<SocketAddr>;

/// The API's routes; serve them with [`serve`].
pub fn router(hub: ApprovalHub, auth: Arc<dyn ApproverAuth>) -> Router {
    Router::new()
        .route("/approvals", get(list))
        .route("/approvals/{id}", get(show))
        .route("/approvals/{id}/approve", post(approve))
        .route("/approvals/{id}/deny", post(deny))
        .route("/grants", post(create_grant))
        .route("/grants/{id}", delete(revoke))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::new(Api { hub, auth }))
}

/// Serves the API on `listener` until the task is aborted.
pub async fn serve(
    listener: tokio::net::TcpListener,
    hub: ApprovalHub,
    auth: Arc<dyn ApproverAuth>,
) -> std::io::Result<()> {
    let app = router(hub, auth).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await
}

/// An error answer: `{"error": message}`.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

type ApiResult = Result<Response, ApiError>;

impl Api {
    async fn approver(&self, headers: &HeaderMap, peer: SocketAddr) -> Result<Approver, ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let result = match token {
            None => Err(AuthError {
                code: "missing-token",
                reason: "an `Authorization: Bearer <token>` header is required".into(),
            }),
            Some(token) => self.auth.authenticate(token, self.hub.now()).await,
        };
        result.map_err(|e| {
            self.hub
                .audit_event(audit::approval_auth_failed(peer, e.code, &e.reason));
            ApiError(StatusCode::UNAUTHORIZED, e.reason)
        })
    }
}

async fn list(State(api): Shared, ConnectInfo(peer): Peer, headers: HeaderMap) -> ApiResult {
    api.approver(&headers, peer).await?;
    Ok(Json(api.hub.list()).into_response())
}

async fn show(
    State(api): Shared,
    ConnectInfo(peer): Peer,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    api.approver(&headers, peer).await?;
    match api.hub.request_json(&id) {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no approval request {id}"),
        )),
    }
}

async fn approve(
    State(api): Shared,
    ConnectInfo(peer): Peer,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    cast(&api, peer, &id, &headers, Vote::Approve).await
}

async fn deny(
    State(api): Shared,
    ConnectInfo(peer): Peer,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    cast(&api, peer, &id, &headers, Vote::Deny).await
}

async fn cast(api: &Api, peer: SocketAddr, id: &str, headers: &HeaderMap, vote: Vote) -> ApiResult {
    let approver = api.approver(headers, peer).await?;
    let outcome = api.hub.vote(id, &approver, vote).map_err(|e| {
        let status = match e {
            VoteError::Unknown(_) => StatusCode::NOT_FOUND,
            VoteError::AlreadyDecided { .. } | VoteError::Expired(_) => StatusCode::CONFLICT,
            VoteError::NotInGroup { .. } | VoteError::SelfApproval { .. } => StatusCode::FORBIDDEN,
        };
        ApiError(status, e.to_string())
    })?;
    let body = match outcome {
        VoteOutcome::Recorded { approvals, needed } => {
            json!({ "id": id, "outcome": "recorded", "approvals": approvals, "needed": needed })
        }
        VoteOutcome::AlreadyCounted { approvals, needed } => json!({
            "id": id, "outcome": "already-counted", "approvals": approvals, "needed": needed
        }),
        VoteOutcome::Approved { approvers } => {
            json!({ "id": id, "outcome": "approved", "approvers": approvers })
        }
        VoteOutcome::Denied { by } => json!({ "id": id, "outcome": "denied", "by": by }),
    };
    Ok(Json(body).into_response())
}

/// The body of `POST /grants`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    pub workload: String,
    pub target: String,
    /// Policy operation names (`write`, `bulk_write`, ...).
    pub operations: Vec<String>,
    /// `schema.table` globs.
    #[serde(default)]
    pub tables: Vec<String>,
    /// How long, e.g. `2h`.
    pub duration: String,
    #[serde(default)]
    pub reason: Option<String>,
}

async fn create_grant(
    State(api): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let by = api.approver(&headers, peer).await?;
    let bad = |m: String| ApiError(StatusCode::BAD_REQUEST, m);
    let body: GrantBody =
        serde_json::from_slice(&body).map_err(|e| bad(format!("invalid grant: {e}")))?;
    let operations = body
        .operations
        .iter()
        .map(|name| {
            Operation::from_name(name).ok_or_else(|| {
                let all: Vec<&str> = Operation::ALL.iter().map(|o| o.as_str()).collect();
                bad(format!(
                    "unknown operation `{name}` (operations: {})",
                    all.join(", ")
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let duration = humantime::parse_duration(&body.duration)
        .map_err(|e| bad(format!("invalid duration `{}`: {e}", body.duration)))?;
    let grant = api
        .hub
        .grant(GrantSpec {
            workload: body.workload,
            target: body.target,
            operations,
            tables: body.tables,
            duration,
            by,
            reason: body.reason,
        })
        .map_err(|e| {
            let status = match e {
                GrantError::SelfGrant(_) => StatusCode::FORBIDDEN,
                GrantError::TooMany => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            ApiError(status, e.to_string())
        })?;
    Ok((StatusCode::CREATED, Json(grant)).into_response())
}

async fn revoke(
    State(api): Shared,
    ConnectInfo(peer): Peer,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let by = api.approver(&headers, peer).await?;
    match api.hub.revoke(&id, &by) {
        Ok(grant) => Ok(Json(grant).into_response()),
        Err(e @ RevokeError::Unknown(_)) => Err(ApiError(StatusCode::NOT_FOUND, e.to_string())),
    }
}

/// The JSON of an error answer, for clients.
pub fn error_message(body: &Value) -> Option<&str> {
    body.get("error").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use ring::signature::{Ed25519KeyPair, KeyPair as _};
    use zeroize::Zeroizing;

    use super::super::book::tests::{spec, t};
    use super::super::client::{ApprovalClient, ClientError};
    use super::super::clock::ManualClock;
    use super::super::hub::{Admission, HubSettings, tests::Recorder};
    use super::*;
    use crate::oidc::{JwksSource, OidcConfig, fetch::KeySet};

    const ISSUER: &str = "https://idp.test";
    const AUDIENCE: &str = "chunk-approvals";

    /// An Ed25519 signing key generated at test time, with its JWK.
    struct Signer {
        key: EncodingKey,
        jwk: Value,
    }

    impl Signer {
        fn new() -> Self {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
            Self {
                key: EncodingKey::from_ed_der(pkcs8.as_ref()),
                jwk: json!({ "kty": "OKP", "crv": "Ed25519", "kid": "k1", "alg": "EdDSA",
                             "x": B64.encode(pair.public_key().as_ref()) }),
            }
        }

        fn token(
            &self,
            subject: &str,
            groups: &[&str],
            audience: &str,
            expires: SystemTime,
        ) -> String {
            let exp = expires
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some("k1".into());
            let claims = json!({ "iss": ISSUER, "aud": audience, "sub": subject,
                                 "groups": groups, "exp": exp });
            jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
        }
    }

    struct Server {
        hub: ApprovalHub,
        clock: ManualClock,
        audit: Arc<Recorder>,
        signer: Signer,
        url: String,
        _dir: tempfile::TempDir,
    }

    impl Server {
        /// The real API on an ephemeral loopback port, tokens checked against a JWKS file.
        async fn start() -> Self {
            let signer = Signer::new();
            let dir = tempfile::tempdir().unwrap();
            let jwks = dir.path().join("jwks.json");
            std::fs::write(&jwks, json!({ "keys": [signer.jwk] }).to_string()).unwrap();
            let keys = KeySet::from_config(OidcConfig {
                issuer: ISSUER.into(),
                audiences: vec![AUDIENCE.into()],
                jwks: JwksSource::File(jwks),
                groups_claim: "groups".into(),
                leeway: Duration::from_secs(60),
            })
            .unwrap();
            let clock = ManualClock::new(t(0));
            let audit = Arc::new(Recorder::default());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let hub = ApprovalHub::new(
                HubSettings {
                    public_url: url.clone(),
                },
                audit.clone(),
                Arc::new(clock.clone()),
                None,
            );
            tokio::spawn(serve(listener, hub.clone(), Arc::new(keys)));
            Self {
                hub,
                clock,
                audit,
                signer,
                url,
                _dir: dir,
            }
        }

        fn client(&self, token: String) -> ApprovalClient {
            ApprovalClient::new(&self.url, Zeroizing::new(token)).unwrap()
        }

        fn as_user(&self, subject: &str, groups: &[&str]) -> ApprovalClient {
            let token = self.signer.token(subject, groups, AUDIENCE, t(3600));
            self.client(token)
        }

        fn held(&self, approvers: u32, groups: &[&str]) -> super::super::HeldStatement {
            match self.hub.submit(spec(approvers, groups)) {
                Admission::Held(h) => h,
                other => panic!("{other:?}"),
            }
        }
    }

    fn status(result: Result<Value, ClientError>) -> u16 {
        match result {
            Err(ClientError::Refused { status, .. }) => status,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn approving_over_http_releases_the_held_statement() {
        let s = Server::start().await;
        let held = s.held(1, &["dba"]);
        let id = held.id().to_string();
        let listing = s.as_user("alice", &["dba"]).list().await.unwrap();
        assert_eq!(listing["pending"][0]["id"], id.as_str());
        let shown = s.as_user("alice", &["dba"]).show(&id).await.unwrap();
        assert_eq!(shown["outcome"], "pending");
        let answer = s.as_user("alice", &["dba"]).approve(&id).await.unwrap();
        assert_eq!(answer["outcome"], "approved");
        let approved = held.wait().await.unwrap();
        assert_eq!(approved.approvers, ["alice"]);
        assert_eq!(status(s.as_user("bob", &["dba"]).approve(&id).await), 409);
    }

    #[tokio::test]
    async fn denying_over_http_refuses_the_held_statement() {
        let s = Server::start().await;
        let held = s.held(1, &["dba"]);
        let id = held.id().to_string();
        let answer = s.as_user("bob", &["dba"]).deny(&id).await.unwrap();
        assert_eq!(answer["outcome"], "denied");
        let refused = held.wait().await.unwrap_err();
        assert_eq!(
            refused.reason,
            super::super::RefusalReason::Denied { by: "bob".into() }
        );
    }

    #[tokio::test]
    async fn self_approval_and_other_groups_are_forbidden_unknown_ids_not_found() {
        let s = Server::start().await;
        let held = s.held(1, &["dba"]);
        let id = held.id().to_string();
        assert_eq!(
            status(s.as_user("nightly-chunker", &["dba"]).approve(&id).await),
            403
        );
        assert_eq!(
            status(s.as_user("svc-chunker", &["dba"]).approve(&id).await),
            403
        );
        assert_eq!(status(s.as_user("dev", &["dev"]).approve(&id).await), 403);
        assert_eq!(
            status(s.as_user("alice", &["dba"]).approve("r-nope-1").await),
            404
        );
        assert_eq!(
            status(s.as_user("alice", &["dba"]).show("r-nope-1").await),
            404
        );
        assert_eq!(s.hub.list().pending.len(), 1, "still waiting");
        let refusals = s.audit.actions();
        assert_eq!(
            refusals
                .iter()
                .filter(|a| *a == "approval-vote-refused")
                .count(),
            4
        );
        s.clock.advance(Duration::from_secs(600));
        assert!(held.wait().await.is_err());
        assert_eq!(status(s.as_user("alice", &["dba"]).approve(&id).await), 409);
    }

    #[tokio::test]
    async fn expired_forged_and_wrong_audience_tokens_are_unauthorized() {
        let s = Server::start().await;
        let expired = s
            .signer
            .token("alice", &["dba"], AUDIENCE, t(0) - Duration::from_secs(120));
        let other_aud = s.signer.token("alice", &["dba"], "someone-else", t(3600));
        let forged = Signer::new().token("alice", &["dba"], AUDIENCE, t(3600));
        for (token, reason) in [
            (expired, "expired"),
            (other_aud, "audience"),
            (forged.clone(), "signature"),
            ("not-a-jwt".to_string(), "malformed"),
        ] {
            match s.client(token.clone()).list().await {
                Err(ClientError::Refused { status, message }) => {
                    assert_eq!(status, 401, "{reason}");
                    assert!(message.contains(reason), "{reason}: {message}");
                    assert!(!message.contains(&token), "the token is never echoed");
                }
                other => panic!("{reason}: {other:?}"),
            }
        }
        let no_header = reqwest::get(format!("{}/approvals", s.url)).await.unwrap();
        assert_eq!(no_header.status(), 401);
        assert_eq!(no_header.headers()["www-authenticate"], "Bearer");
        let events = s.audit.0.lock().unwrap().clone();
        assert_eq!(events.len(), 5);
        for e in &events {
            assert_eq!(e["event"]["action"], "approval-auth-failed");
            assert!(!e.to_string().contains(&forged));
        }
        // A valid token becomes expired when the (injected) clock passes exp + leeway.
        let alice = s.as_user("alice", &["dba"]);
        assert!(alice.list().await.is_ok());
        s.clock.advance(Duration::from_secs(3600 + 60));
        assert_eq!(status(alice.list().await), 401);
    }

    #[tokio::test]
    async fn grants_are_created_used_and_revoked_over_http() {
        let s = Server::start().await;
        let alice = s.as_user("alice", &["dba"]);
        let body = |workload: &str, ops: &[&str]| {
            json!({ "workload": workload, "target": "orders-db", "operations": ops,
                    "tables": ["staging.events"], "duration": "2h", "reason": "backfill" })
        };
        let grant = alice
            .grant(body("nightly-chunker", &["bulk_write"]))
            .await
            .unwrap();
        let id = grant["id"].as_str().unwrap().to_string();
        assert_eq!(grant["operations"], json!(["write", "bulk_write"]));
        assert!(
            matches!(s.hub.submit(spec(1, &["dba"])), Admission::Granted(g) if g.as_str() == id)
        );
        assert_eq!(
            status(alice.grant(body("nightly-chunker", &["delete"])).await),
            400
        );
        let own = s.as_user("nightly-chunker", &["dba"]);
        assert_eq!(
            status(own.grant(body("nightly-chunker", &["write"])).await),
            403
        );
        let revoked = s.as_user("bob", &[]).revoke(&id).await.unwrap();
        assert_eq!(revoked["id"], id.as_str());
        assert_eq!(status(alice.revoke(&id).await), 404);
        assert!(matches!(
            s.hub.submit(spec(1, &["dba"])),
            Admission::Held(_)
        ));
        let actions = s.audit.actions();
        for action in [
            "grant-created",
            "grant-used",
            "grant-refused",
            "grant-revoked",
        ] {
            assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
        }
    }
}
