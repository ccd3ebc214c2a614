//! LG-P3: a serde form of `Vec<Option<T>>` that holds only the present
//! entries.
//!
//! The secret tree of a group keeps one slot per leaf (and per parent) for
//! its node secrets and sender ratchets, almost all of them empty: a
//! 10,000-member group has 4 × 16,384 slots of which a message touches a
//! handful. openmls writes the whole secret tree to storage after every
//! message, so encoding each empty slot made every message cost O(N). The
//! sparse form is the length followed by the list of `(index, value)` of the
//! present slots, in index order, so encoding and decoding cost grows with
//! the populated slots only.
//!
//! Decoding accepts the sparse form in every format and, in self-describing
//! formats (JSON, which openmls's storage providers use by default), also the
//! dense form (a sequence of `null` or value) written by earlier versions.
//! A sparse value whose length exceeds the bound its owner gives, or with an
//! index out of range or given twice, is an error.

use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;

use serde::{
    de::{self, MapAccess, SeqAccess, Visitor},
    ser::SerializeStruct,
    Deserialize, Deserializer, Serialize, Serializer,
};

/// A vector of optional slots that also keeps the indices of its present
/// slots, so that the sparse form is written without visiting every slot
/// (a 10,000-member secret tree has 4 × 16,384 slots, about 3 MB to scan).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SlotVec<T> {
    slots: Vec<Option<T>>,
    present: BTreeSet<u32>,
}

impl<T> SlotVec<T> {
    /// `len` empty slots.
    pub(crate) fn new(len: usize) -> Self {
        Self {
            slots: std::iter::repeat_with(|| None).take(len).collect(),
            present: BTreeSet::new(),
        }
    }

    fn from_vec(slots: Vec<Option<T>>) -> Self {
        let present = slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.is_some())
            .map(|(index, _)| index as u32)
            .collect();
        Self { slots, present }
    }

    /// The slot at `index`, `None` if out of range.
    pub(crate) fn get(&self, index: usize) -> Option<Option<&T>> {
        self.slots.get(index).map(Option::as_ref)
    }

    /// The slot at `index`, `None` if out of range.
    pub(crate) fn get_mut(&mut self, index: usize) -> Option<Option<&mut T>> {
        self.slots.get_mut(index).map(Option::as_mut)
    }

    /// Sets the slot at `index`; `None` if out of range.
    pub(crate) fn set(&mut self, index: usize, value: Option<T>) -> Option<()> {
        let slot = self.slots.get_mut(index)?;
        // Slots are at most `u32::MAX` (trees are far smaller).
        let key = u32::try_from(index).ok()?;
        if value.is_some() {
            self.present.insert(key);
        } else {
            self.present.remove(&key);
        }
        *slot = value;
        Some(())
    }

    /// All slots.
    #[cfg(test)]
    pub(crate) fn as_slice(&self) -> &[Option<T>] {
        &self.slots
    }
}

const STRUCT: &str = "SparseSlots";
const FIELDS: &[&str] = &["len", "entries"];

/// Serializes the borrowed slots in the sparse form.
pub(crate) struct SparseRef<'a, T>(pub(crate) &'a SlotVec<T>);

impl<T: Serialize> Serialize for SparseRef<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = u32::try_from(self.0.slots.len())
            .map_err(|_| serde::ser::Error::custom("too many slots"))?;
        // Only the present slots are visited.
        let entries: Vec<(u32, &T)> = self
            .0
            .present
            .iter()
            .filter_map(|&index| Some((index, self.0.slots.get(index as usize)?.as_ref()?)))
            .collect();
        let mut st = serializer.serialize_struct(STRUCT, 2)?;
        st.serialize_field("len", &len)?;
        st.serialize_field("entries", &entries)?;
        st.end()
    }
}

/// Decoded slots, not yet checked or expanded (see [`Slots::into_vec`]).
pub(crate) enum Slots<T> {
    /// The dense form of earlier versions.
    Dense(Vec<Option<T>>),
    /// The sparse form.
    Sparse { len: u32, entries: Vec<(u32, T)> },
}

/// Why decoded slots were rejected.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SlotsError {
    /// The length exceeds the owner's bound.
    TooLong { len: u32, max: u32 },
    /// An entry's index is not below the length.
    IndexOutOfRange { index: u32, len: u32 },
    /// Two entries have the same index.
    Duplicate(u32),
}

impl fmt::Display for SlotsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotsError::TooLong { len, max } => {
                write!(f, "sparse slots: length {len} exceeds {max}")
            }
            SlotsError::IndexOutOfRange { index, len } => {
                write!(f, "sparse slots: index {index} not below length {len}")
            }
            SlotsError::Duplicate(index) => write!(f, "sparse slots: index {index} given twice"),
        }
    }
}

