//! The PostgreSQL proxy for one intercepted client connection (socket adapter).
//!
//! 1. Client startup: SSLRequest and GSSENCRequest get `N` (the hop is host-local); a
//!    CancelRequest is mapped to the real upstream key ([`super::cancel`]); a StartupMessage's
//!    parameters go through [`super::handshake`].
//! 2. Upstream login with the target's credential (static, or a just-in-time role), over
//!    verified TLS unless the policy disables it. The client is never asked for a password: it
//!    gets `AuthenticationOk` once the agent is logged in, then the server's parameters and a
//!    synthetic `BackendKeyData`.
//! 3. Relay: every client message is decoded (malformed, oversized or out-of-place messages end
//!    the session with an ErrorResponse) and forwarded; server messages are forwarded frame by
//!    frame.
//!
//! Errors the client sees name the target and the failing side, never a secret.

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use bytes::{Bytes, BytesMut};
use rustls::ClientConfig;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
    sync::mpsc,
    time::timeout,
};

use super::{
    auth::UpstreamAuth,
    cancel::{CancelRegistry, ClientKey, UpstreamCancel},
    codec::{
        BackendMessage, Caps, CodecError, FrontendMessage, HEADER_LEN, StartupMessage,
        backend::{
            Authentication, BackendKeyData, ErrorResponse, NegotiateProtocolVersion, ReadyForQuery,
            Severity, TransactionStatus,
        },
        decode_backend_frame, decode_frontend, decode_startup, peek_frame, peek_frame_capped,
        startup::{Startup, encode_encryption_refused},
    },
    ephemeral,
    gate::{self, Gate, GateAction, Hold, HoldOutcome},
    handshake,
    masking::{CatalogConnection, SessionMasking},
    recording::{Recording, SessionRecording},
    session::{Attribution, ClientViolation, RequestId, SessionTracker},
    sqlstate, tls,
    token_auth::{self, RoleGrant, TokenAuth, VerifiedToken},
    upstream::{Endpoint, UpstreamError},
};
use crate::{
    approval::{Admission, ApprovalHub, RefusalReason, Refused, RequestSpec, Requester},
    audit::{self, AuditLog, Transfer},
    identity::{ConnectionFacts, Identity},
    mask::{MaskError, MaskRules},
    policy::{CredentialMode, PolicySet, RecordingSettings, Target},
    proxy::read_some,
    record::format::ApprovalEvent,
    record::{self, OnError},
    secrets::{self, Secret},
    sql::{AccessControl, SqlPolicy},
};

/// How long a client may take to send its startup packet.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a write to the client may stay blocked (the client does not read) before the
/// session is ended.
const CLIENT_WRITE_STALL: Duration = Duration::from_secs(300);
/// After the client is done, how long the server may take to close its side.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What the PostgreSQL sessions of one policy generation share. A policy reload builds a new
/// one; sessions keep the one they started with, so each sees one consistent policy. The cancel
/// registry is common to all generations.
pub struct PgShared {
    pub cancel: CancelRegistry,
    /// Verified-TLS configuration per target name (`None`: TLS disabled by policy).
    pub tls: HashMap<String, Option<Arc<ClientConfig>>>,
    /// Names this host in the comments of just-in-time roles (for the reaper).
    pub host: String,
    pub caps: Caps,
    /// SQL access rules (with their decision caches) of every (workload, target) pair.
    pub sql: SqlPolicy,
    /// Where sessions are recorded (common to all generations).
    pub recording: Arc<Recording>,
    /// Compiled masking rules of every (workload, target) pair that has some.
    masks: HashMap<(String, String), Arc<MaskRules>>,
    /// What the recordings of each workload keep.
    recording_settings: HashMap<String, RecordingSettings>,
    /// Where statements needing approval wait (common to all generations).
    pub approvals: ApprovalHub,
    /// Workload tokens (JWT): where sessions' tokens are found, and how they are verified.
    pub tokens: TokenAuth,
}

/// Why a policy generation cannot serve PostgreSQL sessions.
#[derive(Debug, thiserror::Error)]
pub enum PgSetupError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("masking rules of workload {workload} for target {target}: {reason}")]
    Masking {
        workload: String,
        target: String,
        reason: String,
    },
}

impl PgShared {
    /// Prepares the TLS configuration of every PostgreSQL target and the masking rules of every
    /// workload (with their keys): a bad CA file or an unreadable masking key refuses the policy
    /// rather than failing sessions later.
    pub fn new(
        policy: &PolicySet,
        host: String,
        cancel: CancelRegistry,
        recording: Arc<Recording>,
        approvals: ApprovalHub,
        exec_root: &str,
    ) -> Result<Self, PgSetupError> {
        let mut configs = HashMap::new();
        for target in &policy.targets {
            if let Some(pg) = &target.postgres {
                configs.insert(target.name.clone(), tls::client_config(&pg.tls)?);
            }
        }
        let mut masks = HashMap::new();
        for workload in &policy.workloads {
            for access in &workload.access {
                if access.masking.is_empty() {
                    continue;
                }
                let failed = |reason: String| PgSetupError::Masking {
                    workload: workload.name.clone(),
                    target: access.target.clone(),
                    reason,
                };
                let key = match &access.masking.key {
                    Some(reference) => {
                        Some(secrets::resolve(reference).map_err(|e| failed(e.to_string()))?)
                    }
                    None => None,
                };
                let rules =
                    MaskRules::new(&access.masking, key.as_ref().map(|k| k.expose().as_bytes()))
                        .map_err(|e| failed(e.to_string()))?;
                masks.insert(
                    (workload.name.clone(), access.target.clone()),
                    Arc::new(rules),
                );
            }
        }
        Ok(Self {
            approvals,
            tokens: TokenAuth::new(policy, exec_root, Path::new(token_auth::EXEC_TOKEN_DIR)),
            masks,
            recording_settings: policy
                .workloads
                .iter()
                .map(|w| (w.name.clone(), w.recording))
                .collect(),
            cancel,
            tls: configs,
            host,
            caps: Caps::default(),
            sql: SqlPolicy::new(policy),
            recording,
        })
    }

    /// The SQL access rules of `workload` for `target`; none declared: everything is denied.
    fn access(&self, workload: &str, target: &str) -> Arc<AccessControl> {
        self.sql
            .access(workload, target)
            .unwrap_or_else(|| Arc::new(AccessControl::new(workload, target, None)))
    }

    /// The masking rules of `workload` for `target`, if it has some.
    fn masking(&self, workload: &str, target: &str) -> Option<Arc<MaskRules>> {
        self.masks
            .get(&(workload.to_owned(), target.to_owned()))
            .cloned()
    }

