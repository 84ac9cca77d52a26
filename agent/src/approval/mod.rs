//! Approvals: statements that a policy `approve` rule holds until approvers approve them, and
//! time-bound grants that let a workload run such statements without waiting.
//!
//! - [`book`]: the pure core ([`ApprovalBook`]): requests, votes, expiry, grants. Time is an
//!   argument everywhere.
//! - [`summary`]: what approvers see of a statement, from the policy's verdict (no literals).
//! - [`hub`]: [`ApprovalHub`], the async service the proxy's sessions submit statements to,
//!   with a [`Clock`] driving expiry; audit events for every step.
//! - [`notify`]: webhook notifications (Slack-compatible JSON).
//! - [`api`]: the approval HTTP API (bearer JWT verified by [`crate::oidc`]).
//! - [`client`]: `agent approvals ...`, the API's command-line client.
//!
//! See `docs/approvals.md`.

pub mod api;
pub mod book;
pub mod client;
pub mod clock;
pub mod hub;
pub mod notify;
pub mod summary;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

pub use book::{
    ApprovalBook, Approver, Grant, GrantId, GrantSpec, Listing, Pending, RequestId, RequestSpec,
    Requester, Resolution, StatementSummary, Vote,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use hub::{
    Admission, ApprovalHub, Approved, Audit, HeldStatement, HubSettings, RefusalReason, Refused,
};
pub use summary::{summarize, summarize_decision};

use crate::oidc::{DEFAULT_GROUPS_CLAIM, DEFAULT_LEEWAY, JwksSource, OidcConfig};

/// The approval API's default port (on 127.0.0.1).
pub const DEFAULT_PORT: u16 = 15480;

/// The default approval API address.
pub fn default_listen() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT))
}

/// The approval service's configuration (`agent run --approval-*`).
#[derive(Debug, Clone)]
pub struct ApprovalConfig {
    /// Where the approval API listens (loopback only).
    pub listen: SocketAddr,
    /// How approvers' tokens are verified; `None`: no approval service (statements needing
    /// approval are refused).
    pub oidc: Option<OidcConfig>,
    /// Webhook notified of every step (treated as a secret).
    pub webhook: Option<String>,
    /// Base URL approvers reach the API at, for notices (default `http://<listen>`).
    pub public_url: Option<String>,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            oidc: None,
            webhook: None,
            public_url: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "approver authentication needs --approval-issuer, --approval-audience and one of \
         --approval-jwks-file / --approval-jwks-url (missing: {0})"
    )]
    Incomplete(String),
    #[error("--approval-jwks-file and --approval-jwks-url exclude each other")]
    TwoKeySources,
    #[error("--approval-jwks-file must be an absolute path")]
    RelativeJwksFile,
    #[error("--approval-jwks-url: {0}")]
    JwksUrl(String),
    #[error(
        "--approval-listen {0}: the approval API has no TLS, so it listens on a loopback address \
         only (put a TLS reverse proxy in front of it)"
    )]
    NotLoopback(SocketAddr),
}

/// The `agent run --approval-*` flags, before validation.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ApprovalFlags {
    /// Address of the approval API (loopback only: it has no TLS) [default: 127.0.0.1:15480].
    #[arg(long = "approval-listen")]
    pub listen: Option<SocketAddr>,
    /// Issuer (`iss`) of approvers' tokens. With --approval-audience and a key source it
    /// enables approvals; without them, statements needing approval are refused.
    #[arg(long = "approval-issuer")]
    pub issuer: Option<String>,
    /// Audience (`aud`) approvers' tokens must name (repeatable).
    #[arg(long = "approval-audience")]
    pub audiences: Vec<String>,
    /// The issuer's key set (JWKS) as a file (absolute path).
    #[arg(long = "approval-jwks-file")]
    pub jwks_file: Option<std::path::PathBuf>,
    /// The issuer's key set (JWKS) URL (https, or http to loopback).
    #[arg(long = "approval-jwks-url")]
    pub jwks_url: Option<String>,
    /// The token claim holding the approver's groups [default: groups].
    #[arg(long = "approval-groups-claim")]
    pub groups_claim: Option<String>,
    /// Webhook notified (POST, Slack-compatible JSON) of every approval step (a secret).
    #[arg(long = "approval-webhook")]
    pub webhook: Option<String>,
    /// Base URL approvers reach the approval API at, shown in notices.
    #[arg(long = "approval-public-url")]
    pub public_url: Option<String>,
}

