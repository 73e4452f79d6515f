//! A merchant: who may use the gateway, in which currencies, with which methods.

use crate::{Currency, MerchantId, OperatorId, PaymentMethod, ShopId, Timestamp};

/// A merchant's public profile. Its secrets (sign key, app key hash) are kept apart, in the
/// store, and never travel with this type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merchant {
    pub id: MerchantId,
    pub name: MerchantName,
    pub shop_id: ShopId,
    pub operator_id: OperatorId,
    pub app_id: String,
    /// Non-empty; the first is the default currency.
    pub currencies: Vec<Currency>,
    pub methods: Vec<PaymentMethod>,
    pub channel_ids: ChannelIds,
    pub created_at: Timestamp,
}

/// How the wallets know this merchant, where the deployment's own account is not enough.
/// Unset values fall back to the deployment's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelIds {
    /// WeChat Pay's `sub_mch_id`: the merchant under the acquirer's institutional account.
    pub wechat_sub_mch_id: Option<String>,
    /// Merchant category code (4 digits), Alipay's `secondary_merchant_industry`.
    pub mcc: Option<String>,
}

impl ChannelIds {
    /// Checks the values a wallet would otherwise refuse: sub-merchant ids are up to 32
    /// digits, an MCC exactly 4.
    pub fn validate(&self) -> Result<(), String> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if let Some(id) = &self.wechat_sub_mch_id
            && !(digits(id) && id.len() <= 32)
        {
            return Err("wechat_sub_mch_id must be up to 32 digits".into());
        }
        if let Some(mcc) = &self.mcc
            && !(digits(mcc) && mcc.len() == 4)
        {
            return Err("mcc must be 4 digits".into());
        }
        Ok(())
    }
}

impl Merchant {
    /// A merchant as onboarded: its first shop, its REST app id the same as its merchant
    /// id, every method offered, no wallet-specific ids yet.
    pub fn new(
        id: MerchantId,
        name: MerchantName,
        operator_id: OperatorId,
        currencies: Vec<Currency>,
        created_at: Timestamp,
    ) -> Self {
        Merchant {
            shop_id: ShopId::first_of(&id),
            app_id: id.to_string(),
            id,
            name,
            operator_id,
            currencies,
            methods: PaymentMethod::ALL.to_vec(),
            channel_ids: ChannelIds::default(),
            created_at,
        }
    }

    pub fn accepts(&self, currency: Currency) -> bool {
        self.currencies.contains(&currency)
    }

    /// The currencies the merchant takes, as a refusal lists them: `CAD, USD`.
    pub fn currency_list(&self) -> String {
        self.currencies
            .iter()
            .map(|c| c.code())
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn offers(&self, method: PaymentMethod) -> bool {
        self.methods.contains(&method)
    }

    pub fn default_currency(&self) -> Currency {
        self.currencies.first().copied().unwrap_or(Currency::Cad)
    }
}

/// A display name: 1–128 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("merchant name must be 1 to 128 characters without control characters")]
pub struct InvalidName;

impl MerchantName {
    pub fn parse(s: &str) -> Result<Self, InvalidName> {
        let s = s.trim();
        let len = s.chars().count();
        if len == 0 || len > 128 || s.chars().any(char::is_control) {
            return Err(InvalidName);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