    pub(crate) fn endpoint(
        &self,
        target: &Target,
        address: std::net::SocketAddr,
    ) -> Result<Endpoint, UpstreamError> {
        let config = self.tls.get(&target.name).cloned().flatten();
        let tls = match (config, &target.postgres) {
            (Some(config), Some(pg)) => {
                let name = tls::server_name(&pg.tls, address).map_err(|e| UpstreamError::Tls {
                    target: target.name.clone(),
                    reason: e.to_string(),
                })?;
                Some((config, name))
            }
            _ => None,
        };
        Ok(Endpoint {
            target: target.name.clone(),
            address,
            tls,
        })
    }
}

/// Why a session ended early, as the client is told.
struct Failure {
    sqlstate: String,
    message: String,
}

impl Failure {
    fn new(sqlstate: &str, message: impl Into<String>) -> Self {
        Self {
            sqlstate: sqlstate.to_owned(),
            message: message.into(),
        }
    }
}

async fn send_fatal<W: AsyncWrite + Unpin>(client: &mut W, sqlstate: &str, message: &str) {
    let mut out = BytesMut::new();
    ErrorResponse::new(Severity::Fatal, sqlstate, message).encode(&mut out);
    let _ = client.write_all(&out).await;
    let _ = client.shutdown().await;
}

/// Reads the client's startup, answering encryption requests with `N`.
async fn read_startup(
    client: &mut TcpStream,
    buf: &mut BytesMut,
    caps: &Caps,
) -> Result<Option<StartupMessage>, CodecError> {
    loop {
        match decode_startup(buf, caps)? {
            Some(StartupMessage::SslRequest | StartupMessage::GssEncRequest) => {
                let mut out = BytesMut::new();
                encode_encryption_refused(&mut out);
                if client.write_all(&out).await.is_err() {
                    return Ok(None);
                }
            }
            Some(other) => return Ok(Some(other)),
            None => match client.read_buf(buf).await {
                Ok(0) | Err(_) => return Ok(None),
                Ok(_) => {}
            },
        }
    }
}

/// Refuses a connection that has no identity, the PostgreSQL way: after the client's startup,
/// a FATAL 28000 naming the reason (instead of a bare close that clients report as a crash).
pub async fn refuse(mut client: TcpStream, caps: &Caps, reason: &str) {
    let mut buf = BytesMut::new();
    if let Ok(Ok(Some(StartupMessage::Startup(_)))) =
        timeout(STARTUP_TIMEOUT, read_startup(&mut client, &mut buf, caps)).await
    {
        send_fatal(
            &mut client,
            sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            &format!("connection refused by the chunk agent: {reason}"),
        )
        .await;
    }
}

/// The credential a session logs in with, and the role to drop afterwards if it was made for it.
struct Login {
    role: String,
    secret: Secret,
    ephemeral: Option<EphemeralRole>,
}

/// A just-in-time role to drop when its session ends.
struct EphemeralRole {
    role: String,
    admin_role: String,
    admin_secret_ref: crate::policy::SecretRef,
    database: String,
}

/// Serves one intercepted PostgreSQL connection until it ends.
pub async fn serve(
    shared: Arc<PgShared>,
    audit: Arc<AuditLog>,
    mut client: TcpStream,
    connection_id: u64,
    facts: &ConnectionFacts,
    identity: &Identity,
    target: &Target,
) -> (Transfer, Option<String>) {
    let _ = client.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(1024);
    let startup = match timeout(
        STARTUP_TIMEOUT,
        read_startup(&mut client, &mut buf, &shared.caps),
    )
    .await
    {
        Err(_) => {
            return (
                Transfer::default(),
                Some("client sent no startup in time".into()),
            );
        }
        Ok(Ok(None)) => {
            return (
                Transfer::default(),
                Some("client left during startup".into()),
            );
        }
        Ok(Err(CodecError::DirectTls)) => {
            return (
                Transfer::default(),
                Some("client opened with TLS directly (sslnegotiation=direct): not supported on the local hop".into()),
            );
        }
        Ok(Err(err)) => {
            send_fatal(&mut client, err.sqlstate(), &err.to_string()).await;
            return (Transfer::default(), Some(format!("client startup: {err}")));
        }
        Ok(Ok(Some(StartupMessage::CancelRequest(request)))) => {
            let key = ClientKey {
                process_id: request.process_id,
                secret_key: request.secret_key,
            };
            let outcome = forward_cancel(&shared, target, &key).await;
            audit.emit(audit::cancel_request(
                connection_id,
                facts,
                identity,
                &outcome,
            ));
            return (Transfer::default(), None);
        }
        Ok(Ok(Some(StartupMessage::Startup(startup)))) => startup,
        // Encryption requests are answered inside read_startup and never returned.
        Ok(Ok(Some(StartupMessage::SslRequest | StartupMessage::GssEncRequest))) => {
            return (
                Transfer::default(),
                Some("client startup: unexpected encryption request".into()),
            );
        }
    };

    let token = match shared
        .tokens
        .authenticate(
            &identity.workload,
            facts,
            &mut client,
            &mut buf,
            &shared.caps,
            &SystemTime::now,
        )
        .await
    {
        Ok(token) => token,
        Err(refusal) => {
            audit.emit(audit::token_refused(
                connection_id,
                facts,
                identity,
                &refusal,
            ));
            send_fatal(&mut client, refusal.sqlstate(), &refusal.client_message()).await;
            return (Transfer::default(), Some(refusal.to_string()));
        }
    };

    let opened = match open_session(
        &shared,
        &audit,
        connection_id,
        facts,
        identity,
        target,
        &startup,
        token.as_ref(),
    )
    .await
    {
        Ok(opened) => opened,
        Err((failure, ephemeral)) => {
            send_fatal(&mut client, &failure.sqlstate, &failure.message).await;
            if let Some(role) = ephemeral {
                drop_ephemeral_role(shared, audit, target, facts, role, connection_id);
            }
            return (Transfer::default(), Some(failure.message));
        }
    };
    audit.emit(audit::session_started(
        connection_id,
        facts,
        identity,
        &opened.role,
        &opened.database,
    ));
    let session_id = record::new_session_id(connection_id, SystemTime::now());
    let settings = shared
        .recording_settings
        .get(&identity.workload)
        .copied()
        .unwrap_or_default();
    let on_error = shared.recording.on_error(&settings);
    // The header is built in its own scope, so the session's future (alive as long as the
    // connection) does not keep it.
    let started = {
        let mut header =
            record::Header::from_connection(&session_id, connection_id, facts, identity);
        header.upstream_role = Some(opened.role.clone());
        header.token = token.as_ref().map(|t| record::format::TokenInfo {
            subject: t.claims.subject.clone(),
            groups: t.claims.groups.clone(),
        });
        header.target.database = Some(opened.database.clone());
        shared.recording.start(header, &settings)
    };
    let recording = match started {
        Ok(recording) => Some(recording),
        Err(e) => {
            let fail_closed = on_error == OnError::FailClosed;
            audit.emit(audit::recording_failed(
                connection_id,
                facts,
                identity,
                &session_id,
                &e.to_string(),
                fail_closed,
            ));
            if fail_closed {
                opened.session.terminate().await;
                send_fatal(
                    &mut client,
                    sqlstate::IO_ERROR,
                    &format!("the chunk agent cannot record this session: {e}"),
                )
                .await;
                if let Some(role) = opened.ephemeral {
                    drop_ephemeral_role(shared, audit, target, facts, role, connection_id);
                }
                return (Transfer::default(), Some(format!("recording: {e}")));
            }
            None
        }
    };
    let (transfer, error, recording) = run_session(
        &shared,
        &audit,
        connection_id,
        identity,
        client,
        buf,
        opened.session,
        &opened.unrecognized_options,
        &startup,
        target,
        facts,
        recording,
        opened.masking,
        token.as_ref(),
    )
    .await;
    if let Some(mut recording) = recording {
        if let Some(e) = recording.recorder_mut().take_error() {
            audit.emit(audit::recording_failed(
                connection_id,
                facts,
                identity,
                &session_id,
                &e.to_string(),
                false,
            ));
        }
        let reason = if error.is_some() { "error" } else { "closed" };
        match shared.recording.finish(recording, reason) {
            Ok(finished) => audit.emit(audit::session_recorded(
                connection_id,
                facts,
                identity,
                &finished,
            )),
            Err(e) => audit.emit(audit::recording_failed(
                connection_id,
                facts,
                identity,
                &session_id,
                &e.to_string(),
                on_error == OnError::FailClosed,
            )),
        }
    }
    if let Some(role) = opened.ephemeral {
        drop_ephemeral_role(shared, audit, target, facts, role, connection_id);
    }
    (transfer, error)
}

