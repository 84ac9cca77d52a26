//! Upstream authentication, as the client of the database: a pure state machine that answers the
//! server's authentication requests with the target's credential. SCRAM-SHA-256 (the server's
//! final signature is verified), md5 and cleartext; anything else is refused. Channel binding
//! (`-PLUS`) is never used.
//!
//! The secret only flows into the replies; errors never contain it.

use postgres_protocol::authentication::{
    md5_hash,
    sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256},
};

use crate::secrets::Secret;

/// What the server asks for (from its `Authentication*` messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRequest<'a> {
    Ok,
    Cleartext,
    Md5 {
        salt: [u8; 4],
    },
    Sasl {
        mechanisms: &'a [String],
    },
    SaslContinue(&'a [u8]),
    SaslFinal(&'a [u8]),
    /// Kerberos, GSS, SSPI...: not something the agent can answer.
    Unsupported(i32),
}

/// What to send back: the body of a `p` message.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthReply {
    /// A NUL-terminated password (cleartext or md5 hash).
    Password(Vec<u8>),
    SaslInitial {
        mechanism: &'static str,
        data: Vec<u8>,
    },
    SaslResponse(Vec<u8>),
}

impl std::fmt::Debug for AuthReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Replies carry secrets or proofs: never print their bytes.
        match self {
            Self::Password(_) => f.write_str("Password(<redacted>)"),
            Self::SaslInitial { mechanism, .. } => write!(f, "SaslInitial({mechanism})"),
            Self::SaslResponse(_) => f.write_str("SaslResponse(<redacted>)"),
        }
    }
}

impl AuthReply {
    /// The body of the `p` message carrying this reply.
    pub fn body(&self) -> Vec<u8> {
        match self {
            Self::Password(p) => p.clone(),
            Self::SaslInitial { mechanism, data } => {
                let mut out = Vec::with_capacity(mechanism.len() + 5 + data.len());
                out.extend_from_slice(mechanism.as_bytes());
                out.push(0);
                out.extend_from_slice(&(data.len() as i32).to_be_bytes());
                out.extend_from_slice(data);
                out
            }
            Self::SaslResponse(data) => data.clone(),
        }
    }
}

#[derive(Debug)]
pub enum AuthStep {
    Reply(AuthReply),
    /// Nothing to send: the server speaks next (after SASLFinal, AuthenticationOk follows).
    Wait,
    /// `AuthenticationOk`: the session is authenticated.
    Authenticated,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the server offers no SASL mechanism the agent supports (offered: {0})")]
    NoMechanism(String),
    #[error("the server's SCRAM exchange is invalid: {0}")]
    Scram(String),
    #[error("the server's SCRAM signature does not verify: it does not know the password")]
    BadServerSignature,
    #[error("the server asked for an authentication method the agent cannot use (code {0})")]
    Unsupported(i32),
    #[error("unexpected authentication message {0} at this point of the exchange")]
    OutOfOrder(&'static str),
}

/// One upstream login.
pub struct UpstreamAuth {
    user: String,
    secret: Secret,
    scram: Option<ScramSha256>,
    scram_finished: bool,
}

impl UpstreamAuth {
    pub fn new(user: impl Into<String>, secret: Secret) -> Self {
        Self {
            user: user.into(),
            secret,
            scram: None,
            scram_finished: false,
        }
    }

