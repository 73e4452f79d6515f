-- Issue 23 (payment detail). What the wallet said the buyer paid in yuan (fen) and at
-- which rate (the wallet's text), when it said so; who asked for each refund (`rest`,
-- `envelope`, `check`, `user:<email>`) and the reason they gave.
ALTER TABLE attempts ADD COLUMN buyer_cny INTEGER;
ALTER TABLE attempts ADD COLUMN fx_rate TEXT;
ALTER TABLE refunds ADD COLUMN requested_by TEXT;
ALTER TABLE refunds ADD COLUMN reason TEXT;
