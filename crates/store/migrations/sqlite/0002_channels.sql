-- Issue 4. How the wallets know each merchant (unset falls back to the deployment's
-- channel configuration).
ALTER TABLE merchants ADD COLUMN wechat_sub_mch_id TEXT;
ALTER TABLE merchants ADD COLUMN mcc TEXT;

-- A refund the wallet decides later is asked about when its notification is late.
ALTER TABLE refunds ADD COLUMN last_checked_at INTEGER;
CREATE INDEX refunds_pending ON refunds(status, created_at);
