//! The four session headers of an authenticated request or response (`Warifu-Session`: the
//! session's ticket, `Warifu-Seq`, `Warifu-Time`, `Warifu-Mac`), read and written alike by
//! server and client.

use axum::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use warifu_core::session::{MAX_TICKET_LEN, MessageAuth};

use crate::error::{AppError, AppResult, ErrorCode};
use crate::protocol::handshake::{HEADER_MAC, HEADER_SEQ, HEADER_SESSION, HEADER_TIME};

/// Reads the four session headers.
pub fn read_auth(headers: &HeaderMap) -> AppResult<MessageAuth> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(session), Some(seq), Some(time), Some(mac)) = (
        get(HEADER_SESSION),
        get(HEADER_SEQ),
        get(HEADER_TIME),
        get(HEADER_MAC),
    ) else {
        return Err(AppError::new(
            ErrorCode::AuthenticationRequired,
            "this endpoint needs an authenticated session: run the handshake and send the Warifu-Session, Warifu-Seq, Warifu-Time and Warifu-Mac headers",
        ));
    };
    let bad = || AppError::new(ErrorCode::AuthenticationFailed, "malformed session headers");
    let mac: [u8; 32] = B64
        .decode(mac.as_bytes())
        .ok()
        .and_then(|m| m.try_into().ok())
        .ok_or_else(bad)?;
    if session.len() > MAX_TICKET_LEN {
        return Err(bad());
    }
    Ok(MessageAuth {
        session: session.to_owned(),
        seq: seq.parse().map_err(|_| bad())?,
        time: time.parse().map_err(|_| bad())?,
        mac,
    })
}

/// Writes the four session headers.
pub fn write_auth(headers: &mut HeaderMap, auth: &MessageAuth) {
    let pairs = [
        (HEADER_SESSION, auth.session.clone()),
        (HEADER_SEQ, auth.seq.to_string()),
        (HEADER_TIME, auth.time.to_string()),
        (HEADER_MAC, B64.encode(auth.mac)),
    ];
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
}
