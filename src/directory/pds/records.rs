//! The records atmls keeps in an account's repository (lexicons in `lexicons/dev/atmls/`,
//! spec/records.md): encoding what we publish, and decoding what we read. Decoding checks
//! structure only (REC-1, REC-2); signatures and agreement are checked in `checks`.

use serde_json::{json, Value};

use super::fields::{bytes_value, datetime_value, int_u16, Obj};
use super::RecordError;
use crate::directory::{DeviceRecord, KeyPackageRecord};
use crate::identity::{
    DeviceRevocation, Did, Endorsement, IdentityDeclaration, InstallationCertificate, PublicKey,
};

/// Collection of the identity declaration (record key `self`).
pub const DECLARATION: &str = "dev.atmls.declaration";
/// Collection of device records (record key: installation id).
pub const DEVICE: &str = "dev.atmls.device";
/// Collection of KeyPackage records (record key: TID).
pub const KEY_PACKAGE: &str = "dev.atmls.keyPackage";
/// Collection of the account's follows (Bluesky's social graph, read for the incoming policy
/// `following`: spec/consent.md CONSENT-4).
pub const FOLLOW: &str = "app.bsky.graph.follow";
/// Record key of the declaration.
pub const DECLARATION_RKEY: &str = "self";
/// Largest record (serialized JSON) a reader accepts (REC-2).
pub const MAX_RECORD_BYTES: usize = 32 * 1024;
/// The only key algorithm atmls uses.
pub const ALG_ED25519: &str = "ed25519";
/// Most endorsements a reader follows.
pub const MAX_ENDORSEMENTS: usize = crate::identity::MAX_ENDORSEMENTS;
/// Most device revocations a declaration carries.
pub const MAX_REVOCATIONS: usize = 64;

pub use crate::trust::consent::IncomingPolicy;

/// What the declaration says besides the key binding.
///
/// ```
/// # use atmls::identity::{DeviceIdentity, Did};
/// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
/// # let dev = DeviceIdentity::new_account(did.clone());
/// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
/// use atmls::directory::pds::records::encode_declaration;
/// use atmls::directory::pds::{IncomingPolicy, Profile};
/// let profile = Profile {
///     delivery_service: Some("https://ds.example.com".into()),
///     incoming_policy: IncomingPolicy::Following,
///     ..Profile::default()
/// };
/// let v = encode_declaration(&id_key.declare(&did, 1_700_000_000), &profile);
/// assert_eq!(v["deliveryService"], "https://ds.example.com");
/// assert_eq!(v["incomingPolicy"], "following");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Supported MLS ciphersuites, preferred first.
    pub ciphersuites: Vec<u16>,
    /// Where to reach the account's delivery service.
    pub delivery_service: Option<String>,
    /// Who may start conversations.
    pub incoming_policy: IncomingPolicy,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            ciphersuites: vec![u16::from(crate::keypackage::DEFAULT_CIPHERSUITE)],
            delivery_service: None,
            incoming_policy: IncomingPolicy::Everyone,
        }
    }
}

/// A decoded declaration record.
///
/// ```
/// # use atmls::identity::{DeviceIdentity, Did};
/// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
/// # let dev = DeviceIdentity::new_account(did.clone());
/// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
/// use atmls::directory::pds::records::{decode_declaration, encode_declaration};
/// use atmls::directory::pds::{DeclarationRecord, Profile};
/// let v = encode_declaration(&id_key.declare(&did, 1_700_000_000), &Profile::default());
/// let DeclarationRecord { declaration, profile } = decode_declaration(&did, &v)?;
/// assert_eq!(declaration.identity_key, id_key.public());
/// assert_eq!(profile, Profile::default());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclarationRecord {
    /// The key binding (ID-3).
    pub declaration: IdentityDeclaration,
    /// The rest.
    pub profile: Profile,
}

/// A datetime as atmls writes it in records (RFC 3339, UTC, whole seconds).
///
/// ```
/// use atmls::directory::pds::records::format_datetime;
/// assert_eq!(format_datetime(1_700_000_000), "2023-11-14T22:13:20Z");
/// ```
pub fn format_datetime(secs: u64) -> String {
    datetime_value(secs).as_str().unwrap_or_default().to_owned()
}

