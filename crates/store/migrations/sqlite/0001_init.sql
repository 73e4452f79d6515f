-- ottgate schema v1 (SQLite). Never edit a shipped migration; add a new one.
-- Times are UTC epoch milliseconds; amounts are integer minor units.

CREATE TABLE merchants (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    shop_id         TEXT NOT NULL,
    operator_id     TEXT NOT NULL,
    app_id          TEXT NOT NULL UNIQUE,
    app_key_hash    TEXT NOT NULL,
    -- AES-256-GCM under the deployment master key; never plaintext.
    sign_key_sealed BLOB NOT NULL,
    currencies      TEXT NOT NULL,
    methods         TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);

CREATE TABLE orders (
    id               TEXT PRIMARY KEY,
    merchant_id      TEXT NOT NULL REFERENCES merchants(id),
    -- checkout (PREPAY_INIT), wap or web (REST)
    kind             TEXT NOT NULL,
    -- The merchant's reference: prepay_order_id, or a REST payment's optional reference.
    reference        TEXT,
    token            TEXT NOT NULL UNIQUE,
    amount           INTEGER NOT NULL,
    currency         TEXT NOT NULL,
    sale_num         TEXT NOT NULL,
    shop_id          TEXT NOT NULL,
    operator_id      TEXT NOT NULL,
    redirect_url     TEXT NOT NULL,
    callback_url     TEXT NOT NULL,
    duration_secs    INTEGER NOT NULL,
    email            TEXT,
    remarks          TEXT,
    status           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    paid_attempt     TEXT,
    finished_at      INTEGER,
    paid_after_close INTEGER NOT NULL DEFAULT 0,
    -- What makes a repeated create a safe retry: the same md5 replays this response.
    request_md5      TEXT NOT NULL,
    response_data    TEXT NOT NULL
);
-- NULL references (REST payments without one) do not collide.
CREATE UNIQUE INDEX orders_by_reference ON orders(merchant_id, reference);
CREATE INDEX orders_open_by_expiry ON orders(expires_at) WHERE status = 'processing';
CREATE INDEX orders_by_status ON orders(status);

CREATE TABLE attempts (
    id                TEXT PRIMARY KEY,
    order_id          TEXT NOT NULL REFERENCES orders(id),
    method            TEXT NOT NULL,
    status            TEXT NOT NULL,
    amount            INTEGER NOT NULL,
    currency          TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    settled_at        INTEGER,
    bizpay_order_id   TEXT,
    duplicate_payment INTEGER NOT NULL DEFAULT 0,
    -- When reconciliation last asked the wallet about this attempt.
    last_checked_at   INTEGER
);
CREATE INDEX attempts_by_order ON attempts(order_id);
CREATE INDEX attempts_pending ON attempts(created_at) WHERE status = 'PROCESSING';

-- The callback outbox: a row is written in the same transaction as the state change it
-- announces, and deleted never (it is the merchant-visible delivery history).
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    notify_id       TEXT NOT NULL UNIQUE,
    merchant_id     TEXT NOT NULL REFERENCES merchants(id),
    order_id        TEXT NOT NULL REFERENCES orders(id),
    attempt_id      TEXT,
    event           TEXT NOT NULL,
    url             TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_by_order ON deliveries(order_id);

-- Refunds against paid attempts. A pending or successful refund holds its amount, so the
-- sum of held amounts never exceeds what was paid.
CREATE TABLE refunds (
    id                 TEXT PRIMARY KEY,
    merchant_id        TEXT NOT NULL REFERENCES merchants(id),
    payment_id         TEXT NOT NULL REFERENCES attempts(id),
    merchant_refund_id TEXT,
    amount             INTEGER NOT NULL,
    currency           TEXT NOT NULL,
    status             TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    finished_at        INTEGER,
    channel_refund_id  TEXT
);
CREATE INDEX refunds_by_payment ON refunds(payment_id);
CREATE UNIQUE INDEX refunds_by_merchant_id ON refunds(merchant_id, merchant_refund_id);

CREATE TABLE delivery_attempts (
    delivery_id INTEGER NOT NULL REFERENCES deliveries(id),
    attempt_no  INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    http_status INTEGER,
    error       TEXT,
    PRIMARY KEY (delivery_id, attempt_no)
);
