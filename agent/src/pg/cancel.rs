//! Cancel keys. Clients get a synthetic `BackendKeyData`; a `CancelRequest` (which arrives on a
//! new, unauthenticated connection) is mapped to the real upstream key and sent there. A request
//! with an unknown key is dropped: it can neither reach another session nor learn anything.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use bytes::Bytes;

/// Where and how to cancel the upstream session behind a synthetic key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamCancel {
    pub target: String,
    pub address: SocketAddr,
    pub process_id: i32,
    pub secret_key: Bytes,
}

/// The synthetic key a client sees.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub process_id: i32,
    pub secret_key: Bytes,
}

/// Live sessions' keys. Entries are removed when their session ends ([`Registration`] drop).
#[derive(Debug, Default, Clone)]
pub struct CancelRegistry {
    keys: Arc<Mutex<HashMap<ClientKey, UpstreamCancel>>>,
}

/// Keeps a session's key registered while it lives.
#[derive(Debug)]
pub struct Registration {
    registry: CancelRegistry,
    key: ClientKey,
}

impl Registration {
    pub fn key(&self) -> &ClientKey {
        &self.key
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.key);
    }
}

impl CancelRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, UpstreamCancel>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `upstream` under a fresh random client key. The key has the same length as the
    /// upstream one (4 bytes in protocol 3.0), so clients see what they expect.
    pub fn register(&self, upstream: UpstreamCancel) -> Registration {
        let key_len = upstream.secret_key.len().max(4);
        let mut keys = self.lock();
        let key = loop {
            let process_id = rand::random::<i32>() & i32::MAX;
            let secret: Vec<u8> = (0..key_len).map(|_| rand::random::<u8>()).collect();
            let key = ClientKey {
                process_id,
                secret_key: Bytes::from(secret),
            };
            if process_id != 0 && !keys.contains_key(&key) {
                break key;
            }
        };
        keys.insert(key.clone(), upstream);
        Registration {
            registry: self.clone(),
            key,
        }
    }

    /// The upstream session a client key stands for.
    pub fn lookup(&self, key: &ClientKey) -> Option<UpstreamCancel> {
        self.lock().get(key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream() -> UpstreamCancel {
        UpstreamCancel {
            target: "db".into(),
            address: "127.0.0.1:5432".parse().unwrap(),
            process_id: 4242,
            secret_key: Bytes::from_static(&[1, 2, 3, 4]),
        }
    }

    #[test]
    fn a_registered_key_maps_to_the_upstream_key_until_the_session_ends() {
        let registry = CancelRegistry::default();
        let registration = registry.register(upstream());
        let key = registration.key().clone();
        assert_ne!(
            key.secret_key,
            upstream().secret_key,
            "synthetic, not the real key"
        );
        assert_eq!(registry.lookup(&key), Some(upstream()));
        drop(registration);
        assert_eq!(registry.lookup(&key), None);
    }

    #[test]
    fn an_unknown_key_maps_to_nothing() {
        let registry = CancelRegistry::default();
        let _r = registry.register(upstream());
        let forged = ClientKey {
            process_id: 4242,
            secret_key: Bytes::from_static(&[1, 2, 3, 4]),
        };
        assert_eq!(registry.lookup(&forged), None);
    }

    #[test]
    fn long_upstream_keys_get_synthetic_keys_of_the_same_length() {
        let registry = CancelRegistry::default();
        let mut up = upstream();
        up.secret_key = Bytes::from(vec![7u8; 32]);
        let r = registry.register(up);
        assert_eq!(r.key().secret_key.len(), 32);
    }
}
