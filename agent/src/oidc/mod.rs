//! OpenID Connect / JWT verification of workload tokens. Pure, apart from [`fetch`].
//!
//! A [`Verifier`] holds an [`OidcConfig`] (expected issuer and audiences, the claim carrying the
//! groups, the clock leeway) and a parsed [`Jwks`]; [`Verifier::verify`] checks a compact JWS
//! token against them at a time **given by the caller** (the clock is never read here) and
//! returns its [`Claims`], or a [`TokenError`] saying what failed without echoing the token.
//!
//! What is accepted:
//! - signatures RS256/384/512, PS256/384/512, ES256, ES384 and EdDSA (Ed25519), by a key of the
//!   key set: the key named by the token's `kid`, or, for a token without `kid`, the only key
//!   of the set that can verify its algorithm. `alg: none` and HMAC (`HS*`) are always refused
//!   (a public key is never used as an HMAC secret), and so is a key whose own `alg` differs;
//! - `iss` equal to the configured issuer; `aud` (a string or an array) naming one of the
//!   configured audiences; `exp` required, `nbf` optional, both checked against `now` with the
//!   leeway (valid while `nbf - leeway <= now < exp + leeway`); `sub` required;
//! - the groups claim (default `groups`): absent (no groups), a string (one group) or an array
//!   of strings; anything else is refused.
//!
//! jsonwebtoken's own `exp`/`nbf` checks read the system clock: they are disabled, and every
//! claim check is done here against `now`.
//!
//! [`fetch::KeySet`] is the adapter that loads the key set from a file or an `https` URL,
//! caches it and refreshes it (rate-limited) when a token names an unknown key.

pub mod fetch;
mod jwks;
#[cfg(test)]
pub(crate) mod tests;

use std::{
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

pub use jwks::{Jwks, JwksError};

/// The claim holding the groups when the configuration names none.
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";
/// Clock skew tolerated between the issuer and this host when none is configured.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Longest token accepted (bytes). Larger input is refused before any decoding.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Where the issuer's public keys (a JWK set) come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JwksSource {
    /// An absolute path to a JWKS JSON file.
    File(PathBuf),
    /// An `https` URL (plain `http` only to a loopback address) serving the JWKS JSON.
    Url(url::Url),
}

impl std::fmt::Display for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksSource::File(path) => write!(f, "file:{}", path.display()),
            JwksSource::Url(url) => write!(f, "{url}"),
        }
    }
}

/// What a token must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// The exact `iss` expected.
    pub issuer: String,
    /// The token's `aud` must name at least one of these (never empty).
    pub audiences: Vec<String>,
    pub jwks: JwksSource,
    /// The top-level claim holding the groups (default [`DEFAULT_GROUPS_CLAIM`]).
    pub groups_claim: String,
    /// Tolerated clock skew for `exp` and `nbf` (default [`DEFAULT_LEEWAY`]).
    pub leeway: Duration,
}

impl OidcConfig {
    /// A configuration with the default groups claim and leeway.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>, jwks: JwksSource) -> Self {
        Self {
            issuer: issuer.into(),
            audiences,
            jwks,
            groups_claim: DEFAULT_GROUPS_CLAIM.to_owned(),
            leeway: DEFAULT_LEEWAY,
        }
    }
}

/// The verified content of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `sub`.
    pub subject: String,
    /// `iss` (the configured issuer).
    pub issuer: String,
    /// From the groups claim, in token order, without repeats; empty when the claim is absent.
    pub groups: Vec<String>,
    /// `exp`.
    pub expires_at: SystemTime,
    /// `nbf`, if present.
    pub not_before: Option<SystemTime>,
    /// `jti`, if present.
    pub jwt_id: Option<String>,
}

/// Why a token was refused. Messages name what failed and never contain the token; values
/// taken from the token (a `kid`, an `alg`) are shown only when short and printable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the token's algorithm {0} is not accepted")]
    AlgorithmNotAllowed(String),
    #[error("the token is signed by an unknown key ({})", kid.as_deref().map_or_else(|| "no kid".to_owned(), |k| format!("kid {k}")))]
    UnknownKey { kid: Option<String> },
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token was not issued by {expected}")]
    WrongIssuer { expected: String },
    #[error("the token is not meant for this audience (expected one of: {})", expected.join(", "))]
    WrongAudience { expected: Vec<String> },
    #[error("the token expired at {}", humantime::format_rfc3339_seconds(*expired_at))]
    Expired { expired_at: SystemTime },
    #[error("the token is not valid before {}", humantime::format_rfc3339_seconds(*valid_from))]
    NotYetValid { valid_from: SystemTime },
    #[error("the token has no {0} claim")]
    MissingClaim(&'static str),
    #[error("the token's {0} claim has the wrong type")]
    InvalidClaim(String),
    #[error("the issuer's keys are unavailable: {0}")]
    KeysUnavailable(String),
}

impl TokenError {
    /// A short stable code, for audit events.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) => "malformed",
            TokenError::AlgorithmNotAllowed(_) => "algorithm-not-allowed",
            TokenError::UnknownKey { .. } => "unknown-key",
            TokenError::BadSignature => "bad-signature",
            TokenError::WrongIssuer { .. } => "wrong-issuer",
            TokenError::WrongAudience { .. } => "wrong-audience",
            TokenError::Expired { .. } => "expired",
            TokenError::NotYetValid { .. } => "not-yet-valid",
            TokenError::MissingClaim(_) => "missing-claim",
            TokenError::InvalidClaim(_) => "invalid-claim",
            TokenError::KeysUnavailable(_) => "keys-unavailable",
        }
    }
}

/// Verifies tokens against one configuration and one key set. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Verifier {
    config: OidcConfig,
    jwks: Jwks,
}

