//! Hash maps serialized with sorted keys, so the same model always writes the same bytes (the
//! maps stay hash maps for lookups while scoring).

use std::collections::{BTreeMap, HashMap};

use serde::{Serialize, Serializer};

/// `#[serde(serialize_with = "sorted::map")]`
pub(crate) fn map<S: Serializer, V: Serialize, H>(m: &HashMap<String, V, H>, s: S) -> Result<S::Ok, S::Error> {
    m.iter().collect::<BTreeMap<_, _>>().serialize(s)
}

/// `#[serde(serialize_with = "sorted::nested")]`
pub(crate) fn nested<S: Serializer, V: Serialize, H>(m: &BTreeMap<String, HashMap<String, V, H>>, s: S) -> Result<S::Ok, S::Error> {
    m.iter().map(|(k, inner)| (k, inner.iter().collect::<BTreeMap<_, _>>())).collect::<BTreeMap<_, _>>().serialize(s)
}

/// `#[serde(serialize_with = "sorted::each")]`
pub(crate) fn each<S: Serializer, V: Serialize, H>(maps: &[HashMap<String, V, H>], s: S) -> Result<S::Ok, S::Error> {
    maps.iter().map(|m| m.iter().collect::<BTreeMap<_, _>>()).collect::<Vec<_>>().serialize(s)
}
