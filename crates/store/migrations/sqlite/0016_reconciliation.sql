-- Issue 24 (reconciliation). Each wallet's day as last reconciled, and what the runs
-- found: a discrepancy stays `open` until a run repairs it (`repaired`: the wallet's query
-- confirmed the statement and the gateway settled it) or an operator resolves it with a
-- note (`resolved`). A re-run replaces the day's open ones.
CREATE TABLE recon_runs (
    wallet      TEXT NOT NULL,
    day         TEXT NOT NULL,
    lines       INTEGER NOT NULL,
    matched     INTEGER NOT NULL,
    found       INTEGER NOT NULL,
    repaired    INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    PRIMARY KEY (wallet, day)
);
CREATE TABLE recon_discrepancies (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    wallet            TEXT NOT NULL,
    day               TEXT NOT NULL,
    kind              TEXT NOT NULL,
    side              TEXT NOT NULL,
    ours              TEXT NOT NULL,
    wallets           TEXT,
    merchant_id       TEXT,
    stated_amount     INTEGER,
    stated_currency   TEXT,
    recorded_amount   INTEGER,
    recorded_currency TEXT,
    state             TEXT NOT NULL,
    note              TEXT NOT NULL DEFAULT '',
    resolved_by       TEXT,
    found_at          INTEGER NOT NULL,
    resolved_at       INTEGER,
    UNIQUE (wallet, day, kind, side, ours)
);
CREATE INDEX recon_discrepancies_open ON recon_discrepancies(wallet) WHERE state = 'open';
-- A wallet's day is read by when payments and refunds were done.
CREATE INDEX attempts_by_settled ON attempts(settled_at);
CREATE INDEX refunds_by_finished ON refunds(finished_at);
-- Who runs a wallet's day now (the daily schedule, with several gateways on one
-- database): a claim holds until `held_until`; a run that dies is taken over after it.
CREATE TABLE recon_leases (
    wallet     TEXT NOT NULL,
    day        TEXT NOT NULL,
    holder     TEXT NOT NULL,
    held_until INTEGER NOT NULL,
    PRIMARY KEY (wallet, day)
);
-- Each merchant's fee rate per payment method (parts per million, plus a fixed amount in
-- the payment currency's minor units); a method without one takes the configured default.
CREATE TABLE merchant_fees (
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    method      TEXT NOT NULL,
    ppm         INTEGER NOT NULL,
    fixed_minor INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, method)
);
