//! The two sides of tests/differential_openmls.rs: one module per openmls, generated from the
//! same code by `side!`, so that both run exactly the same calls. Everything crosses between
//! them as bytes (TLS-serialized messages, KeyPackages and Welcomes).

use sha2::{Digest, Sha256};

/// A small seeded generator (splitmix64): histories must not change with a `rand` upgrade.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5eed_d1ff_0000_0000)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; `n` must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            v.swap(i, self.below(i + 1));
        }
        v
    }
}

/// What a member's state must agree on, each field as bytes or a digest of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub epoch: u64,
    pub group_context: [u8; 32],
    pub tree_hash: Vec<u8>,
    pub epoch_authenticator: Vec<u8>,
    pub exported_secret: Vec<u8>,
    pub ratchet_tree: [u8; 32],
    /// Leaf index, signature key and encryption key of every member, in leaf order.
    pub member_list: [u8; 32],
    pub members: usize,
}

impl Snapshot {
    /// The first field in which the two differ.
    pub fn differs(&self, o: &Snapshot) -> Option<&'static str> {
        [
            (self.epoch == o.epoch, "epoch"),
            (self.group_context == o.group_context, "group context"),
            (self.tree_hash == o.tree_hash, "tree hash"),
            (
                self.epoch_authenticator == o.epoch_authenticator,
                "epoch authenticator",
            ),
            (self.exported_secret == o.exported_secret, "exported secret"),
            (self.ratchet_tree == o.ratchet_tree, "ratchet tree"),
            (self.member_list == o.member_list, "member list"),
            (self.members == o.members, "member count"),
        ]
        .into_iter()
        .find(|(same, _)| !same)
        .map(|(_, field)| field)
    }
}

pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// What processing one message did.
pub enum Event {
    /// A commit, merged; `still_member` is false when it removed us.
    Commit {
        still_member: bool,
    },
    /// A proposal, stored for a later commit.
    Proposal,
    App(Vec<u8>),
}

