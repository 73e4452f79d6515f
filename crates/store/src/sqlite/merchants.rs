//! The `merchants` table: who may use the gateway, with their sealed secrets.

use ottgate_core::{ChannelIds, MerchantId, PaymentMethod, Timestamp};
use sqlx::{SqliteConnection, SqlitePool};

use crate::rows::{self, MerchantRow};
use crate::{MerchantRecord, Result, StoreError};

pub(super) async fn by_id(pool: &SqlitePool, id: &MerchantId) -> Result<Option<MerchantRecord>> {
    let row: Option<MerchantRow> = sqlx::query_as("SELECT * FROM merchants WHERE id = ?")
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?;
    row.map(MerchantRow::into_record).transpose()
}

pub(super) async fn by_app_id(pool: &SqlitePool, app_id: &str) -> Result<Option<MerchantRecord>> {
    let row: Option<MerchantRow> = sqlx::query_as("SELECT * FROM merchants WHERE app_id = ?")
        .bind(app_id)
        .fetch_optional(pool)
        .await?;
    row.map(MerchantRow::into_record).transpose()
}

pub(super) async fn insert(c: &mut SqliteConnection, record: MerchantRecord) -> Result<()> {
    let m = &record.merchant;
    let exists: Option<String> =
        sqlx::query_scalar("SELECT id FROM merchants WHERE id = ? OR app_id = ?")
            .bind(m.id.as_str())
            .bind(&m.app_id)
            .fetch_optional(&mut *c)
            .await?;
    if exists.is_some() {
        return Err(StoreError::Duplicate("merchant"));
    }
    sqlx::query(
        "INSERT INTO merchants (id, name, shop_id, operator_id, app_id, app_key_hash, sign_key_sealed,
         currencies, methods, created_at, wechat_sub_mch_id, mcc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(m.id.as_str())
    .bind(m.name.as_str())
    .bind(m.shop_id.as_str())
    .bind(m.operator_id.as_str())
    .bind(&m.app_id)
    .bind(&record.app_key_hash)
    .bind(&record.sign_key_sealed)
    .bind(rows::join_codes(m.currencies.iter().map(|c| c.code())))
    .bind(rows::join_codes(m.methods.iter().map(|c| c.code())))
    .bind(m.created_at.epoch_millis())
    .bind(&m.channel_ids.wechat_sub_mch_id)
    .bind(&m.channel_ids.mcc)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub(super) async fn rotate_sign_key(
    c: &mut SqliteConnection,
    id: MerchantId,
    sealed: Vec<u8>,
    previous_until: Timestamp,
) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE merchants SET previous_sign_key_sealed = sign_key_sealed,
         previous_sign_key_until = ?, sign_key_sealed = ? WHERE id = ?",
    )
    .bind(previous_until.epoch_millis())
    .bind(&sealed)
    .bind(id.as_str())
    .execute(&mut *c)
    .await?;
    Ok(updated.rows_affected() == 1)
}

pub(super) async fn rotate_webhook_secret(
    c: &mut SqliteConnection,
    id: MerchantId,
    previous_until: Timestamp,
) -> Result<Option<u32>> {
    let version: Option<i64> = sqlx::query_scalar(
        "UPDATE merchants SET webhook_secret_version = webhook_secret_version + 1,
         previous_webhook_until = ? WHERE id = ? RETURNING webhook_secret_version",
    )
    .bind(previous_until.epoch_millis())
    .bind(id.as_str())
    .fetch_optional(&mut *c)
    .await?;
    version
        .map(|v| u32::try_from(v).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

pub(super) async fn update_channels(
    c: &mut SqliteConnection,
    id: MerchantId,
    methods: Vec<PaymentMethod>,
    ids: ChannelIds,
) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE merchants SET methods = ?, wechat_sub_mch_id = ?, mcc = ? WHERE id = ?",
    )
    .bind(rows::join_codes(methods.iter().map(|m| m.code())))
    .bind(&ids.wechat_sub_mch_id)
    .bind(&ids.mcc)
    .bind(id.as_str())
    .execute(&mut *c)
    .await?;
    Ok(updated.rows_affected() == 1)
}