async fn forward_cancel(shared: &PgShared, target: &Target, key: &ClientKey) -> Result<(), String> {
    let Some(UpstreamCancel {
        address,
        process_id,
        secret_key,
        ..
    }) = shared.cancel.lookup(key)
    else {
        return Err("unknown cancel key: dropped".into());
    };
    let endpoint = shared
        .endpoint(target, address)
        .map_err(|e| e.to_string())?;
    endpoint
        .cancel(&BackendKeyData {
            process_id,
            secret_key,
        })
        .await
        .map_err(|e| e.to_string())
}

/// A logged-in upstream session and what the client must be told about it.
struct Opened {
    session: super::upstream::Session,
    /// The session's masking rules, and the agent's catalog connection they need.
    masking: Option<(Arc<MaskRules>, CatalogConnection)>,
    /// The role the session runs as.
    role: String,
    /// The just-in-time role to drop when the session ends.
    ephemeral: Option<EphemeralRole>,
    database: String,
    unrecognized_options: Vec<String>,
}

/// Logs in upstream for the client. On failure, what to tell the client, and the just-in-time
/// role to drop if one was made before the failure.
#[allow(clippy::too_many_arguments)]
async fn open_session(
    shared: &PgShared,
    audit: &AuditLog,
    connection_id: u64,
    facts: &ConnectionFacts,
    identity: &Identity,
    target: &Target,
    startup: &Startup,
    token: Option<&VerifiedToken>,
) -> Result<Opened, (Failure, Option<EphemeralRole>)> {
    let (Some(pg), Some(credentials)) = (&target.postgres, &target.credentials) else {
        return Err((
            Failure::new(
                sqlstate::INTERNAL_ERROR,
                format!("target {} has no PostgreSQL settings", target.name),
            ),
            None,
        ));
    };
    let grant = token_auth::login_roles(
        credentials,
        &target.name,
        token,
        shared.tokens.settings(&identity.workload),
    )
    .map_err(|r| {
        audit.emit(audit::token_refused(connection_id, facts, identity, &r));
        (Failure::new(r.sqlstate(), r.client_message()), None)
    })?;
    if let Some(t) = token {
        audit.emit(audit::token_accepted(connection_id, facts, identity, t));
    }
    let extra_roles = match &grant {
        RoleGrant::Grant(roles) => roles.as_slice(),
        RoleGrant::Unchanged => &[],
    };
    let endpoint = shared
        .endpoint(target, facts.original_destination)
        .map_err(|e| (Failure::new(e.sqlstate(), e.to_string()), None))?;
    let secret_error = |e: secrets::SecretError| {
        tracing::error!(target = %target.name, error = %e, "credential unavailable");
        (
            Failure::new(
                sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                format!(
                    "the chunk agent has no usable credential for target {}: {e}",
                    target.name
                ),
            ),
            None,
        )
    };
    // Decided before anything is created upstream: a refused startup makes no role. The
    // database is needed before the login, for just-in-time roles.
    let mut plan = handshake::upstream_startup(
        &startup.params,
        &handshake::HandshakeContext {
            workload: &identity.workload,
            target: &target.name,
            login_role: &credentials.username,
            database: pg.database.as_deref(),
            allow_replication: pg.allow_replication,
        },
    )
    .map_err(|r| (Failure::new(r.sqlstate(), r.to_string()), None))?;
    let Login {
        role,
        secret,
        ephemeral,
    } = match &credentials.mode {
        CredentialMode::Static => Login {
            role: credentials.username.clone(),
            secret: secrets::resolve(&credentials.password).map_err(secret_error)?,
            ephemeral: None,
        },
        CredentialMode::Ephemeral { group_role, ttl } => {
            let admin_secret = secrets::resolve(&credentials.password).map_err(secret_error)?;
            create_ephemeral_role(
                shared,
                &endpoint,
                &credentials.username,
                admin_secret,
                &credentials.password,
                group_role,
                *ttl,
                &identity.workload,
                &plan.database,
                extra_roles,
            )
            .await
            .map_err(|e| {
                report_upstream_failure(audit, connection_id, facts, identity, &e);
                (Failure::new(e.sqlstate(), e.to_string()), None)
            })?
        }
    };
    plan.set_login_role(&role);
    let masking = shared.masking(&identity.workload, &target.name);
    // Masking needs the catalog: a second login of the same role to the same database.
    let catalog_login = masking.as_ref().map(|_| {
        let mut params = plan.params.clone();
        for (name, value) in &mut params {
            if name == "application_name" {
                *value = format!("chunk:{} (agent catalog)", identity.workload);
            }
        }
        (params, Secret::new(secret.expose().to_owned()))
    });
    let auth = UpstreamAuth::new(role.clone(), secret);
    let catalog = match catalog_login {
        None => None,
        Some((params, secret)) => {
            match endpoint
                .login(params, &role, UpstreamAuth::new(role.clone(), secret))
                .await
            {
                Ok(session) => Some(CatalogConnection {
                    endpoint: shared
                        .endpoint(target, facts.original_destination)
                        .map_err(|e| (Failure::new(e.sqlstate(), e.to_string()), None))?,
                    session,
                }),
                Err(e) => {
                    report_upstream_failure(audit, connection_id, facts, identity, &e);
                    return Err((Failure::new(e.sqlstate(), e.to_string()), ephemeral));
                }
            }
        }
    };
    match endpoint.login(plan.params, &role, auth).await {
        Ok(session) => match unjudgeable_setting(&session.parameters) {
            Some((name, value)) => {
                session.terminate().await;
                Err((
                    Failure::new(
                        sqlstate::FEATURE_NOT_SUPPORTED,
                        format!(
                            "the chunk agent judges SQL as UTF8 text with \
                             standard_conforming_strings on; this session has {name} = {value}"
                        ),
                    ),
                    ephemeral,
                ))
            }
            None => Ok(Opened {
                session,
                masking: masking.zip(catalog),
                role,
                ephemeral,
                database: plan.database,
                unrecognized_options: plan.unrecognized_options,
            }),
        },
        Err(e) => {
            report_upstream_failure(audit, connection_id, facts, identity, &e);
            Err((Failure::new(e.sqlstate(), e.to_string()), ephemeral))
        }
    }
}