/// Generates a side: `$name` is the module, `$krate` the openmls crate it runs, `$provider` its
/// provider type and `$open` how a member's provider is made from its database path.
macro_rules! side {
    ($name:ident, $krate:ident, $provider:ty, $open:expr) => {
        pub mod $name {
            use super::{digest, Event, Snapshot};
            use $krate as openmls;

            use openmls::prelude::{
                tls_codec::{Deserialize as _, Serialize as _},
                BasicCredential, Ciphersuite, CredentialWithKey, KeyPackage, KeyPackageIn,
                LeafNodeIndex, LeafNodeParameters, MlsGroup, MlsGroupCreateConfig,
                MlsGroupJoinConfig, MlsMessageBodyIn, MlsMessageIn, MlsMessageOut,
                ProcessedMessageContent, ProtocolVersion, SenderRatchetConfiguration,
                StagedWelcome, PURE_CIPHERTEXT_WIRE_FORMAT_POLICY,
            };
            use openmls_basic_credential::SignatureKeyPair;
            use openmls_rust_crypto::OpenMlsRustCrypto;
            use openmls_traits::OpenMlsProvider;

            type Provider = $provider;
            const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
            const LABEL: &str = "atmls differential";

            fn create_config() -> MlsGroupCreateConfig {
                MlsGroupCreateConfig::builder()
                    .ciphersuite(CS)
                    .use_ratchet_tree_extension(true)
                    .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
                    .max_past_epochs(2)
                    .sender_ratchet_configuration(SenderRatchetConfiguration::new(20, 1000))
                    .build()
            }

            fn join_config() -> MlsGroupJoinConfig {
                MlsGroupJoinConfig::builder()
                    .use_ratchet_tree_extension(true)
                    .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
                    .max_past_epochs(2)
                    .sender_ratchet_configuration(SenderRatchetConfiguration::new(20, 1000))
                    .build()
            }

            fn err(e: impl std::fmt::Debug) -> String {
                format!("{e:?}")
            }

            fn bytes(m: &MlsMessageOut) -> Vec<u8> {
                m.tls_serialize_detached().expect("serialize")
            }

            /// A fresh signer, stored, and its Basic credential naming `name`.
            fn identity(
                p: &impl OpenMlsProvider,
                name: &str,
            ) -> (SignatureKeyPair, CredentialWithKey) {
                let signer = SignatureKeyPair::new(CS.signature_algorithm()).expect("signer");
                signer.store(p.storage()).expect("store signer");
                let cwk = CredentialWithKey {
                    credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
                    signature_key: signer.public().into(),
                };
                (signer, cwk)
            }

            fn key_package(
                p: &impl OpenMlsProvider,
                signer: &SignatureKeyPair,
                cwk: CredentialWithKey,
            ) -> Vec<u8> {
                KeyPackage::builder()
                    .build(CS, p, signer, cwk)
                    .expect("key package")
                    .key_package()
                    .tls_serialize_detached()
                    .expect("key package bytes")
            }

            /// KeyPackages of leaves that never join; their private parts stay here.
            #[derive(Default)]
            pub struct Fillers {
                provider: OpenMlsRustCrypto,
                made: usize,
            }

            impl Fillers {
                pub fn key_package(&mut self) -> Vec<u8> {
                    self.made += 1;
                    let name = format!("{}-filler-{}", stringify!($name), self.made);
                    let (signer, cwk) = identity(&self.provider, &name);
                    key_package(&self.provider, &signer, cwk)
                }
            }

            pub struct Client {
                provider: Provider,
                signer: SignatureKeyPair,
                credential: CredentialWithKey,
            }

            impl Client {
                pub fn new(name: &str, path: &std::path::Path) -> Client {
                    let open: fn(&std::path::Path) -> Provider = $open;
                    let provider = open(path);
                    let (signer, credential) = identity(&provider, name);
                    Client {
                        provider,
                        signer,
                        credential,
                    }
                }

                pub fn key_package(&self) -> Vec<u8> {
                    key_package(&self.provider, &self.signer, self.credential.clone())
                }
            }

            pub struct Member {
                client: Client,
                group: MlsGroup,
            }

            impl Member {
                pub fn create(client: Client, group_id: &[u8]) -> Member {
                    let group = MlsGroup::new_with_group_id(
                        &client.provider,
                        &client.signer,
                        &create_config(),
                        openmls::group::GroupId::from_slice(group_id),
                        client.credential.clone(),
                    )
                    .expect("create group");
                    Member { client, group }
                }

                pub fn join(client: Client, welcome: &[u8]) -> Result<Member, String> {
                    let msg = MlsMessageIn::tls_deserialize_exact(welcome).map_err(err)?;
                    let MlsMessageBodyIn::Welcome(w) = msg.extract() else {
                        return Err("not a Welcome".into());
                    };
                    let group =
                        StagedWelcome::new_from_welcome(&client.provider, &join_config(), w, None)
                            .map_err(err)?
                            .into_group(&client.provider)
                            .map_err(err)?;
                    Ok(Member { client, group })
                }

                fn validated(&self, kp: &[u8]) -> Result<KeyPackage, String> {
                    KeyPackageIn::tls_deserialize_exact(kp)
                        .map_err(err)?
                        .validate(self.client.provider.crypto(), ProtocolVersion::Mls10)
                        .map_err(err)
                }

                fn merge(&mut self) -> Result<(), String> {
                    self.group
                        .merge_pending_commit(&self.client.provider)
                        .map_err(err)
                }

                /// Adds these KeyPackages in a commit without a path (as atmls builds it);
                /// returns the commit and the Welcome.
                pub fn add(&mut self, kps: &[Vec<u8>]) -> Result<(Vec<u8>, Vec<u8>), String> {
                    let kps = kps
                        .iter()
                        .map(|k| self.validated(k))
                        .collect::<Result<Vec<_>, _>>()?;
                    let p = &self.client.provider;
                    let bundle = self
                        .group
                        .commit_builder()
                        .propose_adds(kps)
                        .consume_proposal_store(true)
                        .load_psks(p.storage())
                        .map_err(err)?
                        .build(p.rand(), p.crypto(), &self.client.signer, |_| true)
                        .map_err(err)?
                        .stage_commit(p)
                        .map_err(err)?;
                    let commit = bytes(bundle.commit());
                    let welcome = bytes(&bundle.to_welcome_msg().ok_or("no Welcome")?);
                    self.merge()?;
                    Ok((commit, welcome))
                }

                pub fn remove(&mut self, leaves: &[u32]) -> Result<Vec<u8>, String> {
                    let leaves: Vec<LeafNodeIndex> =
                        leaves.iter().map(|l| LeafNodeIndex::new(*l)).collect();
                    let (commit, _, _) = self
                        .group
                        .remove_members(&self.client.provider, &self.client.signer, &leaves)
                        .map_err(err)?;
                    self.merge()?;
                    Ok(bytes(&commit))
                }

                pub fn update(&mut self) -> Result<Vec<u8>, String> {
                    let bundle = self
                        .group
                        .self_update(
                            &self.client.provider,
                            &self.client.signer,
                            LeafNodeParameters::default(),
                        )
                        .map_err(err)?;
                    let commit = bytes(bundle.commit());
                    self.merge()?;
                    Ok(commit)
                }

                pub fn propose_add(&mut self, kp: &[u8]) -> Result<Vec<u8>, String> {
                    let kp = self.validated(kp)?;
                    let (msg, _) = self
                        .group
                        .propose_add_member(&self.client.provider, &self.client.signer, &kp)
                        .map_err(err)?;
                    Ok(bytes(&msg))
                }

                pub fn propose_remove(&mut self, leaf: u32) -> Result<Vec<u8>, String> {
                    let (msg, _) = self
                        .group
                        .propose_remove_member(
                            &self.client.provider,
                            &self.client.signer,
                            LeafNodeIndex::new(leaf),
                        )
                        .map_err(err)?;
                    Ok(bytes(&msg))
                }

                pub fn propose_update(&mut self) -> Result<Vec<u8>, String> {
                    let (msg, _) = self
                        .group
                        .propose_self_update(
                            &self.client.provider,
                            &self.client.signer,
                            LeafNodeParameters::default(),
                        )
                        .map_err(err)?;
                    Ok(bytes(&msg))
                }

                /// Commits the stored proposals; returns the commit and the Welcome, if any.
                pub fn commit_pending(&mut self) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
                    let (commit, welcome, _) = self
                        .group
                        .commit_to_pending_proposals(&self.client.provider, &self.client.signer)
                        .map_err(err)?;
                    self.merge()?;
                    Ok((bytes(&commit), welcome.as_ref().map(bytes)))
                }

                pub fn send(&mut self, text: &[u8]) -> Vec<u8> {
                    let msg = self
                        .group
                        .create_message(&self.client.provider, &self.client.signer, text)
                        .expect("encrypt");
                    bytes(&msg)
                }

                pub fn process(&mut self, msg: &[u8]) -> Result<Event, String> {
                    let msg = MlsMessageIn::tls_deserialize_exact(msg).map_err(err)?;
                    let pm = msg.try_into_protocol_message().map_err(err)?;
                    let p = &self.client.provider;
                    let processed = self.group.process_message(p, pm).map_err(err)?;
                    match processed.into_content() {
                        ProcessedMessageContent::StagedCommitMessage(staged) => {
                            self.group.merge_staged_commit(p, *staged).map_err(err)?;
                            Ok(Event::Commit {
                                still_member: self.group.is_active(),
                            })
                        }
                        ProcessedMessageContent::ProposalMessage(q) => {
                            self.group
                                .store_pending_proposal(p.storage(), *q)
                                .map_err(err)?;
                            Ok(Event::Proposal)
                        }
                        ProcessedMessageContent::ApplicationMessage(a) => {
                            Ok(Event::App(a.into_bytes()))
                        }
                        other => Err(format!("unexpected message: {other:?}")),
                    }
                }

                /// Drops the in-memory group and loads it again from storage.
                pub fn reload(&mut self) -> Result<(), String> {
                    let id = self.group.group_id().clone();
                    self.group = MlsGroup::load(self.client.provider.storage(), &id)
                        .map_err(err)?
                        .ok_or("group not in storage")?;
                    Ok(())
                }

                pub fn leaf(&self) -> u32 {
                    self.group.own_leaf_index().u32()
                }

                pub fn leaves(&self) -> Vec<u32> {
                    self.group.members().map(|m| m.index.u32()).collect()
                }

                pub fn snapshot(&self) -> Snapshot {
                    let context = self.group.public_group().group_context();
                    let mut members = Vec::new();
                    let mut count = 0;
                    for m in self.group.members() {
                        count += 1;
                        members.extend_from_slice(&m.index.u32().to_be_bytes());
                        members.extend_from_slice(&m.signature_key);
                        members.extend_from_slice(&m.encryption_key);
                    }
                    Snapshot {
                        epoch: context.epoch().as_u64(),
                        group_context: digest(&context.tls_serialize_detached().expect("context")),
                        tree_hash: context.tree_hash().to_vec(),
                        epoch_authenticator: self.group.epoch_authenticator().as_slice().to_vec(),
                        exported_secret: self
                            .group
                            .export_secret(self.client.provider.crypto(), LABEL, b"", 32)
                            .expect("export"),
                        ratchet_tree: digest(
                            &self
                                .group
                                .export_ratchet_tree()
                                .tls_serialize_detached()
                                .expect("tree"),
                        ),
                        member_list: digest(&members),
                        members: count,
                    }
                }
            }
        }
    };
}

side!(patched, openmls, crate::common::RawProvider, |path| {
    // atmls's own client database: its migrations and storage codec.
    drop(atmls::storage::Store::open(path).expect("atmls store"));
    crate::common::RawProvider::open(path)
});

side!(upstream, openmls_upstream, OpenMlsRustCrypto, |_| {
    openmls_rust_crypto::OpenMlsRustCrypto::default()
});
