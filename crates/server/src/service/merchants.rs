//! Creating merchants and reading their signing material.

use ottgate_core::merchant::MerchantName;
use ottgate_core::{Clock, Currency, Merchant, MerchantId, OperatorId, PaymentMethod, Secret};
use ottgate_envelope::SignKey;
use ottgate_store::{KeyRotation, LinkFlows, MerchantRecord, NewSignKey, Store, StoreError};
use rand::RngCore;

use crate::keyring::Keyring;

/// What `ottgate merchant add` asks for.
#[derive(Debug, Clone)]
pub struct NewMerchant {
    pub name: String,
    pub id: Option<String>,
    /// Empty means `CAD` only.
    pub currencies: Vec<Currency>,
}

/// A created merchant with its credentials, shown once.
#[derive(Debug, Clone)]
pub struct CreatedMerchant {
    pub merchant: Merchant,
    pub sign_key: SignKey,
    pub app_key: Secret,
    /// Signs every callback (`OTTGate-Signature`); derived, never stored.
    pub webhook_secret: Secret,
    /// Names the merchant in OTT Pay's link flows (off until enabled).
    pub mer_code: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MerchantError {
    #[error("{0}")]
    Invalid(String),
    #[error("merchant {0} already exists")]
    Exists(String),
    #[error("no merchant {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long a rotated sign key is still accepted on requests, and a rotated webhook secret
/// still signs callbacks beside the new one: time to deploy the new one.
pub const ROTATION_GRACE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn new_sign_key() -> Result<SignKey, MerchantError> {
    SignKey::new(hex::encode_upper(random_bytes::<8>()))
        .map_err(|e| MerchantError::Invalid(e.to_string()))
}

/// Gives merchant `id` a new sign key (returned, to be shown once); the old one is accepted
/// on requests for [`ROTATION_GRACE`] more. Callbacks are sealed with the new key at once.
pub async fn rotate_sign_key(
    store: &dyn Store,
    keyring: &Keyring,
    clock: &dyn Clock,
    id: &MerchantId,
) -> Result<SignKey, MerchantError> {
    let key = new_sign_key()?;
    let until = clock.now().plus(ROTATION_GRACE);
    let rotation = NewSignKey {
        merchant: id.clone(),
        sealed: keyring.seal_sign_key(id, &key),
        previous_until: until,
    };
    if !store.rotate_sign_key(rotation).await? {
        return Err(MerchantError::NotFound(id.to_string()));
    }
    Ok(key)
}

/// Gives merchant `id` a new REST app key (returned, to be shown once: only its argon2id
/// hash is kept); the old one still obtains tokens for [`ROTATION_GRACE`] more. Tokens
/// already issued run out on their own (15 minutes).
pub async fn rotate_app_key(
    store: &dyn Store,
    clock: &dyn Clock,
    id: &MerchantId,
) -> Result<Secret, MerchantError> {
    let key = Secret::new(hex::encode(random_bytes::<16>()));
    let hash = super::passwords::hash(key.expose_secret())
        .map_err(|e| MerchantError::Invalid(format!("the app key: {e}")))?;
    let until = clock.now().plus(ROTATION_GRACE);
    if !store.rotate_app_key(id, &hash, until).await? {
        return Err(MerchantError::NotFound(id.to_string()));
    }
    Ok(key)
}

/// Moves merchant `id`'s callbacks to a new webhook secret (returned); for
/// [`ROTATION_GRACE`] more each callback also carries a signature by the old one.
pub async fn rotate_webhook_secret(
    store: &dyn Store,
    keyring: &Keyring,
    clock: &dyn Clock,
    id: &MerchantId,
) -> Result<Secret, MerchantError> {
    let until = clock.now().plus(ROTATION_GRACE);
    let version = store
        .rotate_webhook_secret(id, until)
        .await?
        .ok_or_else(|| MerchantError::NotFound(id.to_string()))?;
    Ok(keyring.webhook_secret(id, version))
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// Creates a merchant with every method enabled, a fresh sign key (16 upper-case hex
/// characters, sealed at rest) and a fresh app key (32 hex characters, stored as an
/// argon2id hash).
pub async fn create_merchant(
    store: &dyn Store,
    keyring: &Keyring,
    clock: &dyn Clock,
    new: NewMerchant,
) -> Result<CreatedMerchant, MerchantError> {
    let name = MerchantName::parse(&new.name).map_err(|e| MerchantError::Invalid(e.to_string()))?;
    let mut currencies = Vec::new();
    for c in if new.currencies.is_empty() {
        vec![Currency::Cad]
    } else {
        new.currencies
    } {
        if !currencies.contains(&c) {
            currencies.push(c);
        }
    }
    let sign_key = new_sign_key()?;
    let app_key = Secret::new(hex::encode(random_bytes::<16>()));
    let app_key_hash = super::passwords::hash(app_key.expose_secret())
        .map_err(|e| MerchantError::Invalid(format!("the app key: {e}")))?;
    // A generated id may collide with an existing one; try a few.
    let tries = if new.id.is_some() { 1 } else { 5 };
    for _ in 0..tries {
        let id = match &new.id {
            Some(id) => MerchantId::parse(id).map_err(|e| MerchantError::Invalid(e.to_string()))?,
            None => MerchantId::generate(),
        };
        let merchant = Merchant::new(
            id,
            name.clone(),
            OperatorId::generate(),
            currencies.clone(),
            clock.now(),
        );
        let record = MerchantRecord {
            sign_key_sealed: keyring.seal_sign_key(&merchant.id, &sign_key),
            app_key_hash: app_key_hash.clone(),
            merchant: merchant.clone(),
            rotation: KeyRotation::default(),
            link: LinkFlows {
                mer_code: hex::encode(random_bytes::<16>()),
                ..LinkFlows::default()
            },
            time_zone: None,
        };
        let mer_code = record.link.mer_code.clone();
        match store.insert_merchant(record).await {
            Ok(()) => {
                return Ok(CreatedMerchant {
                    webhook_secret: keyring.webhook_secret(&merchant.id, 0),
                    mer_code,
                    merchant,
                    sign_key,
                    app_key,
                });
            }
            Err(StoreError::Duplicate(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(MerchantError::Exists(
        new.id.unwrap_or_else(|| "(generated id)".into()),
    ))
}

/// What `ottgate merchant channels` changes: methods switched on or off, and the ids the
/// wallets know the merchant by (`Some("")` clears one; `None` leaves it).
#[derive(Debug, Clone, Default)]
pub struct ChannelChange {
    pub enable: Vec<PaymentMethod>,
    pub disable: Vec<PaymentMethod>,
    pub wechat_sub_mch_id: Option<String>,
    pub mcc: Option<String>,
}

/// Merchant `id` as stored: `Invalid` for a malformed id, `NotFound` for an unknown one.
async fn existing(store: &dyn Store, id: &str) -> Result<MerchantRecord, MerchantError> {
    let id = MerchantId::parse(id).map_err(|e| MerchantError::Invalid(e.to_string()))?;
    store
        .merchant(&id)
        .await?
        .ok_or_else(|| MerchantError::NotFound(id.to_string()))
}

/// Sets merchant `id`'s fee rate for `method` (its settlement statements use it from then
/// on, for every day shown).
pub async fn set_fee(
    store: &dyn Store,
    id: &str,
    method: PaymentMethod,
    rate: ottgate_core::settlement::FeeRate,
) -> Result<(), MerchantError> {
    let merchant = existing(store, id).await?.merchant;
    store
        .set_fee(&merchant.id, ottgate_store::MethodFee { method, rate })
        .await?;
    Ok(())
}

/// Merchant `id`'s own fee rates (methods not listed take the configured default).
pub async fn fees(
    store: &dyn Store,
    id: &str,
) -> Result<Vec<ottgate_store::MethodFee>, MerchantError> {
    let merchant = existing(store, id).await?.merchant;
    Ok(store.fees(&merchant.id).await?)
}

/// Applies `change` to merchant `id` and returns the merchant as it now is. A merchant with
/// no method left could take no payment at all, so that is refused.
pub async fn change_channels(
    store: &dyn Store,
    id: &str,
    change: ChannelChange,
) -> Result<Merchant, MerchantError> {
    let mut merchant = existing(store, id).await?.merchant;
    if let Some(both) = change.enable.iter().find(|m| change.disable.contains(m)) {
        return Err(MerchantError::Invalid(format!(
            "{both} is both enabled and disabled"
        )));
    }
    // Kept in PaymentMethod::ALL order, whatever order they were given in.
    merchant.methods = PaymentMethod::ALL
        .into_iter()
        .filter(|m| {
            (merchant.methods.contains(m) || change.enable.contains(m))
                && !change.disable.contains(m)
        })
        .collect();
    if merchant.methods.is_empty() {
        return Err(MerchantError::Invalid(
            "a merchant needs at least one payment method".into(),
        ));
    }
    let set = |value: Option<String>, current: &mut Option<String>| match value {
        Some(v) if v.is_empty() => *current = None,
        Some(v) => *current = Some(v),
        None => {}
    };
    set(
        change.wechat_sub_mch_id,
        &mut merchant.channel_ids.wechat_sub_mch_id,
    );
    set(change.mcc, &mut merchant.channel_ids.mcc);
    merchant
        .channel_ids
        .validate()
        .map_err(MerchantError::Invalid)?;
    if !store.update_merchant_channels(&merchant).await? {
        return Err(MerchantError::NotFound(merchant.id.to_string()));
    }
    Ok(merchant)
}

/// What `ottgate merchant link-flows` changes: the flows on or off (`None` leaves them),
/// and h5Pay's callback URL (`Some("")` clears it).
#[derive(Debug, Clone, Default)]
pub struct LinkChange {
    pub enabled: Option<bool>,
    pub callback_url: Option<String>,
}

/// Applies `change` to merchant `id`'s link flows and returns them as they now are.
pub async fn change_link_flows(
    store: &dyn Store,
    id: &str,
    change: LinkChange,
    allow_private_callbacks: bool,
) -> Result<LinkFlows, MerchantError> {
    let record = existing(store, id).await?;
    let (id, mut link) = (record.merchant.id, record.link);
    if let Some(enabled) = change.enabled {
        link.enabled = enabled;
    }
    match change.callback_url {
        Some(url) if url.is_empty() => link.callback_url = None,
        Some(url) => {
            let parsed = url::Url::parse(&url)
                .map_err(|e| MerchantError::Invalid(format!("callback URL: {e}")))?;
            crate::outbound::check_callback_url(&parsed, allow_private_callbacks)
                .map_err(|e| MerchantError::Invalid(format!("callback URL {e}")))?;
            link.callback_url = Some(parsed.to_string());
        }
        None => {}
    }
    if !store.set_link_flows(&id, &link).await? {
        return Err(MerchantError::NotFound(id.to_string()));
    }
    Ok(link)
}

impl super::Service {
    /// The merchant OTT Pay's link flows name by `mer_code`, if it has switched them on.
    pub async fn merchant_for_link(
        &self,
        mer_code: &str,
    ) -> Result<Option<MerchantRecord>, StoreError> {
        Ok(self
            .store
            .merchant_by_mer_code(mer_code)
            .await?
            .filter(|r| r.link.enabled))
    }

    /// [`rotate_sign_key`] for this gateway: its signing cache forgets the old key at once.
    pub async fn rotate_sign_key(&self, id: &MerchantId) -> Result<SignKey, MerchantError> {
        let key = rotate_sign_key(&*self.store, &self.keyring, &*self.clock, id).await;
        self.signings.forget(id);
        key
    }

    /// [`rotate_app_key`] for this gateway.
    pub async fn rotate_app_key(&self, id: &MerchantId) -> Result<Secret, MerchantError> {
        rotate_app_key(&*self.store, &*self.clock, id).await
    }

    /// [`rotate_webhook_secret`] for this gateway: callbacks take the new version at once.
    pub async fn rotate_webhook_secret(&self, id: &MerchantId) -> Result<Secret, MerchantError> {
        let secret = rotate_webhook_secret(&*self.store, &self.keyring, &*self.clock, id).await;
        self.signings.forget(id);
        secret
    }

    /// [`change_link_flows`] for this gateway, checking the callback URL as its callbacks
    /// are checked.
    pub async fn change_link_flows(
        &self,
        id: &str,
        change: LinkChange,
    ) -> Result<LinkFlows, MerchantError> {
        let allow_private = self.settings.allow_private_callbacks;
        change_link_flows(&*self.store, id, change, allow_private).await
    }

    /// [`change_channels`] for this gateway: its signing cache forgets the old methods.
    pub async fn change_channels(
        &self,
        id: &str,
        change: ChannelChange,
    ) -> Result<Merchant, MerchantError> {
        let merchant = change_channels(&*self.store, id, change).await?;
        self.signings.forget(&merchant.id);
        Ok(merchant)
    }
}
