//! Database rows and their conversion to domain types. A row that does not convert is
//! reported as corrupt data, never papered over.

use ottgate_core::merchant::MerchantName;
use ottgate_core::{
    Amount, Attempt, AttemptId, AttemptStatus, ChannelIds, CheckoutToken, Currency, Merchant,
    MerchantId, MerchantRef, Money, NotifyId, OperatorId, Order, OrderId, OrderKind, OrderStatus,
    PaymentMethod, Refund, RefundId, RefundStatus, ShopId, Timestamp,
};

use crate::AuditEntry;
use crate::center::{DayTotal, PaymentSummary};
use crate::{
    Delivery, DeliveryAttemptRow, DeliveryState, Idempotency, IdempotencyClaim, KeyRotation,
    LinkFlows, MerchantRecord, Result, StoreError, UserRecord, UserRole,
};

/// A row type both backends read by column name: a `rusqlite::Row` or a
/// `tokio_postgres::Row` (the columns are named and typed alike in both schemas).
macro_rules! row {
    (pub(crate) struct $name:ident { $($field:ident: $ty:ty,)* }) => {
        pub(crate) struct $name {
            $($field: $ty,)*
        }

        impl $name {
            pub(crate) fn from_pg(row: &tokio_postgres::Row) -> Result<Self> {
                Ok(Self {
                    $($field: row.try_get(stringify!($field))?,)*
                })
            }

            pub(crate) fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                let columns = $crate::rows::Columns::of(row);
                Ok(Self {
                    $($field: row.get(columns.index(stringify!($field))?)?,)*
                })
            }
        }
    };
}

/// A SQLite row's column names, read once per row. `rusqlite::Row::get` by name compares
/// the name with every column, case-insensitively, for each field: for a 25-column order
/// some 300 comparisons. Here the fields are looked up from where the last one was found,
/// so fields declared in the table's order (as they are) cost one exact comparison each.
pub(crate) struct Columns<'s> {
    names: Vec<&'s str>,
    next: std::cell::Cell<usize>,
}

impl<'s> Columns<'s> {
    pub(crate) fn of(row: &'s rusqlite::Row<'_>) -> Self {
        Self {
            names: row.as_ref().column_names(),
            next: std::cell::Cell::new(0),
        }
    }

    pub(crate) fn index(&self, name: &str) -> rusqlite::Result<usize> {
        let count = self.names.len();
        let start = self.next.get();
        (0..count)
            .map(|i| (start + i) % count)
            .find(|&i| self.names[i] == name)
            .inspect(|&i| self.next.set(i + 1))
            .ok_or_else(|| rusqlite::Error::InvalidColumnName(name.to_owned()))
    }
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub(crate) fn join_codes<'a>(codes: impl Iterator<Item = &'a str>) -> String {
    codes.collect::<Vec<_>>().join(",")
}

fn split_codes<T: std::str::FromStr>(s: &str) -> Result<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<T>().map_err(corrupt))
        .collect()
}

pub(crate) fn amount_to_db(a: Amount) -> i64 {
    // Amount::MAX is far below i64::MAX.
    i64::try_from(a.minor()).unwrap_or(i64::MAX)
}

/// A wallet's yuan amount (fen) as stored; one beyond `i64` (no wallet sends one) is
/// stored as the largest.
pub(crate) fn cny_to_db(fen: u64) -> i64 {
    i64::try_from(fen).unwrap_or(i64::MAX)
}

fn money(amount: i64, currency: &str) -> Result<Money> {
    let amount = u64::try_from(amount)
        .map_err(corrupt)
        .and_then(|n| Amount::from_minor(n).map_err(corrupt))?;
    Ok(Money::new(amount, currency.parse().map_err(corrupt)?))
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_epoch_millis(ms)
}

fn id<T>(
    parse: impl FnOnce(&str) -> Result<T, ottgate_core::ids::InvalidId>,
    s: &str,
) -> Result<T> {
    parse(s).map_err(corrupt)
}

