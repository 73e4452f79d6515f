//! Merchants' signing material, kept for a moment: every envelope request needs its
//! merchant and sign key, and reading the merchant and unsealing its key (AES-256-GCM) for
//! each one was about a tenth of the gateway's CPU under load (README, Performance).
//!
//! An entry lives [`TTL`]. A change made through this process (a rotation, methods) drops
//! the merchant's entry at once; a change made elsewhere — another gateway on the same
//! database, `ottgate merchant channels` — is seen within [`TTL`]. The old sign key's grace
//! period is checked against the clock on every use, not when the entry was made.

use ottgate_core::{MerchantId, Timestamp};
use ottgate_envelope::SignKey;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Signing;

/// How long an entry is used before the merchant is read again.
pub const TTL: Duration = Duration::from_secs(1);

/// Entries beyond this are not kept (a flood of distinct merchant ids must not grow it).
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone)]
struct Entry {
    read_at: Instant,
    signing: Signing,
    /// The old key with the end of its grace period.
    previous: Option<(SignKey, Timestamp)>,
}

#[derive(Debug, Default)]
pub struct SigningCache {
    entries: Mutex<HashMap<MerchantId, Entry>>,
}

impl SigningCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MerchantId, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The merchant's signing material as of `now`, if an entry younger than [`TTL`] holds it.
    pub fn get(&self, id: &MerchantId, now: Timestamp) -> Option<Signing> {
        let entries = self.lock();
        let entry = entries.get(id).filter(|e| e.read_at.elapsed() < TTL)?;
        let mut signing = entry.signing.clone();
        signing.previous = entry
            .previous
            .as_ref()
            .filter(|(_, until)| *until > now)
            .map(|(key, _)| key.clone());
        Some(signing)
    }

    pub fn put(&self, signing: Signing, previous: Option<(SignKey, Timestamp)>) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.read_at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        let id = signing.merchant.id.clone();
        entries.insert(
            id,
            Entry {
                read_at: Instant::now(),
                signing,
                previous,
            },
        );
    }

    /// Forgets the merchant: the next request reads it again.
    pub fn forget(&self, id: &MerchantId) {
        self.lock().remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ottgate_core::merchant::MerchantName;
    use ottgate_core::{Currency, Merchant, OperatorId};

    fn signing() -> Signing {
        Signing {
            merchant: Merchant::new(
                MerchantId::parse("ON00000185").unwrap(),
                MerchantName::parse("Maple Tea House").unwrap(),
                OperatorId::parse("0000000696").unwrap(),
                vec![Currency::Cad],
                Timestamp::from_epoch_millis(0),
            ),
            key: SignKey::new("0123456789ABCDEF").unwrap(),
            previous: None,
            webhook: super::super::WebhookVersion::default(),
        }
    }

    #[test]
    fn the_old_key_is_offered_only_inside_its_grace_period_and_forget_forgets() {
        let cache = SigningCache::default();
        let s = signing();
        let id = s.merchant.id.clone();
        let until = Timestamp::from_epoch_millis(10_000);
        cache.put(s, Some((SignKey::new("FEDCBA9876543210").unwrap(), until)));
        let before = cache.get(&id, Timestamp::from_epoch_millis(9_999)).unwrap();
        assert!(before.previous.is_some());
        let after = cache.get(&id, until).unwrap();
        assert!(
            after.previous.is_none(),
            "the grace period is over at `until`"
        );
        cache.forget(&id);
        assert!(cache.get(&id, until).is_none());
    }
}
