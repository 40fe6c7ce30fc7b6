-- Issue 4, carrier delivery lifecycle: each shipment remembers the order's issuer (from the
-- forwarded header; its pairwise key with the carrier verifies the proof of delivery) and
-- when it was delivered. Rows from version 1 keep NULL in both (no proof can be given).
ALTER TABLE carrier_shipments ADD COLUMN issuer_id TEXT;
ALTER TABLE carrier_shipments ADD COLUMN delivered_at_ms BIGINT;
