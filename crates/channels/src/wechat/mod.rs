//! WeChat Pay API v2, institutional mode (spec/channels.md §3).

pub mod sign;