row! {
    pub(crate) struct MerchantRow {
        id: String,
        name: String,
        shop_id: String,
        operator_id: String,
        app_id: String,
        app_key_hash: String,
        sign_key_sealed: Vec<u8>,
        currencies: String,
        methods: String,
        created_at: i64,
        wechat_sub_mch_id: Option<String>,
        mcc: Option<String>,
        previous_sign_key_sealed: Option<Vec<u8>>,
        previous_sign_key_until: Option<i64>,
        webhook_secret_version: i64,
        previous_webhook_until: Option<i64>,
        mer_code: Option<String>,
        link_flows: bool,
        link_callback_url: Option<String>,
        previous_app_key_hash: Option<String>,
        previous_app_key_until: Option<i64>,
        time_zone: Option<String>,
    }
}

impl MerchantRow {
    pub(crate) fn into_record(self) -> Result<MerchantRecord> {
        let currencies: Vec<Currency> = split_codes(&self.currencies)?;
        if currencies.is_empty() {
            return Err(corrupt("merchant has no currency"));
        }
        Ok(MerchantRecord {
            merchant: Merchant {
                id: id(MerchantId::parse, &self.id)?,
                name: MerchantName::parse(&self.name).map_err(corrupt)?,
                shop_id: id(ShopId::parse, &self.shop_id)?,
                operator_id: id(OperatorId::parse, &self.operator_id)?,
                app_id: self.app_id,
                currencies,
                methods: split_codes::<PaymentMethod>(&self.methods)?,
                channel_ids: ChannelIds {
                    wechat_sub_mch_id: self.wechat_sub_mch_id,
                    mcc: self.mcc,
                },
                created_at: ts(self.created_at),
            },
            sign_key_sealed: self.sign_key_sealed,
            app_key_hash: self.app_key_hash,
            rotation: KeyRotation {
                previous_sign_key: self
                    .previous_sign_key_sealed
                    .zip(self.previous_sign_key_until.map(ts)),
                webhook_secret_version: u32::try_from(self.webhook_secret_version)
                    .map_err(corrupt)?,
                previous_webhook_until: self.previous_webhook_until.map(ts),
                previous_app_key: self
                    .previous_app_key_hash
                    .zip(self.previous_app_key_until.map(ts)),
            },
            time_zone: self.time_zone,
            link: LinkFlows {
                mer_code: self.mer_code.unwrap_or_default(),
                enabled: self.link_flows,
                callback_url: self.link_callback_url,
            },
        })
    }
}

row! {
    pub(crate) struct OrderRow {
        id: String,
        kind: String,
        merchant_id: String,
        reference: Option<String>,
        token: String,
        amount: i64,
        currency: String,
        sale_num: String,
        shop_id: String,
        operator_id: String,
        redirect_url: String,
        callback_url: String,
        duration_secs: i64,
        email: Option<String>,
        remarks: Option<String>,
        status: String,
        created_at: i64,
        expires_at: i64,
        paid_attempt: Option<String>,
        finished_at: Option<i64>,
        paid_after_close: bool,
        tip: i64,
        terminal: Option<String>,
    }
}

impl OrderRow {
    pub(crate) fn into_order(self) -> Result<Order> {
        Ok(Order {
            id: id(OrderId::parse, &self.id)?,
            kind: OrderKind::from_code(&self.kind)
                .ok_or_else(|| corrupt(format!("order kind {}", self.kind)))?,
            merchant_id: id(MerchantId::parse, &self.merchant_id)?,
            reference: self
                .reference
                .as_deref()
                .map(MerchantRef::parse)
                .transpose()
                .map_err(corrupt)?,
            token: id(CheckoutToken::parse, &self.token)?,
            money: money(self.amount, &self.currency)?,
            tip: u64::try_from(self.tip).map_err(corrupt)?,
            sale_num: self.sale_num,
            shop_id: id(ShopId::parse, &self.shop_id)?,
            operator_id: id(OperatorId::parse, &self.operator_id)?,
            redirect_url: self.redirect_url,
            callback_url: self.callback_url,
            duration_secs: u64::try_from(self.duration_secs).map_err(corrupt)?,
            email: self.email,
            remarks: self.remarks,
            status: OrderStatus::from_code(&self.status)
                .ok_or_else(|| corrupt(format!("order status {}", self.status)))?,
            created_at: ts(self.created_at),
            expires_at: ts(self.expires_at),
            paid_attempt: self
                .paid_attempt
                .as_deref()
                .map(AttemptId::parse)
                .transpose()
                .map_err(corrupt)?,
            finished_at: self.finished_at.map(ts),
            paid_after_close: self.paid_after_close,
            terminal: self.terminal,
        })
    }
}

