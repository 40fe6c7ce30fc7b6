-- Issue 14, the hot path: the carrier pushes delivery events to the order's merchant instead of
-- the merchant polling its tracking. Each row is one shipment status change (picked up, in
-- transit, delivered, returned), written in the transaction of the change, and sent in the
-- merchant's session by the carrier's pusher: claimed with a lease (one shipment's events in
-- order), retried with backoff while the merchant cannot be reached, ended by the merchant's
-- answer (`sent`) or its verdict (`refused`), or given up after the retry window (`failed`;
-- the merchant's slow tracking poll is the safety net). No destination is stored here.
CREATE TABLE carrier_outbox (
    id {id},
    tracking_number TEXT NOT NULL REFERENCES carrier_shipments (tracking_number),
    merchant_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    status TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at_ms BIGINT NOT NULL,
    first_attempt_at_ms BIGINT,
    last_error TEXT,
    done_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX carrier_outbox_due ON carrier_outbox (state, next_attempt_at_ms);
CREATE INDEX carrier_outbox_shipment ON carrier_outbox (tracking_number, id);