impl<T> Slots<T> {
    /// The slots as a vector. A sparse length above `max_len` is rejected
    /// before anything is allocated for it. (A dense value is already
    /// allocated, in proportion to its encoding.)
    pub(crate) fn into_vec(self, max_len: u32) -> Result<SlotVec<T>, SlotsError> {
        match self {
            Slots::Dense(slots) => Ok(SlotVec::from_vec(slots)),
            Slots::Sparse { len, entries } => {
                if len > max_len {
                    return Err(SlotsError::TooLong { len, max: max_len });
                }
                let mut slots = SlotVec::new(len as usize);
                for (index, value) in entries {
                    match slots.get(index as usize) {
                        None => return Err(SlotsError::IndexOutOfRange { index, len }),
                        Some(Some(_)) => return Err(SlotsError::Duplicate(index)),
                        Some(None) => slots.set(index as usize, Some(value)),
                    };
                }
                Ok(slots)
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(rename = "SparseSlots")]
struct Sparse<T> {
    len: u32,
    entries: Vec<(u32, T)>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Slots<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(SlotsVisitor(PhantomData))
        } else {
            let Sparse { len, entries } =
                deserializer.deserialize_struct(STRUCT, FIELDS, SparseVisitor(PhantomData))?;
            Ok(Slots::Sparse { len, entries })
        }
    }
}

/// Accepts the dense form (a sequence) or the sparse one (a map).
struct SlotsVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for SlotsVisitor<T> {
    type Value = Slots<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of optional values or sparse slots")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // No pre-allocation from the untrusted size hint.
        let mut slots = Vec::new();
        while let Some(slot) = seq.next_element()? {
            slots.push(slot);
        }
        Ok(Slots::Dense(slots))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let Sparse { len, entries } =
            Sparse::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Slots::Sparse { len, entries })
    }
}

/// The sparse form in formats that are not self-describing.
struct SparseVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for SparseVisitor<T> {
    type Value = Sparse<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sparse slots")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let len = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let entries = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        Ok(Sparse { len, entries })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Sparse::deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Out<'a>(#[serde(serialize_with = "ser")] &'a [Option<String>]);

    fn ser<S: Serializer>(v: &&[Option<String>], s: S) -> Result<S::Ok, S::Error> {
        SparseRef(&SlotVec::from_vec(v.to_vec())).serialize(s)
    }

    fn slots(n: usize, present: &[usize]) -> Vec<Option<String>> {
        (0..n)
            .map(|i| present.contains(&i).then(|| format!("v{i}")))
            .collect()
    }

    fn json_round_trip(v: &[Option<String>]) -> Vec<Option<String>> {
        let bytes = serde_json::to_vec(&Out(v)).unwrap();
        let s: Slots<String> = serde_json::from_slice(&bytes).unwrap();
        s.into_vec(1 << 20).unwrap().as_slice().to_vec()
    }

    #[test]
    fn lg_p3_round_trip_json() {
        for (n, present) in [
            (0, vec![]),
            (1, vec![]),
            (1, vec![0]),
            (16, vec![0, 7, 15]),
            (16384, vec![3, 9000]),
        ] {
            let v = slots(n, &present);
            assert_eq!(json_round_trip(&v), v);
        }
        // Only the present entries are written.
        let bytes = serde_json::to_string(&Out(&slots(16384, &[3]))).unwrap();
        assert_eq!(bytes, r#"{"len":16384,"entries":[[3,"v3"]]}"#);
    }

    #[test]
    fn lg_p3_reads_dense_json_of_earlier_versions() {
        let dense = serde_json::to_vec(&slots(5, &[1, 4])).unwrap();
        let s: Slots<String> = serde_json::from_slice(&dense).unwrap();
        assert_eq!(s.into_vec(0).unwrap().as_slice(), slots(5, &[1, 4]));
    }

    #[test]
    fn lg_p3_rejects_malformed_sparse() {
        let decode = |json: &str, max: u32| {
            serde_json::from_str::<Slots<String>>(json)
                .map_err(|e| e.to_string())
                .and_then(|s| s.into_vec(max).map(|_| ()).map_err(|e| e.to_string()))
        };
        assert_eq!(
            decode(r#"{"len":4,"entries":[[4,"x"]]}"#, 16).unwrap_err(),
            SlotsError::IndexOutOfRange { index: 4, len: 4 }.to_string()
        );
        assert_eq!(
            decode(r#"{"len":4,"entries":[[1,"x"],[1,"y"]]}"#, 16).unwrap_err(),
            SlotsError::Duplicate(1).to_string()
        );
        assert_eq!(
            decode(r#"{"len":4294967295,"entries":[]}"#, 16).unwrap_err(),
            SlotsError::TooLong {
                len: u32::MAX,
                max: 16
            }
            .to_string()
        );
        assert!(decode(r#"{"len":4}"#, 16).is_err());
        assert!(decode(r#"{"len":-1,"entries":[]}"#, 16).is_err());
        assert!(decode(r#"{"len":2,"entries":[[0]]}"#, 16).is_err());
        assert!(decode(r#"7"#, 16).is_err());
        assert!(decode(r#"{"len":2,"entries":[[0,"a"]]}"#, 16).is_ok());
    }
}
