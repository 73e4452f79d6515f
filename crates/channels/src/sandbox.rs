//! The built-in test wallet: a page on the gateway itself with Pay / Decline / Cancel.
//! It exists only in sandbox mode, and serves card checkout (GP) and any method with no
//! simulated wallet of its own.

use async_trait::async_trait;
use ottgate_core::AttemptId;
use rand::Rng;

use crate::{
    Channel, ChannelError, PaymentStart, QueryPayment, QueryResult, RefundPayment, RefundResult,
    StartAction, StartPayment,
};

#[derive(Debug, Clone)]
pub struct SandboxChannel {
    public_url: url::Url,
}

impl SandboxChannel {
    pub fn new(public_url: url::Url) -> Self {
        Self { public_url }
    }

    /// The test wallet's transaction id for an attempt: `SB` and the attempt id, known
    /// from the start (so web-pay can report it) and the same when the payment settles.
    pub fn transaction_id(attempt: &AttemptId) -> String {
        format!("SB{attempt}")
    }
}

fn digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

#[async_trait]
impl Channel for SandboxChannel {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn is_test_mode(&self) -> bool {
        true
    }

    async fn start(&self, payment: &StartPayment) -> Result<PaymentStart, ChannelError> {
        let url = self
            .public_url
            .join(&format!("sandbox/wallet/{}", payment.attempt_id))
            .map_err(|e| {
                ChannelError::Config(format!("public URL cannot hold the wallet path: {e}"))
            })?;
        Ok(PaymentStart {
            action: StartAction::Redirect(url),
            channel_order_id: Some(Self::transaction_id(&payment.attempt_id)),
        })
    }

    /// The test wallet settles through its own page, never by notification: what it has
    /// not settled is pending.
    async fn query(&self, _payment: &QueryPayment) -> Result<QueryResult, ChannelError> {
        Ok(QueryResult::Pending)
    }

    /// The test wallet refunds at once.
    async fn refund(&self, _refund: &RefundPayment) -> Result<RefundResult, ChannelError> {
        Ok(RefundResult::Succeeded {
            channel_refund_id: format!("SBR{}", digits(16)),
        })
    }
}
