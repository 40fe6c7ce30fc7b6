-- Warifu schema v1. Written once for SQLite and PostgreSQL: {id} is the auto-increment key
-- and {blob} the binary type of the backend. Every integer is BIGINT (amounts in minor units,
-- times in Unix milliseconds). A party uses only its own tables: the merchant's hold no card
-- number or destination, the carrier's no card data or goods, the issuer's no destination.

CREATE TABLE idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    status BIGINT NOT NULL,
    body {blob} NOT NULL,
    fingerprint {blob} NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at_ms);

-- Merchant ---------------------------------------------------------------------------------

CREATE TABLE merchant_order_forms (
    order_id TEXT PRIMARY KEY,
    form_json TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE merchant_orders (
    order_id TEXT PRIMARY KEY,
    cardholder_id TEXT NOT NULL,
    issuer_id TEXT NOT NULL,
    carrier_id TEXT,
    merchant_view TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount >= 0),
    currency TEXT NOT NULL,
    state TEXT NOT NULL,
    decline_code TEXT,
    authorization_id TEXT,
    tracking_number TEXT,
    carrier_part {blob},
    version BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX merchant_orders_cardholder ON merchant_orders (cardholder_id, created_at_ms);
CREATE INDEX merchant_orders_state ON merchant_orders (state, created_at_ms);
CREATE INDEX merchant_orders_created ON merchant_orders (created_at_ms);

CREATE TABLE merchant_outbox (
    id {id},
    order_id TEXT NOT NULL REFERENCES merchant_orders (order_id),
    kind TEXT NOT NULL,
    payload {blob} NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at_ms BIGINT NOT NULL,
    done BOOLEAN NOT NULL DEFAULT FALSE,
    last_error TEXT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX merchant_outbox_due ON merchant_outbox (next_attempt_at_ms, id) WHERE done = FALSE;
CREATE INDEX merchant_outbox_order ON merchant_outbox (order_id, id);

-- Issuer -----------------------------------------------------------------------------------

CREATE TABLE issuer_cards (
    card_id TEXT PRIMARY KEY,
    cardholder_id TEXT NOT NULL,
    holder_name TEXT NOT NULL,
    number TEXT NOT NULL,
    expiry_year BIGINT NOT NULL,
    expiry_month BIGINT NOT NULL CHECK (expiry_month BETWEEN 1 AND 12),
    status TEXT NOT NULL,
    credit_limit BIGINT NOT NULL CHECK (credit_limit >= 0),
    available BIGINT NOT NULL CHECK (available >= 0),
    currency TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX issuer_cards_cardholder ON issuer_cards (cardholder_id);

CREATE TABLE issuer_authorizations (
    authorization_id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    cardholder_id TEXT NOT NULL,
    card_id TEXT REFERENCES issuer_cards (card_id),
    amount BIGINT NOT NULL CHECK (amount >= 0),
    currency TEXT NOT NULL,
    payment_method TEXT NOT NULL,
    decline_code TEXT,
    status TEXT NOT NULL,
    held BIGINT NOT NULL CHECK (held >= 0),
    captured BIGINT NOT NULL CHECK (captured >= 0),
    refunded BIGINT NOT NULL CHECK (refunded >= 0 AND refunded <= captured),
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (merchant_id, order_id)
);
CREATE INDEX issuer_authorizations_cardholder ON issuer_authorizations (cardholder_id, created_at_ms);

CREATE TABLE issuer_refunds (
    merchant_id TEXT NOT NULL,
    refund_id TEXT NOT NULL,
    authorization_id TEXT NOT NULL REFERENCES issuer_authorizations (authorization_id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, refund_id)
);

CREATE TABLE issuer_ledger (
    id {id},
    movement_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    account TEXT NOT NULL,
    amount BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX issuer_ledger_account ON issuer_ledger (account, id);
CREATE INDEX issuer_ledger_movement ON issuer_ledger (movement_id);

-- Carrier ----------------------------------------------------------------------------------

CREATE TABLE carrier_shipments (
    tracking_number TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    cardholder_id TEXT NOT NULL,
    addressee TEXT NOT NULL,
    address TEXT NOT NULL,
    parcel TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (merchant_id, order_id)
);
CREATE INDEX carrier_shipments_created ON carrier_shipments (created_at_ms);

CREATE TABLE carrier_events (
    id {id},
    tracking_number TEXT NOT NULL REFERENCES carrier_shipments (tracking_number),
    status TEXT NOT NULL,
    note TEXT,
    at_ms BIGINT NOT NULL
);
CREATE INDEX carrier_events_tracking ON carrier_events (tracking_number, id);
