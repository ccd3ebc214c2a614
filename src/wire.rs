//! Envelopes atmls puts around MLS messages on the transport (spec/group.md GROUP-8).

use tls_codec::{
    DeserializeBytes as _, Serialize as _, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes,
};

use crate::group::GroupError;

#[derive(TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct WelcomeWire {
    version: u8,
    commit_seq: u64,
    welcome: VLBytes,
}

/// A Welcome with the mailbox position of the commit that added the device, so the joiner
/// reads the group's mailbox from there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WelcomeEnvelope {
    pub commit_seq: u64,
    pub welcome: Vec<u8>,
}

impl WelcomeEnvelope {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        WelcomeWire {
            version: 1,
            commit_seq: self.commit_seq,
            welcome: self.welcome.clone().into(),
        }
        .tls_serialize_detached()
        .unwrap_or_default()
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, GroupError> {
        let w = WelcomeWire::tls_deserialize_exact_bytes(bytes)
            .map_err(|_| GroupError::Malformed("welcome envelope".into()))?;
        if w.version != 1 {
            return Err(GroupError::Malformed("welcome envelope version".into()));
        }
        Ok(WelcomeEnvelope {
            commit_seq: w.commit_seq,
            welcome: w.welcome.as_slice().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_8_envelope_round_trip_and_truncation() {
        let e = WelcomeEnvelope {
            commit_seq: 7,
            welcome: vec![1, 2, 3],
        };
        let b = e.to_bytes();
        assert_eq!(WelcomeEnvelope::from_bytes(&b).unwrap(), e);
        for n in 0..b.len() {
            assert!(WelcomeEnvelope::from_bytes(&b[..n]).is_err());
        }
    }
}