    /// Answers one request of the server.
    pub fn step(&mut self, request: AuthRequest<'_>) -> Result<AuthStep, AuthError> {
        match request {
            AuthRequest::Ok => {
                if self.scram.is_some() && !self.scram_finished {
                    // A server that skips SASLFinal never proved it knows the password.
                    return Err(AuthError::BadServerSignature);
                }
                Ok(AuthStep::Authenticated)
            }
            AuthRequest::Cleartext => Ok(AuthStep::Reply(AuthReply::Password(nul_terminated(
                self.secret.expose().as_bytes(),
            )))),
            AuthRequest::Md5 { salt } => {
                let hash = md5_hash(self.user.as_bytes(), self.secret.expose().as_bytes(), salt);
                Ok(AuthStep::Reply(AuthReply::Password(nul_terminated(
                    hash.as_bytes(),
                ))))
            }
            AuthRequest::Sasl { mechanisms } => {
                if self.scram.is_some() {
                    return Err(AuthError::OutOfOrder("AuthenticationSASL"));
                }
                if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                    return Err(AuthError::NoMechanism(mechanisms.join(", ")));
                }
                let scram = ScramSha256::new(
                    self.secret.expose().as_bytes(),
                    ChannelBinding::unsupported(),
                );
                let data = scram.message().to_vec();
                self.scram = Some(scram);
                Ok(AuthStep::Reply(AuthReply::SaslInitial {
                    mechanism: SCRAM_SHA_256,
                    data,
                }))
            }
            AuthRequest::SaslContinue(data) => {
                let scram = self
                    .scram
                    .as_mut()
                    .ok_or(AuthError::OutOfOrder("AuthenticationSASLContinue"))?;
                scram
                    .update(data)
                    .map_err(|e| AuthError::Scram(e.to_string()))?;
                Ok(AuthStep::Reply(AuthReply::SaslResponse(
                    scram.message().to_vec(),
                )))
            }
            AuthRequest::SaslFinal(data) => {
                let scram = self
                    .scram
                    .as_mut()
                    .ok_or(AuthError::OutOfOrder("AuthenticationSASLFinal"))?;
                scram
                    .finish(data)
                    .map_err(|_| AuthError::BadServerSignature)?;
                self.scram_finished = true;
                Ok(AuthStep::Wait)
            }
            AuthRequest::Unsupported(code) => Err(AuthError::Unsupported(code)),
        }
    }
}

fn nul_terminated(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 1);
    out.extend_from_slice(bytes);
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> UpstreamAuth {
        UpstreamAuth::new("chunker", Secret::new("pw".to_owned()))
    }

    #[test]
    fn cleartext_sends_the_nul_terminated_password() {
        let AuthStep::Reply(reply) = auth().step(AuthRequest::Cleartext).unwrap() else {
            panic!("expected a reply");
        };
        assert_eq!(reply.body(), b"pw\0");
    }

    #[test]
    fn md5_sends_the_salted_hash() {
        let AuthStep::Reply(reply) = auth()
            .step(AuthRequest::Md5 { salt: [1, 2, 3, 4] })
            .unwrap()
        else {
            panic!("expected a reply");
        };
        let expected = md5_hash(b"chunker", b"pw", [1, 2, 3, 4]);
        assert!(expected.starts_with("md5"));
        assert_eq!(reply.body(), nul_terminated(expected.as_bytes()));
    }

    #[test]
    fn sasl_without_scram_sha_256_is_refused() {
        let mechs = ["SCRAM-SHA-256-PLUS".to_owned()];
        let err = auth()
            .step(AuthRequest::Sasl { mechanisms: &mechs })
            .unwrap_err();
        assert!(matches!(err, AuthError::NoMechanism(_)));
    }

    #[test]
    fn scram_initial_response_names_the_mechanism_and_length() {
        let mechs = ["SCRAM-SHA-256-PLUS".to_owned(), "SCRAM-SHA-256".to_owned()];
        let AuthStep::Reply(reply) = auth()
            .step(AuthRequest::Sasl { mechanisms: &mechs })
            .unwrap()
        else {
            panic!("expected a reply");
        };
        let body = reply.body();
        assert!(body.starts_with(b"SCRAM-SHA-256\0"));
        let len = i32::from_be_bytes(body[14..18].try_into().unwrap()) as usize;
        assert_eq!(body.len(), 18 + len);
        assert!(body[18..].starts_with(b"n,,n=,r="), "no channel binding");
    }

    #[test]
    fn ok_after_an_unfinished_scram_exchange_is_refused() {
        let mut a = auth();
        let mechs = ["SCRAM-SHA-256".to_owned()];
        a.step(AuthRequest::Sasl { mechanisms: &mechs }).unwrap();
        assert_eq!(
            a.step(AuthRequest::Ok).unwrap_err(),
            AuthError::BadServerSignature
        );
    }

    #[test]
    fn a_forged_server_first_message_is_an_error() {
        let mut a = auth();
        let mechs = ["SCRAM-SHA-256".to_owned()];
        a.step(AuthRequest::Sasl { mechanisms: &mechs }).unwrap();
        let err = a
            .step(AuthRequest::SaslContinue(b"r=not-our-nonce,s=AAAA,i=4096"))
            .unwrap_err();
        assert!(matches!(err, AuthError::Scram(_)));
    }

    #[test]
    fn debug_output_never_shows_reply_bytes() {
        let reply = AuthReply::Password(b"pw\0".to_vec());
        assert_eq!(format!("{reply:?}"), "Password(<redacted>)");
    }
}
