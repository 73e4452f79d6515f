-- Issue 9. Requests that create or move money, made safe to retry: the first answer to a
-- key (REST Idempotency-Key; an envelope REFUND's md5 when it names no refund id) is kept
-- for a day and replayed to the same request; another request under the same key is
-- refused. A claim not finished within its lease (the process died) can be taken over.
CREATE TABLE idempotency_keys (
    merchant_id     TEXT NOT NULL,
    scope           TEXT NOT NULL,
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    -- 'started' while the first request runs, then 'done' with its answer
    state           TEXT NOT NULL,
    response_status INTEGER,
    response_body   TEXT,
    created_at      INTEGER NOT NULL,
    locked_until    INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, scope, key)
);
CREATE INDEX idempotency_by_age ON idempotency_keys(created_at);
