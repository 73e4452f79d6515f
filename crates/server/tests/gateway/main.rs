//! The gateway, tested from outside: a real server on a random port, driven through the
//! merchant SDK, a local callback receiver and plain HTTP (and, in `browser`, a real
//! headless Chromium).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

mod center;
mod checker;
mod harness;

mod alipay;
mod bad_input;
mod browser;
mod callbacks;
mod cards;
mod checkout;
mod dashboard;
mod dashboard_browser;
mod direct;
mod drop_in;
mod events;
mod exactly_once;
mod expiry;
mod fuzz_corpus;
mod instore;
mod link_flows;
mod merchants;
mod mini_program;
mod ops;
mod refunds;
mod rest;
mod rest_in_app;
mod rest_wechat;
mod sandbox_pages;
mod statements;
mod unionpay;
mod wallets;
mod wechat;
