//! Trust in contacts' identity keys as the client applies it (spec/trust.md): following
//! endorsed key changes, holding back unendorsed ones, safety numbers, the self-check.

use super::{Client, Error, Event, Session};
use crate::directory::VerifiedAccount;
use crate::group::GroupError;
use crate::identity::{Did, IdentityDeclaration, IdentityError, PublicKey};
use crate::storage::trust as store;
use crate::trust::{
    assess, Assessment, ChangeKind, ContactTrust, SafetyNumber, SelfCheckFinding, TrustError,
};

impl Session<'_> {
    /// Applies a verified declaration to what we pinned (TRUST-1 … TRUST-6). Endorsed changes
    /// are followed at once; first sight is pinned only when `pin_first` (callers pin when the
    /// operation goes ahead, so a refused call stores nothing). Unendorsed changes raise a
    /// warning (once per key) and are refused.
    pub(crate) fn judge(
        &mut self,
        declaration: &IdentityDeclaration,
        pin_first: bool,
    ) -> Result<(), Error> {
        let did = &declaration.did;
        let pinned = self.inner.read(|c| store::contact(c, did))?;
        match assess(pinned.as_ref(), declaration)? {
            Assessment::FirstSeen => {
                if pin_first {
                    let (k, at) = (declaration.identity_key, declaration.created);
                    let before = declaration.predecessors();
                    self.inner.atomic(|cx| {
                        store::pin_first(cx.c, did, &k, at, cx.now())?;
                        store::predecessors_set(cx.c, did, &before)
                    })?;
                    self.record_revocations(declaration)?;
                }
            }
            Assessment::Same => {
                self.inner.unendorsed.remove(did);
                let before = declaration.predecessors();
                self.inner
                    .atomic(|cx| store::predecessors_set(cx.c, did, &before))?;
                self.record_revocations(declaration)?;
            }
            Assessment::Endorsed => {
                let old = pinned
                    .map(|p| p.identity_key)
                    .ok_or_else(|| TrustError::UnknownContact(did.clone()))?;
                let (new, at) = (declaration.identity_key, declaration.created);
                let before = declaration.predecessors();
                self.inner.atomic(|cx| {
                    store::change_key(cx.c, did, &new, at, ChangeKind::Endorsed, cx.now())?;
                    store::predecessors_set(cx.c, did, &before)
                })?;
                self.inner.unendorsed.remove(did);
                self.record_revocations(declaration)?;
                self.inner.deferred_events.push(Event::IdentityKeyRotated {
                    did: did.clone(),
                    old,
                    new,
                });
            }
            Assessment::Unendorsed => {
                let pin = pinned.ok_or_else(|| TrustError::UnknownContact(did.clone()))?;
                let new = declaration.identity_key;
                if self.inner.unendorsed.insert(did.clone(), new) != Some(new) {
                    self.inner.deferred_events.push(Event::TrustWarning {
                        did: did.clone(),
                        old: pin.identity_key,
                        new,
                        verified: pin.verified,
                    });
                }
                return Err(TrustError::UnacceptedKeyChange {
                    did: did.clone(),
                    old: pin.identity_key,
                    new,
                    verified: pin.verified,
                }
                .into());
            }
        }
        Ok(())
    }

    /// Pins accounts met for the first time (after the operation using them went ahead), with
    /// their endorsed predecessors (TRUST-14) and the devices their records revoke, in one
    /// transaction. A pin that exists stays (TOFU); its predecessors were set when it was
    /// judged.
    pub(crate) fn pin_all(&mut self, accounts: &[VerifiedAccount]) -> Result<(), Error> {
        let now = self.inner.now();
        self.inner.atomic(|cx| {
            for account in accounts {
                let (did, k, at) = (&account.did, account.identity_key, account.declared_at);
                let revoked: Vec<PublicKey> = account
                    .rejected_devices
                    .iter()
                    .filter(|(_, why)| *why == IdentityError::Revoked)
                    .map(|(k, _)| *k)
                    .collect();
                if store::pinned_key(cx.c, did)?.is_none() {
                    store::pin_first(cx.c, did, &k, at, now)?;
                    store::predecessors_set(cx.c, did, &account.predecessors)?;
                }
                store::revoked_add(cx.c, did, &revoked, now)?;
            }
            Ok::<_, Error>(())
        })
    }

    /// Stores the devices a trusted declaration revokes (TRUST-12).
    fn record_revocations(&mut self, declaration: &IdentityDeclaration) -> Result<(), Error> {
        let revoked = declaration.revoked();
        if !revoked.is_empty() {
            self.inner
                .atomic(|cx| store::revoked_add(cx.c, &declaration.did, &revoked, cx.now()))?;
        }
        Ok(())
    }

    fn contact(&self, did: &Did) -> Result<ContactTrust, Error> {
        let mut c = self
            .inner
            .read(|c| store::contact(c, did))?
            .ok_or_else(|| TrustError::UnknownContact(did.clone()))?;
        c.pending = self.inner.unendorsed.get(did).copied();
        Ok(c)
    }

    async fn refresh_contacts(&mut self) -> Result<Vec<Event>, Error> {
        self.follow_own_rotation().await?;
        let me = self.inner.device.did.clone();
        let dids = self.inner.read(store::contacts)?;
        for did in dids.iter().filter(|d| **d != me) {
            match self.verified_account(did).await {
                Ok(_) | Err(Error::Trust(_)) | Err(Error::Identity(_)) => {}
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => tracing::warn!(did = %did, error = %e, "contact check failed"),
            }
        }
        Ok(std::mem::take(&mut self.inner.deferred_events))
    }

    async fn self_check(&mut self) -> Result<Vec<SelfCheckFinding>, Error> {
        // A rotation made on another of our devices is ours, not a finding (TRUST-14).
        self.follow_own_rotation().await?;
        let me = self.inner.device.did.clone();
        let ours = self.contact(&me)?.identity_key;
        let own_installation = self.inner.device.installation.public();
        let mut findings = Vec::new();
        let Some(record) = self.inner.io(self.directory.account(&me)).await? else {
            return Ok(vec![SelfCheckFinding::OwnDeviceMissing]);
        };
        let published = record.declaration.identity_key;
        if published != ours {
            let endorsed = record.declaration.verify().is_ok()
                && matches!(
                    crate::identity::succession(&ours, &record.declaration),
                    Ok(crate::identity::Succession::Endorsed(_))
                );
            if !endorsed {
                findings.push(SelfCheckFinding::ForeignDeclaration { published, ours });
            }
        }
        let now = self.inner.now();
        let mut valid = Vec::new();
        for d in &record.devices {
            let c = &d.certificate;
            if c.did == me && c.identity_key == ours && c.verify(now).is_ok() {
                valid.push(c.installation_key);
            } else {
                findings.push(SelfCheckFinding::ForeignDevice {
                    installation: c.installation_key,
                });
            }
        }
        if !valid.contains(&own_installation) {
            findings.push(SelfCheckFinding::OwnDeviceMissing);
        }
        for kp in self.inner.io(self.directory.key_packages(&me)).await? {
            if !valid.contains(&kp.installation_key) {
                findings.push(SelfCheckFinding::ForeignKeyPackage {
                    installation: kp.installation_key,
                    key_package_ref: kp.key_package_ref,
                });
            }
        }
        Ok(findings)
    }
}

