-- Issue 13. People who sign in to the merchant center: one merchant each, an email (stored
-- lower-cased, unique across the deployment: it is what they sign in with), an argon2id
-- password hash, and a role (admin: also refunds, resends, changes settings; viewer: reads).
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    merchant_id   TEXT NOT NULL REFERENCES merchants(id),
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX users_by_merchant ON users(merchant_id);
