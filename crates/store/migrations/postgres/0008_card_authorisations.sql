-- Issue 20. Card authorisations (CC_PREAUTH, REST local-card): an approved card holds the
-- money until the payment is captured (then the attempt is paid) or voided (cancelled).
-- authorised_at: when the acquirer authorised it; capture_at: when the gateway captures it
-- by itself (local-card payments), NULL when the merchant captures it (pre-authorisations).
ALTER TABLE attempts ADD COLUMN authorised_at BIGINT;
ALTER TABLE attempts ADD COLUMN capture_at BIGINT;
CREATE INDEX attempts_to_capture ON attempts(capture_at) WHERE status = 'PROCESSING' AND capture_at IS NOT NULL;