/// The installation id: the record key of a device, lowercase hex of its installation key.
///
/// ```
/// use atmls::directory::pds::records::installation_id;
/// use atmls::identity::PublicKey;
/// assert_eq!(installation_id(&PublicKey([0xab; 32])), "ab".repeat(32));
/// ```
pub fn installation_id(key: &PublicKey) -> String {
    hex::encode(key.as_bytes())
}

fn key_value(k: &PublicKey) -> Value {
    json!({ "algorithm": ALG_ED25519, "key": bytes_value(k.as_bytes()) })
}

fn decode_key(o: &Obj<'_>, f: &'static str, what: &'static str) -> Result<PublicKey, RecordError> {
    let k = o.obj(f)?;
    let alg = k.str("algorithm")?;
    if alg != ALG_ED25519 {
        return Err(RecordError::UnsupportedAlgorithm(
            alg.chars().take(64).collect(),
        ));
    }
    Ok(PublicKey::from_slice(&k.bytes("key")?, what)?)
}

/// REC-1/REC-2: size and `$type` of any record read.
fn open<'a>(v: &'a Value, collection: &'static str) -> Result<Obj<'a>, RecordError> {
    let size = serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX);
    if size > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge {
            size,
            max: MAX_RECORD_BYTES,
        });
    }
    let o = Obj::of(v, "record")?;
    let t = o.str("$type")?;
    if t != collection {
        return Err(RecordError::WrongCollection {
            expected: collection,
            found: t.chars().take(256).collect(),
        });
    }
    Ok(o)
}

/// The declaration record to write.
///
/// ```
/// # use atmls::identity::{DeviceIdentity, Did};
/// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
/// # let dev = DeviceIdentity::new_account(did.clone());
/// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
/// use atmls::directory::pds::records::{encode_declaration, DECLARATION};
/// use atmls::directory::pds::Profile;
/// let v = encode_declaration(&id_key.declare(&did, 1_700_000_000), &Profile::default());
/// assert_eq!(v["$type"], DECLARATION);
/// assert_eq!(v["createdAt"], "2023-11-14T22:13:20Z");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_declaration(d: &IdentityDeclaration, p: &Profile) -> Value {
    let mut v = json!({
        "$type": DECLARATION,
        "identityKey": key_value(&d.identity_key),
        "signature": bytes_value(&d.signature),
        "ciphersuites": p.ciphersuites,
        "incomingPolicy": p.incoming_policy.as_str(),
        "createdAt": datetime_value(d.created),
    });
    // The chain is stored linearly: each link's next key is the following link's previous
    // key, the last one's the declared key (ID-6, TRUST-1).
    if !d.endorsements.is_empty() {
        v["endorsements"] = d
            .endorsements
            .iter()
            .map(|e| {
                json!({
                    "previousKey": key_value(&e.previous_key),
                    "signature": bytes_value(&e.signature),
                    "createdAt": datetime_value(e.created),
                })
            })
            .collect();
    }
    if !d.revocations.is_empty() {
        v["revocations"] = d
            .revocations
            .iter()
            .map(|r| {
                json!({
                    "installationKey": key_value(&r.installation_key),
                    "identityKey": key_value(&r.identity_key),
                    "signature": bytes_value(&r.signature),
                    "createdAt": datetime_value(r.revoked_at),
                })
            })
            .collect();
    }
    if let Some(ds) = &p.delivery_service {
        v["deliveryService"] = Value::String(ds.clone());
    }
    v
}

