//! What merchants are owed (docs/reconciliation.md, "Settlement"): each merchant's fee
//! rate per payment method (`merchant_fees`), and the payments and refunds done on a day,
//! read for its statement.

use crate::Result;
use async_trait::async_trait;
use ottgate_core::settlement::{FeeRate, Item};
use ottgate_core::{MerchantId, PaymentMethod, Timestamp};

/// A merchant's fee rate for one method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodFee {
    pub method: PaymentMethod,
    pub rate: FeeRate,
}

#[async_trait]
pub trait Settlements: Send + Sync {
    /// Sets a merchant's fee rate for a method (replacing the one before).
    async fn set_fee(&self, merchant: &MerchantId, fee: MethodFee) -> Result<()>;

    /// A merchant's own fee rates (methods without one take the configured default).
    async fn fees(&self, merchant: &MerchantId) -> Result<Vec<MethodFee>>;

    /// A merchant's payments paid and refunds carried out in `[from, to)`, in the order
    /// they were done.
    async fn settlement_items(
        &self,
        merchant: &MerchantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Item>>;
}

/// This table's SQL where both backends agree, written once (`sql!`: `?N` for SQLite,
/// `$N` for PostgreSQL).
pub(crate) mod q {
    use crate::sql::Sql;

    pub(crate) const SET_FEE: Sql = sql!(
        "INSERT INTO merchant_fees (merchant_id, method, ppm, fixed_minor) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (merchant_id, method) DO UPDATE SET ppm = excluded.ppm,
             fixed_minor = excluded.fixed_minor"
    );
    pub(crate) const FEES: Sql = sql!(
        "SELECT method, ppm, fixed_minor FROM merchant_fees WHERE merchant_id = ?1 ORDER BY method"
    );
    /// Paid payments, then carried-out refunds, of merchant `?1` done in `[?2, ?3)`.
    pub(crate) const ITEMS: Sql = sql!(
        "SELECT 'payment' AS side, a.id AS id, a.method, a.currency, a.amount, a.buyer_cny, a.fx_rate,
                a.settled_at AS done_at
         FROM attempts a JOIN orders o ON o.id = a.order_id
         WHERE o.merchant_id = ?1 AND a.status = 'SUCCESS'
           AND a.settled_at >= ?2 AND a.settled_at < ?3
         UNION ALL
         SELECT 'refund' AS side, r.id AS id, a.method, r.currency, r.amount,
                CAST(NULL AS BIGINT) AS buyer_cny, CAST(NULL AS TEXT) AS fx_rate,
                r.finished_at AS done_at
         FROM refunds r JOIN attempts a ON a.id = r.payment_id
         WHERE r.merchant_id = ?1 AND r.status = 'success'
           AND r.finished_at >= ?2 AND r.finished_at < ?3
         ORDER BY done_at, id"
    );
}
