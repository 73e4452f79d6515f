-- Issue 23. The zone a merchant's people read times in (IANA name, e.g. America/Toronto);
-- NULL: the deployment's (time_zone_id).
ALTER TABLE merchants ADD COLUMN time_zone TEXT;
