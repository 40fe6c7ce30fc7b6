//! The wallet page and the dashboards in a real headless Chromium, driven over WebDriver
//! (chromedriver) from Rust: `warifu up` is started as a user would, a cardholder creates the
//! wallet, sees the catalog, orders with instalments and a gift address, checks the disclosure
//! preview, sends and sees the order shipped; the merchant's dashboard shows the order without
//! card number or address, the carrier's shows the address, and each dashboard's charts draw
//! bars within the window; a card the issuer does not know is declined with a clear message,
//! and the decline shows in the merchant's and issuer's charts. Screenshots go to
//! `target/browser-artifacts/`.
//!
//! Without `/usr/bin/chromium` and `chromedriver` the test prints SKIP, unless
//! `WARIFU_REQUIRE_BROWSER=1`, when it fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

const CARD: &str = "4539148803436467";
const UNKNOWN_CARD: &str = "4111111111111111";
const GIFT_NAME: &str = "Jiro Tanaka";
const GIFT_ADDRESS: &str = "3-3-3 Tenjin, Chuo-ku, Fukuoka 810-0001";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find_tool(names: &[&str]) -> Option<PathBuf> {
    for n in names {
        let p = Path::new(n);
        if p.is_absolute() && p.exists() {
            return Some(p.to_owned());
        }
        if let Ok(path) = std::env::var("PATH") {
            for dir in std::env::split_paths(&path) {
                let c = dir.join(n);
                if c.exists() {
                    return Some(c);
                }
            }
        }
    }
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

/// A minimal WebDriver client.
struct Driver {
    http: reqwest::Client,
    base: String,
}

impl Driver {
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("webdriver reachable");
        let status = resp.status();
        let v: Value = resp.json().await.expect("webdriver json");
        if status.is_success() {
            Ok(v["value"].clone())
        } else {
            Err(format!("webdriver {path}: {status} {v}"))
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// Finds `css` and runs `then` on it (a click, a text read, typing), retrying for a few
    /// seconds while the element is missing or stale: a click's navigation may still be
    /// loading the next page.
    async fn on_element(
        &self,
        css: &str,
        then: &[(reqwest::Method, &str, Option<Value>)],
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let attempt = async {
                let v = self
                    .try_call(
                        reqwest::Method::POST,
                        "/element",
                        Some(json!({"using": "css selector", "value": css})),
                    )
                    .await?;
                let e = v[ELEMENT]
                    .as_str()
                    .ok_or_else(|| format!("no element {css}: {v}"))?
                    .to_owned();
                let mut last = Value::String(e.clone());
                for (method, action, body) in then {
                    let path = format!("/element/{e}{action}");
                    last = self.try_call(method.clone(), &path, body.clone()).await?;
                }
                Ok::<Value, String>(last)
            };
            match attempt.await {
                Ok(v) => return v,
                Err(e) if Instant::now() > deadline => {
                    let src = self.source().await;
                    panic!("{e}\n--- page ---\n{src}");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        let v = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await;
        v.as_array()
            .expect("elements")
            .iter()
            .map(|e| e[ELEMENT].as_str().expect("id").to_owned())
            .collect()
    }

    async fn click(&self, css: &str) {
        self.on_element(css, &[(reqwest::Method::POST, "/click", Some(json!({})))])
            .await;
    }

    async fn fill(&self, css: &str, text: &str) {
        self.on_element(
            css,
            &[
                (reqwest::Method::POST, "/clear", Some(json!({}))),
                (
                    reqwest::Method::POST,
                    "/value",
                    Some(json!({ "text": text })),
                ),
            ],
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        self.on_element(css, &[(reqwest::Method::GET, "/text", None)])
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn source(&self) -> String {
        self.get("/source")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the current URL contains `part` (a form post may still be in flight).
    async fn wait_url(&self, part: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let u = self.url().await;
            if u.contains(part) {
                return u;
            }
            if Instant::now() > deadline {
                let src = self.source().await;
                panic!("never reached {part}; at {u}\n{src}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page's source contains `text`.
    async fn wait_text(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let src = self.source().await;
            if src.contains(text) {
                return src;
            }
            if Instant::now() > deadline {
                panic!("the page never showed {text:?}:\n{src}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `script` in the page and returns its value.
    async fn js(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    /// The page's charts (issue 18.10), checked: each title in `expected` has a `<svg>` that
    /// fits in the window and, where `bars` says so, draws at least one bar of non-zero
    /// size (of class `bars` names, e.g. `c-bad` for a decline).
    async fn charts(&self, expected: &[(&str, Option<&str>)]) {
        let v = self
            .js(
                "return [...document.querySelectorAll('figure.chart')].map(f => {
                const svg = f.querySelector('svg');
                const title = svg && svg.querySelector('title');
                const drawn = svg ? [...svg.querySelectorAll('rect')].filter(r => {
                    const b = r.getBoundingClientRect(); return b.width > 0 && b.height > 0;
                }).map(r => r.getAttribute('class')) : [];
                return [title ? title.textContent : '', drawn,
                        f.getBoundingClientRect().right <= document.documentElement.clientWidth];
            });",
            )
            .await;
        let found = v.as_array().expect("charts");
        for (title, bars) in expected {
            let c = found
                .iter()
                .find(|c| c[0] == *title)
                .unwrap_or_else(|| panic!("no chart {title:?} in {found:?}"));
            assert!(
                c[2].as_bool().unwrap_or(false),
                "{title}: the chart overflows the window"
            );
            if let Some(class) = bars {
                let drawn = c[1].as_array().expect("bars");
                assert!(
                    drawn
                        .iter()
                        .any(|b| b.as_str().is_some_and(|b| b.contains(class))),
                    "{title}: no {class} bar drawn in {c}"
                );
            }
        }
    }

    /// A screenshot of the page, after checking that it does not scroll sideways (the
    /// window is 1280 px wide).
    async fn shot(&self, name: &str) {
        let w = self
            .js("return [document.documentElement.scrollWidth, document.documentElement.clientWidth];")
            .await;
        let (scroll, client) = (w[0].as_i64().unwrap_or(0), w[1].as_i64().unwrap_or(0));
        assert!(
            scroll <= client,
            "{name}: the page scrolls sideways at 1280 px ({scroll} > {client})"
        );
        let b64 = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("screenshot"))
            .expect("png");
        std::fs::write(artifacts().join(format!("{name}.png")), png).expect("write png");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cardholder_buys_in_a_real_browser() {
    let required = std::env::var("WARIFU_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let chromium = find_tool(&["/usr/bin/chromium", "chromium"]);
    let driver_bin = find_tool(&["/usr/bin/chromedriver", "chromedriver"]);
    let (Some(chromium), Some(driver_bin)) = (chromium, driver_bin) else {
        assert!(
            !required,
            "WARIFU_REQUIRE_BROWSER=1 but chromium or chromedriver is missing (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "\n********************************************************************\n\
             SKIP browser test: chromium or chromedriver not found\n\
             (apt-get install chromium chromium-driver; WARIFU_REQUIRE_BROWSER=1 makes this fail)\n\
             ********************************************************************\n"
        );
        return;
    };
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tmp");

    // `warifu up`, as a user runs it.
    let mut up = Command::new(env!("CARGO_BIN_EXE_warifu"))
        .args(["up", "--log", "warn", "--data"])
        .arg(tmp.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("warifu up");
    let stdout = up.stdout.take().expect("stdout");
    let up = Killed(up);
    let (wallet_url, dashboards, pay_link) = tokio::task::spawn_blocking(move || {
        let mut wallet = None;
        let mut dashboards = Vec::new();
        let mut pay_link = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("up output");
            if line.trim_start().starts_with("http://") && line.contains("/pay?") {
                pay_link = line.trim().to_owned();
            }
            if let Some(rest) = line.strip_prefix("Dashboards (read-only): ") {
                dashboards = rest.split_whitespace().map(str::to_owned).collect();
            }
            if line.contains("in your browser: ") {
                wallet = line.rsplit(' ').next().map(str::to_owned);
            }
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
        (
            wallet.expect("the wallet URL is printed"),
            dashboards,
            pay_link,
        )
    })
    .await
    .expect("reading up");
    assert_eq!(dashboards.len(), 3, "three dashboards printed");

    // chromedriver on a free loopback port.
    let port = free_port();
    let _chromedriver = Killed(
        Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver"),
    );
    let http = warifu_services::http::tls::client(|b| b).expect("http client");
    let root = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if http.get(format!("{root}/status")).send().await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let session: Value = http
        .post(format!("{root}/session"))
        .json(&json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": ["--headless=new", "--no-sandbox", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1600"]
            }
        }}}))
        .send()
        .await
        .expect("new session")
        .json()
        .await
        .expect("session json");
    let sid = session["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {session}"))
        .to_owned();
    let d = Driver {
        http: http.clone(),
        base: format!("{root}/session/{sid}"),
    };

    // Create the wallet (the demo card and addresses are offered).
    d.goto(&wallet_url).await;
    assert!(d.source().await.contains("Create your wallet"));
    d.shot("01-create-wallet").await;
    d.fill("#wallet_passphrase", "correct horse battery").await;
    d.fill("#wallet_passphrase2", "correct horse battery").await;
    d.click("form[action='/unlock'] button").await;
    let home = d.wait_text("Wallet of").await;
    assert!(home.contains("•••• 6467"), "the demo card, masked");
    assert!(!home.contains(CARD), "never the full number");
    d.shot("02-home").await;

    // The catalog from the merchant's order form; an order with instalments and a gift.
    d.goto(&format!("{wallet_url}shop")).await;
    let shop = d.source().await;
    assert!(shop.contains("Sencha green tea") && shop.contains("TEA-001"));
    // Radios and checkboxes sit beside their labels (issue 18.2), and the instalment count is
    // hidden while lump sum is chosen.
    let gaps = d
        .js("return [...document.querySelectorAll('.choice')].map(c => { \
               const i = c.querySelector('input').getBoundingClientRect(); \
               const l = c.querySelector('label').getBoundingClientRect(); \
               return [l.left - i.right, Math.abs((l.top + l.bottom) / 2 - (i.top + i.bottom) / 2)]; });")
        .await;
    let gaps = gaps.as_array().expect("gaps");
    assert!(gaps.len() >= 6, "radios on the order form: {gaps:?}");
    for g in gaps {
        let (dx, dy) = (g[0].as_f64().unwrap_or(99.0), g[1].as_f64().unwrap_or(99.0));
        assert!(
            (0.0..=16.0).contains(&dx) && dy <= 8.0,
            "a radio far from its label: {g}"
        );
    }
    let shown = d
        .js("return document.getElementById('instalments').offsetParent !== null;")
        .await;
    assert_eq!(shown, json!(false), "no instalment count under lump sum");
    d.shot("03-order-form").await;
    // First without a product: a clear message.
    d.click("#preview").await;
    assert!(
        d.text("#errors")
            .await
            .contains("Choose at least one product")
    );
    d.fill("#qty_TEA-001", "2").await;
    d.fill("#qty_CUP-002", "1").await;
    d.click("#method_installments").await;
    let shown = d
        .js("return document.getElementById('instalments').offsetParent !== null;")
        .await;
    assert_eq!(shown, json!(true), "the count shows for instalments");
    d.fill("#instalments", "6").await;
    d.click("#dest_gift").await;
    d.fill("#gift_addressee", GIFT_NAME).await;
    d.fill("#gift_address", GIFT_ADDRESS).await;
    d.click("#preview").await;

    // The disclosure preview: the policy made visible.
    let preview = d.wait_text("who receives what").await;
    assert!(preview.contains("who receives what"), "preview page");
    assert!(!preview.contains(CARD));
    let cell = |f: &str, p: &str| format!("#field-{f} td[data-party='{p}']");
    assert!(d.text(&cell("card", "issuer")).await.contains("receives"));
    assert!(d.text(&cell("card", "merchant")).await.contains("never"));
    assert!(d.text(&cell("card", "carrier")).await.contains("never"));
    assert!(
        d.text(&cell("delivery_destination", "carrier"))
            .await
            .contains("receives")
    );
    assert!(
        d.text(&cell("delivery_destination", "merchant"))
            .await
            .contains("never")
    );
    assert!(
        d.text(&cell("delivery_destination", "issuer"))
            .await
            .contains("never")
    );
    assert!(
        d.text(&cell("payment_method", "issuer"))
            .await
            .contains("receives")
    );
    assert!(
        d.text("#field-payment_method")
            .await
            .contains("6 monthly instalments")
    );
    d.shot("04-disclosure-preview").await;
    d.click("#send").await;

    // The order page follows the states.
    let order_url = d.wait_url("/orders/").await;
    let order_id = order_url.rsplit('/').next().expect("order id").to_owned();
    assert!(order_id.starts_with("ord_"), "{order_url}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let state = d.text("#merchant-state").await;
        if ["shipped", "captured", "delivered"].contains(&state.as_str()) {
            break;
        }
        assert!(Instant::now() < deadline, "order stuck in {state}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        d.goto(&order_url).await;
    }
    let payment = d.text("#payment-state").await;
    assert!(
        ["authorized", "captured"].contains(&payment.as_str()),
        "{payment}"
    );
    assert!(
        d.text("#instalments").await.contains(" + "),
        "the instalment schedule"
    );
    let page = d.source().await;
    assert!(page.contains("<svg"), "timeline picture");
    assert!(
        page.contains("delivery request"),
        "timeline has the delivery request"
    );
    assert!(
        page.contains("data-cell=\"card:issuer\""),
        "disclosure matrix"
    );
    assert!(!page.contains("class=\"leak\""), "no leak in the matrix");
    assert!(!page.contains(CARD));
    d.shot("05-order-shipped").await;

    // Dashboards (operator access is open on loopback in `up`).
    d.goto(&dashboards[0]).await;
    let m = d.source().await;
    assert!(m.contains(&order_id), "merchant dashboard lists the order");
    assert!(!m.contains(CARD), "merchant dashboard: no card number");
    assert!(
        !m.contains(GIFT_ADDRESS) && !m.contains(GIFT_NAME),
        "merchant: no destination"
    );
    d.charts(&[
        ("Orders per minute", Some("c0")),
        ("Outbox backlog by minute enqueued", None),
        ("Approvals and declines by code, last 3 h", Some("c-good")),
    ])
    .await;
    d.shot("06-merchant-dashboard").await;
    d.goto(&dashboards[1]).await;
    let i = d.source().await;
    assert!(i.contains(&order_id) && i.contains("•••• 6467"));
    assert!(!i.contains(CARD) && !i.contains(GIFT_ADDRESS));
    d.charts(&[
        ("Authorizations per minute", Some("c-good")),
        ("Approvals and decline codes, last 3 h", Some("c-good")),
    ])
    .await;
    d.shot("07-issuer-dashboard").await;
    d.goto(&dashboards[2]).await;
    let c = d.source().await;
    assert!(c.contains(&order_id));
    assert!(
        c.contains(GIFT_ADDRESS) && c.contains(GIFT_NAME),
        "carrier holds the destination"
    );
    assert!(
        !c.contains(CARD) && !c.contains("6467"),
        "carrier: no card data"
    );
    d.charts(&[
        ("Shipments by status per minute", Some("c0")),
        ("Shipments by status now", Some("")),
    ])
    .await;
    d.shot("08-carrier-dashboard").await;

    // A card the issuer does not know: first a typo (Luhn), then the card; the order is
    // declined with a clear message.
    d.goto(&format!("{wallet_url}wallet")).await;
    d.fill("#number", "4111 1111 1111 1112").await;
    d.fill("#exp_month", "12").await;
    d.fill("#exp_year", "2032").await;
    d.click("form[action='/wallet/cards'] button").await;
    d.wait_text("id=\"errors\"").await;
    assert!(d.text("#errors").await.contains("Luhn"));
    assert!(
        !d.source().await.contains("4111 1111 1111 1112"),
        "the number is not echoed"
    );
    d.fill("#number", UNKNOWN_CARD).await;
    d.fill("#exp_month", "12").await;
    d.fill("#exp_year", "2032").await;
    d.click("form[action='/wallet/cards'] button").await;
    d.wait_text("Card ending 1111 added").await;
    d.shot("09-wallet-cards").await;
    d.goto(&format!("{wallet_url}shop")).await;
    d.fill("#qty_CUP-002", "1").await;
    let cards = d.find_all("input[name='card']").await;
    assert_eq!(cards.len(), 2);
    d.post(&format!("/element/{}/click", cards[1]), json!({}))
        .await;
    d.click("#preview").await;
    d.wait_text("who receives what").await;
    assert!(d.text(&cell("card", "issuer")).await.contains("receives"));
    d.click("#send").await;
    d.wait_url("/orders/").await;
    let declined = d.text("#declined").await;
    assert!(declined.contains("Payment declined"), "{declined}");
    assert!(declined.contains("does not match"), "{declined}");
    assert_eq!(d.text("#merchant-state").await, "declined");
    d.shot("10-declined").await;

    // A digital order (no carrier at all), then cancelled: the payment is given back.
    d.goto(&format!("{wallet_url}shop")).await;
    d.fill("#qty_EBOOK-003", "1").await;
    d.click("#dest_digital").await;
    d.click("#preview").await;
    d.wait_text("who receives what").await;
    assert!(
        d.text(&cell("delivery_destination", "carrier"))
            .await
            .contains("never")
    );
    d.click("#send").await;
    let digital_url = d.wait_url("/orders/").await;
    d.click("#cancel").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let state = d.text("#merchant-state").await;
        if ["refunded", "voided"].contains(&state.as_str()) {
            break;
        }
        assert!(Instant::now() < deadline, "cancel stuck in {state}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        d.goto(&digital_url).await;
    }
    d.shot("11-cancelled").await;

    // The order list: each order's merchant and state; the declined one says so.
    d.goto(&format!("{wallet_url}orders")).await;
    let list = d.source().await;
    assert!(list.contains("data-state=\"declined\""), "{list}");
    assert!(list.contains("merchant:shop.example"));
    d.shot("12-orders").await;

    // A payment link from `up`: the wallet goes straight to that order's preview.
    assert!(
        pay_link.contains("/pay?merchant="),
        "up prints a payment link"
    );
    let qr = http
        .get(pay_link.replace("/pay?", "/pay/qr.svg?"))
        .send()
        .await
        .expect("qr");
    assert_eq!(qr.status(), 200);
    assert!(qr.text().await.expect("svg").contains("<svg"));
    d.goto(&format!("{wallet_url}link")).await;
    d.fill("#url", &pay_link).await;
    d.click("#open-link").await;
    d.wait_text("who receives what").await;
    assert!(d.text("#field-product_number").await.contains("TEA-001"));
    assert!(d.text("#field-quantity").await.contains('2'));
    d.shot("13-payment-link-preview").await;
    d.click("#send").await;
    let link_order = d.wait_url("/orders/").await;
    assert!(link_order.contains("/orders/ord_"));
    // A link whose endpoint is not the directory's is refused.
    d.goto(&format!("{wallet_url}link")).await;
    d.fill(
        "#url",
        "http://127.0.0.1:9/pay?merchant=merchant:shop.example&items=TEA-001:1",
    )
    .await;
    d.click("#open-link").await;
    d.wait_text("not opened").await;

    // An order placed with `wallet buy` shows in the web wallet: one history.
    let data = tmp.path().join("data");
    let pass = tmp.path().join("wallet-pass.txt");
    std::fs::write(&pass, "correct horse battery\n").expect("pass");
    let bought = Command::new(env!("CARGO_BIN_EXE_warifu"))
        .args([
            "wallet",
            "buy",
            "--merchant",
            "merchant:shop.example",
            "--json",
        ])
        .arg("--key")
        .arg(data.join("wallet/hanako.key"))
        .arg("--profile")
        .arg(data.join("wallet/hanako.json"))
        .arg("--directory")
        .arg(data.join("directory.json"))
        .args(["--item", "CUP-002:1", "--method", "bonus"])
        .arg("--wallet-passphrase-file")
        .arg(&pass)
        .output()
        .expect("wallet buy");
    assert!(bought.status.success(), "{bought:?}");
    let v: Value = serde_json::from_slice(&bought.stdout).expect("json");
    let shell_order = v["order_id"].as_str().expect("order id").to_owned();
    d.goto(&format!("{wallet_url}orders")).await;
    d.wait_text(&shell_order).await;
    d.shot("14-orders-with-shell-order").await;

    // The decline shows in the charts: a decline-code bar at the merchant and the issuer.
    d.goto(&dashboards[0]).await;
    d.charts(&[("Approvals and declines by code, last 3 h", Some("c-bad"))])
        .await;
    d.shot("15-merchant-charts-after-decline").await;
    d.goto(&dashboards[1]).await;
    d.charts(&[
        ("Authorizations per minute", Some("c-bad")),
        ("Approvals and decline codes, last 3 h", Some("c-bad")),
    ])
    .await;
    d.shot("16-issuer-charts-after-decline").await;

    let _ = d.call(reqwest::Method::DELETE, "", None).await;
    drop(up);
    let took = started.elapsed();
    eprintln!("browser test took {:.1} s", took.as_secs_f64());
    assert!(
        took < Duration::from_secs(120),
        "the browser test took {took:?}"
    );
}

/// Reads `warifu up`'s (or `wallet web`'s) standard output until `until`, returning its lines.
fn read_until(child: &mut Child, until: &str) -> Vec<String> {
    let out = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line.expect("output");
        let done = line.contains(until);
        lines.push(line);
        if done {
            break;
        }
    }
    lines
}

/// `warifu wallet web` on its own (no browser needed): loopback Host only, CSRF on every
/// form, a session cookie after unlocking, the wallet file created 0600 and encrypted, and
/// the order form fetched from the merchant in the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_web_guards_its_forms() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let mut up = Command::new(env!("CARGO_BIN_EXE_warifu"))
        .args(["up", "--log", "warn", "--data"])
        .arg(&data)
        .stdout(Stdio::piped())
        .spawn()
        .expect("warifu up");
    let _up = tokio::task::spawn_blocking(move || {
        read_until(&mut up, "Press Ctrl-C");
        Killed(up)
    })
    .await
    .expect("up");
    let vault = tmp.path().join("mine.vault");
    let mut web = Command::new(env!("CARGO_BIN_EXE_warifu"))
        .args([
            "wallet",
            "web",
            "--merchant",
            "merchant:shop.example",
            "--key",
        ])
        .arg(data.join("wallet/hanako.key"))
        .arg("--directory")
        .arg(data.join("directory.json"))
        .arg("--wallet")
        .arg(&vault)
        .stdout(Stdio::piped())
        .spawn()
        .expect("wallet web");
    let (lines, _web) = tokio::task::spawn_blocking(move || {
        let l = read_until(&mut web, "Ctrl-C");
        (l, Killed(web))
    })
    .await
    .expect("web");
    let url = lines
        .iter()
        .find_map(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
        .expect("url printed")
        .trim_end_matches('/')
        .to_owned();
    let http =
        warifu_services::http::tls::client(|b| b.redirect(reqwest::redirect::Policy::none()))
            .expect("client");
    let form = |path: &str, body: String, cookie: Option<&str>| {
        let mut r = http
            .post(format!("{url}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(c) = cookie {
            r = r.header("cookie", c.to_owned());
        }
        r.send()
    };

    // Another Host name (DNS rebinding) is refused.
    let r = http
        .get(format!("{url}/"))
        .header("host", "attacker.example")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 421);
    // Without a session: the unlock page; the shop sends back to it.
    let page = http
        .get(format!("{url}/"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert!(page.contains("Create your wallet"));
    let r = http.get(format!("{url}/shop")).send().await.expect("get");
    assert_eq!(r.status(), 303);
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrf")
        .to_owned();
    // A form without the token is refused; mismatched passphrases are explained.
    let r = form(
        "/unlock",
        "csrf=forged&wallet_passphrase=abcdefgh1&wallet_passphrase2=abcdefgh1".into(),
        None,
    )
    .await
    .expect("post");
    assert_eq!(r.status(), 403);
    assert!(!vault.exists());
    let r = form(
        "/unlock",
        format!("csrf={csrf}&wallet_passphrase=abcdefgh1&wallet_passphrase2=abcdefgh2"),
        None,
    )
    .await
    .expect("post");
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("the two passphrases differ")
    );
    let r = form(
        "/unlock",
        format!("csrf={csrf}&wallet_passphrase=abcdefgh1&wallet_passphrase2=abcdefgh1"),
        None,
    )
    .await
    .expect("post");
    assert_eq!(r.status(), 303);
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("session cookie")
        .to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let cookie = cookie.split(';').next().expect("pair").to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&vault)
            .expect("vault")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A card typed in: kept encrypted, shown as its last four digits only.
    let home = http
        .get(format!("{url}/wallet"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    let session_csrf = home
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrf")
        .to_owned();
    assert_ne!(session_csrf, csrf, "a fresh token per session");
    let r = form(
        "/wallet/cards",
        format!(
            "csrf={csrf}&holder_name=Hanako+Yamada&number={CARD}&exp_month=7&exp_year=2031&issuer=issuer%3Abank.example"
        ),
        Some(&cookie),
    )
    .await
    .expect("post");
    assert_eq!(
        r.status(),
        403,
        "the pre-session token is not the session's"
    );
    let r = form(
        "/wallet/cards",
        format!(
            "csrf={session_csrf}&holder_name=Hanako+Yamada&number={CARD}&exp_month=7&exp_year=2031&issuer=issuer%3Abank.example"
        ),
        Some(&cookie),
    )
    .await
    .expect("post");
    assert_eq!(r.status(), 200);
    let body = r.text().await.expect("body");
    assert!(body.contains("Card ending 6467 added") && !body.contains(CARD));
    let raw = std::fs::read(&vault).expect("vault");
    assert!(
        !raw.windows(CARD.len()).any(|w| w == CARD.as_bytes()),
        "the wallet file is encrypted"
    );
    // The order form comes from the merchant, in the session.
    let shop = http
        .get(format!("{url}/shop"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert!(shop.contains("Sencha green tea") && shop.contains("name=\"form_id\""));
}