/// A session setting under which the agent would not read SQL text as the server does: the
/// client encoding must be UTF8 and backslashes in strings literal.
fn unjudgeable_setting(
    parameters: &[super::codec::backend::ParameterStatus],
) -> Option<(String, String)> {
    parameters
        .iter()
        .find(|p| !setting_is_judgeable(&p.name, &p.value))
        .map(|p| (p.name.clone(), p.value.clone()))
}

fn setting_is_judgeable(name: &str, value: &str) -> bool {
    match name {
        "client_encoding" => {
            value.eq_ignore_ascii_case("UTF8") || value.eq_ignore_ascii_case("UTF-8")
        }
        "standard_conforming_strings" => value.eq_ignore_ascii_case("on"),
        _ => true,
    }
}

fn report_upstream_failure(
    audit: &AuditLog,
    connection_id: u64,
    facts: &ConnectionFacts,
    identity: &Identity,
    error: &UpstreamError,
) {
    tracing::warn!(target = %identity.target, %error, "upstream login failed");
    if error.is_auth_failure() {
        audit.emit(audit::upstream_auth_failed(
            connection_id,
            facts,
            identity,
            &error.to_string(),
        ));
    }
}

#[allow(clippy::too_many_arguments)]
async fn create_ephemeral_role(
    shared: &PgShared,
    endpoint: &Endpoint,
    admin_role: &str,
    admin_secret: Secret,
    admin_secret_ref: &crate::policy::SecretRef,
    group_role: &str,
    ttl: Duration,
    workload: &str,
    database: &str,
    extra_roles: &[String],
) -> Result<Login, UpstreamError> {
    let suffix: String = (0..6)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let role = ephemeral::role_name(workload, &suffix);
    let password: String = (0..24)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    let valid_until = humantime::format_rfc3339_seconds(SystemTime::now() + ttl).to_string();
    let mut admin = endpoint
        .login(
            admin_params(admin_role, database),
            admin_role,
            UpstreamAuth::new(admin_role, admin_secret),
        )
        .await?;
    let mut sql = ephemeral::create_role_sql(
        &role,
        &verifier,
        &valid_until,
        group_role,
        &shared.host,
        workload,
    );
    // The roles the session's token maps to.
    if let Some(grant) = token_auth::grant_roles_sql(&role, extra_roles) {
        sql.push_str("; ");
        sql.push_str(&grant);
    }
    let created = admin.simple_query(endpoint, &sql).await;
    admin.terminate().await;
    created?;
    tracing::info!(%role, %group_role, %valid_until, "just-in-time role created");
    Ok(Login {
        role: role.clone(),
        secret: Secret::new(password),
        ephemeral: Some(EphemeralRole {
            role,
            admin_role: admin_role.to_owned(),
            admin_secret_ref: admin_secret_ref.clone(),
            database: database.to_owned(),
        }),
    })
}

fn admin_params(role: &str, database: &str) -> Vec<(String, String)> {
    vec![
        ("user".into(), role.into()),
        ("database".into(), database.into()),
        ("application_name".into(), "chunk-agent (jit roles)".into()),
    ]
}

/// Drops a session's just-in-time role in the background; failures are audited, and the reaper
/// removes the role once it has expired.
fn drop_ephemeral_role(
    shared: Arc<PgShared>,
    audit: Arc<AuditLog>,
    target: &Target,
    facts: &ConnectionFacts,
    role: EphemeralRole,
    connection_id: u64,
) {
    let target = target.clone();
    let address = facts.original_destination;
    tokio::spawn(async move {
        let result = async {
            let endpoint = shared.endpoint(&target, address)?;
            let secret =
                secrets::resolve(&role.admin_secret_ref).map_err(|e| UpstreamError::Protocol {
                    target: target.name.clone(),
                    reason: e.to_string(),
                })?;
            let mut admin = endpoint
                .login(
                    admin_params(&role.admin_role, &role.database),
                    &role.admin_role,
                    UpstreamAuth::new(role.admin_role.clone(), secret),
                )
                .await?;
            let dropped = admin
                .simple_query(&endpoint, &ephemeral::drop_role_sql(&role.role))
                .await;
            admin.terminate().await;
            dropped.map(|_| ())
        }
        .await;
        match result {
            Ok(()) => {
                tracing::info!(role = %role.role, "just-in-time role dropped");
                audit.emit(audit::ephemeral_role(
                    Some(connection_id),
                    &target.name,
                    &role.role,
                    "ephemeral-role-dropped",
                    None,
                ));
            }
            Err(e) => {
                tracing::error!(role = %role.role, error = %e, "could not drop a just-in-time role");
                audit.emit(audit::ephemeral_role(
                    Some(connection_id),
                    &target.name,
                    &role.role,
                    "ephemeral-role-dropped",
                    Some(&e.to_string()),
                ));
            }
        }
    });
}

