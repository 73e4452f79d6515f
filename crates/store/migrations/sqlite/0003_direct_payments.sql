-- Issue 8. ACTIVEPAY's tip (minor units, part of the amount), and the merchant's own
-- order ids looked up without the merchant (the sandbox helper completes a payment by
-- the id its answer returned).
ALTER TABLE orders ADD COLUMN tip INTEGER NOT NULL DEFAULT 0;
CREATE INDEX orders_by_bare_reference ON orders(reference);
