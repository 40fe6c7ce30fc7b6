-- Issue 16, merchant webhooks: the endpoints the operator configured, the events recorded in
-- the transaction of each order's state change, one delivery per (event, endpoint), and the
-- log of every attempt. An endpoint's signing secret is not stored: it is derived from the
-- merchant's own key and the endpoint's random salt (see crates/services/src/merchant/webhooks.rs).
CREATE TABLE webhook_endpoints (
    endpoint_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret_salt {blob} NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE webhook_events (
    seq {id},
    event_id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL REFERENCES merchant_orders (order_id),
    event_type TEXT NOT NULL,
    previous_state TEXT,
    state TEXT NOT NULL,
    cardholder_id TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    captured BIGINT NOT NULL,
    refunded BIGINT NOT NULL,
    decline_code TEXT,
    authorization_id TEXT,
    tracking_number TEXT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX webhook_events_order ON webhook_events (order_id, seq);

CREATE TABLE webhook_deliveries (
    delivery_id {id},
    seq BIGINT NOT NULL REFERENCES webhook_events (seq),
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (endpoint_id),
    order_id TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at_ms BIGINT NOT NULL,
    first_attempt_at_ms BIGINT,
    last_status BIGINT,
    last_error TEXT,
    delivered_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (seq, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at_ms);
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, order_id, seq);

CREATE TABLE webhook_attempts (
    attempt_id {id},
    delivery_id BIGINT NOT NULL REFERENCES webhook_deliveries (delivery_id),
    attempt BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    http_status BIGINT,
    latency_ms BIGINT NOT NULL,
    error TEXT
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt_id);
