//! UnionPay's barcode consume (`txnType=01`, `txnSubType=06`, the buyer's code in `qrNo`)
//! and its void (`31`/`00`), simulated (docs/instore.md). UnionPay accepts a consume at
//! once (`respCode=00`) and reports its result by notification and query. What the buyer
//! does is read from the code ([`BuyerCode`]): pays, confirms first (`05` processing; the
//! buyer has confirmed by the next query), is declined (`01`), or never decides (`05`
//! until voided). Faults: `lose_answer` accepts the consume and answers `03` (timeout);
//! `ask_again` makes the next void answer `03` without doing it.

use super::{
    DUPLICATE, FORMAT, NOT_FOUND, Outgoing, Transaction, UnionPayError, UnionPaySimulator,
};
use crate::simkit::{BuyerCode, digits, lock, now};
use crate::unionpay::sign::Fields;
use url::Url;

const PROCESSING: UnionPayError = UnionPayError("05", "transaction processing");
const TIMED_OUT: UnionPayError = UnionPayError("03", "transaction timed out");
const DECLINED: UnionPayError = UnionPayError("01", "transaction failed: insufficient balance");

/// UnionPay's buyer codes start `62`.
fn is_unionpay_code(code: &str) -> bool {
    (16..=24).contains(&code.len())
        && code.starts_with("62")
        && code.bytes().all(|b| b.is_ascii_digit())
}

/// The consume-result notification for a decided barcode consume.
fn notification(sim: &UnionPaySimulator, txn: &Transaction) -> Option<Outgoing> {
    let mut f = Fields::new();
    for (k, v) in [
        ("merId", sim.config().mer_id.clone()),
        ("orderId", txn.order_id.clone()),
        ("txnTime", txn.txn_time.clone()),
        ("txnType", "01".into()),
        ("txnSubType", "06".into()),
        ("bizType", txn.biz_type.clone()),
        ("accessType", "0".into()),
        ("txnAmt", txn.txn_amt.to_string()),
        ("currencyCode", txn.currency_code.clone()),
        ("queryId", txn.query_id.clone().unwrap_or_default()),
        ("respCode", txn.orig_resp_code.clone().unwrap_or_default()),
        ("respMsg", "success".into()),
    ] {
        f.insert(k.into(), v);
    }
    Some(Outgoing {
        url: Url::parse(&txn.back_url).ok()?,
        fields: f,
        about: txn.order_id.clone(),
    })
}

/// A buyer asked to confirm has done so by the gateway's next query.
pub(super) fn confirm_password(sim: &UnionPaySimulator, order_id: &str) {
    let mut transactions = lock(&sim.inner.transactions);
    let Some(txn) = transactions.get_mut(order_id) else {
        return;
    };
    if txn.confirms && txn.orig_resp_code.is_none() && !txn.voided {
        txn.confirms = false;
        txn.orig_resp_code = Some("00".into());
        txn.done_at = Some(now());
        let txn = txn.clone();
        drop(transactions);
        if let Some(n) = notification(sim, &txn) {
            sim.send(n);
        }
    }
}

impl UnionPaySimulator {
    /// The consume with the buyer's code. The same `orderId` with the same code and amount
    /// again is that consume; another is a duplicate.
    pub(super) fn consume(&self, f: &Fields) -> Result<Fields, UnionPayError> {
        let mut txn = self.asked_purchase(f)?;
        let qr_no = f
            .get("qrNo")
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or(FORMAT)?;
        if !is_unionpay_code(&qr_no) {
            return Err(UnionPayError("14", "invalid buyer code"));
        }
        let mut transactions = lock(&self.inner.transactions);
        let existing = transactions.get(&txn.order_id).cloned();
        let txn = match existing {
            Some(t) if t.qr_no.as_deref() == Some(qr_no.as_str()) && t.txn_amt == txn.txn_amt => t,
            Some(_) => return Err(DUPLICATE),
            None => {
                if !self.inner.used_codes.take(&qr_no, &txn.order_id) {
                    return Err(UnionPayError("14", "the buyer's code was already used"));
                }
                txn.qr_no = Some(qr_no.clone());
                txn.query_id = Some(format!("{}{}", now().beijing_compact(), digits(7)));
                match BuyerCode::of(&qr_no) {
                    BuyerCode::Paid => {
                        txn.orig_resp_code = Some("00".into());
                        txn.done_at = Some(now());
                    }
                    BuyerCode::Declined => txn.orig_resp_code = Some("01".into()),
                    BuyerCode::Password => txn.confirms = true,
                    BuyerCode::Undecided => {}
                }
                transactions.insert(txn.order_id.clone(), txn.clone());
                if txn.orig_resp_code.is_some() {
                    drop(transactions);
                    if let Some(n) = notification(self, &txn) {
                        self.send(n);
                    }
                }
                txn
            }
        };
        if self.inner.notifier.take_lost_answer(&txn.order_id) {
            return Err(TIMED_OUT);
        }
        match (txn.voided, txn.orig_resp_code.as_deref()) {
            (false, Some("00")) => {}
            (false, None) => return Err(PROCESSING),
            _ => return Err(DECLINED),
        }
        let mut extra = Fields::new();
        extra.insert("queryId".into(), txn.query_id.unwrap_or_default());
        Ok(extra)
    }

    /// The void of a barcode consume, by its `origQryId`: undone, refunded if paid.
    pub(super) fn void(&self, f: &Fields) -> Result<Fields, UnionPayError> {
        self.authenticate(f)?;
        let get = |name: &str| f.get(name).filter(|v| !v.is_empty()).cloned().ok_or(FORMAT);
        let orig = get("origQryId")?;
        get("orderId")?;
        let mut transactions = lock(&self.inner.transactions);
        let txn = transactions
            .values_mut()
            .find(|t| t.query_id.as_deref() == Some(orig.as_str()))
            .ok_or(NOT_FOUND)?;
        if self.inner.notifier.take_ask_again(&txn.order_id) {
            return Err(TIMED_OUT);
        }
        txn.voided = true;
        txn.confirms = false;
        let mut extra = Fields::new();
        extra.insert("origQryId".into(), orig);
        extra.insert(
            "queryId".into(),
            format!("{}{}", now().beijing_compact(), digits(7)),
        );
        Ok(extra)
    }
}
