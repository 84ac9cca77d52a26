//! JWT issuers for tests: an ES256 key pair generated at test time, its public JWK, and
//! tokens signed with it (workload tokens, approver tokens).

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{self, KeyPair as _};
use serde_json::{Value, json};

/// A test issuer: an ES256 key pair.
pub struct Issuer {
    encoding: EncodingKey,
    pub jwk: Value,
}

impl Issuer {
    pub fn new(kid: &str) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("EC key");
        let pair = signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("EC key");
        let point = pair.public_key().as_ref();
        Self {
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({ "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                         "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]) }),
        }
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = self.jwk["kid"].as_str().map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing")
    }

    /// The JWK set (`{"keys": [...]}`) to give the agent.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk.clone()] })
    }
}
