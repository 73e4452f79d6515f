//! The merchants a gateway serves, their sealed keys and their rotations.

use crate::Result;
use async_trait::async_trait;
use ottgate_core::{Merchant, MerchantId, Timestamp};
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
    pub link: LinkFlows,
    /// The zone its people read times in (IANA name); `None`: the deployment's.
    pub time_zone: Option<String>,
}

/// OTT Pay's link flows for this merchant (h5Pay, wapPay, webPay, inAppPay): unsigned
/// requests that name the merchant by `mer_code`, so off unless the merchant enables them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LinkFlows {
    /// 32 hex digits, issued with the merchant; whoever holds it can start a payment.
    pub mer_code: String,
    pub enabled: bool,
    /// Where h5Pay's results go (h5Pay names no callback URL of its own).
    pub callback_url: Option<String>,
}

impl fmt::Debug for LinkFlows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkFlows")
            .field("mer_code", &"<hidden>")
            .field("enabled", &self.enabled)
            .field("callback_url", &self.callback_url)
            .finish()
    }
}

/// A merchant's new sign key (sealed), and until when the one it replaces still verifies.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSignKey {
    pub merchant: MerchantId,
    pub sealed: Vec<u8>,
    pub previous_until: Timestamp,
}

impl fmt::Debug for NewSignKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSignKey")
            .field("merchant", &self.merchant)
            .field("sealed", &"<sealed>")
            .field("previous_until", &self.previous_until)
            .finish()
    }
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
    /// The REST app key before the last rotation (its argon2id hash) and until when it is
    /// still accepted.
    pub previous_app_key: Option<(String, Timestamp)>,
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

    /// The merchant whose link flows' `merCode` this is.
    async fn merchant_by_mer_code(&self, mer_code: &str) -> Result<Option<MerchantRecord>>;

    /// Switches merchant `id`'s link flows on or off and sets h5Pay's callback URL (the
    /// `mer_code` stays); false if there is no such merchant.
    async fn set_link_flows(&self, id: &MerchantId, link: &LinkFlows) -> Result<bool>;

    /// Replaces a merchant's enabled methods and channel ids; `false` if there is no such
    /// merchant.
    /// Replaces the sign key; the old one stays accepted until `previous_until`. `false`
    /// if there is no such merchant.
    async fn rotate_sign_key(&self, rotation: NewSignKey) -> Result<bool>;

    /// Sets the zone merchant `id`'s people read times in (`None`: the deployment's);
    /// `false` if there is no such merchant.
    async fn set_time_zone(&self, id: &MerchantId, zone: Option<&str>) -> Result<bool>;

    /// Gives merchant `id` the app key hashed as `hash`; the one it replaces is still
    /// accepted until `previous_until`. `false` if there is no such merchant.
    async fn rotate_app_key(
        &self,
        id: &MerchantId,
        hash: &str,
        previous_until: Timestamp,
    ) -> Result<bool>;

    /// Moves callbacks to the next webhook secret; the old one signs beside it until
    /// `previous_until`. The new version, `None` if there is no such merchant.
    async fn rotate_webhook_secret(
        &self,
        id: &MerchantId,
        previous_until: Timestamp,
    ) -> Result<Option<u32>>;

    /// Writes `merchant`'s methods and wallet ids (nothing else of it); false if there is
    /// no such merchant.
    async fn update_merchant_channels(&self, merchant: &Merchant) -> Result<bool>;
}

/// This table's SQL where both backends agree, written once (`sql!`: `?N` for SQLite,
/// `$N` for PostgreSQL).
pub(crate) mod q {
    use crate::sql::Sql;

    /// A new merchant, unless its id or app id is taken (then nothing: the caller asks).
    pub(crate) const INSERT: Sql = sql!(
        "INSERT INTO merchants (id, name, shop_id, operator_id, app_id, app_key_hash, sign_key_sealed,
         currencies, methods, created_at, wechat_sub_mch_id, mcc, mer_code)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, NULLIF(?13, '')) ON CONFLICT DO NOTHING"
    );

    pub(crate) const BY_APP_ID: Sql = sql!("SELECT * FROM merchants WHERE app_id = ?1");
    pub(crate) const BY_ID: Sql = sql!("SELECT * FROM merchants WHERE id = ?1");
    pub(crate) const BY_MER_CODE: Sql = sql!("SELECT * FROM merchants WHERE mer_code = ?1");
    pub(crate) const SET_LINK_FLOWS: Sql =
        sql!("UPDATE merchants SET link_flows = ?1, link_callback_url = ?2 WHERE id = ?3");
    pub(crate) const ROTATE_SIGN_KEY: Sql = sql!(
        "UPDATE merchants SET previous_sign_key_sealed = sign_key_sealed,
         previous_sign_key_until = ?1, sign_key_sealed = ?2 WHERE id = ?3"
    );
    pub(crate) const SET_TIME_ZONE: Sql = sql!("UPDATE merchants SET time_zone = ?1 WHERE id = ?2");
    pub(crate) const ROTATE_APP_KEY: Sql = sql!(
        "UPDATE merchants SET previous_app_key_hash = app_key_hash,
         previous_app_key_until = ?1, app_key_hash = ?2 WHERE id = ?3"
    );
    pub(crate) const ROTATE_WEBHOOK_SECRET: Sql = sql!(
        "UPDATE merchants SET webhook_secret_version = webhook_secret_version + 1,
         previous_webhook_until = ?1 WHERE id = ?2 RETURNING webhook_secret_version"
    );
    pub(crate) const UPDATE_CHANNELS: Sql =
        sql!("UPDATE merchants SET methods = ?1, wechat_sub_mch_id = ?2, mcc = ?3 WHERE id = ?4");
}
