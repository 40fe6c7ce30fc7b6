//! The OpenAPI 3 document of each service, generated from its router: every route is added
//! with `utoipa_axum::routes!` from a handler's `#[utoipa::path]`, so a route cannot be served
//! without being documented. This module finishes the document: title and version, the two
//! security schemes (session, operator), path parameters, the error responses with their
//! stable codes (`crate::error::ErrorCode`), and the schemas of the bodies (see
//! [`crate::protocol::schema`]). Each service serves its document at `GET /openapi.json`; copies are checked into
//! `docs/openapi/` (regenerate with `WARIFU_WRITE_OPENAPI=1 cargo test -p warifu-services
//! --test openapi`).

use std::collections::BTreeMap;

use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, LicenseBuilder, OpenApi, Ref, RefOr, Required,
    ResponseBuilder,
};
use utoipa::{PartialSchema, ToSchema};

use crate::error::{ErrorBody, ErrorCode};

/// The path every service serves its document at.
pub const PATH_OPENAPI: &str = "/openapi.json";

/// The security scheme of routes that need a mutual-confirmation session.
pub const SESSION: &str = "session";

/// The security scheme of operator routes.
pub const OPERATOR: &str = "operator";

/// Tag of the handshake routes.
pub const TAG_HANDSHAKE: &str = "handshake";

/// Tag of the operations routes (health, readiness, metrics, this document).
pub const TAG_OPERATIONS: &str = "operations";

/// Tag of the operator routes (`/v1/admin/…`).
pub const TAG_ADMIN: &str = "admin";

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The operations of a path item with their lowercase method names.
pub fn operations_mut(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    let PathItem {
        get,
        put,
        post,
        delete,
        options,
        head,
        patch,
        trace,
        ..
    } = item;
    METHODS
        .into_iter()
        .zip([get, put, post, delete, options, head, patch, trace])
        .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
        .collect()
}

/// Marks every operation of `api` as needing `scheme` (used on a router's authenticated
/// routes before they are merged with its public ones).
pub fn require(api: &mut OpenApi, scheme: &str) {
    for item in api.paths.paths.values_mut() {
        for (_, op) in operations_mut(item) {
            let req = utoipa::openapi::security::SecurityRequirement::new::<_, [&str; 0], &str>(
                scheme,
                [],
            );
            let security = op.security.get_or_insert_with(Vec::new);
            if !security.contains(&req) {
                security.push(req);
            }
        }
    }
}

fn error_statuses() -> BTreeMap<u16, Vec<&'static str>> {
    let mut by_status: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
    for c in ErrorCode::ALL {
        by_status
            .entry(c.status().as_u16())
            .or_default()
            .push(c.as_str());
    }
    by_status
}

fn error_response(codes: &[&str]) -> RefOr<utoipa::openapi::Response> {
    let list = codes
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    ResponseBuilder::new()
        .description(format!(
            "An error, as `{{\"code\", \"message\"}}`. Stable codes with this status: {list} (see docs/ERRORS.md)."
        ))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

fn tag_of(path: &str, service: &str) -> &'static str {
    if path.starts_with("/v1/handshake/") {
        TAG_HANDSHAKE
    } else if path.starts_with("/v1/admin/") {
        TAG_ADMIN
    } else if !path.starts_with("/v1/") {
        TAG_OPERATIONS
    } else {
        match service {
            "merchant" => "merchant",
            "issuer" => "issuer",
            "carrier" => "carrier",
            _ => "api",
        }
    }
}

/// The names in `{…}` of a path template.
pub fn path_params(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(str::to_owned)
        .collect()
}

fn describe_param(name: &str) -> &'static str {
    match name {
        "order_id" => "The merchant's order id (from its order form).",
        "merchant" => "The merchant's identifier, e.g. `merchant:shop.example`.",
        "tracking_number" => "The carrier's tracking number.",
        "card_id" => "The issuer's id of a card.",
        "cardholder" => "The cardholder's identifier, e.g. `cardholder:hanako@mail.example`.",
        "endpoint_id" => "The id of a merchant webhook endpoint.",
        _ => "A path parameter.",
    }
}