row! {
    pub(crate) struct AttemptRow {
        id: String,
        order_id: String,
        method: String,
        status: String,
        amount: i64,
        currency: String,
        created_at: i64,
        settled_at: Option<i64>,
        bizpay_order_id: Option<String>,
        authorised_at: Option<i64>,
        capture_at: Option<i64>,
        buyer_cny: Option<i64>,
        fx_rate: Option<String>,
    }
}

impl AttemptRow {
    pub(crate) fn into_attempt(self) -> Result<Attempt> {
        Ok(Attempt {
            id: id(AttemptId::parse, &self.id)?,
            order_id: id(OrderId::parse, &self.order_id)?,
            method: self.method.parse().map_err(corrupt)?,
            status: AttemptStatus::from_code(&self.status)
                .ok_or_else(|| corrupt(format!("attempt status {}", self.status)))?,
            money: money(self.amount, &self.currency)?,
            created_at: ts(self.created_at),
            settled_at: self.settled_at.map(ts),
            bizpay_order_id: self.bizpay_order_id,
            authorised_at: self.authorised_at.map(ts),
            capture_at: self.capture_at.map(ts),
            buyer_paid: self
                .buyer_cny
                .and_then(|cny| u64::try_from(cny).ok())
                .map(|cny| ottgate_core::BuyerPaid {
                    cny,
                    rate: self.fx_rate,
                }),
        })
    }
}

row! {
    pub(crate) struct DeliveryRow {
        id: i64,
        notify_id: String,
        merchant_id: String,
        order_id: String,
        attempt_id: Option<String>,
        event: String,
        url: String,
        body: String,
        state: String,
        attempts: i64,
        next_attempt_at: Option<i64>,
        last_error: Option<String>,
        created_at: i64,
        delivered_at: Option<i64>,
    }
}

impl DeliveryRow {
    pub(crate) fn into_delivery(self) -> Result<Delivery> {
        Ok(Delivery {
            id: self.id,
            notify_id: id(NotifyId::parse, &self.notify_id)?,
            merchant_id: id(MerchantId::parse, &self.merchant_id)?,
            order_id: id(OrderId::parse, &self.order_id)?,
            attempt_id: self
                .attempt_id
                .as_deref()
                .map(AttemptId::parse)
                .transpose()
                .map_err(corrupt)?,
            event: self.event,
            url: self.url,
            body: self.body,
            state: DeliveryState::from_code(&self.state)
                .ok_or_else(|| corrupt(format!("delivery state {}", self.state)))?,
            attempts: u32::try_from(self.attempts).map_err(corrupt)?,
            next_attempt_at: self.next_attempt_at.map(ts),
            last_error: self.last_error,
            created_at: ts(self.created_at),
            delivered_at: self.delivered_at.map(ts),
        })
    }
}

row! {
    pub(crate) struct DeliveryAttemptRowDb {
        attempt_no: i64,
        started_at: i64,
        duration_ms: i64,
        http_status: Option<i64>,
        error: Option<String>,
        response_start: Option<String>,
    }
}

impl DeliveryAttemptRowDb {
    pub(crate) fn into_row(self) -> DeliveryAttemptRow {
        DeliveryAttemptRow {
            attempt_no: u32::try_from(self.attempt_no).unwrap_or(0),
            started_at: ts(self.started_at),
            duration_ms: u64::try_from(self.duration_ms).unwrap_or(0),
            http_status: self.http_status.and_then(|s| u16::try_from(s).ok()),
            error: self.error,
            response_start: self.response_start,
        }
    }
}

row! {
    pub(crate) struct RefundRow {
        id: String,
        merchant_id: String,
        payment_id: String,
        merchant_refund_id: Option<String>,
        amount: i64,
        currency: String,
        status: String,
        created_at: i64,
        finished_at: Option<i64>,
        channel_refund_id: Option<String>,
        requested_by: Option<String>,
        reason: Option<String>,
    }
}

