-- Issue 11. Failed REST sign-ins counted in the database, so that gateways sharing it
-- share the count (a guesser spreading tries over several gateways meets one limit), and
-- the (appId, address) pairs that signed in, which the per-appId ceiling exempts.
CREATE TABLE sign_in_failures (
    id  INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    at  INTEGER NOT NULL
);
CREATE INDEX sign_in_failures_by_key ON sign_in_failures(key, at);
CREATE INDEX sign_in_failures_by_age ON sign_in_failures(at);

CREATE TABLE sign_in_trust (
    pair  TEXT PRIMARY KEY,
    since INTEGER NOT NULL
);
