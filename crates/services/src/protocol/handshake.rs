//! Mutual confirmation on every link: the four session headers and the handshake's paths and
//! answer.

use serde::{Deserialize, Serialize};

/// Header carrying the session of an authenticated message: its ticket (PROTOCOL.md §12.5).
pub const HEADER_SESSION: &str = "warifu-session";

/// Header carrying the message's sequence number.
pub const HEADER_SEQ: &str = "warifu-seq";

/// Header carrying the sender's clock (Unix seconds).
pub const HEADER_TIME: &str = "warifu-time";

/// Header carrying the message MAC (unpadded base64url).
pub const HEADER_MAC: &str = "warifu-mac";

/// Handshake message 1 (`POST /v1/handshake/hello`).
pub const PATH_HELLO: &str = "/v1/handshake/hello";

/// Handshake message 3 (`POST /v1/handshake/confirm`).
pub const PATH_CONFIRM: &str = "/v1/handshake/confirm";

/// The answer to a completed handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionEstablished {
    /// The session id both sides derived (§12.2).
    pub session: String,
    /// When the session ends, Unix seconds.
    pub expires_at: u64,
    /// The session's ticket (§12.5): the initiator sends it as `Warifu-Session` on every
    /// request of the session; any replica of the responder opens it.
    pub ticket: String,
}
