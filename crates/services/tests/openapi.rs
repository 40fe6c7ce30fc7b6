//! The OpenAPI 3 documents: each service's `GET /openapi.json` equals its checked-in copy in
//! `docs/openapi/`, parses as OpenAPI 3 (`oas3`), has every `$ref` resolving, documents every
//! error code, and every documented path and method is served (probed against the running
//! service: never the `not_found` or `method_not_allowed` fallback). The other direction —
//! every served API route is documented — holds by construction: routes are added only with
//! `utoipa_axum::routes!`, which a source check below enforces.
//!
//! Regenerate the checked-in documents after changing an API:
//! `WARIFU_WRITE_OPENAPI=1 cargo test -p warifu-services --test openapi`.

mod common;

use std::path::PathBuf;

use common::Db;
use serde_json::Value;
use warifu_services::error::ErrorCode;

fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi")
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("pretty");
    s.push('\n');
    s
}

/// Every `$ref` in `v` with where it is.
fn refs(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref"
                    && let Some(r) = x.as_str()
                {
                    out.push((at.to_owned(), r.to_owned()));
                }
                refs(x, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                refs(x, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn check_valid(service: &str, doc: &Value, text: &str) {
    let spec = oas3::from_json(text).unwrap_or_else(|e| panic!("{service}: not OpenAPI 3: {e}"));
    assert!(
        spec.openapi.starts_with("3."),
        "{service}: {}",
        spec.openapi
    );
    assert!(!doc["paths"].as_object().expect("paths").is_empty());
    let mut all = Vec::new();
    refs(doc, "", &mut all);
    assert!(!all.is_empty(), "{service}: no $ref at all");
    for (at, r) in all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{service}: external $ref {r} at {at}"));
        assert!(
            doc.pointer(pointer).is_some(),
            "{service}: $ref {r} at {at} does not resolve"
        );
    }
    // Every stable error code is documented.
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{service}: no ErrorCode enum"));
    for c in ErrorCode::ALL {
        assert!(
            codes.iter().any(|x| x == c.as_str()),
            "{service}: error code {c} undocumented"
        );
    }
    // Every path parameter is declared.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let declared: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
                .unwrap_or_default();
            for seg in path.split('/') {
                if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    assert!(
                        declared.contains(&name),
                        "{service}: {method} {path} does not declare {name}"
                    );
                }
            }
            assert!(
                op["responses"]["200"].is_object() || op["responses"]["201"].is_object(),
                "{service}: {method} {path} documents no success"
            );
        }
    }
}

/// Sends `method path` with placeholder parameters and an empty JSON object; returns the
/// status and the error code if the answer is an error body.
async fn probe(http: &reqwest::Client, base: &str, method: &str, path: &str) -> (u16, String) {
    let concrete: Vec<String> = path
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                "probe".to_owned()
            } else {
                seg.to_owned()
            }
        })
        .collect();
    let url = format!("{base}{}", concrete.join("/"));
    let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
    let r = http
        .request(m, &url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("probe");
    let status = r.status().as_u16();
    let body = r.bytes().await.expect("body");
    let code = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code)
}

#[tokio::test]
async fn documents_are_current_valid_and_complete() {
    let env = common::start(Db::Sqlite).await.expect("deployment");
    let write = std::env::var("WARIFU_WRITE_OPENAPI").is_ok_and(|v| v == "1");
    let http = warifu_services::http::tls::client(|b| b).expect("http client");
    let services = [
        ("merchant", env.merchant()),
        ("issuer", env.issuer()),
        ("carrier", env.carrier()),
    ];
    let mut stale = Vec::new();
    for (service, id) in &services {
        let base = env.local.endpoint(id).expect("endpoint");
        let r = http
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .expect("GET /openapi.json");
        assert_eq!(r.status().as_u16(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .is_ok_and(|c| c.starts_with("application/json"))
        );
        let doc: Value = r.json().await.expect("JSON");
        let text = pretty(&doc);
        check_valid(service, &doc, &text);
        assert_eq!(
            doc["info"]["title"].as_str(),
            Some(format!("Warifu {service} API").as_str())
        );

        // (c) Every documented path and method is served.
        let paths = doc["paths"].as_object().expect("paths");
        for must in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/openapi.json",
            "/v1/handshake/hello",
        ] {
            assert!(paths.contains_key(must), "{service}: {must} undocumented");
        }
        let mut probed = 0;
        for (path, item) in paths {
            for method in item.as_object().expect("item").keys() {
                let (status, code) = probe(&http, &base, method, path).await;
                assert!(
                    code != "not_found" && code != "method_not_allowed" && status != 405,
                    "{service}: documented {method} {path} is not served ({status} {code})"
                );
                probed += 1;
            }
        }
        assert!(probed >= 6, "{service}: only {probed} operations");
        // The probe can fail: an undocumented path and a wrong method hit the fallbacks.
        assert_eq!(
            probe(&http, &base, "get", "/v1/not-a-route").await.1,
            "not_found"
        );
        assert_eq!(
            probe(&http, &base, "delete", "/healthz").await.1,
            "method_not_allowed"
        );

        // (a) The checked-in copy is the generated document.
        let file = docs_dir().join(format!("{service}.json"));
        if write {
            std::fs::create_dir_all(docs_dir()).expect("docs/openapi");
            std::fs::write(&file, &text).expect("write");
        } else if std::fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
            stale.push(file.display().to_string());
        }
    }
    env.stop().await;
    assert!(
        stale.is_empty(),
        "out of date: {stale:?}; regenerate with WARIFU_WRITE_OPENAPI=1 cargo test -p warifu-services --test openapi"
    );
}

/// By construction: the API routers are built only from `routes!` (documented handlers);
/// a plain `.route(` in a party's API module would serve an undocumented route.
#[test]
fn api_routes_are_added_only_with_routes_macro() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    for file in [
        "merchant/mod.rs",
        "merchant/intake.rs",
        "merchant/lifecycle.rs",
        "merchant/admin.rs",
        "issuer/mod.rs",
        "issuer/authorize.rs",
        "issuer/payments.rs",
        "issuer/statement.rs",
        "carrier/mod.rs",
        "carrier/shipments.rs",
        "carrier/tracking.rs",
        "session/server.rs",
        "http/service.rs",
    ] {
        let text = std::fs::read_to_string(src.join(file)).expect("source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            assert!(
                !code.contains(".route(") && !code.contains(".route_service("),
                "{file}:{}: a route added without documentation: {line}",
                n + 1
            );
        }
    }
}