/// What a refund asked for again — under a merchant refund id or a request key used
/// before — is: the same payment and amount replay `earlier`; anything else reuses its id.
pub(crate) fn asked_before(earlier: Refund, asked: &crate::NewRefund) -> crate::BeginRefund {
    let same = earlier.payment_id == asked.payment_id && earlier.money.amount == asked.amount;
    if same {
        crate::BeginRefund::Replayed(earlier)
    } else {
        crate::BeginRefund::IdReused(earlier)
    }
}

impl RefundRow {
    pub(crate) fn into_refund(self) -> Result<Refund> {
        Ok(Refund {
            id: RefundId::parse(&self.id).map_err(corrupt)?,
            merchant_id: id(MerchantId::parse, &self.merchant_id)?,
            payment_id: id(AttemptId::parse, &self.payment_id)?,
            merchant_refund_id: self.merchant_refund_id,
            money: money(self.amount, &self.currency)?,
            status: RefundStatus::from_code(&self.status)
                .ok_or_else(|| corrupt(format!("refund status {}", self.status)))?,
            created_at: ts(self.created_at),
            finished_at: self.finished_at.map(ts),
            channel_refund_id: self.channel_refund_id,
            requested_by: self
                .requested_by
                .as_deref()
                .and_then(ottgate_core::RefundedBy::from_code),
            reason: self.reason,
        })
    }
}

row! {
    pub(crate) struct IdempotencyRow {
        request_hash: String,
        state: String,
        response_status: Option<i64>,
        response_body: Option<String>,
        created_at: i64,
        locked_until: i64,
    }
}

impl IdempotencyRow {
    /// The outcome of claiming this row's key as of `claim.now`; `None` when the key is
    /// free (expired, or started by a request that never finished: taken over).
    pub(crate) fn outcome(self, claim: &IdempotencyClaim) -> Option<Idempotency> {
        let now = claim.now.epoch_millis();
        let retention = i64::try_from(claim.retention.as_millis()).unwrap_or(i64::MAX);
        if self.created_at.saturating_add(retention) <= now {
            return None;
        }
        if self.request_hash != claim.request_hash {
            return Some(Idempotency::Mismatch);
        }
        match (
            self.state.as_str(),
            self.response_status,
            self.response_body,
        ) {
            ("done", Some(status), Some(body)) => Some(Idempotency::Replay {
                status: u16::try_from(status).unwrap_or(500),
                body,
            }),
            _ if self.locked_until > now => Some(Idempotency::InProgress),
            _ => None,
        }
    }
}

row! {
    pub(crate) struct UserRow {
        id: i64,
        merchant_id: String,
        email: String,
        password_hash: String,
        role: String,
        created_at: i64,
    }
}

impl UserRow {
    pub(crate) fn into_user(self) -> Result<UserRecord> {
        Ok(UserRecord {
            id: self.id,
            merchant_id: id(MerchantId::parse, &self.merchant_id)?,
            email: self.email,
            password_hash: self.password_hash,
            role: UserRole::from_code(&self.role)
                .ok_or_else(|| corrupt(format!("user role {}", self.role)))?,
            created_at: ts(self.created_at),
        })
    }
}

row! {
    pub(crate) struct SummaryRow {
        id: String,
        kind: String,
        reference: Option<String>,
        created_at: i64,
        finished_at: Option<i64>,
        amount: i64,
        currency: String,
        status: String,
        payment_id: Option<String>,
        method: Option<String>,
        wallet_reference: Option<String>,
        refunded: i64,
        terminal: Option<String>,
    }
}

impl SummaryRow {
    pub(crate) fn into_summary(self) -> Result<PaymentSummary> {
        let status = OrderStatus::from_code(&self.status)
            .ok_or_else(|| corrupt(format!("order status {}", self.status)))?;
        Ok(PaymentSummary {
            order_id: id(OrderId::parse, &self.id)?,
            kind: OrderKind::from_code(&self.kind)
                .ok_or_else(|| corrupt(format!("order kind {}", self.kind)))?,
            reference: self.reference,
            created_at: ts(self.created_at),
            // An order's finish time is when it was paid, if it was.
            paid_at: self
                .finished_at
                .filter(|_| status == OrderStatus::Success)
                .map(ts),
            money: money(self.amount, &self.currency)?,
            status,
            method: crate::center::method(self.method.as_deref())?,
            payment_id: self
                .payment_id
                .map(|p| id(AttemptId::parse, &p))
                .transpose()?,
            wallet_reference: self.wallet_reference,
            refunded: u64::try_from(self.refunded).map_err(corrupt)?,
            terminal: self.terminal,
        })
    }
}

