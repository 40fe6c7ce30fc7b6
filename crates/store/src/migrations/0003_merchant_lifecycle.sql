-- Merchant lifecycle (issue 4): what the merchant last learned about an order from its peers,
-- one row per (order, kind): `payment` (the issuer's PaymentReceipt JSON), `delivery` (the
-- carrier's status as last seen), `proof` (the carrier's proof of delivery JSON, no address).
CREATE TABLE merchant_order_facts (
    order_id TEXT NOT NULL REFERENCES merchant_orders (order_id),
    kind TEXT NOT NULL,
    body {blob} NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (order_id, kind)
);
