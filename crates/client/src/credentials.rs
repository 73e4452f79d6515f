//! A merchant's credentials as a file: what `ottgate merchant add --json` prints, and what a
//! merchant's code loads to build its clients.

use ottgate_envelope::SignKey;
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::{Client, ClientError, RestClient};

/// Everything a merchant is given when it is onboarded. The secrets (`sign_key`,
/// `app_key`, `webhook_secret`) never show in `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantCredentials {
    /// The merchant's id (`merchant_id`), e.g. `ON00004652`.
    pub merchant_id: String,
    /// The name buyers see.
    #[serde(default)]
    pub name: String,
    /// The shop the envelope calls name (`shop_id`).
    pub shop_id: String,
    /// The operator (cashier) the envelope calls name (`operator_id`).
    pub operator_id: String,
    /// Signs envelope requests and opens callbacks.
    pub sign_key: String,
    /// The REST API's appId (empty in files written before the REST API).
    #[serde(default)]
    pub app_id: String,
    /// The REST API's appKey: obtains bearer tokens.
    #[serde(default)]
    pub app_key: String,
    /// Checks the `OTTGate-Signature` header of every callback.
    #[serde(default)]
    pub webhook_secret: String,
    /// The currencies the merchant takes, its default first.
    #[serde(default)]
    pub currencies: Vec<String>,
    /// Names the merchant in OTT Pay's link flows (`merCode`; empty in older files).
    #[serde(default)]
    pub mer_code: String,
}

impl MerchantCredentials {
    /// This merchant's envelope-API client for the gateway at `base_url`.
    pub fn envelope_client(&self, base_url: &str) -> Result<Client, ClientError> {
        let key = SignKey::new(&self.sign_key)
            .map_err(|e| ClientError::Config(format!("sign_key: {e}")))?;
        Client::new(base_url, &self.merchant_id, key)
    }

    /// This merchant's REST client for the gateway at `base_url`.
    pub fn rest_client(&self, base_url: &str) -> Result<RestClient, ClientError> {
        if self.app_id.is_empty() || self.app_key.is_empty() {
            return Err(ClientError::Config(
                "the REST API needs app_id and app_key in the credentials".into(),
            ));
        }
        RestClient::new(base_url, &self.app_id, &self.app_key)
    }
}

impl fmt::Debug for MerchantCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerchantCredentials")
            .field("merchant_id", &self.merchant_id)
            .field("name", &self.name)
            .field("shop_id", &self.shop_id)
            .field("operator_id", &self.operator_id)
            .field("app_id", &self.app_id)
            .field("currencies", &self.currencies)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_and_a_file_without_rest_keys_still_loads() {
        let c: MerchantCredentials = serde_json::from_str(
            r#"{"merchant_id":"ON00000185","shop_id":"ON00000185001","operator_id":"0000000696",
                "sign_key":"0123456789ABCDEF"}"#,
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("0123456789ABCDEF"));
        assert!(c.envelope_client("http://127.0.0.1:1").is_ok());
        assert!(matches!(
            c.rest_client("http://127.0.0.1:1"),
            Err(ClientError::Config(_))
        ));
    }
}