row! {
    pub(crate) struct DayTotalRow {
        day: i64,
        method: Option<String>,
        status: String,
        currency: String,
        count: i64,
        amount: i64,
        refunded: i64,
    }
}

impl DayTotalRow {
    pub(crate) fn into_total(self) -> Result<DayTotal> {
        Ok(DayTotal {
            day: u32::try_from(self.day).map_err(corrupt)?,
            method: crate::center::method(self.method.as_deref())?,
            status: OrderStatus::from_code(&self.status)
                .ok_or_else(|| corrupt(format!("order status {}", self.status)))?,
            currency: self.currency.parse().map_err(corrupt)?,
            count: u64::try_from(self.count).map_err(corrupt)?,
            amount: u64::try_from(self.amount).map_err(corrupt)?,
            refunded: u64::try_from(self.refunded).map_err(corrupt)?,
        })
    }
}

row! {
    pub(crate) struct AuditRow {
        merchant_id: String,
        actor: String,
        action: String,
        subject: String,
        detail: String,
        at: i64,
    }
}

impl AuditRow {
    pub(crate) fn into_entry(self) -> Result<AuditEntry> {
        Ok(AuditEntry {
            merchant_id: id(MerchantId::parse, &self.merchant_id)?,
            actor: self.actor,
            action: self.action,
            subject: self.subject,
            detail: self.detail,
            at: ts(self.at),
        })
    }
}

row! {
    pub(crate) struct BarcodeJobRow {
        attempt_id: String,
        merchant_id: String,
        phase: String,
        outcome: Option<String>,
        next_at: i64,
        query_until: i64,
        undo_after: i64,
        tries: i64,
        last_error: Option<String>,
        created_at: i64,
        finished_at: Option<i64>,
    }
}

impl BarcodeJobRow {
    pub(crate) fn into_job(self) -> Result<crate::barcode_jobs::BarcodeJob> {
        Ok(crate::barcode_jobs::BarcodeJob {
            attempt_id: id(AttemptId::parse, &self.attempt_id)?,
            merchant_id: id(MerchantId::parse, &self.merchant_id)?,
            phase: crate::barcode_jobs::BarcodePhase::from_code(&self.phase)
                .ok_or_else(|| corrupt(format!("barcode phase {}", self.phase)))?,
            outcome: self.outcome,
            next_at: ts(self.next_at),
            query_until: ts(self.query_until),
            undo_after: ts(self.undo_after),
            tries: u32::try_from(self.tries).unwrap_or(0),
            last_error: self.last_error,
            created_at: ts(self.created_at),
            finished_at: self.finished_at.map(ts),
        })
    }
}

row! {
    pub(crate) struct ReconRecordRow {
        id: String,
        wallets: Option<String>,
        amount: i64,
        currency: String,
        status: String,
        done_at: Option<i64>,
        merchant_id: String,
    }
}

impl ReconRecordRow {
    /// The record, done on `day` when one is given and it was done within it.
    pub(crate) fn into_record(
        self,
        side: ottgate_core::recon::Side,
        day: Option<ottgate_core::recon::WalletDay>,
    ) -> Result<crate::recon::ReconRecord> {
        let done = crate::recon::is_done(side, &self.status);
        let on_day = done
            && day.is_some_and(|d| {
                self.done_at
                    .is_some_and(|at| at >= d.start().epoch_millis() && at < d.end().epoch_millis())
            });
        Ok(crate::recon::ReconRecord {
            merchant_id: id(MerchantId::parse, &self.merchant_id)?,
            record: ottgate_core::recon::Record {
                side,
                ours: self.id,
                wallets: self.wallets.filter(|w| !w.is_empty()),
                money: money(self.amount, &self.currency)?,
                done,
                on_day,
            },
        })
    }
}

