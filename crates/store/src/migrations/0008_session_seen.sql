-- Issue 13, sessions stateless across replicas (PROTOCOL.md §12.5).
--
-- A request of a session is accepted once: every replica of a party records each (session,
-- sequence number) it accepts here before its handler runs, and refuses one already recorded.
-- A record is kept until the request's time window closes (its time + 300 s); after that the
-- request is refused as stale anyway, so the table holds only the last minutes of requests.
CREATE TABLE session_seen (
    session TEXT NOT NULL,
    seq BIGINT NOT NULL,
    until_s BIGINT NOT NULL,
    PRIMARY KEY (session, seq)
);
CREATE INDEX session_seen_until ON session_seen (until_s);
