//! The agent's side of a database connection: TCP (+ verified TLS), startup and login with the
//! target's credential, plus the few things the agent itself says to a server (a simple query
//! for just-in-time roles, a cancel request). Socket adapter over the pure codec and
//! [`super::auth`]. Every error says it comes from the upstream side.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use rustls::{ClientConfig, pki_types::ServerName};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
    time::timeout,
};
use tokio_rustls::{TlsConnector, client::TlsStream};

use super::{
    auth::{AuthError, AuthRequest, AuthStep, UpstreamAuth},
    codec::{
        BackendMessage, Caps, CodecError, FrontendMessage,
        backend::{Authentication, BackendKeyData, ErrorResponse, ParameterStatus, RowDescription},
        decode_backend,
        frontend::{Describe, Parse, PasswordMessage, TargetKind},
        startup::{CancelRequest, ProtocolVersion, Startup, StartupMessage},
    },
};

/// How long the agent waits for a server to accept a TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the whole login (TLS, startup, authentication) may take.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to a server, in clear or over TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Where a target is and how to secure the hop.
#[derive(Clone)]
pub struct Endpoint {
    pub target: String,
    pub address: SocketAddr,
    /// `None`: TLS disabled by policy.
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot reach target {target} at {address}: {reason}")]
    Unreachable {
        target: String,
        address: SocketAddr,
        reason: String,
    },
    #[error("target {target} refuses TLS, and its policy requires verified TLS")]
    TlsRefused { target: String },
    #[error("TLS with target {target} failed: {reason}")]
    Tls { target: String, reason: String },
    #[error("login to target {target} as {role} failed: {source}")]
    Auth {
        target: String,
        role: String,
        #[source]
        source: AuthError,
    },
    #[error("target {target} refused the login as {role}: {message}")]
    Rejected {
        target: String,
        role: String,
        message: String,
        /// The server's error, to relay to the client (it names no secret).
        error: Box<ErrorResponse>,
    },
    #[error("target {target} refused a statement of the agent: {message}")]
    QueryFailed { target: String, message: String },
    #[error("target {target} broke the protocol: {reason}")]
    Protocol { target: String, reason: String },
    #[error("target {target}: {source}")]
    Io {
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("target {target} did not answer within {seconds} s")]
    Timeout { target: String, seconds: u64 },
}

impl UpstreamError {
    /// The SQLSTATE a client should see for this failure.
    pub fn sqlstate(&self) -> &str {
        use super::sqlstate::*;
        match self {
            Self::Unreachable { .. } | Self::Timeout { .. } => {
                SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION
            }
            Self::TlsRefused { .. } | Self::Tls { .. } => {
                SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION
            }
            Self::Auth { .. } => INVALID_PASSWORD,
            Self::Rejected { error, .. } => error.code().unwrap_or(CONNECTION_FAILURE),
            Self::Protocol { .. } => PROTOCOL_VIOLATION,
            Self::QueryFailed { .. } => INSUFFICIENT_PRIVILEGE,
            Self::Io { .. } => CONNECTION_FAILURE,
        }
    }

    /// Whether this is an authentication failure (for the audit log).
    pub fn is_auth_failure(&self) -> bool {
        match self {
            Self::Auth { .. } => true,
            Self::Rejected { error, .. } => error.code().is_some_and(|c| c.starts_with("28")),
            _ => false,
        }
    }
}

impl Endpoint {
    fn io_err(&self) -> impl FnOnce(io::Error) -> UpstreamError + use<> {
        let target = self.target.clone();
        move |source| UpstreamError::Io { target, source }
    }

    fn protocol(&self, reason: impl Into<String>) -> UpstreamError {
        UpstreamError::Protocol {
            target: self.target.clone(),
            reason: reason.into(),
        }
    }

