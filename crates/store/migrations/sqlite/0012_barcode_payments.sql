-- Issue 21. In-store barcode payments (PASSIVEPAY): the till that took one, and the job
-- that follows it until it is paid, failed or reversed (written before the wallet is asked,
-- so a gateway killed mid-payment leaves it for the next one to finish).
ALTER TABLE orders ADD COLUMN terminal TEXT;
CREATE TABLE barcode_jobs (
    attempt_id  TEXT PRIMARY KEY REFERENCES attempts(id),
    merchant_id TEXT NOT NULL,
    phase       TEXT NOT NULL,
    outcome     TEXT,
    next_at     INTEGER NOT NULL,
    query_until INTEGER NOT NULL,
    undo_after  INTEGER NOT NULL,
    tries       INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX barcode_jobs_due ON barcode_jobs(next_at) WHERE phase <> 'done';
