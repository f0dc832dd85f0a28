//! Keyed pseudonyms for shareable outputs: HMAC-SHA256 of the id under a secret key. The same
//! key gives the same pseudonym in every run (so shared lists can be compared over time); without
//! the key nobody can recompute or reverse them.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Shortest key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 16;

/// Keys written in the repository (the bundled sample pipelines' demo key): anyone with the
/// repository can recompute every pseudonym made with them. Refused outside the pipelines marked
/// `sample-data = true`.
pub const DEMO_KEYS: &[&str] = &["mirador-sample-data-demo-key"];

/// Whether `key` is one of the [`DEMO_KEYS`] (spaces around it ignored).
pub fn is_demo_key(key: &str) -> bool {
    DEMO_KEYS.contains(&key.trim())
}

/// A pseudonymiser holding the key.
pub struct Pseudonymiser {
    mac: Hmac<Sha256>,
}

impl Pseudonymiser {
    /// A pseudonymiser, or `None` if the key is too short to be a secret.
    pub fn new(key: &str) -> Option<Self> {
        if key.len() < MIN_KEY_LEN {
            return None;
        }
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).ok().map(|mac| Pseudonymiser { mac })
    }

    /// `P-` followed by 16 hex digits (64 bits of the HMAC).
    pub fn pseudonym(&self, id: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(id.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("P-{}", hex::encode(&digest[..8]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_distinct() {
        let a = Pseudonymiser::new("a key of sixteen bytes or more").unwrap();
        let b = Pseudonymiser::new("another key of sixteen bytes").unwrap();
        assert_eq!(a.pseudonym("IMP000001"), a.pseudonym("IMP000001"));
        assert_ne!(a.pseudonym("IMP000001"), a.pseudonym("IMP000002"));
        assert_ne!(a.pseudonym("IMP000001"), b.pseudonym("IMP000001"));
        assert!(!a.pseudonym("IMP000001").contains("IMP"));
        assert!(Pseudonymiser::new("short").is_none());
    }
}
