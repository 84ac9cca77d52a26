//! A JWK set (RFC 7517) as published by an OpenID provider, reduced to the public signing keys
//! the verifier may use.

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse},
};
use serde_json::Value;

use super::{TokenError, algorithm_name, printable};

/// Largest JWKS document accepted (bytes).
pub const MAX_JWKS_LEN: usize = 1024 * 1024;

/// Why a JWKS document is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("the key set is not valid JSON with a `keys` array")]
    NotAKeySet,
    #[error("the key set is larger than 1 MiB")]
    TooLarge,
    #[error("the key set has no usable signing key (RSA, EC P-256/P-384 or Ed25519)")]
    NoUsableKey,
}

/// One usable public key.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    /// The algorithms this key may verify: the JWK's own `alg`, or every algorithm of its type.
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

/// The public signing keys of an issuer. Keys that cannot sign tokens (`use: enc`, symmetric
/// `oct` keys, unknown types or curves) are left out when parsing.
#[derive(Clone, Default)]
pub struct Jwks {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("kids", &self.key_ids())
            .finish()
    }
}

impl Jwks {
    /// Parses a JWKS document (`{"keys": [...]}`); at least one key must be usable.
    pub fn from_json(text: &str) -> Result<Self, JwksError> {
        if text.len() > MAX_JWKS_LEN {
            return Err(JwksError::TooLarge);
        }
        let doc: Value = serde_json::from_str(text).map_err(|_| JwksError::NotAKeySet)?;
        let entries = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::NotAKeySet)?;
        let keys: Vec<Key> = entries
            .iter()
            .filter_map(|entry| serde_json::from_value::<Jwk>(entry.clone()).ok())
            .filter_map(|jwk| usable_key(&jwk))
            .collect();
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(Self { keys })
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The `kid`s of the usable keys (`None` for a key without one).
    pub fn key_ids(&self) -> Vec<Option<&str>> {
        self.keys.iter().map(|k| k.kid.as_deref()).collect()
    }

    /// The key that verifies a token with this `kid` and algorithm. Without `kid`, the only key
    /// able to verify `alg`.
    pub(super) fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<&DecodingKey, TokenError> {
        let candidates: Vec<&Key> = match kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            None => self
                .keys
                .iter()
                .filter(|k| k.algorithms.contains(&alg))
                .collect(),
        };
        let unknown = || TokenError::UnknownKey {
            kid: kid.map(printable),
        };
        match (kid, candidates.as_slice()) {
            (_, []) => Err(unknown()),
            (None, [one]) => Ok(&one.key),
            // Without a kid, several keys could match: the token must name its key.
            (None, _) => Err(unknown()),
            (Some(_), keys) => keys
                .iter()
                .find(|k| k.algorithms.contains(&alg))
                .map(|k| &k.key)
                .ok_or_else(|| TokenError::AlgorithmNotAllowed(algorithm_name(alg).to_owned())),
        }
    }
}

/// The key of a JWK if it is a public signing key of a supported type, with the algorithms it
/// may verify.
fn usable_key(jwk: &Jwk) -> Option<Key> {
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let type_algorithms: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
            _ => return None,
        },
        // Symmetric keys never verify a workload token.
        _ => return None,
    };
    let algorithms = match jwk.common.key_algorithm {
        None => type_algorithms,
        Some(declared) => {
            let declared = type_algorithms
                .into_iter()
                .find(|a| algorithm_name(*a) == declared.to_string())?;
            vec![declared]
        }
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        algorithms,
        key,
    })
}