impl ApprovalFlags {
    /// The configuration: without any authentication flag, no approval service; with some,
    /// all of issuer, audience and one key source are required.
    pub fn into_config(self) -> Result<ApprovalConfig, ConfigError> {
        let listen = self.listen.unwrap_or_else(default_listen);
        if !listen.ip().is_loopback() {
            return Err(ConfigError::NotLoopback(listen));
        }
        let any = self.issuer.is_some()
            || !self.audiences.is_empty()
            || self.jwks_file.is_some()
            || self.jwks_url.is_some();
        let oidc = if any {
            let mut missing = Vec::new();
            if self.issuer.is_none() {
                missing.push("--approval-issuer");
            }
            if self.audiences.is_empty() {
                missing.push("--approval-audience");
            }
            let jwks = match (self.jwks_file, self.jwks_url) {
                (Some(_), Some(_)) => return Err(ConfigError::TwoKeySources),
                (Some(path), None) if path.is_absolute() => Some(JwksSource::File(path)),
                (Some(_), None) => return Err(ConfigError::RelativeJwksFile),
                (None, Some(url)) => {
                    let url =
                        url::Url::parse(&url).map_err(|e| ConfigError::JwksUrl(e.to_string()))?;
                    crate::oidc::fetch::check_url(&url).map_err(ConfigError::JwksUrl)?;
                    Some(JwksSource::Url(url))
                }
                (None, None) => {
                    missing.push("--approval-jwks-file or --approval-jwks-url");
                    None
                }
            };
            if !missing.is_empty() {
                return Err(ConfigError::Incomplete(missing.join(", ")));
            }
            Some(OidcConfig {
                issuer: self.issuer.unwrap_or_default(),
                audiences: self.audiences,
                jwks: jwks.expect("checked above"),
                groups_claim: self
                    .groups_claim
                    .unwrap_or_else(|| DEFAULT_GROUPS_CLAIM.to_owned()),
                leeway: DEFAULT_LEEWAY,
            })
        } else {
            None
        };
        Ok(ApprovalConfig {
            listen,
            oidc,
            webhook: self.webhook,
            public_url: self.public_url,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("approver authentication: {0}")]
    Oidc(String),
    #[error(transparent)]
    Webhook(#[from] notify::NotifierError),
    #[error("cannot listen on {addr} for the approval API: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The running approval service: the hub for the proxy's sessions, and the API server.
#[derive(Debug)]
pub struct ApprovalService {
    pub hub: ApprovalHub,
    /// Where the API listens (`None`: not served, the service is unavailable).
    pub listen: Option<SocketAddr>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl ApprovalService {
    /// Stops the API server (the hub lives on while sessions hold it).
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

impl Drop for ApprovalService {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the approval service (on the current tokio runtime). Without approver
/// authentication the hub refuses every statement needing approval (fail closed) and no API
/// is served.
pub async fn start(
    config: ApprovalConfig,
    audit: Arc<dyn Audit>,
    clock: Arc<dyn Clock>,
) -> Result<ApprovalService, StartError> {
    let Some(oidc) = config.oidc else {
        return Ok(ApprovalService {
            hub: ApprovalHub::unavailable(
                "no approver authentication is configured (agent run --approval-issuer, \
                 --approval-audience, --approval-jwks-file or --approval-jwks-url)",
                audit,
            ),
            listen: None,
            server: None,
        });
    };
    let keys = crate::oidc::fetch::KeySet::from_config(oidc).map_err(StartError::Oidc)?;
    let notifier = config
        .webhook
        .as_deref()
        .map(|url| notify::Notifier::start(url, Arc::clone(&audit)))
        .transpose()?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
    let listen = listener.local_addr().unwrap_or(config.listen);
    let public_url = config
        .public_url
        .unwrap_or_else(|| format!("http://{listen}"));
    let hub = ApprovalHub::new(HubSettings { public_url }, audit, clock, notifier);
    let served = hub.clone();
    let server = tokio::spawn(async move {
        if let Err(err) = api::serve(listener, served, Arc::new(keys)).await {
            tracing::error!(%err, "the approval API stopped");
        }
    });
    tracing::info!(%listen, "approval API listening");
    Ok(ApprovalService {
        hub,
        listen: Some(listen),
        server: Some(server),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_authentication_flag_means_no_service() {
        let config = ApprovalFlags::default().into_config().unwrap();
        assert!(config.oidc.is_none());
        assert_eq!(config.listen, default_listen());
    }

    #[test]
    fn authentication_flags_go_together() {
        let partial = ApprovalFlags {
            issuer: Some("https://idp".into()),
            ..Default::default()
        };
        assert!(matches!(
            partial.into_config(),
            Err(ConfigError::Incomplete(m)) if m.contains("--approval-audience") && m.contains("jwks")
        ));
        let full = ApprovalFlags {
            issuer: Some("https://idp".into()),
            audiences: vec!["chunk-approvals".into()],
            jwks_file: Some("/etc/chunk-agent/jwks.json".into()),
            ..Default::default()
        };
        let oidc = full.into_config().unwrap().oidc.unwrap();
        assert_eq!(oidc.groups_claim, "groups");
        let http = ApprovalFlags {
            issuer: Some("https://idp".into()),
            audiences: vec!["a".into()],
            jwks_url: Some("http://idp.example/jwks".into()),
            ..Default::default()
        };
        assert!(matches!(http.into_config(), Err(ConfigError::JwksUrl(_))));
    }

    #[test]
    fn the_api_listens_on_loopback_only() {
        let flags = ApprovalFlags {
            listen: Some("0.0.0.0:15480".parse().unwrap()),
            ..Default::default()
        };
        assert!(matches!(
            flags.into_config(),
            Err(ConfigError::NotLoopback(_))
        ));
    }

    #[tokio::test]
    async fn without_authentication_the_hub_fails_closed() {
        let audit = Arc::new(hub::tests::Recorder::default());
        let service = start(ApprovalConfig::default(), audit, Arc::new(SystemClock))
            .await
            .unwrap();
        assert!(service.listen.is_none());
        assert!(service.hub.unavailable_reason().is_some());
    }
}
