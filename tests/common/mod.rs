//! Shared set-up for scenario tests: accounts and devices on one in-memory directory and
//! in-process transport.
#![allow(dead_code)]

use std::sync::Arc;

use atmls::directory::MemoryDirectory;
use atmls::identity::{unix_now, DeviceIdentity, Did, IdentityKeyPair, InstallationKeyPair};
use atmls::storage::Store;
use atmls::transport::MemoryTransport;
use atmls::{Client, Event, GroupId};

pub struct World {
    pub dir: Arc<MemoryDirectory>,
    pub net: Arc<MemoryTransport>,
}

/// `did:plc:` ids need 24 base32 characters.
pub fn did(name: &str) -> Did {
    let mut s: String = name.chars().filter(|c| c.is_ascii_lowercase()).collect();
    while s.len() < 24 {
        s.push('a');
    }
    Did::new(&format!("did:plc:{}", &s[..24])).unwrap()
}

impl World {
    pub fn new() -> Self {
        World {
            dir: Arc::new(MemoryDirectory::new()),
            net: Arc::new(MemoryTransport::new()),
        }
    }

    pub async fn client(&self, identity: DeviceIdentity, store: Store) -> Client {
        Client::builder(self.dir.clone(), self.net.clone(), store)
            .identity(identity)
            .build()
            .await
            .unwrap()
    }

    /// A new account with its first device (which holds the identity key).
    pub async fn account(&self, name: &str) -> (Client, IdentityKeyPair) {
        let dev = DeviceIdentity::new_account(did(name));
        let key = IdentityKeyPair::from_secret_bytes(
            &dev.identity_key.as_ref().unwrap().secret_bytes()[..],
        )
        .unwrap();
        (self.client(dev, Store::in_memory().unwrap()).await, key)
    }

    /// A further device of an account, certified by its identity key.
    pub async fn device(&self, name: &str, key: &IdentityKeyPair) -> Client {
        self.device_in(name, key, Store::in_memory().unwrap()).await
    }

    pub async fn device_in(&self, name: &str, key: &IdentityKeyPair, store: Store) -> Client {
        let inst = InstallationKeyPair::generate();
        let now = unix_now();
        let cert = key.certify(&did(name), &inst.public(), now, now + 86_400);
        self.client(DeviceIdentity::linked(inst, cert).unwrap(), store)
            .await
    }
}

pub fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => m.decoded().display_text().map(str::to_owned),
            _ => None,
        })
        .collect()
}

pub fn joined(events: &[Event]) -> Vec<GroupId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Joined { group, .. } => Some(group.clone()),
            _ => None,
        })
        .collect()
}