impl Client {
    /// One periodic trust round for `watch`: contacts re-checked (their events), then the
    /// self-check, each finding reported once (`reported` remembers them).
    pub(crate) async fn trust_round(
        &self,
        reported: &mut Vec<SelfCheckFinding>,
    ) -> Vec<Result<Event, Error>> {
        let mut out: Vec<Result<Event, Error>> = match self.check_contacts().await {
            Ok(events) => events.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        match self.self_check().await {
            Ok(found) => {
                for f in found {
                    if !reported.contains(&f) {
                        reported.push(f.clone());
                        out.push(Ok(Event::SelfCheckAlert(f)));
                    }
                }
            }
            Err(e) => out.push(Err(e)),
        }
        out
    }

    /// What this client holds about `did`'s identity key: the pinned key, whether it is
    /// verified, a pending unendorsed key, and the history of changes.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// let dm = alice.dm(bob.did()).await?; // pins bob's identity key
    /// let t = alice.contact_trust(bob.did()).await?;
    /// assert_eq!(&t.did, bob.did());
    /// assert!(!t.verified);
    /// # let _ = dm;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn contact_trust(&self, did: &Did) -> Result<ContactTrust, Error> {
        self.session().await.contact(did)
    }

    /// Accepts `did`'s unendorsed new identity key `new_key` (the one a
    /// [`Event::TrustWarning`] showed): it is pinned, unverified, and its devices are used from
    /// now on (TRUST-5). Refused if the directory no longer declares exactly that key.
    ///
    /// ```no_run
    /// # async fn f(client: atmls::Client, ev: atmls::Event) -> Result<(), atmls::Error> {
    /// if let atmls::Event::TrustWarning { did, new, .. } = ev {
    ///     // ... after the user compared safety numbers or chose to continue:
    ///     client.accept_identity_change(&did, &new).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn accept_identity_change(
        &self,
        did: &Did,
        new_key: &PublicKey,
    ) -> Result<(), Error> {
        let mut s = self.account_session().await;
        let record = s
            .inner
            .io(s.directory.account(did))
            .await?
            .ok_or_else(|| crate::directory::DirectoryError::NoIdentity(did.clone()))?;
        let account = record.verify(did, s.inner.now())?;
        if account.identity_key != *new_key {
            return Err(TrustError::NoPendingChange(did.clone()).into());
        }
        let pinned = s
            .inner
            .read(|c| store::contact(c, did))?
            .ok_or_else(|| TrustError::UnknownContact(did.clone()))?;
        if pinned.identity_key == *new_key {
            return Ok(());
        }
        if pinned.history.iter().any(|h| h.old_key == *new_key) {
            return Err(crate::identity::IdentityError::Rollback.into());
        }
        let at = account.declared_at;
        // The replaced key's leaves are not predecessors: they are removed at our next add
        // of this account (TRUST-5); the new key's own endorsed chain is.
        let before = account.predecessors.clone();
        s.inner.atomic(|cx| {
            store::change_key(cx.c, did, new_key, at, ChangeKind::Accepted, cx.now())?;
            store::predecessors_set(cx.c, did, &before)
        })?;
        s.inner.unendorsed.remove(did);
        Ok(())
    }

    /// The safety number of this account and `did` (TRUST-7), from the pinned keys: the same
    /// on both sides.
    ///
    /// ```no_run
    /// # async fn f(client: atmls::Client, bob: atmls::identity::Did) -> Result<(), atmls::Error> {
    /// let n = client.safety_number(&bob).await?;
    /// println!("{}", n.display_groups().join(" "));
    /// # Ok(()) }
    /// ```
    pub async fn safety_number(&self, did: &Did) -> Result<SafetyNumber, Error> {
        let s = self.session().await;
        let me = s.inner.device.did.clone();
        let mine = s.contact(&me)?.identity_key;
        let theirs = s.contact(did)?.identity_key;
        Ok(SafetyNumber::new(&me, &mine, did, &theirs))
    }

    /// Marks `did` verified: the user compared the safety number out of band (TRUST-8).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// alice.dm(bob.did()).await?;
    /// // The users compared `alice.safety_number(bob.did())` in person:
    /// alice.mark_verified(bob.did()).await?;
    /// assert!(alice.contact_trust(bob.did()).await?.verified);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn mark_verified(&self, did: &Did) -> Result<(), Error> {
        let mut s = self.session().await;
        s.contact(did)?;
        s.inner.atomic(|cx| store::set_verified(cx.c, did, true))?;
        Ok(())
    }

    /// Checks a QR payload scanned from `did`'s screen against our safety number and marks the
    /// contact verified when they match (TRUST-8).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// let dm = alice.dm(bob.did()).await?;
    /// bob.sync().await?;
    /// // bob shows his QR code; alice scans it.
    /// let shown = bob.safety_number(alice.did()).await?.qr_payload();
    /// alice.verify_safety_qr(bob.did(), &shown).await?;
    /// assert!(alice.contact_trust(bob.did()).await?.verified);
    /// assert!(alice.verify_safety_qr(bob.did(), "not the code").await.is_err());
    /// # let _ = dm;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn verify_safety_qr(&self, did: &Did, scanned: &str) -> Result<(), Error> {
        self.safety_number(did).await?.check_qr(scanned)?;
        self.mark_verified(did).await
    }

    /// Re-reads every pinned contact's declaration from the directory: endorsed key changes
    /// are followed, unendorsed ones raise warnings. Returns the events (also raised by
    /// `sync`).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// alice.dm(bob.did()).await?;
    /// // bob's key has not changed: nothing to report.
    /// assert!(alice.check_contacts().await?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn check_contacts(&self) -> Result<Vec<Event>, Error> {
        self.account_session().await.refresh_contacts().await
    }

    /// Approves a new device of this account (TRUST-13): reads the link request posted under
    /// `code` (typed or scanned from the new device), certifies its installation key with the
    /// identity key and sends the certificate back over the channel the code keys. Returns
    /// the new installation key. Only devices holding the identity key can approve. A wrong
    /// code finds nothing (`TrustError::LinkRequestNotFound`) and changes nothing.
    ///
    /// ```no_run
    /// # async fn f(client: atmls::Client) -> Result<(), atmls::Error> {
    /// let code = atmls::trust::PairingCode::parse("K7QM-2XRD-9TAW-HB4N")?;
    /// let new_device = client.approve_link(&code).await?;
    /// // once the new device is running (it publishes its KeyPackages):
    /// client.add_own_devices().await?;
    /// # Ok(()) }
    /// ```
    pub async fn approve_link(&self, code: &crate::trust::PairingCode) -> Result<PublicKey, Error> {
        let mut s = self.account_session().await;
        let no_key = Error::InvalidArgument("this device does not hold the identity key");
        if s.inner.device.identity_key.is_none() {
            return Err(no_key);
        }
        let did = s.inner.device.did.clone();
        let transport = s.transport;
        let installation = s
            .inner
            .io(crate::trust::find_request(transport, code, &did))
            .await?;
        let now = s.inner.now();
        let key = s.inner.device.identity_key.as_ref().ok_or(no_key)?;
        let cert = key.certify(
            &did,
            &installation,
            now,
            now + crate::identity::DEFAULT_CERT_LIFETIME_SECS,
        );
        s.inner
            .io(crate::trust::respond(transport, code, &cert))
            .await?;
        Ok(installation)
    }

    /// Adds this account's devices that are not yet members (e.g. one just linked) to every
    /// group this device is in. Groups where every device of ours is present are untouched.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// use atmls::identity::{IdentityKeyPair, InstallationKeyPair, unix_now};
    /// let first = DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?);
    /// let secret = first.identity_key.as_ref().expect("a first device holds it").secret_bytes();
    /// let key = IdentityKeyPair::from_secret_bytes(&secret[..])?;
    /// let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    ///     .identity(first).build().await?;
    /// let g = alice.create_group(&[bob.did().clone()]).await?;
    /// // alice's second device, certified by her identity key, publishes its KeyPackages ...
    /// let inst = InstallationKeyPair::generate();
    /// let cert = key.certify(alice.did(), &inst.public(), unix_now(), unix_now() + 86_400);
    /// let laptop = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    ///     .identity(DeviceIdentity::linked(inst, cert)?).build().await?;
    /// // ... and the first device adds it to every group.
    /// alice.add_own_devices().await?;
    /// laptop.sync().await?;
    /// assert_eq!(laptop.groups().await?[0].id, g);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn add_own_devices(&self) -> Result<(), Error> {
        let mut s = self.account_session().await;
        let me = s.inner.device.did.clone();
        let groups = s.inner.read(crate::storage::tables::groups_all)?;
        for row in groups
            .iter()
            .filter(|r| r.status == crate::group::GroupStatus::Active)
        {
            let gid = crate::group::GroupId(row.group_id.clone());
            s.run_commit(&gid, super::outgoing::Intent::Add(vec![me.clone()]))
                .await?;
        }
        Ok(())
    }

    /// Revokes one of this account's other devices (TRUST-12): publishes a revocation signed
    /// by the identity key, removes the device record, and removes the device from every
    /// group this device is in. Other members remove it at their next commit once they read
    /// the record, and accept nothing from it from then on. Only devices holding the identity
    /// key can revoke.
    ///
    /// ```no_run
    /// # async fn f(client: atmls::Client, lost_phone: atmls::identity::PublicKey) -> Result<(), atmls::Error> {
    /// client.revoke_device(&lost_phone).await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_device(&self, installation: &PublicKey) -> Result<(), Error> {
        let mut s = self.account_session().await;
        let no_key = || Error::InvalidArgument("this device does not hold the identity key");
        let dev = &s.inner.device;
        let public = dev.identity_key.as_ref().ok_or_else(no_key)?.public();
        if *installation == dev.installation.public() {
            return Err(Error::InvalidArgument("a device cannot revoke itself"));
        }
        let did = dev.did.clone();
        let now = s.inner.now();
        // Extend the published declaration (keeping its endorsements) if it is ours.
        let published = s
            .inner
            .io(s.directory.account(&did))
            .await?
            .map(|a| a.declaration)
            .filter(|d| d.identity_key == public && d.verify().is_ok());
        let key = s.inner.device.identity_key.as_ref().ok_or_else(no_key)?;
        let mut declaration = published.unwrap_or_else(|| key.declare(&did, now));
        if !declaration.revoked().contains(installation) {
            declaration
                .revocations
                .push(key.revoke(&did, installation, now));
        }
        s.inner
            .io(s.directory.publish_declaration(&declaration))
            .await?;
        s.inner
            .io(s.directory.remove_device(&did, installation))
            .await?;
        let revoked = [*installation];
        s.inner
            .atomic(|cx| store::revoked_add(cx.c, &did, &revoked, now))?;
        let groups = s.inner.read(crate::storage::tables::groups_all)?;
        for row in groups
            .iter()
            .filter(|r| r.status == crate::group::GroupStatus::Active)
        {
            let gid = crate::group::GroupId(row.group_id.clone());
            match s.run_commit(&gid, super::outgoing::Intent::Pending).await {
                // Removed from the group meanwhile, or what is pending there is not ours to
                // commit (GOV-4): the revocation stands, and the other members remove the
                // device with their next commit (TRUST-12). The other groups go on.
                Err(Error::Group(
                    GroupError::NotMember | GroupError::UnknownGroup | GroupError::Governance(_),
                )) => {}
                r => r?,
            }
        }
        Ok(())
    }

    /// Exports the account's identity key encrypted under `passphrase` (Argon2id,
    /// TRUST-11), for restoring on a new device with
    /// [`crate::identity::IdentityKeyPair::import_encrypted`] and
    /// [`crate::identity::DeviceIdentity::with_identity_key`]. Only devices holding the
    /// identity key can export it.
    ///
    /// ```no_run
    /// # async fn f(client: atmls::Client) -> Result<(), atmls::Error> {
    /// let blob = client.export_identity_key("a long passphrase").await?;
    /// # Ok(()) }
    /// ```
    pub async fn export_identity_key(&self, passphrase: &str) -> Result<Vec<u8>, Error> {
        let s = self.session().await;
        let dev = &s.inner.device;
        let key = dev.identity_key.as_ref().ok_or(Error::InvalidArgument(
            "this device does not hold the identity key",
        ))?;
        Ok(key.export_encrypted(&dev.did, passphrase)?)
    }

    /// Compares our account's published declaration, devices and KeyPackages with what this
    /// device knows (TRUST-10): anything found was not published by us.
    ///
    /// ```no_run
    /// # async fn f(client: atmls::Client) -> Result<(), atmls::Error> {
    /// for finding in client.self_check().await? {
    ///     eprintln!("someone else is writing to our account: {finding:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn self_check(&self) -> Result<Vec<SelfCheckFinding>, Error> {
        self.account_session().await.self_check().await
    }
}
