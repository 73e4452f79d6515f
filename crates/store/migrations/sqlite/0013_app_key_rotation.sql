-- Issue 23. The REST appKey can be rotated like the sign key: the key it replaces is still
-- accepted until previous_app_key_until (its argon2id hash kept beside the new one's).
ALTER TABLE merchants ADD COLUMN previous_app_key_hash TEXT;
ALTER TABLE merchants ADD COLUMN previous_app_key_until BIGINT;
