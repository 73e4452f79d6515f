//! The `merchant_fees` table, and a merchant's day read from `attempts` and `refunds`.

use super::{PgStore, db};
use crate::Result;
use crate::rows::{FeeRow, ItemRow};
use crate::settlements::{MethodFee, q};
use async_trait::async_trait;
use ottgate_core::settlement::Item;
use ottgate_core::{MerchantId, Timestamp};

#[async_trait]
impl crate::Settlements for PgStore {
    async fn set_fee(&self, merchant: &MerchantId, fee: MethodFee) -> Result<()> {
        db::exec(
            &self.client().await?,
            q::SET_FEE.pg,
            &[
                &merchant.as_str(),
                &fee.method.code(),
                &i64::from(fee.rate.ppm),
                &i64::try_from(fee.rate.fixed_minor).unwrap_or(i64::MAX),
            ],
        )
        .await?;
        Ok(())
    }

    async fn fees(&self, merchant: &MerchantId) -> Result<Vec<MethodFee>> {
        let rows = db::all(&self.client().await?, q::FEES.pg, &[&merchant.as_str()]).await?;
        db::each(rows, |row| FeeRow::from_pg(row)?.into_fee())
    }

    async fn settlement_items(
        &self,
        merchant: &MerchantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Item>> {
        let rows = db::all(
            &self.client().await?,
            q::ITEMS.pg,
            &[&merchant.as_str(), &from.epoch_millis(), &to.epoch_millis()],
        )
        .await?;
        db::each(rows, |row| ItemRow::from_pg(row)?.into_item())
    }
}
