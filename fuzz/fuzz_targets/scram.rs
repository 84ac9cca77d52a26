//! Upstream authentication ([`chunk_agent::pg::auth::UpstreamAuth`], the client side of the
//! login): any sequence of server requests never panics, never leaks the secret into an error
//! or a `Debug` output, and keeps the protocol's promises.
//!
//! Input: records of one opcode byte then its operands (the first record that runs out of
//! bytes ends the input). Opcodes (`op % 8`): 0 AuthenticationOk; 1 cleartext; 2 md5 with a
//! 4-byte salt; 3 SASL with a list of mechanisms; 4 SASLContinue with raw bytes; 5
//! SASLContinue built around the client's real nonce (so that the exchange gets past the nonce
//! check to the proof) with a fuzzed nonce suffix, salt, iteration count (1 to 64) and trailer;
//! 6 SASLFinal with raw bytes; 7 an unsupported method code.
//!
//! Checked: errors and `Debug` output never show the secret (unless the server's own bytes
//! held it: errors may quote them); cleartext answers the secret NUL-terminated; md5 answers
//! `md5` + 32 hex digits + NUL; a SASL exchange is only ever `Authenticated` after SASLFinal
//! verified the server's signature; once a step fails the login is over (no further step is
//! fed).
#![no_main]

use chunk_agent::pg::auth::{AuthReply, AuthRequest, AuthStep, UpstreamAuth};
use chunk_agent::secrets::Secret;
use libfuzzer_sys::fuzz_target;

const USER: &str = "fuzz_role";
const PASSWORD: &str = "fuzz-planted-password-7c1e";

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    /// A length-prefixed (one byte) slice.
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::from(self.byte()?);
        if self.0.len() < len {
            return None;
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(head)
    }

    fn text(&mut self) -> Option<String> {
        self.bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

fuzz_target!(|data: &[u8]| {
    // Errors may quote what the server sent (e.g. its mechanism names): the secret may only
    // appear in them when the server itself sent it.
    let server_sent_secret = data
        .windows(PASSWORD.len())
        .any(|w| w == PASSWORD.as_bytes());
    let mut input = Input(data);
    let mut auth = UpstreamAuth::new(USER, Secret::new(PASSWORD.to_string()));
    let mut client_nonce: Option<String> = None;
    let mut sasl_started = false;
    let mut sasl_verified = false;
    while let Some(op) = input.byte() {
        let mechanisms: Vec<String>;
        let built: Vec<u8>;
        let request = match op % 8 {
            0 => AuthRequest::Ok,
            1 => AuthRequest::Cleartext,
            2 => {
                let Some(salt) = input.bytes().and_then(|s| s.get(..4)) else {
                    return;
                };
                AuthRequest::Md5 {
                    salt: salt.try_into().expect("4 bytes"),
                }
            }
            3 => {
                let Some(count) = input.byte() else { return };
                let mut list = Vec::new();
                for _ in 0..count % 4 {
                    let Some(m) = input.text() else { return };
                    list.push(m);
                }
                if count & 0x80 != 0 {
                    list.push("SCRAM-SHA-256".into());
                }
                mechanisms = list;
                AuthRequest::Sasl {
                    mechanisms: &mechanisms,
                }
            }
            4 => {
                let Some(raw) = input.bytes() else { return };
                AuthRequest::SaslContinue(raw)
            }
            5 => {
                let (Some(suffix), Some(salt), Some(iterations), Some(trailer)) =
                    (input.text(), input.bytes(), input.byte(), input.text())
                else {
                    return;
                };
                let nonce = client_nonce.clone().unwrap_or_default();
                built = format!(
                    "r={nonce}{suffix},s={},i={}{trailer}",
                    base64(salt),
                    u32::from(iterations % 64) + 1
                )
                .into_bytes();
                AuthRequest::SaslContinue(&built)
            }
            6 => {
                let Some(raw) = input.bytes() else { return };
                AuthRequest::SaslFinal(raw)
            }
            _ => {
                let Some(code) = input.byte() else { return };
                AuthRequest::Unsupported(i32::from(code) + 1000)
            }
        };
        let is_final = matches!(request, AuthRequest::SaslFinal(_));
        let is_ok = matches!(request, AuthRequest::Ok);
        match auth.step(request) {
            Ok(step) => {
                let shown = format!("{step:?}");
                assert!(!shown.contains(PASSWORD), "Debug shows the secret: {shown}");
                match step {
                    AuthStep::Reply(reply) => {
                        check_reply(op % 8, &reply, &mut client_nonce, server_sent_secret)
                    }
                    AuthStep::Wait => {
                        assert!(is_final, "only SASLFinal waits");
                        sasl_verified = true;
                    }
                    AuthStep::Authenticated => {
                        assert!(is_ok);
                        assert!(
                            !sasl_started || sasl_verified,
                            "authenticated without verifying the server's SCRAM signature"
                        );
                    }
                }
                if op % 8 == 3 {
                    sasl_started = true;
                }
            }
            Err(e) => {
                for shown in [e.to_string(), format!("{e:?}")] {
                    assert!(
                        server_sent_secret || !shown.contains(PASSWORD),
                        "an error shows the secret: {shown}"
                    );
                }
                return;
            }
        }
    }
});

/// `server_sent_secret`: the server's bytes held the secret (the client-final message echoes
/// the server's nonce, so it may then hold it too).
fn check_reply(
    op: u8,
    reply: &AuthReply,
    client_nonce: &mut Option<String>,
    server_sent_secret: bool,
) {
    match (op, reply) {
        (1, AuthReply::Password(p)) => {
            assert_eq!(p.as_slice(), format!("{PASSWORD}\0").as_bytes());
        }
        (2, AuthReply::Password(p)) => {
            assert_eq!(p.len(), 3 + 32 + 1, "md5 reply length");
            assert!(p.starts_with(b"md5") && p.ends_with(b"\0"));
            assert!(p[3..35].iter().all(u8::is_ascii_hexdigit));
        }
        (3, AuthReply::SaslInitial { mechanism, data }) => {
            assert_eq!(*mechanism, "SCRAM-SHA-256");
            let text = std::str::from_utf8(data).expect("client-first is text");
            let nonce = text
                .strip_prefix("n,,n=,r=")
                .expect("client-first-message without channel binding");
            *client_nonce = Some(nonce.to_string());
            let body = reply.body();
            assert!(body.starts_with(b"SCRAM-SHA-256\0"));
            assert_eq!(body.len(), "SCRAM-SHA-256\0".len() + 4 + data.len());
        }
        (4 | 5, AuthReply::SaslResponse(data)) => {
            let text = std::str::from_utf8(data).expect("client-final is text");
            assert!(text.starts_with("c=biws,r="), "{text}");
            assert!(text.contains(",p="), "client-final carries a proof: {text}");
            assert!(server_sent_secret || !text.contains(PASSWORD));
        }
        (op, reply) => panic!("opcode {op} got an unexpected reply {reply:?}"),
    }
}

/// Standard base64 with padding (the salt of a server-first-message).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