/// Greets the client as a logged-in session, then relays until either side ends.
#[allow(clippy::too_many_arguments)]
async fn run_session(
    shared: &PgShared,
    audit: &AuditLog,
    connection_id: u64,
    identity: &Identity,
    mut client: TcpStream,
    client_buf: BytesMut,
    session: super::upstream::Session,
    unrecognized_options: &[String],
    startup: &Startup,
    target: &Target,
    facts: &ConnectionFacts,
    recording: Option<SessionRecording>,
    masking: Option<(Arc<MaskRules>, CatalogConnection)>,
    token: Option<&VerifiedToken>,
) -> (Transfer, Option<String>, Option<SessionRecording>) {
    let super::upstream::Session {
        stream,
        buf: leftover,
        parameters,
        key,
        ..
    } = session;
    let mut out = BytesMut::with_capacity(1024);
    if startup.protocol.minor > 0 || !unrecognized_options.is_empty() {
        BackendMessage::NegotiateProtocolVersion(NegotiateProtocolVersion {
            newest_minor: 0,
            unrecognized: unrecognized_options.to_vec(),
        })
        .encode(&mut out);
    }
    BackendMessage::Authentication(Authentication::Ok).encode(&mut out);
    for p in parameters {
        BackendMessage::ParameterStatus(p).encode(&mut out);
    }
    let registration = key.as_ref().map(|k| {
        shared.cancel.register(UpstreamCancel {
            target: target.name.clone(),
            address: facts.original_destination,
            process_id: k.process_id,
            secret_key: k.secret_key.clone(),
        })
    });
    if let Some(r) = &registration {
        BackendMessage::BackendKeyData(BackendKeyData {
            process_id: r.key().process_id,
            secret_key: r.key().secret_key.clone(),
        })
        .encode(&mut out);
    }
    BackendMessage::ReadyForQuery(ReadyForQuery {
        status: TransactionStatus::Idle,
    })
    .encode(&mut out);
    out.extend_from_slice(&leftover);
    // Neither is needed again: an idle session keeps no buffer (see `read_some`).
    drop((leftover, key));
    if let Err(e) = client.write_all(&out).await {
        return (
            Transfer::default(),
            Some(format!("client side: {e}")),
            recording,
        );
    }
    drop(out);

    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = tokio::io::split(stream);
    let up = AtomicU64::new(0);
    let down = AtomicU64::new(0);
    let (inject_tx, inject_rx) = mpsc::channel::<Bytes>(4);
    // Notices the agent sends while the session goes on (e.g. "waiting for approval").
    let (notice_tx, notice_rx) = mpsc::channel::<Bytes>(4);
    // Ties every server message to the client request it answers (masking, recording).
    let (masking, catalog) = match masking {
        Some((rules, catalog)) => (Some(SessionMasking::new(rules)), Some(catalog)),
        None => (None, None),
    };
    let relay = Mutex::new(Relay {
        tracker: SessionTracker::default(),
        synthetic: HashSet::new(),
        recording,
        masking,
    });
    let gate = Gate::new(shared.access(&identity.workload, &target.name));
    let events = audit::SessionEvents::new(connection_id, facts, identity);
    let decisions = DecisionAudit {
        audit,
        connection_id,
        facts,
        identity,
        token_subject: token.map(|t| t.claims.subject.as_str()),
        events: &events,
    };
    // A session ends when its workload token expires.
    let expiry_tx = inject_tx.clone();
    let expiry = async {
        match token {
            Some(t) => {
                tokio::time::sleep(token_auth::time_left(t.valid_until, SystemTime::now())).await;
                let mut out = BytesMut::new();
                token_auth::expired_error().encode(&mut out);
                let _ = expiry_tx.send(out.freeze()).await;
                audit.emit(audit::session_token_expired(
                    connection_id,
                    facts,
                    identity,
                    t,
                ));
            }
            None => std::future::pending::<()>().await,
        }
    };
    let error = {
        let c2s = client_to_server(
            client_read,
            client_buf,
            upstream_write,
            &shared.caps,
            &up,
            inject_tx,
            notice_tx,
            &relay,
            gate,
            decisions,
            &shared.approvals,
        );
        let s2c = server_to_client(
            upstream_read,
            client_write,
            &shared.caps,
            &down,
            inject_rx,
            notice_rx,
            &relay,
            catalog,
            decisions,
        );
        tokio::pin!(c2s, s2c, expiry);
        tokio::select! {
            r = &mut s2c => r.err(),
            () = &mut expiry => {
                // Let the error reach the client before closing.
                let _ = timeout(Duration::from_secs(1), &mut s2c).await;
                Some(token_auth::EXPIRED_MESSAGE.into())
            }
            r = &mut c2s => match r {
                // The client is done: let the server finish and close.
                Ok(()) => match timeout(DRAIN_TIMEOUT, &mut s2c).await {
                    Ok(r) => r.err(),
                    Err(_) => None,
                },
                Err(e) => {
                    // Let the error message reach the client before closing.
                    let _ = timeout(Duration::from_secs(1), &mut s2c).await;
                    Some(e)
                }
            },
        }
    };
    drop(registration);
    let recording = relay
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .recording;
    (
        Transfer {
            client_to_server: up.load(Ordering::Relaxed),
            server_to_client: down.load(Ordering::Relaxed),
        },
        error,
        recording,
    )
}

/// What both relay directions share: the response tracker and the ids of the requests the
/// gate sent in place of denied ones (their ParseComplete/BindComplete are not the client's,
/// and their error is trimmed to the denial's fields).
struct Relay {
    tracker: SessionTracker,
    synthetic: HashSet<RequestId>,
    /// The session's recording (`None`: recording failed and the policy says continue).
    recording: Option<SessionRecording>,
    /// The session's masking (`None`: no mask rule applies to it).
    masking: Option<SessionMasking>,
}

impl Relay {
    /// Tracks a message about to be forwarded (`synthetic`: sent by the gate in place of the
    /// client's), for the masking and the recording of what answers it.
    fn forward(&mut self, msg: &FrontendMessage, synthetic: bool) -> Result<(), ClientViolation> {
        let id = self.tracker.on_frontend(msg)?;
        if synthetic {
            self.synthetic.insert(id);
        }
        if let (Some(masking), FrontendMessage::Query(q)) = (&mut self.masking, msg) {
            masking.on_query(id, &q.sql);
        }
        if let Some(recording) = &mut self.recording {
            recording.forwarded(id, msg);
        }
        Ok(())
    }
}

