//! Targets of the directory records read from a PDS (spec/records.md REC-1 … REC-5): the
//! declaration, device and KeyPackage records as JSON. What decodes must encode and decode
//! back to the same record; the checks (signatures, agreement with the fixed account) run on
//! everything that decodes.

use serde_json::Value;

use super::fixtures::{self, NOW};
use crate::directory::pds::records::{
    decode_declaration, decode_device, decode_key_package, encode_declaration, encode_device,
    encode_key_package,
};
use crate::directory::pds::{check_declaration, check_devices, check_key_packages};

fn json(data: &[u8]) -> Option<Value> {
    serde_json::from_slice(data).ok()
}

/// REC-1/REC-3: the declaration record of the fixed DID.
pub(super) fn declaration(data: &[u8]) {
    let Some(v) = json(data) else {
        return;
    };
    let did = fixtures::did();
    let _ = check_declaration(&did, &v);
    let Ok(d) = decode_declaration(&did, &v) else {
        return;
    };
    let again = encode_declaration(&d.declaration, &d.profile);
    assert_eq!(decode_declaration(&did, &again).as_ref(), Ok(&d));
}

/// REC-1/REC-4: `rkey ‖ '\n' ‖ record`, a device record under its record key.
pub(super) fn device(data: &[u8]) {
    let Some(nl) = data.iter().position(|&b| b == b'\n') else {
        return;
    };
    let (Ok(rkey), Some(v)) = (std::str::from_utf8(&data[..nl]), json(&data[nl + 1..])) else {
        return;
    };
    let did = fixtures::did();
    let raw = [(rkey.to_owned(), v)];
    let _ = check_devices(fixtures::declaration(), &raw, NOW);
    let Ok(d) = decode_device(&did, rkey, &raw[0].1) else {
        return;
    };
    let (k, again) = encode_device(&d);
    assert_eq!(k, rkey, "device record key");
    assert_eq!(decode_device(&did, &k, &again).as_ref(), Ok(&d));
}

/// REC-1/REC-5: a KeyPackage record of the fixed account, checked down to its KeyPackage.
pub(super) fn key_package(data: &[u8]) {
    let Some(v) = json(data) else {
        return;
    };
    let account = fixtures::account();
    let raw = [("rkey".to_owned(), v)];
    let _ = check_key_packages(fixtures::declaration(), account, &raw, NOW);
    let Ok(r) = decode_key_package(&account.did, &raw[0].1) else {
        return;
    };
    let again = encode_key_package(&r);
    assert_eq!(decode_key_package(&account.did, &again).as_ref(), Ok(&r));
}