/// Decodes `did`'s declaration record (structure only; [`IdentityDeclaration::verify`] and
/// [`crate::identity::succession`] check the signatures).
///
/// ```
/// # use atmls::identity::{DeviceIdentity, Did};
/// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
/// # let dev = DeviceIdentity::new_account(did.clone());
/// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
/// use atmls::directory::pds::records::{decode_declaration, encode_declaration};
/// use atmls::directory::pds::{Profile, RecordError};
/// let declaration = id_key.declare(&did, 1_700_000_000);
/// let mut v = encode_declaration(&declaration, &Profile::default());
/// let read = decode_declaration(&did, &v)?;
/// assert_eq!(read.declaration, declaration);
/// assert!(read.declaration.verify().is_ok());
/// v["identityKey"]["algorithm"] = "p256".into();
/// let refused = decode_declaration(&did, &v);
/// assert_eq!(refused, Err(RecordError::UnsupportedAlgorithm("p256".into())));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decode_declaration(did: &Did, v: &Value) -> Result<DeclarationRecord, RecordError> {
    let o = open(v, DECLARATION)?;
    let identity_key = decode_key(&o, "identityKey", "identity")?;
    let signature = o.bytes("signature")?;
    let created = o.datetime("createdAt")?;
    let raw_suites = o.array("ciphersuites")?;
    if raw_suites.is_empty() || raw_suites.len() > 16 {
        return Err(RecordError::WrongType {
            field: "ciphersuites",
            expected: "1 to 16 ciphersuites",
        });
    }
    let ciphersuites = raw_suites
        .iter()
        .map(|c| int_u16(c, "ciphersuites"))
        .collect::<Result<Vec<_>, _>>()?;
    let raw_endorsements = o.opt_array("endorsements")?;
    if raw_endorsements.len() > MAX_ENDORSEMENTS {
        return Err(RecordError::WrongType {
            field: "endorsements",
            expected: "at most MAX_ENDORSEMENTS endorsements",
        });
    }
    let mut links = Vec::with_capacity(raw_endorsements.len());
    for e in raw_endorsements {
        let e = Obj::of(e, "endorsements")?;
        links.push((
            decode_key(&e, "previousKey", "endorsed identity")?,
            e.datetime("createdAt")?,
            e.bytes("signature")?,
        ));
    }
    let endorsements = links
        .iter()
        .enumerate()
        .map(|(i, (previous_key, created, signature))| Endorsement {
            did: did.clone(),
            previous_key: *previous_key,
            new_key: links.get(i + 1).map_or(identity_key, |n| n.0),
            created: *created,
            signature: signature.clone(),
        })
        .collect();
    let raw_revocations = o.opt_array("revocations")?;
    if raw_revocations.len() > MAX_REVOCATIONS {
        return Err(RecordError::WrongType {
            field: "revocations",
            expected: "at most 64 revocations",
        });
    }
    let mut revocations = Vec::with_capacity(raw_revocations.len());
    for r in raw_revocations {
        let r = Obj::of(r, "revocations")?;
        revocations.push(DeviceRevocation {
            did: did.clone(),
            installation_key: decode_key(&r, "installationKey", "revoked installation")?,
            identity_key: decode_key(&r, "identityKey", "revoking identity")?,
            revoked_at: r.datetime("createdAt")?,
            signature: r.bytes("signature")?,
        });
    }
    Ok(DeclarationRecord {
        declaration: IdentityDeclaration {
            did: did.clone(),
            identity_key,
            created,
            endorsements,
            revocations,
            signature,
        },
        profile: Profile {
            ciphersuites,
            delivery_service: o.opt_str("deliveryService")?.map(str::to_owned),
            incoming_policy: IncomingPolicy::from_lexicon(o.str("incomingPolicy")?),
        },
    })
}

/// The device record to write, and its record key.
///
/// ```
/// # use atmls::identity::{DeviceIdentity, Did};
/// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
/// # let dev = DeviceIdentity::new_account(did.clone());
/// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
/// use atmls::directory::pds::records::{encode_device, installation_id};
/// use atmls::directory::DeviceRecord;
/// let device = DeviceRecord { certificate: dev.certificate.clone(), display_name: None };
/// let (rkey, v) = encode_device(&device);
/// assert_eq!(rkey, installation_id(&dev.installation.public()));
/// assert_eq!(v["$type"], "dev.atmls.device");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_device(d: &DeviceRecord) -> (String, Value) {
    let c = &d.certificate;
    let mut v = json!({
        "$type": DEVICE,
        "installationKey": key_value(&c.installation_key),
        "identityKey": key_value(&c.identity_key),
        "certificate": bytes_value(&c.signature),
        "createdAt": datetime_value(c.created),
        "expiresAt": datetime_value(c.expires),
    });
    if let Some(n) = &d.display_name {
        v["displayName"] = Value::String(n.clone());
    }
    (installation_id(&c.installation_key), v)
}

