//! The `merchants` table.

use super::{PgStore, db};
use crate::merchants::q;
use crate::rows::{self, MerchantRow};
use crate::{LinkFlows, NewSignKey};
use crate::{MerchantRecord, Result, StoreError};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use ottgate_core::{Merchant, MerchantId, Timestamp};

async fn one_by(c: &impl GenericClient, sql: &str, value: &str) -> Result<Option<MerchantRecord>> {
    db::opt(c, sql, &[&value])
        .await?
        .map(|row| MerchantRow::from_pg(&row)?.into_record())
        .transpose()
}

pub(super) async fn by_id(
    c: &impl GenericClient,
    id: &MerchantId,
) -> Result<Option<MerchantRecord>> {
    one_by(c, q::BY_ID.pg, id.as_str()).await
}

pub(super) async fn by_app_id(
    c: &impl GenericClient,
    app_id: &str,
) -> Result<Option<MerchantRecord>> {
    one_by(c, q::BY_APP_ID.pg, app_id).await
}

pub(super) async fn insert(tx: &Transaction<'_>, record: &MerchantRecord) -> Result<()> {
    let m = &record.merchant;
    let inserted = db::exec(
        tx,
        q::INSERT.pg,
        &[
            &m.id.as_str(),
            &m.name.as_str(),
            &m.shop_id.as_str(),
            &m.operator_id.as_str(),
            &m.app_id,
            &record.app_key_hash,
            &record.sign_key_sealed,
            &rows::join_codes(m.currencies.iter().map(|c| c.code())),
            &rows::join_codes(m.methods.iter().map(|c| c.code())),
            &m.created_at.epoch_millis(),
            &m.channel_ids.wechat_sub_mch_id,
            &m.channel_ids.mcc,
            &record.link.mer_code,
        ],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::Duplicate("merchant"));
    }
    Ok(())
}

pub(super) async fn set_link_flows(
    tx: &Transaction<'_>,
    id: &MerchantId,
    link: &LinkFlows,
) -> Result<bool> {
    let updated = db::exec(
        tx,
        q::SET_LINK_FLOWS.pg,
        &[&link.enabled, &link.callback_url, &id.as_str()],
    )
    .await?;
    Ok(updated == 1)
}

pub(super) async fn rotate_sign_key(tx: &Transaction<'_>, new: &NewSignKey) -> Result<bool> {
    let updated = db::exec(
        tx,
        q::ROTATE_SIGN_KEY.pg,
        &[
            &new.previous_until.epoch_millis(),
            &new.sealed,
            &new.merchant.as_str(),
        ],
    )
    .await?;
    Ok(updated == 1)
}

pub(super) async fn set_time_zone(
    tx: &Transaction<'_>,
    id: &MerchantId,
    zone: Option<&str>,
) -> Result<bool> {
    let updated = db::exec(tx, q::SET_TIME_ZONE.pg, &[&zone, &id.as_str()]).await?;
    Ok(updated == 1)
}

pub(super) async fn rotate_app_key(
    tx: &Transaction<'_>,
    id: &MerchantId,
    hash: &str,
    previous_until: Timestamp,
) -> Result<bool> {
    let updated = db::exec(
        tx,
        q::ROTATE_APP_KEY.pg,
        &[&previous_until.epoch_millis(), &hash, &id.as_str()],
    )
    .await?;
    Ok(updated == 1)
}

pub(super) async fn rotate_webhook_secret(
    tx: &Transaction<'_>,
    id: &MerchantId,
    previous_until: Timestamp,
) -> Result<Option<u32>> {
    let row = db::opt(
        tx,
        q::ROTATE_WEBHOOK_SECRET.pg,
        &[&previous_until.epoch_millis(), &id.as_str()],
    )
    .await?;
    row.map(|row| {
        let v: i64 = row.try_get(0)?;
        u32::try_from(v).map_err(|e| StoreError::Corrupt(e.to_string()))
    })
    .transpose()
}

pub(super) async fn update_channels(tx: &Transaction<'_>, m: &Merchant) -> Result<bool> {
    let ids = &m.channel_ids;
    let updated = db::exec(
        tx,
        q::UPDATE_CHANNELS.pg,
        &[
            &rows::join_codes(m.methods.iter().map(|m| m.code())),
            &ids.wechat_sub_mch_id,
            &ids.mcc,
            &m.id.as_str(),
        ],
    )
    .await?;
    Ok(updated == 1)
}

#[async_trait]
impl crate::Merchants for PgStore {
    async fn insert_merchant(&self, record: MerchantRecord) -> Result<()> {
        in_tx!(self, |tx| insert(&tx, &record))
    }

    async fn merchant(&self, id: &MerchantId) -> Result<Option<MerchantRecord>> {
        by_id(&self.client().await?, id).await
    }

    async fn merchant_by_app_id(&self, app_id: &str) -> Result<Option<MerchantRecord>> {
        by_app_id(&self.client().await?, app_id).await
    }

    async fn merchant_by_mer_code(&self, mer_code: &str) -> Result<Option<MerchantRecord>> {
        one_by(&self.client().await?, q::BY_MER_CODE.pg, mer_code).await
    }

    async fn set_link_flows(&self, id: &MerchantId, link: &LinkFlows) -> Result<bool> {
        in_tx!(self, |tx| set_link_flows(&tx, id, link))
    }

    async fn rotate_sign_key(&self, new: NewSignKey) -> Result<bool> {
        in_tx!(self, |tx| rotate_sign_key(&tx, &new))
    }

    async fn set_time_zone(&self, id: &MerchantId, zone: Option<&str>) -> Result<bool> {
        in_tx!(self, |tx| set_time_zone(&tx, id, zone))
    }

    async fn rotate_app_key(
        &self,
        id: &MerchantId,
        hash: &str,
        previous_until: Timestamp,
    ) -> Result<bool> {
        in_tx!(self, |tx| rotate_app_key(&tx, id, hash, previous_until))
    }

    async fn rotate_webhook_secret(
        &self,
        id: &MerchantId,
        previous_until: Timestamp,
    ) -> Result<Option<u32>> {
        in_tx!(self, |tx| rotate_webhook_secret(&tx, id, previous_until))
    }

    async fn update_merchant_channels(&self, merchant: &Merchant) -> Result<bool> {
        in_tx!(self, |tx| update_channels(&tx, merchant))
    }
}