/// Where the per-statement audit events go (decisions, masked values), and what they say about
/// the connection (serialised once per session).
#[derive(Clone, Copy)]
struct DecisionAudit<'a> {
    audit: &'a AuditLog,
    connection_id: u64,
    facts: &'a ConnectionFacts,
    identity: &'a Identity,
    /// The subject of the session's workload token, if it presented one.
    token_subject: Option<&'a str>,
    events: &'a audit::SessionEvents,
}

/// Client -> server: decodes each message, lets the gate judge it, and forwards it (the bytes
/// the client sent, or what the gate sends instead). A bad message ends the session with an
/// ErrorResponse (sent through `inject`, the writer of the client side).
#[allow(clippy::too_many_arguments)]
async fn client_to_server(
    mut client: impl AsyncRead + Unpin,
    mut buf: BytesMut,
    mut upstream: impl AsyncWrite + Unpin,
    caps: &Caps,
    copied: &AtomicU64,
    inject: mpsc::Sender<Bytes>,
    notices: mpsc::Sender<Bytes>,
    relay: &Mutex<Relay>,
    mut gate: Gate,
    decisions: DecisionAudit<'_>,
    approvals: &ApprovalHub,
) -> Result<(), String> {
    let mut out = BytesMut::new();
    loop {
        let mut terminate = false;
        loop {
            // A whole frame is copied to `out` as it came (taken back if the gate replaces it):
            // decoding is strict, so these are the bytes re-encoding would give.
            let mut mark = out.len();
            if let Ok(Some(header)) = peek_frame(&buf)
                && let Some(frame) = buf.get(..header.frame_len())
            {
                out.extend_from_slice(frame);
            }
            let msg = match decode_frontend(&mut buf, caps) {
                Ok(Some(FrontendMessage::PasswordMessage(_))) => {
                    let error = ErrorResponse::new(
                        Severity::Fatal,
                        sqlstate::PROTOCOL_VIOLATION,
                        "unexpected password message: no authentication is in progress",
                    );
                    return Err(reject(&inject, error).await);
                }
                Ok(Some(msg)) => msg,
                Ok(None) => {
                    out.truncate(mark);
                    break;
                }
                Err(err) => {
                    let error = ErrorResponse::new(
                        Severity::Fatal,
                        err.sqlstate(),
                        format!("chunk agent: {err}"),
                    );
                    return Err(reject(&inject, error).await);
                }
            };
            let (action, judged) = match gate.judge(&msg) {
                Ok(judgement) => judgement,
                Err(err) => {
                    let error = ErrorResponse::new(
                        Severity::Fatal,
                        sqlstate::PROGRAM_LIMIT_EXCEEDED,
                        format!("chunk agent: {err}"),
                    );
                    return Err(reject(&inject, error).await);
                }
            };
            if let Some(judged) = &judged {
                decisions
                    .audit
                    .emit_line(decisions.events.statement_decision(judged));
            }
            let mut recorded = false;
            let action = match action {
                GateAction::Hold(hold) => {
                    // Recorded before it waits (its approval steps are recorded under it).
                    if let Err(error) = record_client_message(relay, &msg, judged.as_ref()) {
                        return Err(reject(&inject, error).await);
                    }
                    recorded = true;
                    // What the client sent before reaches the server first; the held statement
                    // is not sent until approved.
                    out.truncate(mark);
                    mark = 0;
                    flush_upstream(&mut upstream, &mut out, copied).await?;
                    let outcome = wait_for_approval(
                        approvals,
                        &hold,
                        decisions,
                        &notices,
                        &mut client,
                        &mut buf,
                        relay,
                    )
                    .await?;
                    match gate.resolve(*hold, outcome) {
                        Ok(GateAction::Forward) => {
                            msg.encode(&mut out);
                            GateAction::Forward
                        }
                        Ok(action) => action,
                        Err(err) => {
                            let error = ErrorResponse::new(
                                Severity::Fatal,
                                sqlstate::PROGRAM_LIMIT_EXCEEDED,
                                format!("chunk agent: {err}"),
                            );
                            return Err(reject(&inject, error).await);
                        }
                    }
                }
                action => action,
            };
            let terminates =
                action == GateAction::Forward && matches!(msg, FrontendMessage::Terminate);
            // One lock per client message: record it, then track what is forwarded for it.
            let handled = {
                let mut relay = relay.lock().unwrap_or_else(|e| e.into_inner());
                match &mut relay.recording {
                    Some(recording) if !recorded => recording.client_message(&msg, judged.as_ref()),
                    _ => Ok(()),
                }
                .map_err(|e| {
                    // Written before forwarding, or not forwarded at all.
                    ErrorResponse::new(
                        Severity::Fatal,
                        sqlstate::IO_ERROR,
                        format!(
                            "chunk agent: the session recording failed, so the statement was \
                             not run: {e}"
                        ),
                    )
                })
                .and_then(|()| {
                    match action {
                        GateAction::Hold(_) => unreachable!("a hold is resolved above"),
                        GateAction::Forward => relay.forward(&msg, false),
                        GateAction::Swallow => {
                            out.truncate(mark);
                            Ok(())
                        }
                        GateAction::Replace(replacement) => {
                            out.truncate(mark);
                            replacement.into_iter().try_for_each(|msg| {
                                relay.forward(&msg, true)?;
                                msg.encode(&mut out);
                                Ok(())
                            })
                        }
                    }
                    .map_err(|violation| {
                        ErrorResponse::new(
                            Severity::Fatal,
                            violation.sqlstate(),
                            format!("chunk agent: {violation}"),
                        )
                    })
                })
            };
            if let Err(error) = handled {
                return Err(reject(&inject, error).await);
            }
            if terminates {
                terminate = true;
                break;
            }
        }
        flush_upstream(&mut upstream, &mut out, copied).await?;
        if terminate {
            let _ = upstream.shutdown().await;
            return Ok(());
        }
        // Waiting for the client holds no buffer (see `read_some`).
        if buf.is_empty() {
            buf = BytesMut::new();
            out = BytesMut::new();
        }
        match read_some(&mut client, &mut buf).await {
            Ok(0) => {
                let _ = upstream.shutdown().await;
                return Ok(());
            }
            Ok(_) => {}
            Err(e) => return Err(format!("client side: {e}")),
        }
    }
}

/// Sends what `out` holds to the server.
async fn flush_upstream(
    upstream: &mut (impl AsyncWrite + Unpin),
    out: &mut BytesMut,
    copied: &AtomicU64,
) -> Result<(), String> {
    if !out.is_empty() {
        upstream
            .write_all(out)
            .await
            .map_err(|e| format!("upstream side: {e}"))?;
        copied.fetch_add(out.len() as u64, Ordering::Relaxed);
        out.clear();
    }
    Ok(())
}

