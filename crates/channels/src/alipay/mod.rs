//! Alipay Global cross-border MAPI (spec/channels.md §2).

pub mod sign;
