-- The request that asked for a refund (SQLite's migration 0008): the same request again
-- finds this refund instead of making a second one, even when its first answer was lost.
ALTER TABLE refunds ADD COLUMN request_key TEXT;
CREATE INDEX refunds_by_request ON refunds(merchant_id, request_key) WHERE request_key IS NOT NULL;
