//! What only the merchant center reads and writes: the payment list and its totals, the
//! audit log, sessions, a merchant's users and record.

use ottgate_core::MerchantId;
use ottgate_store::{
    AuditEntry, DayRange, DayTotal, MerchantRecord, NewSession, PaymentFilter, PaymentSummary,
    UserRecord,
};

use super::{Service, ServiceError};

impl Service {
    /// A merchant's payments, newest first.
    pub async fn payments(
        &self,
        filter: &PaymentFilter,
    ) -> Result<Vec<PaymentSummary>, ServiceError> {
        Ok(self.store.payments(filter).await?)
    }

    /// A merchant's orders of the `days` days from `from`, totalled by day, method, status
    /// and currency.
    pub async fn day_totals(&self, range: DayRange) -> Result<Vec<DayTotal>, ServiceError> {
        Ok(self.store.day_totals(range).await?)
    }

    pub async fn record_audit(&self, entry: AuditEntry) -> Result<(), ServiceError> {
        Ok(self.store.record_audit(entry).await?)
    }

    /// A merchant's latest `limit` audit entries, newest first.
    pub async fn audit_log(
        &self,
        merchant: &MerchantId,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, ServiceError> {
        Ok(self.store.audit_log(merchant, limit).await?)
    }

    pub async fn start_session(&self, session: NewSession) -> Result<(), ServiceError> {
        Ok(self.store.insert_session(session).await?)
    }

    /// The user of the session whose token hashes to `id_hash`, if it has not expired.
    pub async fn session_user(&self, id_hash: &str) -> Result<Option<UserRecord>, ServiceError> {
        Ok(self.store.session_user(id_hash, self.clock.now()).await?)
    }

    pub async fn end_session(&self, id_hash: &str) -> Result<(), ServiceError> {
        Ok(self.store.end_session(id_hash).await?)
    }

    /// The merchant's merchant-center users, by email.
    pub async fn users_of(&self, merchant: &MerchantId) -> Result<Vec<UserRecord>, ServiceError> {
        Ok(self.store.users_of(merchant).await?)
    }

    /// The merchant's record, its keys still sealed.
    pub async fn merchant_record(
        &self,
        merchant: &MerchantId,
    ) -> Result<Option<MerchantRecord>, ServiceError> {
        Ok(self.store.merchant(merchant).await?)
    }

    /// The merchant signing in with `app_id`.
    pub async fn merchant_by_app_id(
        &self,
        app_id: &str,
    ) -> Result<Option<MerchantRecord>, ServiceError> {
        Ok(self.store.merchant_by_app_id(app_id).await?)
    }
}
