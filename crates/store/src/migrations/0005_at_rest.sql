-- Issue 15, data at rest: card numbers (issuer) and destinations (carrier) are stored as
-- XChaCha20-Poly1305 ciphertext under a data key; each row names its key (key_id). The data
-- keys are kept here only wrapped (encrypted) under a key-encryption key that lives outside
-- the database (a file or an environment variable). Purpose `data` keys encrypt (the newest
-- is the active one; older ones stay for the rows not yet moved by a re-encryption pass);
-- the one `lookup` key computes the keyed hash (HMAC-SHA256) a card is looked up by.
CREATE TABLE data_keys (
    key_id BIGINT PRIMARY KEY,
    purpose TEXT NOT NULL,
    wrapped {blob} NOT NULL,
    created_at_ms BIGINT NOT NULL,
    retired_at_ms BIGINT
);

-- A card's number: `number_enc` (nonce ‖ ciphertext) under data key `key_id`, and
-- `number_mac` for look-up. Rows written before version 5 keep the number in `number`
-- (key_id NULL) until the store encrypts them in place (on its first use of the data keys);
-- encrypted rows keep '' there.
ALTER TABLE issuer_cards ADD COLUMN number_enc {blob};
ALTER TABLE issuer_cards ADD COLUMN number_mac {blob};
ALTER TABLE issuer_cards ADD COLUMN key_id BIGINT;
CREATE INDEX issuer_cards_number_mac ON issuer_cards (number_mac);
CREATE INDEX issuer_cards_key ON issuer_cards (key_id);

-- A shipment's destination (addressee and address): `destination_enc` under `key_id`;
-- `addressee` and `address` keep '' (a cancellation tombstone has no destination at all).
ALTER TABLE carrier_shipments ADD COLUMN destination_enc {blob};
ALTER TABLE carrier_shipments ADD COLUMN key_id BIGINT;
CREATE INDEX carrier_shipments_key ON carrier_shipments (key_id);