    /// TCP connection, then TLS when the policy asks for it (SSLRequest first, as PostgreSQL
    /// expects; a server answering `N` is refused, never used in clear).
    pub async fn open(&self) -> Result<Stream, UpstreamError> {
        let tcp = match timeout(CONNECT_TIMEOUT, TcpStream::connect(self.address)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(err)) => {
                return Err(UpstreamError::Unreachable {
                    target: self.target.clone(),
                    address: self.address,
                    reason: err.to_string(),
                });
            }
            Err(_) => {
                return Err(UpstreamError::Unreachable {
                    target: self.target.clone(),
                    address: self.address,
                    reason: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                });
            }
        };
        let _ = tcp.set_nodelay(true);
        let Some((config, name)) = &self.tls else {
            return Ok(Stream::Plain(tcp));
        };
        let mut tcp = tcp;
        let mut out = BytesMut::new();
        StartupMessage::SslRequest.encode(&mut out);
        tcp.write_all(&out).await.map_err(self.io_err())?;
        let answer = tcp.read_u8().await.map_err(self.io_err())?;
        match answer {
            b'S' => {}
            b'N' => {
                return Err(UpstreamError::TlsRefused {
                    target: self.target.clone(),
                });
            }
            other => {
                return Err(self.protocol(format!("unexpected answer {other:#04x} to SSLRequest")));
            }
        }
        let tls = TlsConnector::from(Arc::clone(config))
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| UpstreamError::Tls {
                target: self.target.clone(),
                reason: e.to_string(),
            })?;
        Ok(Stream::Tls(Box::new(tls)))
    }

    /// Opens a session: connection, startup with `params`, authentication as `auth`'s role.
    pub async fn login(
        &self,
        params: Vec<(String, String)>,
        role: &str,
        auth: UpstreamAuth,
    ) -> Result<Session, UpstreamError> {
        match timeout(LOGIN_TIMEOUT, self.login_inner(params, role, auth)).await {
            Ok(result) => result,
            Err(_) => Err(UpstreamError::Timeout {
                target: self.target.clone(),
                seconds: LOGIN_TIMEOUT.as_secs(),
            }),
        }
    }

    async fn login_inner(
        &self,
        params: Vec<(String, String)>,
        role: &str,
        mut auth: UpstreamAuth,
    ) -> Result<Session, UpstreamError> {
        let mut stream = self.open().await?;
        let mut out = BytesMut::new();
        StartupMessage::Startup(Startup {
            protocol: ProtocolVersion::V3_0,
            params,
        })
        .encode(&mut out);
        stream.write_all(&out).await.map_err(self.io_err())?;
        let mut session = Session {
            stream,
            buf: BytesMut::with_capacity(8 * 1024),
            parameters: Vec::new(),
            key: None,
            caps: Caps::default(),
        };
        // Authentication.
        loop {
            let msg = session.read(self).await?;
            let request = match &msg {
                BackendMessage::Authentication(a) => match a {
                    Authentication::Ok => AuthRequest::Ok,
                    Authentication::CleartextPassword => AuthRequest::Cleartext,
                    Authentication::Md5Password { salt } => AuthRequest::Md5 { salt: *salt },
                    Authentication::Sasl { mechanisms } => AuthRequest::Sasl { mechanisms },
                    Authentication::SaslContinue(d) => AuthRequest::SaslContinue(d),
                    Authentication::SaslFinal(d) => AuthRequest::SaslFinal(d),
                    Authentication::Other { code, .. } => AuthRequest::Unsupported(*code),
                },
                BackendMessage::ErrorResponse(e) => return Err(self.rejected(role, e)),
                BackendMessage::NegotiateProtocolVersion(_) | BackendMessage::NoticeResponse(_) => {
                    continue;
                }
                other => {
                    return Err(self.protocol(format!("unexpected {} during login", other.name())));
                }
            };
            let step = auth.step(request).map_err(|source| UpstreamError::Auth {
                target: self.target.clone(),
                role: role.to_owned(),
                source,
            })?;
            match step {
                AuthStep::Authenticated => break,
                AuthStep::Wait => {}
                AuthStep::Reply(reply) => {
                    let mut out = BytesMut::new();
                    FrontendMessage::PasswordMessage(PasswordMessage(Bytes::from(reply.body())))
                        .encode(&mut out);
                    session
                        .stream
                        .write_all(&out)
                        .await
                        .map_err(self.io_err())?;
                }
            }
        }
        // Session set-up until the server is ready.
        loop {
            match session.read(self).await? {
                BackendMessage::ParameterStatus(p) => session.parameters.push(p),
                BackendMessage::BackendKeyData(k) => session.key = Some(k),
                BackendMessage::ReadyForQuery(_) => return Ok(session),
                BackendMessage::NoticeResponse(_) => {}
                BackendMessage::ErrorResponse(e) => return Err(self.rejected(role, &e)),
                other => {
                    return Err(self.protocol(format!("unexpected {} after login", other.name())));
                }
            }
        }
    }

    fn rejected(&self, role: &str, error: &ErrorResponse) -> UpstreamError {
        UpstreamError::Rejected {
            target: self.target.clone(),
            role: role.to_owned(),
            message: error.message().unwrap_or("(no message)").to_owned(),
            error: Box::new(error.clone()),
        }
    }

    /// Sends a CancelRequest for the upstream session `key` and closes.
    pub async fn cancel(&self, key: &BackendKeyData) -> Result<(), UpstreamError> {
        let mut stream = self.open().await?;
        let mut out = BytesMut::new();
        StartupMessage::CancelRequest(CancelRequest {
            process_id: key.process_id,
            secret_key: key.secret_key.clone(),
        })
        .encode(&mut out);
        stream.write_all(&out).await.map_err(self.io_err())?;
        let _ = stream.shutdown().await;
        Ok(())
    }
}

