-- How the wallets know each merchant (issue 4): unset falls back to the deployment's
-- channel configuration.
ALTER TABLE merchants ADD COLUMN wechat_sub_mch_id TEXT;
ALTER TABLE merchants ADD COLUMN mcc TEXT;