/// Decodes a device record of `did` stored under `rkey` (structure, and that the record key
/// is the installation id; [`InstallationCertificate::verify`] checks the certificate).
///
/// ```
/// # use atmls::identity::{DeviceIdentity, Did};
/// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
/// # let dev = DeviceIdentity::new_account(did.clone());
/// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
/// use atmls::directory::pds::records::{decode_device, encode_device};
/// use atmls::directory::{pds::RecordError, DeviceRecord};
/// let device = DeviceRecord {
///     certificate: dev.certificate.clone(),
///     display_name: Some("laptop".into()),
/// };
/// let (rkey, v) = encode_device(&device);
/// assert_eq!(decode_device(&did, &rkey, &v)?, device);
/// // Stored under another record key: refused.
/// assert!(matches!(decode_device(&did, "self", &v), Err(RecordError::BadRecordKey(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decode_device(did: &Did, rkey: &str, v: &Value) -> Result<DeviceRecord, RecordError> {
    let o = open(v, DEVICE)?;
    let installation_key = decode_key(&o, "installationKey", "installation")?;
    if rkey != installation_id(&installation_key) {
        return Err(RecordError::BadRecordKey(rkey.chars().take(512).collect()));
    }
    let display_name = o
        .opt_str("displayName")?
        .map(|s| s.chars().take(64).collect());
    Ok(DeviceRecord {
        certificate: InstallationCertificate {
            did: did.clone(),
            identity_key: decode_key(&o, "identityKey", "identity")?,
            installation_key,
            created: o.datetime("createdAt")?,
            expires: o.datetime("expiresAt")?,
            signature: o.bytes("certificate")?,
        },
        display_name,
    })
}

/// The KeyPackage record to write.
///
/// ```
/// # use atmls::identity::{DeviceIdentity, Did};
/// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
/// # let dev = DeviceIdentity::new_account(did.clone());
/// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
/// use atmls::directory::KeyPackageRecord;
/// // A stand-in record (decoding checks structure only).
/// let record = KeyPackageRecord {
///     did: did.clone(),
///     installation_key: dev.installation.public(),
///     key_package_ref: vec![1; 32],
///     key_package: vec![0; 64],
///     ciphersuite: 1,
///     last_resort: false,
///     created: 1_700_000_000,
///     expires: 1_700_086_400,
/// };
/// use atmls::directory::pds::records::{encode_key_package, installation_id, KEY_PACKAGE};
/// let v = encode_key_package(&record);
/// assert_eq!(v["$type"], KEY_PACKAGE);
/// assert_eq!(v["installation"], installation_id(&dev.installation.public()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_key_package(k: &KeyPackageRecord) -> Value {
    json!({
        "$type": KEY_PACKAGE,
        "keyPackage": bytes_value(&k.key_package),
        "keyPackageRef": bytes_value(&k.key_package_ref),
        "ciphersuite": k.ciphersuite,
        "installation": installation_id(&k.installation_key),
        "lastResort": k.last_resort,
        "expiresAt": datetime_value(k.expires),
        "createdAt": datetime_value(k.created),
    })
}

