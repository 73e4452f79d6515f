-- Issue 20. status-query-by-reference falls back to a payment whose remark equals the
-- reference (integrations put their own order number there); this finds the newest quickly.
-- An index only: no data changes.
CREATE INDEX orders_by_remarks ON orders(merchant_id, remarks, created_at) WHERE remarks IS NOT NULL;
