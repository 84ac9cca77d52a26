//! Tests of token verification with keys generated at run time (nothing secret is committed).

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use jsonwebtoken::{EncodingKey, Header};
use ring::{
    rand::SystemRandom,
    signature::{self, KeyPair as _},
};
use serde_json::{Value, json};

use super::fetch::{FetchJwks, KeySet, RefreshPolicy};
use super::*;

/// A signing key of a test issuer, with its public JWK.
pub(crate) struct TestKey {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub encoding: EncodingKey,
    pub jwk: Value,
}

impl TestKey {
    pub fn es256(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        Self {
            alg: Algorithm::ES256,
            kid: Some(kid.into()),
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({ "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                         "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]) }),
        }
    }

    pub fn ed25519(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        Self {
            alg: Algorithm::EdDSA,
            kid: Some(kid.into()),
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwk: json!({ "kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA",
                         "x": B64.encode(pair.public_key().as_ref()) }),
        }
    }

    /// RS256 with a 2048-bit key, generated once per test binary (RSA generation is slow).
    pub fn rs256(kid: &str) -> Self {
        use rsa::{pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts};
        static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
        let key = KEY.get_or_init(|| {
            rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key generation")
        });
        let der = key.to_pkcs1_der().unwrap();
        Self {
            alg: Algorithm::RS256,
            kid: Some(kid.into()),
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: json!({ "kty": "RSA", "kid": kid, "alg": "RS256",
                         "n": B64.encode(key.n().to_bytes_be()),
                         "e": B64.encode(key.e().to_bytes_be()) }),
        }
    }

    pub fn without_kid(mut self) -> Self {
        self.kid = None;
        self.jwk.as_object_mut().unwrap().remove("kid");
        self
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

pub(crate) fn jwks_json(keys: &[&TestKey]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "chunk-agent";
/// The injected "now" of these tests.
const NOW: u64 = 1_800_000_000;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn config() -> OidcConfig {
    let mut config = OidcConfig::new(
        ISSUER,
        vec![AUDIENCE.into(), "other-audience".into()],
        JwksSource::File("/unused".into()),
    );
    config.leeway = Duration::from_secs(30);
    config
}

fn verifier(keys: &[&TestKey]) -> Verifier {
    Verifier::new(config(), Jwks::from_json(&jwks_json(keys)).unwrap())
}

fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "system:serviceaccount:batch:nightly",
        "exp": NOW + 600, "nbf": NOW - 10, "iat": NOW - 10, "jti": "j-1",
        "groups": ["etl", "analysts"],
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

#[test]
fn valid_tokens_of_each_key_type_are_accepted_with_their_claims() {
    for key in [
        TestKey::es256("ec-1"),
        TestKey::ed25519("ed-1"),
        TestKey::rs256("rsa-1"),
    ] {
        let got = verifier(&[&key]).verify(&key.sign(&claims()), at(NOW));
        let claims = got.unwrap_or_else(|e| panic!("{:?}: {e}", key.alg));
        assert_eq!(claims.subject, "system:serviceaccount:batch:nightly");
        assert_eq!(claims.issuer, ISSUER);
        assert_eq!(claims.groups, ["etl", "analysts"]);
        assert_eq!(claims.expires_at, at(NOW + 600));
        assert_eq!(claims.not_before, Some(at(NOW - 10)));
        assert_eq!(claims.jwt_id.as_deref(), Some("j-1"));
    }
}

#[test]
fn expiry_is_judged_against_the_injected_clock_with_leeway() {
    let key = TestKey::es256("k");
    let v = verifier(&[&key]);
    let token = key.sign(&claims());
    // Valid until exp + leeway (30 s), excluded.
    assert!(v.verify(&token, at(NOW + 629)).is_ok());
    let err = v.verify(&token, at(NOW + 630)).unwrap_err();
    assert_eq!(
        err,
        TokenError::Expired {
            expired_at: at(NOW + 600)
        }
    );
    assert_eq!(err.code(), "expired");
    // Long expired: the system clock (now) plays no part.
    let old = key.sign(&with(claims(), "exp", json!(1_000)));
    assert_eq!(v.verify(&old, at(NOW)).unwrap_err().code(), "expired");
}

#[test]
fn not_yet_valid_tokens_are_refused_until_nbf_minus_leeway() {
    let key = TestKey::es256("k");
    let v = verifier(&[&key]);
    let token = key.sign(&with(claims(), "nbf", json!(NOW + 100)));
    let err = v.verify(&token, at(NOW)).unwrap_err();
    assert_eq!(
        err,
        TokenError::NotYetValid {
            valid_from: at(NOW + 100)
        }
    );
    assert!(v.verify(&token, at(NOW + 70)).is_ok());
}

#[test]
fn forged_signature_is_refused() {
    let key = TestKey::es256("k");
    let impostor = TestKey::es256("k");
    let v = verifier(&[&key]);
    assert_eq!(
        v.verify(&impostor.sign(&claims()), at(NOW)).unwrap_err(),
        TokenError::BadSignature
    );
    // A payload swapped under a genuine signature.
    let genuine = key.sign(&claims());
    let mut parts: Vec<&str> = genuine.split('.').collect();
    let evil = B64.encode(with(claims(), "sub", json!("root")).to_string());
    parts[1] = &evil;
    assert_eq!(
        v.verify(&parts.join("."), at(NOW)).unwrap_err(),
        TokenError::BadSignature
    );
}

#[test]
fn wrong_audience_and_wrong_issuer_are_refused() {
    let key = TestKey::es256("k");
    let v = verifier(&[&key]);
    let err = v
        .verify(
            &key.sign(&with(claims(), "aud", json!(["someone-else"]))),
            at(NOW),
        )
        .unwrap_err();
    assert_eq!(err.code(), "wrong-audience");
    assert!(err.to_string().contains("chunk-agent"), "{err}");
    // One matching audience among several is enough.
    let many = with(claims(), "aud", json!(["x", "other-audience"]));
    assert!(v.verify(&key.sign(&many), at(NOW)).is_ok());
    let err = v
        .verify(
            &key.sign(&with(claims(), "iss", json!("https://evil.test"))),
            at(NOW),
        )
        .unwrap_err();
    assert_eq!(
        err,
        TokenError::WrongIssuer {
            expected: ISSUER.into()
        }
    );
    assert!(!err.to_string().contains("evil"), "{err}");
}

#[test]
fn unknown_kid_is_refused_and_named() {
    let key = TestKey::es256("k1");
    let other = TestKey::es256("k2");
    let err = verifier(&[&key])
        .verify(&other.sign(&claims()), at(NOW))
        .unwrap_err();
    assert_eq!(
        err,
        TokenError::UnknownKey {
            kid: Some("k2".into())
        }
    );
}

#[test]
fn token_without_kid_needs_exactly_one_candidate_key() {
    let key = TestKey::es256("k1").without_kid();
    let lone = verifier(&[&key]);
    assert!(lone.verify(&key.sign(&claims()), at(NOW)).is_ok());
    let second = TestKey::es256("k2").without_kid();
    let two = verifier(&[&key, &second]);
    assert_eq!(
        two.verify(&key.sign(&claims()), at(NOW)).unwrap_err(),
        TokenError::UnknownKey { kid: None }
    );
}

#[test]
fn alg_none_and_hmac_with_the_public_key_are_refused() {
    let key = TestKey::rs256("rsa-1");
    let v = verifier(&[&key]);
    let header = B64.encode(r#"{"alg":"none","typ":"JWT","kid":"rsa-1"}"#);
    let body = B64.encode(claims().to_string());
    for token in [format!("{header}.{body}."), format!("{header}.{body}")] {
        let err = v.verify(&token, at(NOW)).unwrap_err();
        assert!(
            matches!(err.code(), "algorithm-not-allowed" | "malformed"),
            "{err}"
        );
    }
    assert_eq!(
        v.verify(&format!("{header}.{body}."), at(NOW)).unwrap_err(),
        TokenError::AlgorithmNotAllowed("none".into())
    );
    // Algorithm confusion: HS256 keyed with the RSA public key's bytes.
    let n = key.jwk["n"].as_str().unwrap().as_bytes().to_vec();
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("rsa-1".into());
    let confused = jsonwebtoken::encode(&hs, &claims(), &EncodingKey::from_secret(&n)).unwrap();
    assert_eq!(
        v.verify(&confused, at(NOW)).unwrap_err(),
        TokenError::AlgorithmNotAllowed("HS256".into())
    );
}

#[test]
fn algorithm_other_than_the_keys_declared_one_is_refused() {
    // The RSA JWK declares RS256: a PS256 token signed by the same key is refused.
    let key = TestKey::rs256("rsa-1");
    let v = verifier(&[&key]);
    let mut header = Header::new(Algorithm::PS256);
    header.kid = Some("rsa-1".into());
    let token = jsonwebtoken::encode(&header, &claims(), &key.encoding).unwrap();
    assert_eq!(
        v.verify(&token, at(NOW)).unwrap_err(),
        TokenError::AlgorithmNotAllowed("PS256".into())
    );
}

#[test]
fn missing_exp_sub_iss_or_aud_is_refused() {
    let key = TestKey::es256("k");
    let v = verifier(&[&key]);
    for claim in ["exp", "sub", "iss", "aud"] {
        let err = v
            .verify(&key.sign(&without(claims(), claim)), at(NOW))
            .unwrap_err();
        assert_eq!(err, TokenError::MissingClaim(claim), "{claim}");
    }
    let err = v
        .verify(
            &key.sign(&with(claims(), "exp", json!("tomorrow"))),
            at(NOW),
        )
        .unwrap_err();
    assert_eq!(err, TokenError::InvalidClaim("exp".into()));
}

#[test]
fn groups_claim_may_be_missing_a_string_or_an_array_of_strings() {
    let key = TestKey::es256("k");
    let v = verifier(&[&key]);
    let groups = |claims: Value| v.verify(&key.sign(&claims), at(NOW)).map(|c| c.groups);
    assert_eq!(
        groups(without(claims(), "groups")).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        groups(with(claims(), "groups", json!("etl"))).unwrap(),
        ["etl"]
    );
    assert_eq!(
        groups(with(claims(), "groups", json!(["a", "b", "a"]))).unwrap(),
        ["a", "b"]
    );
    assert_eq!(
        groups(with(claims(), "groups", json!(["a", 1]))).unwrap_err(),
        TokenError::InvalidClaim("groups".into())
    );
    assert_eq!(
        groups(with(claims(), "groups", json!({"a": true}))).unwrap_err(),
        TokenError::InvalidClaim("groups".into())
    );
}

#[test]
fn groups_are_read_from_the_configured_claim() {
    let key = TestKey::es256("k");
    let mut config = config();
    config.groups_claim = "roles".into();
    let v = Verifier::new(config, Jwks::from_json(&jwks_json(&[&key])).unwrap());
    let token = key.sign(&with(claims(), "roles", json!(["dba"])));
    assert_eq!(v.verify(&token, at(NOW)).unwrap().groups, ["dba"]);
}

#[test]
fn malformed_input_is_refused_without_echoing_it() {
    let key = TestKey::es256("k");
    let v = verifier(&[&key]);
    for token in [
        "",
        "secret-looking-garbage",
        "a.b",
        "a.b.c.d",
        "!!!.e30.sig",
    ] {
        let err = v.verify(token, at(NOW)).unwrap_err();
        assert_eq!(err.code(), "malformed", "{token}: {err}");
        if !token.is_empty() {
            assert!(!err.to_string().contains(token), "{err}");
        }
    }
    let huge = "a".repeat(MAX_TOKEN_LEN + 1);
    assert_eq!(v.verify(&huge, at(NOW)).unwrap_err().code(), "malformed");
    let token = key.sign(&claims());
    let err = v.verify(&token, at(NOW + 10_000)).unwrap_err();
    assert!(!err.to_string().contains(&token));
}

#[test]
fn jwks_keeps_only_public_signing_keys() {
    let ec = TestKey::es256("sig");
    let mut enc = TestKey::es256("enc").jwk;
    enc["use"] = json!("enc");
    let doc = json!({ "keys": [
        ec.jwk,
        enc,
        { "kty": "oct", "kid": "hmac", "k": "c2VjcmV0" },
        { "kty": "EC", "crv": "secp256k1", "kid": "k1", "x": "AA", "y": "AA" },
        { "kty": "weird" },
    ]});
    let jwks = Jwks::from_json(&doc.to_string()).unwrap();
    assert_eq!(jwks.key_ids(), [Some("sig")]);
    assert_eq!(
        Jwks::from_json(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap_err(),
        JwksError::NoUsableKey
    );
    assert_eq!(Jwks::from_json("[]").unwrap_err(), JwksError::NotAKeySet);
}

/// A fetcher serving whatever document the test put in, counting fetches.
struct FakeFetcher {
    doc: std::sync::Mutex<Result<String, String>>,
    fetches: AtomicUsize,
}

impl FakeFetcher {
    fn new(doc: Result<String, String>) -> Arc<Self> {
        Arc::new(Self {
            doc: std::sync::Mutex::new(doc),
            fetches: AtomicUsize::new(0),
        })
    }
    fn serve(&self, doc: Result<String, String>) {
        *self.doc.lock().unwrap() = doc;
    }
    fn count(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl FetchJwks for Arc<FakeFetcher> {
    async fn fetch(&self) -> Result<String, String> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.doc.lock().unwrap().clone()
    }
}

fn policy() -> RefreshPolicy {
    RefreshPolicy {
        max_age: Duration::from_secs(600),
        min_interval: Duration::from_secs(30),
    }
}

#[tokio::test]
async fn key_set_loads_once_and_reloads_when_stale() {
    let key = TestKey::es256("k1");
    let fetcher = FakeFetcher::new(Ok(jwks_json(&[&key])));
    let keys = KeySet::new(config(), Arc::clone(&fetcher), policy());
    let token = key.sign(&claims());
    keys.verify(&token, at(NOW)).await.unwrap();
    keys.verify(&token, at(NOW + 1)).await.unwrap();
    assert_eq!(fetcher.count(), 1);
    keys.verify(&token, at(NOW + 600)).await.unwrap();
    assert_eq!(fetcher.count(), 2);
}

#[tokio::test]
async fn unknown_kid_triggers_a_rate_limited_refresh() {
    let old = TestKey::es256("old");
    let new = TestKey::es256("new");
    let fetcher = FakeFetcher::new(Ok(jwks_json(&[&old])));
    let keys = KeySet::new(config(), Arc::clone(&fetcher), policy());
    keys.verify(&old.sign(&claims()), at(NOW)).await.unwrap();
    // The issuer rotates its keys; the agent has not seen it yet.
    fetcher.serve(Ok(jwks_json(&[&old, &new])));
    let rotated = new.sign(&claims());
    // Within the minimum interval: no fetch, still unknown.
    let err = keys.verify(&rotated, at(NOW + 10)).await.unwrap_err();
    assert_eq!(err.code(), "unknown-key");
    assert_eq!(fetcher.count(), 1);
    // Past it: one fetch, and the new key verifies.
    keys.verify(&rotated, at(NOW + 31)).await.unwrap();
    assert_eq!(fetcher.count(), 2);
    // Made-up kids do not cause a fetch per token.
    let stranger = TestKey::es256("made-up");
    for s in 0..5 {
        let _ = keys
            .verify(&stranger.sign(&claims()), at(NOW + 32 + s))
            .await;
    }
    assert_eq!(fetcher.count(), 2);
}

#[tokio::test]
async fn failed_reload_keeps_the_previous_keys_and_first_failure_is_reported() {
    let key = TestKey::es256("k");
    let fetcher = FakeFetcher::new(Err("connection refused".into()));
    let keys = KeySet::new(config(), Arc::clone(&fetcher), policy());
    let token = key.sign(&with(claims(), "exp", json!(NOW + 3600)));
    let err = keys.verify(&token, at(NOW)).await.unwrap_err();
    assert_eq!(
        err,
        TokenError::KeysUnavailable("connection refused".into())
    );
    // Rate-limited after a failure too.
    let _ = keys.verify(&token, at(NOW + 5)).await;
    assert_eq!(fetcher.count(), 1);
    fetcher.serve(Ok(jwks_json(&[&key])));
    keys.verify(&token, at(NOW + 30)).await.unwrap();
    fetcher.serve(Err("down".into()));
    keys.verify(&token, at(NOW + 700)).await.unwrap();
    assert_eq!(fetcher.count(), 3);
}

#[tokio::test]
async fn http_key_set_is_fetched_from_a_loopback_url() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let key = TestKey::es256("k");
    let body = jwks_json(&[&key]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 4096];
        let _ = sock.read(&mut request).await.unwrap();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        sock.write_all(response.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    let url: url::Url = format!("http://{addr}/jwks.json").parse().unwrap();
    let mut config = config();
    config.jwks = JwksSource::Url(url);
    let keys = KeySet::from_config(config).unwrap();
    keys.verify(&key.sign(&claims()), at(NOW)).await.unwrap();
    let request = server.await.unwrap();
    assert!(request.starts_with("GET /jwks.json HTTP/1.1"), "{request}");
}

#[test]
fn key_set_urls_must_be_https_unless_loopback() {
    use super::fetch::check_url;
    let ok = |u: &str| check_url(&u.parse().unwrap()).is_ok();
    assert!(ok("https://idp.example.com/jwks"));
    assert!(ok("http://127.0.0.1:8080/jwks"));
    assert!(ok("http://[::1]/jwks"));
    assert!(ok("http://localhost/jwks"));
    assert!(!ok("http://idp.example.com/jwks"));
    assert!(!ok("ftp://idp.example.com/jwks"));
}
