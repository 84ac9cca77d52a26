//! Adapter: loads an issuer's key set from a file or a URL and keeps it, for [`KeySet::verify`].
//!
//! The key set is loaded on first use, reloaded when older than [`RefreshPolicy::max_age`], and
//! reloaded at once when a token names a key it does not hold (keys rotate), but not more often
//! than every [`RefreshPolicy::min_interval`], so that tokens with made-up `kid`s cannot make the
//! agent hammer the issuer. A failed reload keeps the keys already held. Time comes from the
//! caller (`now`), as for [`Verifier::verify`].
//!
//! URLs must be `https` (verified with the system's root certificates), or `http` to a loopback
//! address; redirects are not followed; the body is capped at 1 MiB.

use std::{
    future::Future,
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::sync::Mutex;

use super::{Claims, Jwks, JwksSource, OidcConfig, TokenError, Verifier, jwks::MAX_JWKS_LEN};

/// How long one HTTP fetch of a key set may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a key set document comes from.
pub trait FetchJwks: Send + Sync {
    /// The JWKS document, or why it could not be had (no secret in the message).
    fn fetch(&self) -> impl Future<Output = Result<String, String>> + Send;
}

/// Reads a JWKS file.
#[derive(Debug, Clone)]
pub struct FileJwks(pub PathBuf);

impl FetchJwks for FileJwks {
    async fn fetch(&self) -> Result<String, String> {
        let path = &self.0;
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.len() > MAX_JWKS_LEN as u64 {
            return Err(format!("{}: larger than 1 MiB", path.display()));
        }
        tokio::fs::read_to_string(path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Fetches a JWKS over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpJwks {
    url: url::Url,
    client: reqwest::Client,
}

impl HttpJwks {
    /// A fetcher for `url`: `https`, or `http` to a loopback address only.
    pub fn new(url: url::Url) -> Result<Self, String> {
        check_url(&url)?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self { url, client })
    }
}

/// Whether a key set URL is acceptable: `https`, or `http` to a loopback address.
pub fn check_url(url: &url::Url) -> Result<(), String> {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => return Err(format!("key set URL {url} has no host")),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "key set URL {url} must use https (plain http only to a loopback address)"
        )),
    }
}

impl FetchJwks for HttpJwks {
    async fn fetch(&self) -> Result<String, String> {
        let mut response = self
            .client
            .get(self.url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("{}: {e}", self.url))?;
        if !response.status().is_success() {
            return Err(format!("{}: HTTP status {}", self.url, response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("{}: {e}", self.url))?
        {
            if body.len() + chunk.len() > MAX_JWKS_LEN {
                return Err(format!("{}: key set larger than 1 MiB", self.url));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| format!("{}: key set is not UTF-8", self.url))
    }
}

/// A file or HTTP fetcher, as the configuration says.
#[derive(Debug, Clone)]
pub enum SourceFetcher {
    File(FileJwks),
    Http(HttpJwks),
}

impl SourceFetcher {
    pub fn new(source: &JwksSource) -> Result<Self, String> {
        Ok(match source {
            JwksSource::File(path) => SourceFetcher::File(FileJwks(path.clone())),
            JwksSource::Url(url) => SourceFetcher::Http(HttpJwks::new(url.clone())?),
        })
    }
}

impl FetchJwks for SourceFetcher {
    async fn fetch(&self) -> Result<String, String> {
        match self {
            SourceFetcher::File(f) => f.fetch().await,
            SourceFetcher::Http(h) => h.fetch().await,
        }
    }
}

/// When a key set is reloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Keys older than this are reloaded before use.
    pub max_age: Duration,
    /// No two loads closer than this (after a failure too).
    pub min_interval: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(15 * 60),
            min_interval: Duration::from_secs(30),
        }
    }
}

struct State {
    verifier: Option<Arc<Verifier>>,
    loaded_at: Option<SystemTime>,
    last_attempt: Option<SystemTime>,
    last_error: Option<String>,
}

/// An issuer's configuration with its cached key set.
pub struct KeySet<F: FetchJwks = SourceFetcher> {
    config: OidcConfig,
    fetcher: F,
    policy: RefreshPolicy,
    state: Mutex<State>,
}

impl KeySet<SourceFetcher> {
    /// A key set loaded from `config.jwks` (nothing is read before the first verification).
    pub fn from_config(config: OidcConfig) -> Result<Self, String> {
        let fetcher = SourceFetcher::new(&config.jwks)?;
        Ok(Self::new(config, fetcher, RefreshPolicy::default()))
    }
}

impl<F: FetchJwks> KeySet<F> {
    pub fn new(config: OidcConfig, fetcher: F, policy: RefreshPolicy) -> Self {
        Self {
            config,
            fetcher,
            policy,
            state: Mutex::new(State {
                verifier: None,
                loaded_at: None,
                last_attempt: None,
                last_error: None,
            }),
        }
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Verifies `token` as of `now` ([`Verifier::verify`]), loading or reloading the key set as
    /// needed. [`TokenError::KeysUnavailable`] when no key set could ever be loaded.
    pub async fn verify(&self, token: &str, now: SystemTime) -> Result<Claims, TokenError> {
        let verifier = self.current(now, false).await?;
        match verifier.verify(token, now) {
            Err(TokenError::UnknownKey { .. }) => {
                let refreshed = self.current(now, true).await?;
                refreshed.verify(token, now)
            }
            other => other,
        }
    }

    /// The verifier to use now; `unknown_key`: a token named a key the current set lacks.
    async fn current(
        &self,
        now: SystemTime,
        unknown_key: bool,
    ) -> Result<Arc<Verifier>, TokenError> {
        let mut state = self.state.lock().await;
        let since =
            |t: Option<SystemTime>| t.map(|t| now.duration_since(t).unwrap_or(Duration::MAX));
        let stale = since(state.loaded_at).is_none_or(|age| age >= self.policy.max_age);
        let may_load = since(state.last_attempt).is_none_or(|d| d >= self.policy.min_interval);
        if (stale || unknown_key) && may_load {
            state.last_attempt = Some(now);
            let loaded = self
                .fetcher
                .fetch()
                .await
                .and_then(|text| Jwks::from_json(&text).map_err(|e| e.to_string()));
            match loaded {
                Ok(jwks) => {
                    state.verifier = Some(Arc::new(Verifier::new(self.config.clone(), jwks)));
                    state.loaded_at = Some(now);
                    state.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(jwks = %self.config.jwks, error = %e, "cannot load the issuer's key set");
                    state.last_error = Some(e);
                }
            }
        }
        match (&state.verifier, &state.last_error) {
            (Some(verifier), _) => Ok(Arc::clone(verifier)),
            (None, Some(e)) => Err(TokenError::KeysUnavailable(e.clone())),
            (None, None) => Err(TokenError::KeysUnavailable("not loaded yet".into())),
        }
    }
}
