//! The `merchant_fees` table, and a merchant's day read from `attempts` and `refunds`.

use super::{SqliteStore, db};
use crate::Result;
use crate::rows::{FeeRow, ItemRow};
use crate::settlements::{MethodFee, q};
use async_trait::async_trait;
use ottgate_core::settlement::Item;
use ottgate_core::{MerchantId, Timestamp};
use rusqlite::params;

#[async_trait]
impl crate::Settlements for SqliteStore {
    async fn set_fee(&self, merchant: &MerchantId, fee: MethodFee) -> Result<()> {
        let merchant = merchant.clone();
        self.engine
            .write(move |c| {
                db::exec(
                    c,
                    q::SET_FEE.sqlite,
                    params![
                        merchant.as_str(),
                        fee.method.code(),
                        i64::from(fee.rate.ppm),
                        i64::try_from(fee.rate.fixed_minor).unwrap_or(i64::MAX),
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn fees(&self, merchant: &MerchantId) -> Result<Vec<MethodFee>> {
        let merchant = merchant.clone();
        self.engine
            .read(move |c| {
                db::all(
                    c,
                    q::FEES.sqlite,
                    params![merchant.as_str()],
                    FeeRow::from_sqlite,
                )?
                .into_iter()
                .map(FeeRow::into_fee)
                .collect()
            })
            .await
    }

    async fn settlement_items(
        &self,
        merchant: &MerchantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Item>> {
        let merchant = merchant.clone();
        self.engine
            .read(move |c| {
                db::all(
                    c,
                    q::ITEMS.sqlite,
                    params![merchant.as_str(), from.epoch_millis(), to.epoch_millis()],
                    ItemRow::from_sqlite,
                )?
                .into_iter()
                .map(ItemRow::into_item)
                .collect()
            })
            .await
    }
}
