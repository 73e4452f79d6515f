-- Issue 20. OTT Pay's link flows (h5Pay, wapPay, webPay, inAppPay) carry no signature: the
-- merchant is named by its merCode, so they stay off until the merchant switches them on.
-- h5Pay names no callback URL: the merchant's link_callback_url is where its result goes.
-- Every existing merchant is given a merCode (32 hex digits) here.
ALTER TABLE merchants ADD COLUMN mer_code TEXT;
ALTER TABLE merchants ADD COLUMN link_flows INTEGER NOT NULL DEFAULT 0;
ALTER TABLE merchants ADD COLUMN link_callback_url TEXT;
UPDATE merchants SET mer_code = lower(hex(randomblob(16))) WHERE mer_code IS NULL;
CREATE UNIQUE INDEX merchants_by_mer_code ON merchants(mer_code);
