-- Issue 19, forward secrecy (PROTOCOL.md §19.5): the party's KEM key ring. Each row is one
-- epoch's X25519 private key, wrapped (XChaCha20-Poly1305) under the key-encryption key of the
-- data at rest, the associated data binding the epoch and the KEM. The highest epoch is the
-- current one (published to cardholders); older epochs stay through their grace period and are
-- then deleted, after which the parts sealed to them can never be opened.
CREATE TABLE kem_keys (
    epoch BIGINT PRIMARY KEY,
    kem TEXT NOT NULL,
    wrapped {blob} NOT NULL,
    created_at_ms BIGINT NOT NULL
);
