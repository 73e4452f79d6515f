//! The `merchants` table: who may use the gateway, with their sealed secrets.

use super::{SqliteStore, db};
use crate::merchants::q;
use crate::rows::{self, MerchantRow};
use crate::{LinkFlows, NewSignKey};
use crate::{MerchantRecord, Result, StoreError};
use async_trait::async_trait;
use ottgate_core::{Merchant, MerchantId, Timestamp};
use rusqlite::{Connection, params};

fn one_by(c: &Connection, sql: &str, value: &str) -> Result<Option<MerchantRecord>> {
    db::opt(c, sql, [value], MerchantRow::from_sqlite)?
        .map(MerchantRow::into_record)
        .transpose()
}

pub(super) fn by_id(c: &Connection, id: &MerchantId) -> Result<Option<MerchantRecord>> {
    one_by(c, q::BY_ID.sqlite, id.as_str())
}

pub(super) fn by_app_id(c: &Connection, app_id: &str) -> Result<Option<MerchantRecord>> {
    one_by(c, q::BY_APP_ID.sqlite, app_id)
}

pub(super) fn insert(c: &Connection, record: &MerchantRecord) -> Result<()> {
    let m = &record.merchant;
    let exists: Option<String> = db::opt(
        c,
        "SELECT id FROM merchants WHERE id = ?1 OR app_id = ?2",
        params![m.id.as_str(), &m.app_id],
        db::first,
    )?;
    if exists.is_some() {
        return Err(StoreError::Duplicate("merchant"));
    }
    // Nothing inserted: the merCode is taken.
    let inserted = db::exec(
        c,
        q::INSERT.sqlite,
        params![
            m.id.as_str(),
            m.name.as_str(),
            m.shop_id.as_str(),
            m.operator_id.as_str(),
            &m.app_id,
            &record.app_key_hash,
            &record.sign_key_sealed,
            rows::join_codes(m.currencies.iter().map(|c| c.code())),
            rows::join_codes(m.methods.iter().map(|c| c.code())),
            m.created_at.epoch_millis(),
            &m.channel_ids.wechat_sub_mch_id,
            &m.channel_ids.mcc,
            &record.link.mer_code,
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::Duplicate("merchant"));
    }
    Ok(())
}

pub(super) fn set_link_flows(c: &Connection, id: &MerchantId, link: &LinkFlows) -> Result<bool> {
    let updated = db::exec(
        c,
        q::SET_LINK_FLOWS.sqlite,
        params![link.enabled, &link.callback_url, id.as_str()],
    )?;
    Ok(updated == 1)
}

pub(super) fn rotate_sign_key(c: &Connection, new: &NewSignKey) -> Result<bool> {
    let updated = db::exec(
        c,
        q::ROTATE_SIGN_KEY.sqlite,
        params![
            new.previous_until.epoch_millis(),
            new.sealed,
            new.merchant.as_str()
        ],
    )?;
    Ok(updated == 1)
}

pub(super) fn rotate_app_key(
    c: &Connection,
    id: &MerchantId,
    hash: &str,
    previous_until: Timestamp,
) -> Result<bool> {
    let updated = db::exec(
        c,
        q::ROTATE_APP_KEY.sqlite,
        params![previous_until.epoch_millis(), hash, id.as_str()],
    )?;
    Ok(updated == 1)
}

pub(super) fn rotate_webhook_secret(
    c: &Connection,
    id: &MerchantId,
    previous_until: Timestamp,
) -> Result<Option<u32>> {
    let version: Option<i64> = db::opt(
        c,
        q::ROTATE_WEBHOOK_SECRET.sqlite,
        params![previous_until.epoch_millis(), id.as_str()],
        db::first,
    )?;
    version
        .map(|v| u32::try_from(v).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

pub(super) fn update_channels(c: &Connection, m: &Merchant) -> Result<bool> {
    let ids = &m.channel_ids;
    let updated = db::exec(
        c,
        q::UPDATE_CHANNELS.sqlite,
        params![
            rows::join_codes(m.methods.iter().map(|m| m.code())),
            &ids.wechat_sub_mch_id,
            &ids.mcc,
            m.id.as_str(),
        ],
    )?;
    Ok(updated == 1)
}

#[async_trait]
impl crate::Merchants for SqliteStore {
    async fn insert_merchant(&self, record: MerchantRecord) -> Result<()> {
        self.engine.write(move |c| insert(c, &record)).await
    }

    async fn merchant(&self, id: &MerchantId) -> Result<Option<MerchantRecord>> {
        let id = id.clone();
        self.engine.read(move |c| by_id(c, &id)).await
    }

    async fn merchant_by_app_id(&self, app_id: &str) -> Result<Option<MerchantRecord>> {
        let app_id = app_id.to_owned();
        self.engine.read(move |c| by_app_id(c, &app_id)).await
    }

    async fn merchant_by_mer_code(&self, mer_code: &str) -> Result<Option<MerchantRecord>> {
        let mer_code = mer_code.to_owned();
        self.engine
            .read(move |c| one_by(c, q::BY_MER_CODE.sqlite, &mer_code))
            .await
    }

    async fn set_link_flows(&self, id: &MerchantId, link: &LinkFlows) -> Result<bool> {
        let (id, link) = (id.clone(), link.clone());
        self.engine
            .write(move |c| set_link_flows(c, &id, &link))
            .await
    }

    async fn rotate_sign_key(&self, new: NewSignKey) -> Result<bool> {
        self.engine.write(move |c| rotate_sign_key(c, &new)).await
    }

    async fn set_time_zone(&self, id: &MerchantId, zone: Option<&str>) -> Result<bool> {
        let (id, zone) = (id.clone(), zone.map(str::to_owned));
        self.engine
            .write(move |c| {
                let updated = db::exec(c, q::SET_TIME_ZONE.sqlite, params![zone, id.as_str()])?;
                Ok(updated == 1)
            })
            .await
    }

    async fn rotate_app_key(
        &self,
        id: &MerchantId,
        hash: &str,
        previous_until: Timestamp,
    ) -> Result<bool> {
        let (id, hash) = (id.clone(), hash.to_owned());
        self.engine
            .write(move |c| rotate_app_key(c, &id, &hash, previous_until))
            .await
    }

    async fn rotate_webhook_secret(
        &self,
        id: &MerchantId,
        previous_until: Timestamp,
    ) -> Result<Option<u32>> {
        let id = id.clone();
        self.engine
            .write(move |c| rotate_webhook_secret(c, &id, previous_until))
            .await
    }

    async fn update_merchant_channels(&self, merchant: &Merchant) -> Result<bool> {
        let merchant = merchant.clone();
        self.engine
            .write(move |c| update_channels(c, &merchant))
            .await
    }
}