/// A logged-in server session.
pub struct Session {
    pub stream: Stream,
    /// Bytes read past the last decoded message (the start of the next ones).
    pub buf: BytesMut,
    pub parameters: Vec<ParameterStatus>,
    pub key: Option<BackendKeyData>,
    caps: Caps,
}

impl Session {
    /// The next message from the server.
    async fn read(&mut self, endpoint: &Endpoint) -> Result<BackendMessage, UpstreamError> {
        loop {
            match decode_backend(&mut self.buf, &self.caps) {
                Ok(Some(msg)) => return Ok(msg),
                Ok(None) => {}
                Err(err) => return Err(endpoint.protocol(codec_reason(&err))),
            }
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(endpoint.io_err())?;
            if n == 0 {
                return Err(endpoint.protocol("the server closed the connection"));
            }
        }
    }

    /// Runs `sql` with the simple query protocol; returns the first column of every row (the
    /// agent only asks single-column questions). A server error is returned as `QueryFailed`.
    pub async fn simple_query(
        &mut self,
        endpoint: &Endpoint,
        sql: &str,
    ) -> Result<Vec<Option<String>>, UpstreamError> {
        Ok(self
            .rows(endpoint, sql)
            .await?
            .into_iter()
            .map(|row| row.into_iter().next().flatten())
            .collect())
    }

    /// Runs `sql` with the simple query protocol; returns every row, each value as text.
    pub async fn rows(
        &mut self,
        endpoint: &Endpoint,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, UpstreamError> {
        let query = FrontendMessage::Query(super::codec::frontend::Query {
            sql: sql.to_owned(),
        });
        let mut rows = Vec::new();
        self.exchange(endpoint, &[query], |msg| {
            if let BackendMessage::DataRow(row) = msg {
                rows.push(
                    row.values()
                        .map(|v| v.map(|v| String::from_utf8_lossy(v).into_owned()))
                        .collect(),
                );
            }
        })
        .await?;
        Ok(rows)
    }

    /// The columns `sql` would return, without running it (Parse and Describe of the unnamed
    /// statement); `None` for a statement that returns no rows.
    pub async fn describe(
        &mut self,
        endpoint: &Endpoint,
        sql: &str,
    ) -> Result<Option<RowDescription>, UpstreamError> {
        let parse = FrontendMessage::Parse(Parse {
            name: String::new(),
            query: sql.to_owned(),
            param_types: Vec::new(),
        });
        let describe = FrontendMessage::Describe(Describe {
            kind: TargetKind::Statement,
            name: String::new(),
        });
        let mut described = None;
        self.exchange(endpoint, &[parse, describe, FrontendMessage::Sync], |msg| {
            if let BackendMessage::RowDescription(rd) = msg {
                described = Some(rd);
            }
        })
        .await?;
        Ok(described)
    }

    /// Sends `messages`, hands every answer to `on` until ReadyForQuery, and fails with the
    /// server's error if there was one.
    async fn exchange(
        &mut self,
        endpoint: &Endpoint,
        messages: &[FrontendMessage],
        mut on: impl FnMut(BackendMessage),
    ) -> Result<(), UpstreamError> {
        let mut out = BytesMut::new();
        for msg in messages {
            msg.encode(&mut out);
        }
        self.stream
            .write_all(&out)
            .await
            .map_err(endpoint.io_err())?;
        let mut error = None;
        loop {
            match self.read(endpoint).await? {
                BackendMessage::ErrorResponse(e) => error = Some(e),
                BackendMessage::ReadyForQuery(_) => break,
                msg => on(msg),
            }
        }
        match error {
            Some(e) => Err(UpstreamError::QueryFailed {
                target: endpoint.target.clone(),
                message: e.message().unwrap_or("(no message)").to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// Ends the session politely.
    pub async fn terminate(mut self) {
        let mut out = BytesMut::new();
        FrontendMessage::Terminate.encode(&mut out);
        let _ = self.stream.write_all(&out).await;
        let _ = self.stream.shutdown().await;
    }
}

fn codec_reason(err: &CodecError) -> String {
    err.to_string()
}