/// The algorithms a token may use (never `none`, never HMAC).
const ACCEPTED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl Verifier {
    pub fn new(config: OidcConfig, jwks: Jwks) -> Self {
        Self { config, jwks }
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// Verifies `token` (compact JWS) as of `now`. See the module documentation for the rules.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed("longer than 16 KiB"));
        }
        let alg = header_algorithm(token)?;
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed("bad header"))?;
        let key = self.jwks.key_for(header.kid.as_deref(), alg)?;
        let mut validation = Validation::new(alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Value>(token, key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature
                | K::InvalidEcdsaKey
                | K::InvalidEddsaKey
                | K::InvalidRsaKey(_)
                | K::InvalidKeyFormat
                | K::Provider(_) => TokenError::BadSignature,
                K::InvalidAlgorithm | K::UnsupportedAlgorithm | K::MissingAlgorithm => {
                    TokenError::AlgorithmNotAllowed(algorithm_name(alg).to_owned())
                }
                _ => TokenError::Malformed("undecodable payload"),
            }
        })?;
        self.check_claims(&data.claims, now)
    }

    fn check_claims(&self, claims: &Value, now: SystemTime) -> Result<Claims, TokenError> {
        let claims = claims
            .as_object()
            .ok_or(TokenError::Malformed("the payload is not a JSON object"))?;
        let issuer = match claims.get("iss") {
            None => return Err(TokenError::MissingClaim("iss")),
            Some(Value::String(iss)) if *iss == self.config.issuer => iss.clone(),
            Some(Value::String(_)) => {
                return Err(TokenError::WrongIssuer {
                    expected: self.config.issuer.clone(),
                });
            }
            Some(_) => return Err(TokenError::InvalidClaim("iss".into())),
        };
        let audiences: Vec<&str> = match claims.get("aud") {
            None => return Err(TokenError::MissingClaim("aud")),
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().ok_or(TokenError::InvalidClaim("aud".into())))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(TokenError::InvalidClaim("aud".into())),
        };
        if !audiences
            .iter()
            .any(|a| self.config.audiences.iter().any(|c| c == a))
        {
            return Err(TokenError::WrongAudience {
                expected: self.config.audiences.clone(),
            });
        }
        let expires_at = match claims.get("exp") {
            None => return Err(TokenError::MissingClaim("exp")),
            Some(v) => numeric_date(v).ok_or(TokenError::InvalidClaim("exp".into()))?,
        };
        let not_before = claims
            .get("nbf")
            .map(|v| numeric_date(v).ok_or(TokenError::InvalidClaim("nbf".into())))
            .transpose()?;
        let leeway = self.config.leeway;
        if now >= expires_at + leeway {
            return Err(TokenError::Expired {
                expired_at: expires_at,
            });
        }
        if let Some(nbf) = not_before
            && now + leeway < nbf
        {
            return Err(TokenError::NotYetValid { valid_from: nbf });
        }
        let subject = match claims.get("sub") {
            None => return Err(TokenError::MissingClaim("sub")),
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            Some(_) => return Err(TokenError::InvalidClaim("sub".into())),
        };
        let jwt_id = match claims.get("jti") {
            None => None,
            Some(Value::String(jti)) => Some(jti.clone()),
            Some(_) => return Err(TokenError::InvalidClaim("jti".into())),
        };
        let groups = groups_of(claims.get(&self.config.groups_claim))
            .ok_or_else(|| TokenError::InvalidClaim(self.config.groups_claim.clone()))?;
        Ok(Claims {
            subject,
            issuer,
            groups,
            expires_at,
            not_before,
            jwt_id,
        })
    }
}

/// The header's `alg`, read before anything else so that `none` and HMAC are refused by name.
fn header_algorithm(token: &str) -> Result<Algorithm, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("not three dot-separated parts"));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed("the header is not base64url"))?;
    let header: Value =
        serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed("bad header"))?;
    if header.get("crit").is_some() {
        return Err(TokenError::Malformed(
            "critical header extensions are not supported",
        ));
    }
    let Some(name) = header.get("alg").and_then(Value::as_str) else {
        return Err(TokenError::Malformed("the header has no alg"));
    };
    ACCEPTED
        .into_iter()
        .find(|a| algorithm_name(*a) == name)
        .ok_or_else(|| TokenError::AlgorithmNotAllowed(printable(name)))
}

pub(crate) fn algorithm_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        _ => "unsupported",
    }
}

/// A value taken from a token, safe to show: at most 64 printable ASCII characters, else a
/// placeholder.
pub(crate) fn printable(value: &str) -> String {
    if !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        value.to_owned()
    } else {
        "(not shown)".to_owned()
    }
}

/// A JWT NumericDate (seconds since the epoch, possibly fractional, not negative).
fn numeric_date(value: &Value) -> Option<SystemTime> {
    let seconds = value.as_f64()?;
    let duration = Duration::try_from_secs_f64(seconds).ok()?;
    UNIX_EPOCH.checked_add(duration)
}

/// The groups of a token from its groups claim: absent is no group, a string is one group, an
/// array must hold only strings. `None`: any other shape.
fn groups_of(claim: Option<&Value>) -> Option<Vec<String>> {
    let mut groups: Vec<String> = Vec::new();
    match claim {
        None | Some(Value::Null) => {}
        Some(Value::String(group)) => groups.push(group.clone()),
        Some(Value::Array(items)) => {
            for item in items {
                let group = item.as_str()?;
                if !groups.iter().any(|g| g == group) {
                    groups.push(group.to_owned());
                }
            }
        }
        Some(_) => return None,
    }
    Some(groups)
}
