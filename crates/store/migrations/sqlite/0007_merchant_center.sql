-- Issue 13. The merchant center: sign-in sessions (the SHA-256 of the cookie's token, never
-- the token), the audit log of admin actions, and the index the payment list pages by.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);
CREATE INDEX sessions_by_user ON sessions(user_id);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX audit_by_merchant ON audit_log(merchant_id, id);

CREATE INDEX orders_by_merchant ON orders(merchant_id, id);

-- The first characters of the merchant's answer to each callback, for the merchant center.
ALTER TABLE delivery_attempts ADD COLUMN response_start TEXT;

-- Key rotation from the settings page: the sign key before the last rotation, accepted on
-- requests until its grace period ends; the webhook secret's version (0 is the first), the
-- one before it still signing callbacks (beside the new one) until its grace period ends.
ALTER TABLE merchants ADD COLUMN previous_sign_key_sealed BLOB;
ALTER TABLE merchants ADD COLUMN previous_sign_key_until INTEGER;
ALTER TABLE merchants ADD COLUMN webhook_secret_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE merchants ADD COLUMN previous_webhook_until INTEGER;