/// Records a client message before anything is forwarded for it (a held statement, before it
/// waits); the error to end the session with when the recording fails.
fn record_client_message(
    relay: &Mutex<Relay>,
    msg: &FrontendMessage,
    judged: Option<&gate::Judged>,
) -> Result<(), ErrorResponse> {
    match &mut relay.lock().unwrap_or_else(|e| e.into_inner()).recording {
        Some(recording) => recording.client_message(msg, judged).map_err(|e| {
            ErrorResponse::new(
                Severity::Fatal,
                sqlstate::IO_ERROR,
                format!(
                    "chunk agent: the session recording failed, so the statement was not run: {e}"
                ),
            )
        }),
        None => Ok(()),
    }
}

/// Most bytes read from a client while its statement waits for approval (the client may go on
/// sending; what it sends is judged once the wait ends).
const HELD_READ_LIMIT: usize = 1024 * 1024;

/// Submits a held statement to the approval service and waits for the outcome, telling the
/// client (a NoticeResponse) that it waits and where to approve. The session's client side is
/// still read, so a client that leaves withdraws the request. Approval steps are recorded.
async fn wait_for_approval(
    approvals: &ApprovalHub,
    hold: &Hold,
    who: DecisionAudit<'_>,
    notices: &mpsc::Sender<Bytes>,
    client: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
    relay: &Mutex<Relay>,
) -> Result<HoldOutcome, String> {
    let spec = RequestSpec {
        workload: who.identity.workload.clone(),
        target: who.identity.target.clone(),
        connection_id: who.connection_id,
        requester: Requester {
            workload: who.identity.workload.clone(),
            pid: who.facts.pid,
            uid: who.facts.uid,
            process: who.facts.process_name.clone(),
            cgroup: who.facts.cgroup_path.clone(),
            token_subject: who.token_subject.map(str::to_owned),
        },
        statement: hold.statement.clone(),
    };
    let record = |event: ApprovalEvent, approver: Option<String>, reference: Option<String>| {
        if let Some(recording) = &mut relay.lock().unwrap_or_else(|e| e.into_inner()).recording {
            recording.approval(event, approver, reference);
        }
    };
    let refused = |refused: Refused| {
        let event = match refused.reason {
            RefusalReason::Expired { .. } => ApprovalEvent::Expired,
            _ => ApprovalEvent::Denied,
        };
        let approver = match &refused.reason {
            RefusalReason::Denied { by } => Some(by.clone()),
            _ => None,
        };
        (
            event,
            approver,
            refused.id.as_ref().map(ToString::to_string),
            HoldOutcome::Refuse(refused.denial(&hold.rule)),
        )
    };
    let held = match approvals.submit(spec) {
        Admission::Granted(grant) => {
            record(ApprovalEvent::Granted, None, Some(grant.to_string()));
            return Ok(HoldOutcome::Run);
        }
        Admission::Refused(r) => {
            let (event, approver, reference, outcome) = refused(r);
            record(event, approver, reference);
            return Ok(outcome);
        }
        Admission::Held(held) => held,
    };
    record(ApprovalEvent::Requested, None, Some(held.id().to_string()));
    let mut notice = BytesMut::new();
    BackendMessage::NoticeResponse(ErrorResponse::new(
        Severity::Notice,
        sqlstate::SUCCESSFUL_COMPLETION,
        held.notice(),
    ))
    .encode(&mut notice);
    let _ = notices.send(notice.freeze()).await;
    let wait = held.wait();
    tokio::pin!(wait);
    loop {
        tokio::select! {
            outcome = &mut wait => {
                return Ok(match outcome {
                    Ok(approved) => {
                        record(
                            ApprovalEvent::Granted,
                            Some(approved.approvers.join(", ")),
                            Some(approved.id.to_string()),
                        );
                        HoldOutcome::Run
                    }
                    Err(r) => {
                        let (event, approver, reference, outcome) = refused(r);
                        record(event, approver, reference);
                        outcome
                    }
                });
            }
            read = client.read_buf(buf), if buf.len() < HELD_READ_LIMIT => match read {
                // Dropping the wait withdraws the request.
                Ok(0) => return Err("client side: left while its statement waited for approval".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("client side: {e}")),
            },
        }
    }
}

async fn reject(inject: &mpsc::Sender<Bytes>, error: ErrorResponse) -> String {
    let mut out = BytesMut::new();
    error.encode(&mut out);
    let _ = inject.send(out.freeze()).await;
    format!("client side: {}", error.message().unwrap_or_default())
}

/// How a server frame reaches the client.
enum FrameFate {
    Forward,
    /// A response to a request the gate made up (not the client's): dropped.
    Drop,
    /// The error of a gate request: re-encoded with the denial's fields only.
    Trim,
    /// Rewritten by the masking.
    Replace,
}

