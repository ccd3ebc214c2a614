//! The disappearing-messages timer, a group-context extension (spec/content.md
//! CONTENT-28): changing it is a commit, so every member's device agrees on it. Who may
//! change it is checked with the other group-context extensions (`authorize.rs`).

use openmls::prelude::{Extension, ExtensionType, Extensions, GroupContext, UnknownExtension};

use super::GroupError;
#[cfg(test)]
use super::GROUP_DATA_EXTENSION;

pub use crate::extensions::DISAPPEARING_EXTENSION;

/// Longest timer: one year, in seconds.
pub const MAX_DISAPPEARING_SECS: u32 = 365 * 24 * 3600;

const VERSION: u8 = 1;

/// The timer in seconds, if the group has one (`None`: messages do not expire).
/// A malformed extension is an error (it came from another member's commit).
pub(crate) fn disappearing_secs(ext: &Extensions<GroupContext>) -> Result<Option<u32>, GroupError> {
    let Some(raw) = ext.unknown(DISAPPEARING_EXTENSION) else {
        return Ok(None);
    };
    let bad = || GroupError::Malformed("disappearing-messages extension".into());
    let bytes: [u8; 5] = raw.0.as_slice().try_into().map_err(|_| bad())?;
    let [version, s @ ..] = bytes;
    let secs = u32::from_be_bytes(s);
    if version != VERSION || secs > MAX_DISAPPEARING_SECS {
        return Err(bad());
    }
    Ok((secs > 0).then_some(secs))
}

/// The group context extensions with the timer set to `secs` (0 removes it).
pub(crate) fn with_disappearing(
    ext: &Extensions<GroupContext>,
    secs: u32,
) -> Result<Extensions<GroupContext>, GroupError> {
    if secs > MAX_DISAPPEARING_SECS {
        return Err(GroupError::NotAllowed("disappearing timer over one year"));
    }
    let mut out: Vec<Extension> = ext
        .iter()
        .filter(|e| e.extension_type() != ExtensionType::Unknown(DISAPPEARING_EXTENSION))
        .cloned()
        .collect();
    if secs > 0 {
        let mut bytes = vec![VERSION];
        bytes.extend_from_slice(&secs.to_be_bytes());
        out.push(Extension::Unknown(
            DISAPPEARING_EXTENSION,
            UnknownExtension(bytes),
        ));
    }
    Extensions::from_vec(out).map_err(|e| GroupError::Mls(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{GroupData, GroupKind};

    fn base() -> Extensions<GroupContext> {
        Extensions::from_vec(vec![GroupData {
            kind: GroupKind::Group,
            dm_members: vec![],
        }
        .to_extension()])
        .unwrap()
    }

    #[test]
    fn content_28_timer_round_trip_and_change_check() {
        let b = base();
        assert_eq!(disappearing_secs(&b).unwrap(), None);
        let on = with_disappearing(&b, 60).unwrap();
        assert_eq!(disappearing_secs(&on).unwrap(), Some(60));
        let off = with_disappearing(&on, 0).unwrap();
        assert_eq!(disappearing_secs(&off).unwrap(), None);
        assert!(on.unknown(GROUP_DATA_EXTENSION).is_some());
        assert!(with_disappearing(&b, MAX_DISAPPEARING_SECS + 1).is_err());
    }

    #[test]
    fn content_28_rejects_malformed_timer_and_other_changes() {
        let b = base();
        for raw in [
            vec![],
            vec![1, 0, 0, 0],
            vec![2, 0, 0, 0, 1],
            vec![1, 0xff, 0xff, 0xff, 0xff],
            vec![1, 0, 0, 0, 1, 0],
        ] {
            let ext = Extensions::from_vec(vec![
                b.iter().next().unwrap().clone(),
                Extension::Unknown(DISAPPEARING_EXTENSION, UnknownExtension(raw.clone())),
            ])
            .unwrap();
            assert!(disappearing_secs(&ext).is_err(), "{raw:?}");
        }
    }
}
