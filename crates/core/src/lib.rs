//! The ottgate domain: what a payment is, independent of wire formats and storage.
//!
//! Values here are constructed by parsing, so one that exists is valid. Nothing in this
//! crate does I/O; time comes in through [`Clock`], randomness through `rand`.

pub mod ids;
pub mod merchant;
pub mod method;
pub mod money;
pub mod order;
pub mod payment;
pub mod recon;
pub mod refund;
pub mod retry;
pub mod secret;
pub mod settlement;
pub mod time;

pub use ids::{
    AttemptId, CheckoutToken, MerchantId, MerchantRef, NotifyId, OperatorId, OrderId, ShopId,
};
pub use merchant::{ChannelIds, Merchant};
pub use method::PaymentMethod;
pub use money::{Amount, Currency, Money};
pub use order::{
    Attempt, AttemptOutcome, AttemptStatus, BuyerPaid, CloseReason, Order, OrderKind, OrderStatus,
    Settlement, TransitionError,
};
pub use payment::PaymentStatus;
pub use refund::{Refund, RefundId, RefundStatus, RefundedBy};
pub use retry::RetrySchedule;
pub use secret::Secret;
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
