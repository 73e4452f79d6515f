//! Wire types of the OTT Pay merchant protocols: the envelope and its actions, response
//! codes, and the decrypted data objects of each action. These are strings as they travel;
//! turning them into domain values (and rejecting what does not parse) is the server's job.

pub mod card;
pub mod codes;
pub mod direct;
pub mod envelope;
pub mod fields;
pub mod payment;
pub mod prepay;
pub mod redirect;
pub mod rest;

pub use codes::RspCode;
pub use envelope::{Action, EnvelopeError, EnvelopeRequest, EnvelopeResponse};
pub use fields::{FieldError, FieldReader};
