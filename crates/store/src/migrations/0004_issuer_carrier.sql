-- Issue 12, issuer and carrier bindings.
--
-- Refund ids are scoped to the order: the merchant names refunds per order ("cancel",
-- "returned", "op-<n>"), so the key becomes (merchant, order, refund id). Rows of version 3
-- take their order from their authorization.
CREATE TABLE issuer_refunds_v4 (
    merchant_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    refund_id TEXT NOT NULL,
    authorization_id TEXT NOT NULL REFERENCES issuer_authorizations (authorization_id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, order_id, refund_id)
);
INSERT INTO issuer_refunds_v4 (merchant_id, order_id, refund_id, authorization_id, amount,
    created_at_ms)
SELECT r.merchant_id, a.order_id, r.refund_id, r.authorization_id, r.amount, r.created_at_ms
FROM issuer_refunds r JOIN issuer_authorizations a ON a.authorization_id = r.authorization_id;
DROP TABLE issuer_refunds;
ALTER TABLE issuer_refunds_v4 RENAME TO issuer_refunds;

-- Each authorization remembers the order's carrier (NULL: none, or decided before version 4)
-- and the sealed header's digest (NULL before version 4): a dispute accepts a proof of
-- delivery only from that carrier, and the proof's MAC covers that digest.
ALTER TABLE issuer_authorizations ADD COLUMN carrier_id TEXT;
ALTER TABLE issuer_authorizations ADD COLUMN header_digest {blob};

-- Each shipment remembers the sealed header's digest (under its proof of delivery; NULL
-- before version 4, and for a cancellation tombstone).
ALTER TABLE carrier_shipments ADD COLUMN header_digest {blob};