row! {
    pub(crate) struct ReconRunRow {
        wallet: String,
        day: String,
        lines: i64,
        matched: i64,
        found: i64,
        repaired: i64,
        finished_at: i64,
    }
}

fn wallet_day(s: &str) -> Result<ottgate_core::recon::WalletDay> {
    ottgate_core::recon::WalletDay::parse(s).ok_or_else(|| corrupt(format!("day {s:?}")))
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

impl ReconRunRow {
    pub(crate) fn into_run(self) -> Result<crate::recon::ReconRun> {
        Ok(crate::recon::ReconRun {
            day: wallet_day(&self.day)?,
            wallet: self.wallet,
            lines: count(self.lines),
            matched: count(self.matched),
            found: count(self.found),
            repaired: count(self.repaired),
            finished_at: ts(self.finished_at),
        })
    }
}

row! {
    pub(crate) struct DiscrepancyRow {
        id: i64,
        wallet: String,
        day: String,
        kind: String,
        side: String,
        ours: String,
        wallets: Option<String>,
        merchant_id: Option<String>,
        stated_amount: Option<i64>,
        stated_currency: Option<String>,
        recorded_amount: Option<i64>,
        recorded_currency: Option<String>,
        state: String,
        note: String,
        resolved_by: Option<String>,
        found_at: i64,
        resolved_at: Option<i64>,
    }
}

impl DiscrepancyRow {
    pub(crate) fn into_discrepancy(self) -> Result<crate::recon::Discrepancy> {
        let both = |a: Option<i64>, c: Option<String>| match (a, c) {
            (Some(a), Some(c)) => money(a, &c).map(Some),
            _ => Ok(None),
        };
        Ok(crate::recon::Discrepancy {
            id: self.id,
            day: wallet_day(&self.day)?,
            wallet: self.wallet,
            found: crate::recon::NewDiscrepancy {
                kind: self.kind,
                side: ottgate_core::recon::Side::from_code(&self.side)
                    .ok_or_else(|| corrupt(format!("side {:?}", self.side)))?,
                ours: self.ours,
                wallets: self.wallets,
                merchant_id: self
                    .merchant_id
                    .as_deref()
                    .map(|m| id(MerchantId::parse, m))
                    .transpose()?,
                stated: both(self.stated_amount, self.stated_currency)?,
                recorded: both(self.recorded_amount, self.recorded_currency)?,
                state: crate::recon::DiscrepancyState::from_code(&self.state)
                    .ok_or_else(|| corrupt(format!("discrepancy state {:?}", self.state)))?,
                note: self.note,
            },
            resolved_by: self.resolved_by,
            found_at: ts(self.found_at),
            resolved_at: self.resolved_at.map(ts),
        })
    }
}

row! {
    pub(crate) struct FeeRow {
        method: String,
        ppm: i64,
        fixed_minor: i64,
    }
}

impl FeeRow {
    pub(crate) fn into_fee(self) -> Result<crate::settlements::MethodFee> {
        Ok(crate::settlements::MethodFee {
            method: self.method.parse().map_err(corrupt)?,
            rate: ottgate_core::settlement::FeeRate {
                ppm: u32::try_from(self.ppm).map_err(corrupt)?,
                fixed_minor: u64::try_from(self.fixed_minor).map_err(corrupt)?,
            },
        })
    }
}

row! {
    pub(crate) struct ItemRow {
        side: String,
        id: String,
        method: String,
        currency: String,
        amount: i64,
        buyer_cny: Option<i64>,
        fx_rate: Option<String>,
    }
}

impl ItemRow {
    pub(crate) fn into_item(self) -> Result<ottgate_core::settlement::Item> {
        Ok(ottgate_core::settlement::Item {
            side: ottgate_core::recon::Side::from_code(&self.side)
                .ok_or_else(|| corrupt(format!("side {:?}", self.side)))?,
            id: self.id,
            method: self.method.parse().map_err(corrupt)?,
            currency: self.currency.parse().map_err(corrupt)?,
            amount: u64::try_from(self.amount).map_err(corrupt)?,
            buyer_cny: self.buyer_cny.and_then(|n| u64::try_from(n).ok()),
            fx_rate: self.fx_rate,
        })
    }
}