/// Finishes a service's document (see the module documentation). `service` is `merchant`,
/// `issuer` or `carrier`.
pub fn finish(service: &str, mut api: OpenApi) -> OpenApi {
    api.info = InfoBuilder::new()
        .title(format!("Warifu {service} API"))
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(format!(
            "The {service}'s HTTP/JSON API (generated from the code). Routes tagged `{SESSION}` \
             need a mutual-confirmation session: run the handshake (`POST /v1/handshake/hello`, \
             `POST /v1/handshake/confirm`), then send `Warifu-Session`, `Warifu-Seq`, \
             `Warifu-Time` and `Warifu-Mac` on every request; responses carry the same headers \
             with the responder's MAC (docs/PROTOCOL.md). Operator routes (`/v1/admin/…`) need \
             the service's operator token. Errors are `{{\"code\", \"message\"}}` with the \
             stable codes of docs/ERRORS.md. A service started with `--revocations FILE` \
             re-reads the key center's signed revocation list when the file changes (no route \
             sets it) and answers `403 identity_revoked` to a handshake, session request or \
             sealed part of a revoked identity (docs/PROTOCOL.md §18.5)."
        )))
        .license(Some(LicenseBuilder::new().name("Apache-2.0").build()))
        .build();
    let statuses = error_statuses();
    for (path, item) in api.paths.paths.iter_mut() {
        let params = path_params(path);
        let tag = tag_of(path, service);
        for (_, op) in operations_mut(item) {
            let declared: Vec<String> = op
                .parameters
                .iter()
                .flatten()
                .map(|p| p.name.clone())
                .collect();
            for name in &params {
                if !declared.contains(name) {
                    op.parameters.get_or_insert_with(Vec::new).push(
                        ParameterBuilder::new()
                            .name(name)
                            .parameter_in(ParameterIn::Path)
                            .required(Required::True)
                            .description(Some(describe_param(name)))
                            .schema(Some(String::schema()))
                            .build(),
                    );
                }
            }
            op.tags = Some(vec![tag.to_owned()]);
            if tag == TAG_ADMIN {
                let req = utoipa::openapi::security::SecurityRequirement::new::<_, [&str; 0], &str>(
                    OPERATOR,
                    [],
                );
                op.security = Some(vec![req]);
            }
            if tag == TAG_OPERATIONS {
                continue;
            }
            for (status, codes) in &statuses {
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| error_response(codes));
            }
        }
    }
    let mut schemas = Vec::new();
    <ErrorBody as ToSchema>::schemas(&mut schemas);
    let mut components = api.components.take().unwrap_or_default();
    components.schemas.insert(
        <ErrorBody as ToSchema>::name().into_owned(),
        ErrorBody::schema(),
    );
    components.schemas.extend(schemas);
    components.security_schemes.insert(
        SESSION.to_owned(),
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "Warifu-Session",
            "The session id from the handshake; `Warifu-Seq`, `Warifu-Time` and `Warifu-Mac` \
             (HMAC over session, sequence, time, method, path and body digest) go with it. \
             Every body in a session, request or response, empty or not, errors included, is \
             sealed: an XChaCha20-Poly1305 record (24-byte nonce ‖ ciphertext ‖ 16-byte tag) \
             under the direction's record key, sent as `Content-Type: \
             application/vnd.warifu.sealed`, and the MAC covers the record, not the JSON \
             (docs/PROTOCOL.md §12.3-12.4). The JSON schemas here describe the sealed \
             plaintext.",
        ))),
    );
    components.security_schemes.insert(
        OPERATOR.to_owned(),
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The service's operator token (`Authorization: Bearer …`, or the \
                     `warifu_operator` cookie for a browser).",
                ))
                .build(),
        ),
    );
    api.components = Some(ComponentsBuilder::from(components).build());
    if service == "merchant" {
        crate::protocol::webhooks::document(&mut api);
    }
    api
}

/// The document as pretty JSON (with a final newline), as checked into `docs/openapi/`.
pub fn to_pretty_json(api: &OpenApi) -> Result<String, serde_json::Error> {
    let mut s = serde_json::to_string_pretty(api)?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_params_are_found() {
        assert_eq!(
            path_params("/v1/shipments/{merchant}/{order_id}"),
            vec!["merchant".to_owned(), "order_id".to_owned()]
        );
        assert!(path_params("/v1/orders").is_empty());
    }

    #[test]
    fn every_error_status_is_documented() {
        let s = error_statuses();
        let n: usize = s.values().map(Vec::len).sum();
        assert_eq!(n, ErrorCode::ALL.len());
    }
}
