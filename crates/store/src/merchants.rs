//! The merchants a gateway serves, their sealed keys and their rotations.

use crate::Result;
use async_trait::async_trait;
use ottgate_core::{ChannelIds, Merchant, MerchantId, PaymentMethod, Timestamp};
use std::fmt;

/// A merchant with the secrets the gateway needs, still sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct MerchantRecord {
    pub merchant: Merchant,
    /// The sign key encrypted under the deployment master key.
    pub sign_key_sealed: Vec<u8>,
    /// argon2id PHC string of the REST app key.
    pub app_key_hash: String,
    pub rotation: KeyRotation,
}

/// What is left of the merchant's last key rotations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRotation {
    /// The sign key before the last rotation (sealed) and until when requests signed with it
    /// are still accepted.
    pub previous_sign_key: Option<(Vec<u8>, Timestamp)>,
    /// Which webhook secret signs callbacks (0: the first).
    pub webhook_secret_version: u32,
    /// Until when the version before it signs callbacks too.
    pub previous_webhook_until: Option<Timestamp>,
}

impl fmt::Debug for MerchantRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerchantRecord")
            .field("merchant", &self.merchant)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait Merchants: Send + Sync {
    async fn insert_merchant(&self, record: MerchantRecord) -> Result<()>;

    async fn merchant(&self, id: &MerchantId) -> Result<Option<MerchantRecord>>;

    async fn merchant_by_app_id(&self, app_id: &str) -> Result<Option<MerchantRecord>>;

    /// Replaces a merchant's enabled methods and channel ids; `false` if there is no such
    /// merchant.
    /// Replaces the sign key; the old one stays accepted until `previous_until`. `false`
    /// if there is no such merchant.
    async fn rotate_sign_key(
        &self,
        id: &MerchantId,
        sealed: Vec<u8>,
        previous_until: Timestamp,
    ) -> Result<bool>;

    /// Moves callbacks to the next webhook secret; the old one signs beside it until
    /// `previous_until`. The new version, `None` if there is no such merchant.
    async fn rotate_webhook_secret(
        &self,
        id: &MerchantId,
        previous_until: Timestamp,
    ) -> Result<Option<u32>>;

    async fn update_merchant_channels(
        &self,
        id: &MerchantId,
        methods: &[PaymentMethod],
        channel_ids: &ChannelIds,
    ) -> Result<bool>;
}