/// Decodes a KeyPackage record of `did` (structure only; `checks` validates the KeyPackage).
///
/// ```
/// # use atmls::identity::{DeviceIdentity, Did};
/// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
/// # let dev = DeviceIdentity::new_account(did.clone());
/// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
/// use atmls::directory::KeyPackageRecord;
/// // A stand-in record (decoding checks structure only).
/// let record = KeyPackageRecord {
///     did: did.clone(),
///     installation_key: dev.installation.public(),
///     key_package_ref: vec![1; 32],
///     key_package: vec![0; 64],
///     ciphersuite: 1,
///     last_resort: false,
///     created: 1_700_000_000,
///     expires: 1_700_086_400,
/// };
/// use atmls::directory::pds::records::{decode_key_package, encode_key_package};
/// use atmls::directory::pds::RecordError;
/// let mut v = encode_key_package(&record);
/// assert_eq!(decode_key_package(&did, &v)?, record);
/// v["lastResort"] = "yes".into();
/// assert!(matches!(decode_key_package(&did, &v), Err(RecordError::WrongType { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decode_key_package(did: &Did, v: &Value) -> Result<KeyPackageRecord, RecordError> {
    let o = open(v, KEY_PACKAGE)?;
    let installation = o.str("installation")?;
    let key_bytes = hex::decode(installation).map_err(|_| RecordError::WrongType {
        field: "installation",
        expected: "an installation id (hex key)",
    })?;
    let key_package = o.bytes("keyPackage")?;
    if key_package.len() > crate::keypackage::MAX_KEY_PACKAGE_LEN {
        return Err(RecordError::TooLarge {
            size: key_package.len(),
            max: crate::keypackage::MAX_KEY_PACKAGE_LEN,
        });
    }
    Ok(KeyPackageRecord {
        did: did.clone(),
        installation_key: PublicKey::from_slice(&key_bytes, "installation")?,
        key_package_ref: o.bytes("keyPackageRef")?,
        key_package,
        ciphersuite: o.u16("ciphersuite")?,
        last_resort: o.bool("lastResort")?,
        created: o.datetime("createdAt")?,
        expires: o.datetime("expiresAt")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{unix_now, DeviceIdentity, IdentityKeyPair};

    fn did() -> Did {
        Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap()
    }

    #[test]
    fn rec_1_declaration_round_trips() {
        let dev = DeviceIdentity::new_account(did());
        let k = dev.identity_key.as_ref().unwrap();
        let now = unix_now();
        // A key rotated twice, with a revoked device: chain and revocation survive the record.
        let k0 = IdentityKeyPair::generate();
        let k1 = IdentityKeyPair::generate();
        let d0 = k0.declare(&did(), now - 20);
        let d1 = k0.rotate(&d0, &k1, now - 10).unwrap();
        let mut d = k1.rotate(&d1, k, now).unwrap();
        d.revocations
            .push(k.revoke(&did(), &IdentityKeyPair::generate().public(), now));
        let p = Profile {
            delivery_service: Some("https://ds.example.com".into()),
            incoming_policy: IncomingPolicy::Following,
            ..Profile::default()
        };
        let v = encode_declaration(&d, &p);
        assert_eq!(v["$type"], DECLARATION);
        assert_eq!(v["identityKey"]["algorithm"], "ed25519");
        let back = decode_declaration(&did(), &v).unwrap();
        assert_eq!(back.declaration, d);
        assert_eq!(back.profile, p);
        assert!(back.declaration.verify().is_ok());
        assert_eq!(back.declaration.revoked().len(), 1);
        assert!(matches!(
            crate::identity::succession(&k0.public(), &back.declaration),
            Ok(crate::identity::Succession::Endorsed(_))
        ));
    }

    #[test]
    fn rec_1_device_round_trips_under_its_installation_id() {
        let dev = DeviceIdentity::new_account(did());
        let rec = DeviceRecord {
            certificate: dev.certificate.clone(),
            display_name: Some("laptop".into()),
        };
        let (rkey, v) = encode_device(&rec);
        assert_eq!(rkey.len(), 64);
        assert_eq!(decode_device(&did(), &rkey, &v).unwrap(), rec);
        assert!(matches!(
            decode_device(&did(), "self", &v),
            Err(RecordError::BadRecordKey(_))
        ));
    }

    #[test]
    fn rec_2_unknown_algorithm_wrong_type_and_unknown_policy() {
        let dev = DeviceIdentity::new_account(did());
        let d = dev.identity_key.as_ref().unwrap().declare(&did(), 5);
        let mut v = encode_declaration(&d, &Profile::default());
        v["incomingPolicy"] = "friends-of-friends".into();
        v["futureField"] = json!({"x": 1});
        let back = decode_declaration(&did(), &v).unwrap();
        assert_eq!(
            back.profile.incoming_policy,
            IncomingPolicy::Other("friends-of-friends".into())
        );
        v["identityKey"]["algorithm"] = "p256".into();
        assert_eq!(
            decode_declaration(&did(), &v),
            Err(RecordError::UnsupportedAlgorithm("p256".into()))
        );
        let mut v = encode_declaration(&d, &Profile::default());
        v["$type"] = DEVICE.into();
        assert!(matches!(
            decode_declaration(&did(), &v),
            Err(RecordError::WrongCollection { .. })
        ));
        let mut v = encode_declaration(&d, &Profile::default());
        v["ciphersuites"] = json!([]);
        assert!(decode_declaration(&did(), &v).is_err());
        let mut v = encode_declaration(&d, &Profile::default());
        v["identityKey"]["key"] = bytes_value(&[7u8; 31]);
        assert!(matches!(
            decode_declaration(&did(), &v),
            Err(RecordError::Identity(_))
        ));
    }

    #[test]
    fn rec_2_oversized_record_is_refused() {
        let dev = DeviceIdentity::new_account(did());
        let rec = DeviceRecord {
            certificate: dev.certificate.clone(),
            display_name: None,
        };
        let (rkey, mut v) = encode_device(&rec);
        v["padding"] = "x".repeat(MAX_RECORD_BYTES).into();
        assert!(matches!(
            decode_device(&did(), &rkey, &v),
            Err(RecordError::TooLarge { .. })
        ));
    }
}
