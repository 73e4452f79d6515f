-- Issue 25. The request that asked for a refund, when it can be named (a REST
-- Idempotency-Key, the canonical hash of an envelope REFUND without a refund id, a
-- merchant-center form's one-time token), written in the same transaction that reserves the
-- refund: the same request again finds this refund instead of making a second one, even
-- when the first request's answer was lost (a dropped connection, a crash).
ALTER TABLE refunds ADD COLUMN request_key TEXT;
CREATE INDEX refunds_by_request ON refunds(merchant_id, request_key) WHERE request_key IS NOT NULL;