/// Server -> client: forwards whole frames, each attributed to the request it answers first;
/// injected messages (errors the agent raises) are written between frames, then the client side
/// is closed. With masking, rows, COPY data, errors, notices and notifications are rewritten as
/// they pass; when a plan needs the catalog, the frames before are sent, the relay looks the
/// names up on its catalog connection, then goes on.
#[allow(clippy::too_many_arguments)]
async fn server_to_client(
    mut upstream: impl AsyncRead + Unpin,
    mut client: impl AsyncWrite + Unpin,
    caps: &Caps,
    copied: &AtomicU64,
    mut inject: mpsc::Receiver<Bytes>,
    mut notices: mpsc::Receiver<Bytes>,
    relay: &Mutex<Relay>,
    mut catalog: Option<CatalogConnection>,
    audit: DecisionAudit<'_>,
) -> Result<(), String> {
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    let mut scratch = BytesMut::new();
    let mut masked = Vec::new();
    loop {
        // Attribute every complete frame; forward them in one write. Frames the gate's own
        // requests produced are dropped or trimmed, and masking rewrites some: then the frames
        // are copied into `out`.
        let mut complete = 0;
        let mut edited = false;
        let mut lookup = None;
        let mut failure = None;
        {
            let mut relay = relay.lock().unwrap_or_else(|e| e.into_inner());
            let Relay {
                tracker,
                synthetic,
                recording,
                masking,
            } = &mut *relay;
            while let Some(header) = peek_frame_capped(&buf[complete..], caps.max_backend_message)
                .map_err(|e| format!("upstream side: {e}"))?
            {
                let frame_len = header.frame_len();
                if buf.len() - complete < frame_len {
                    break;
                }
                let frame = &buf[complete..complete + frame_len];
                let body = &frame[HEADER_LEN..];
                if header.tag == b'S' && !parameter_is_judgeable(frame) {
                    return Err(
                        "upstream side: the session switched to a setting under which SQL text \
                         cannot be judged (client_encoding or standard_conforming_strings)"
                            .into(),
                    );
                }
                if let Some(masking) = masking {
                    match masking.prepare(tracker, header.tag) {
                        Ok(None) => {}
                        Ok(Some(needed)) => {
                            lookup = Some(needed);
                            break;
                        }
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                let attribution = tracker.on_backend_tag(header.tag, body);
                let mut rewritten = false;
                if let Some(masking) = masking {
                    let before = masked.len();
                    scratch.clear();
                    match masking.frame(&attribution, header.tag, frame, &mut scratch, &mut masked)
                    {
                        Ok(r) => rewritten = r,
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                    if let Some(recording) = recording {
                        for m in &masked[before..] {
                            if let Some(id) = m.request {
                                recording.masked(id, &m.counts);
                            }
                        }
                    }
                }
                let fate = match attribution {
                    Attribution::Unexpected => {
                        tracing::debug!(
                            tag = %char::from(header.tag),
                            "server message answers no pending client request"
                        );
                        FrameFate::Forward
                    }
                    Attribution::Request { request, completes } => {
                        let id = request.id();
                        if let Some(recording) = recording {
                            // What the client receives: the masked frame, if masked.
                            let sent = if rewritten { &scratch[..] } else { frame };
                            recording
                                .server_frame(id, completes, header.tag, sent)
                                .map_err(|e| format!("session recording: {e}"))?;
                        }
                        if synthetic.is_empty() || !synthetic.contains(&id) {
                            FrameFate::Forward
                        } else {
                            if completes {
                                synthetic.remove(&id);
                            }
                            match header.tag {
                                b'1' | b'2' => FrameFate::Drop,
                                b'E' => FrameFate::Trim,
                                _ => FrameFate::Forward,
                            }
                        }
                    }
                    Attribution::Session => FrameFate::Forward,
                };
                let fate = match fate {
                    FrameFate::Forward if rewritten => FrameFate::Replace,
                    fate => fate,
                };
                match fate {
                    FrameFate::Forward if !edited => {}
                    FrameFate::Forward => out.extend_from_slice(frame),
                    FrameFate::Drop | FrameFate::Trim | FrameFate::Replace => {
                        if !edited {
                            out.extend_from_slice(&buf[..complete]);
                            edited = true;
                        }
                        match fate {
                            FrameFate::Trim => trim_denial(frame, &mut out),
                            FrameFate::Replace => out.extend_from_slice(&scratch),
                            _ => {}
                        }
                    }
                }
                complete += frame_len;
            }
        }
        if complete > 0 {
            let frames = buf.split_to(complete);
            let bytes: &[u8] = if edited { &out } else { &frames };
            // A client that stops reading ends its session (and frees the server's backend)
            // rather than holding both forever.
            match timeout(CLIENT_WRITE_STALL, client.write_all(bytes)).await {
                Ok(written) => written.map_err(|e| format!("client side: {e}"))?,
                Err(_) => {
                    return Err(format!(
                        "client side: stopped reading for {}s: session ended",
                        CLIENT_WRITE_STALL.as_secs()
                    ));
                }
            }
            copied.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            out.clear();
        }
        for m in masked.drain(..) {
            audit.audit.emit_line(
                audit
                    .events
                    .values_masked(m.request.map(|id| id.0), &m.counts),
            );
        }
        if let Some(e) = failure {
            return Err(withhold(&mut client, &e).await);
        }
        if let Some(needed) = lookup {
            let Some(catalog) = &mut catalog else {
                return Err(withhold(&mut client, &MaskError::UnknownColumns).await);
            };
            let learned = match catalog.answer(needed).await {
                Ok(learned) => learned,
                Err(e) => {
                    let e = MaskError::CopyStatement(format!("catalog lookup failed: {e}"));
                    return Err(withhold(&mut client, &e).await);
                }
            };
            let learnt = match &mut relay.lock().unwrap_or_else(|e| e.into_inner()).masking {
                Some(masking) => masking.learn(learned),
                None => Ok(()),
            };
            if let Err(e) = learnt {
                return Err(withhold(&mut client, &e).await);
            }
            // The frames left in `buf` are handled with what was learned, before reading more.
            continue;
        }
        // Waiting for the server holds no buffer (see `read_some`).
        if buf.is_empty() {
            buf = BytesMut::new();
            out = BytesMut::new();
            scratch = BytesMut::new();
        }
        tokio::select! {
            read = read_some(&mut upstream, &mut buf) => match read {
                Ok(0) => {
                    let _ = client.shutdown().await;
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) => return Err(format!("upstream side: {e}")),
            },
            Some(message) = inject.recv() => {
                let _ = client.write_all(&message).await;
                let _ = client.shutdown().await;
                return Ok(());
            }
            Some(notice) = notices.recv() => {
                client
                    .write_all(&notice)
                    .await
                    .map_err(|e| format!("client side: {e}"))?;
                copied.fetch_add(notice.len() as u64, Ordering::Relaxed);
            }
        }
    }
}

/// Ends the session because a result cannot be masked: the client gets a FATAL error naming
/// the rule or column (never a value); nothing of the result follows what was already sent
/// masked.
async fn withhold(client: &mut (impl AsyncWrite + Unpin), error: &MaskError) -> String {
    let mut out = BytesMut::new();
    ErrorResponse::new(
        Severity::Fatal,
        error.sqlstate(),
        "chunk agent: result withheld by the masking policy",
    )
    .detail(error.to_string())
    .hint("no unmasked value was sent; ask the policy owners to adjust the mask rules")
    .encode(&mut out);
    let _ = client.write_all(&out).await;
    let _ = client.shutdown().await;
    format!("masking: {error}")
}

/// Whether a ParameterStatus body (`name\0value\0`) leaves SQL text judgeable.
fn parameter_is_judgeable(frame: &[u8]) -> bool {
    match decode_backend_frame(frame) {
        Some(BackendMessage::ParameterStatus(p)) => setting_is_judgeable(&p.name, &p.value),
        _ => true,
    }
}

/// Re-encodes the ErrorResponse `frame` (raised by a gate `DO` block) with only the denial's
/// fields: the context, file and line fields describe the block, not the client's statement.
fn trim_denial(frame: &[u8], out: &mut BytesMut) {
    match decode_backend_frame(frame) {
        Some(BackendMessage::ErrorResponse(mut error)) => {
            error
                .fields
                .retain(|(code, _)| gate::keeps_denial_field(*code));
            error.encode(out);
        }
        // Not decodable as expected: pass it on unchanged rather than lose the error.
        _ => out.extend_from_slice(frame),
    }
}
