//! One function per route of the wallet page: unlock, the wallet's cards and addresses, the
//! shop, the disclosure preview, sealing and submitting, the orders and one order's page.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use warifu_core::OrderId;

use super::app::*;
use super::history;
use super::keys;
use super::vault::{self, Vault};
use super::vault::{Address, StoredCard, VaultData};
use super::views;
use crate::support::service::revocation_feed;
use anyhow::{Context, Result};
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::html;
use warifu_core::PartyId;
use warifu_core::order::{Card, Destination, Expiry, Order, OrderForm, PaymentMethod};
use warifu_core::secret::Secret;
use warifu_core::{Role, order};
use warifu_services::cardholder::{CancelFate, Cardholder};
use warifu_services::dev::order::{Stores, across};
use warifu_services::directory::SharedDirectory;
use warifu_services::http::dashboard as shared;
use warifu_services::merchant::links;
use warifu_store::OrderState;
pub(crate) fn unlock_page(app: &App, status: StatusCode, errs: &[String]) -> Response {
    let body = views::unlock(
        &app.boot_csrf,
        &app.key_paths_text(),
        keys::any_sealed(&app.cfg.key_paths),
        &app.cfg.vault.display().to_string(),
        Vault::exists(&app.cfg.vault),
        app.cfg.seed.is_some(),
        errs,
    );
    page(status, "Unlock", html! {}, body)
}

pub(crate) async fn index(State(app): State<Shared>, headers: HeaderMap) -> Response {
    match app.session(&headers) {
        Some(s) => {
            refresh_states(&s).await;
            let v = s.vault().await;
            page(
                StatusCode::OK,
                "Wallet",
                views::nav(&s.csrf),
                views::home(s.wallet.id().as_str(), &v.data),
            )
        }
        None => unlock_page(&app, StatusCode::OK, &[]),
    }
}

pub(crate) async fn unlock(
    State(app): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !same(
        form.get("csrf").map(String::as_str).unwrap_or(""),
        &app.boot_csrf,
    ) {
        return unlock_page(
            &app,
            StatusCode::FORBIDDEN,
            &["This form is stale; reload the page and try again.".into()],
        );
    }
    let key_pass = form
        .get("key_passphrase")
        .filter(|p| !p.is_empty())
        .map(|p| Secret::new(p.as_str()));
    let wallet_pass = Secret::new(form.get("wallet_passphrase").cloned().unwrap_or_default());
    let repeat = form.get("wallet_passphrase2").cloned();
    let seed = form.contains_key("seed");
    let pass = wallet_pass.clone();
    let app2 = app.clone();
    let opened = tokio::task::spawn_blocking(move || -> Result<(Cardholder, Vault)> {
        let cfg = &app2.cfg;
        let source = keys::load(&cfg.key_paths, cfg.scheme, cfg.key_cache, key_pass.as_ref())?;
        let source = match revocation_feed(cfg.revocations.as_deref(), Some(&cfg.directory))? {
            Some(feed) => feed.protect(source),
            None => source,
        };
        let dir =
            Arc::new(SharedDirectory::from_file(&cfg.directory).with_context(|| {
                format!("cannot read the directory {}", cfg.directory.display())
            })?);
        let vault = if Vault::exists(&cfg.vault) {
            Vault::open(&cfg.vault, &wallet_pass)?
        } else {
            if repeat.as_deref() != Some(wallet_pass.expose()) {
                anyhow::bail!("the two passphrases differ");
            }
            let data = if seed {
                cfg.seed.clone().unwrap_or_default()
            } else {
                VaultData::default()
            };
            Vault::create(&cfg.vault, &wallet_pass, data)?
        };
        Ok((Cardholder::new(source, dir), vault))
    })
    .await;
    let (wallet, vault) = match opened {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            return unlock_page(&app, StatusCode::UNPROCESSABLE_ENTITY, &[format!("{e:#}")]);
        }
        Err(_) => {
            return unlock_page(
                &app,
                StatusCode::INTERNAL_SERVER_ERROR,
                &["unlocking failed".into()],
            );
        }
    };
    let (cookie, csrf) = match (random_token(), random_token()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            return unlock_page(
                &app,
                StatusCode::INTERNAL_SERVER_ERROR,
                &["no randomness".into()],
            );
        }
    };
    tracing::info!(cardholder = %wallet.id(), "wallet unlocked");
    let set = format!("{COOKIE}={cookie}; HttpOnly; SameSite=Strict; Path=/");
    *app.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(Session {
        cookie,
        csrf,
        wallet,
        vault: tokio::sync::Mutex::new(vault),
        vault_path: app.cfg.vault.clone(),
        pass,
        stamp: Mutex::new(history::stamp(&app.cfg.vault)),
        drafts: Mutex::new(Vec::new()),
    }));
    let mut r = redirect(if app.cfg.link.is_some() {
        "/link?open=start"
    } else {
        "/"
    });
    if let Ok(v) = HeaderValue::from_str(&set) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

pub(crate) async fn lock(State(app): State<Shared>, _: Posted) -> Response {
    *app.session.lock().unwrap_or_else(|p| p.into_inner()) = None;
    tracing::info!("wallet locked");
    let mut r = redirect("/");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("warifu_wallet=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    r
}

pub(crate) async fn render_wallet(
    app: &App,
    s: &Session,
    status: StatusCode,
    input: &HashMap<String, String>,
    errs: &[String],
    notice: Option<&str>,
) -> Response {
    let mut list: Vec<String> = Vec::new();
    if let Ok(dir) = SharedDirectory::from_file(&app.cfg.directory) {
        list = dir
            .get()
            .entries()
            .filter(|e| e.role == Role::Issuer)
            .map(|e| e.id.as_str().to_owned())
            .collect();
    }
    let v = s.vault().await;
    page(
        status,
        "Cards & addresses",
        views::nav(&s.csrf),
        views::wallet(&s.csrf, &v.data, &list, input, errs, notice),
    )
}

pub(crate) async fn wallet_page(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let Some(s) = app.session(&headers) else {
        return redirect("/");
    };
    render_wallet(&app, &s, StatusCode::OK, &HashMap::new(), &[], None).await
}

pub(crate) fn text_ok(what: &str, v: &str, errs: &mut Vec<String>) {
    if v.is_empty() {
        errs.push(format!("{what} is required."));
    } else if v.len() > order::MAX_TEXT || v.chars().any(|c| c.is_control() && c != '\n') {
        errs.push(format!(
            "{what} must be at most {} bytes without control characters.",
            order::MAX_TEXT
        ));
    }
}

/// The wallet page again with the form as typed and what is wrong with it; nothing is saved.
pub(crate) async fn wallet_refill(
    app: &App,
    s: &Session,
    status: StatusCode,
    form: &HashMap<String, String>,
    errs: &[String],
) -> Response {
    render_wallet(app, s, status, form, errs, None).await
}

/// Applies `change` to the wallet's data and saves the wallet file; the error if saving failed.
pub(crate) async fn save_change(
    s: &Session,
    change: impl FnOnce(&mut VaultData),
) -> Result<(), String> {
    // Under the wallet file's lock, on its latest version: `wallet buy` may have added an order.
    let _lock = history::Lock::take(&s.vault_path).map_err(|e| format!("{e:#}"))?;
    let mut v = s.vault().await;
    change(&mut v.data);
    let saved = v.save().map_err(|e| format!("{e:#}"));
    s.wrote();
    saved
}

/// Saves `change`; the wallet page with `notice`, and with the error if saving failed.
pub(crate) async fn vault_change(
    app: &App,
    s: &Session,
    notice: &str,
    change: impl FnOnce(&mut VaultData),
) -> Response {
    let errs: Vec<String> = save_change(s, change).await.err().into_iter().collect();
    render_wallet(app, s, StatusCode::OK, &HashMap::new(), &errs, Some(notice)).await
}

/// Saves `change`; the wallet page with `notice`, or the form again if saving failed.
pub(crate) async fn vault_change_or_refill(
    app: &App,
    s: &Session,
    form: &HashMap<String, String>,
    notice: &str,
    change: impl FnOnce(&mut VaultData),
) -> Response {
    match save_change(s, change).await {
        Ok(()) => render_wallet(app, s, StatusCode::OK, &HashMap::new(), &[], Some(notice)).await,
        Err(e) => wallet_refill(app, s, StatusCode::INTERNAL_SERVER_ERROR, form, &[e]).await,
    }
}

pub(crate) async fn save_me(State(app): State<Shared>, Posted { s, form }: Posted) -> Response {
    let mut errs = Vec::new();
    let (name, address, tel, fax) = (
        field(&form, "name"),
        field(&form, "address"),
        field(&form, "telephone"),
        field(&form, "fax"),
    );
    text_ok("Name", &name, &mut errs);
    text_ok("Address", &address, &mut errs);
    text_ok("Telephone", &tel, &mut errs);
    if !errs.is_empty() {
        return wallet_refill(&app, &s, StatusCode::UNPROCESSABLE_ENTITY, &form, &errs).await;
    }
    let me = vault::Contact {
        name,
        address,
        telephone: tel,
        fax: (!fax.is_empty()).then_some(fax),
    };
    vault_change_or_refill(&app, &s, &form, "Details saved.", |d| d.me = me).await
}

pub(crate) async fn add_card(
    State(app): State<Shared>,
    Posted { s, mut form }: Posted,
) -> Response {
    let number = Secret::new(
        form.remove("number")
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect::<String>(),
    );
    let mut errs = Vec::new();
    let holder = field(&form, "holder_name");
    text_ok("The name on the card", &holder, &mut errs);
    if number.is_blank() {
        errs.push("The card number is required.".into());
    } else if let Err(warifu_core::Error::InvalidOrder(m)) = order::check_card_number(&number) {
        errs.push(format!("The {m}."));
    }
    let month = field(&form, "exp_month")
        .parse::<u8>()
        .ok()
        .filter(|m| (1..=12).contains(m));
    let year = field(&form, "exp_year")
        .parse::<u16>()
        .ok()
        .filter(|y| (2000..=2100).contains(y));
    match (month, year) {
        (None, _) => errs.push("The expiry month must be a number from 1 to 12.".into()),
        (_, None) => errs.push("The expiry year must be a four-digit year.".into()),
        (Some(m), Some(y)) => {
            if (y, m) < order::year_month(s.wallet.clock().now_unix()) {
                errs.push("This card has expired.".into());
            }
        }
    }
    let issuer = match PartyId::parse(&field(&form, "issuer")) {
        Ok(i) if i.role() == Role::Issuer => Some(i),
        _ => {
            errs.push("Choose the card's issuer.".into());
            None
        }
    };
    let (Some(month), Some(year), Some(issuer), true) = (month, year, issuer, errs.is_empty())
    else {
        return wallet_refill(&app, &s, StatusCode::UNPROCESSABLE_ENTITY, &form, &errs).await;
    };
    let id = match random_token() {
        Ok(t) => t[..8].to_owned(),
        Err(e) => {
            let errs = [e.to_string()];
            return wallet_refill(&app, &s, StatusCode::INTERNAL_SERVER_ERROR, &form, &errs).await;
        }
    };
    let card = StoredCard {
        id,
        holder_name: holder,
        number,
        expiry: Expiry { year, month },
        issuer,
    };
    let note = format!("Card ending {} added.", card.last4());
    vault_change_or_refill(&app, &s, &form, &note, |d| d.cards.push(card)).await
}

pub(crate) async fn delete_card(State(app): State<Shared>, Posted { s, form }: Posted) -> Response {
    let id = field(&form, "id");
    vault_change(&app, &s, "Card removed.", |d| {
        d.cards.retain(|c| c.id != id)
    })
    .await
}

pub(crate) async fn add_address(State(app): State<Shared>, Posted { s, form }: Posted) -> Response {
    let mut errs = Vec::new();
    let (label, addressee, address) = (
        field(&form, "label"),
        field(&form, "addressee"),
        field(&form, "address"),
    );
    text_ok("The label", &label, &mut errs);
    text_ok("The addressee", &addressee, &mut errs);
    text_ok("The address", &address, &mut errs);
    let Ok(id) = random_token().map(|t| t[..8].to_owned()) else {
        errs.push("no randomness".into());
        return wallet_refill(&app, &s, StatusCode::INTERNAL_SERVER_ERROR, &form, &errs).await;
    };
    if !errs.is_empty() {
        return wallet_refill(&app, &s, StatusCode::UNPROCESSABLE_ENTITY, &form, &errs).await;
    }
    let a = Address {
        id,
        label,
        addressee: Secret::new(addressee),
        address: Secret::new(address),
    };
    vault_change(&app, &s, "Address added.", |d| d.addresses.push(a)).await
}

pub(crate) async fn delete_address(
    State(app): State<Shared>,
    Posted { s, form }: Posted,
) -> Response {
    let id = field(&form, "id");
    vault_change(&app, &s, "Address removed.", |d| {
        d.addresses.retain(|a| a.id != id)
    })
    .await
}
pub(crate) async fn order_form_page(
    s: &Session,
    status: StatusCode,
    form: &OrderForm,
    input: &HashMap<String, String>,
    errs: &[String],
) -> Response {
    let v = s.vault().await;
    page(
        status,
        "Order",
        views::nav(&s.csrf),
        views::order_form(&s.csrf, form, &v.data, input, errs),
    )
}

pub(crate) async fn shop(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let Some(s) = app.session(&headers) else {
        return redirect("/");
    };
    let form = match s.wallet.order_form(&app.cfg.merchant, false).await {
        Ok(f) => f,
        Err(e) => {
            return problem(
                &s,
                StatusCode::BAD_GATEWAY,
                "The merchant cannot be reached",
                format!("{} did not give an order form: {e}", app.cfg.merchant),
            );
        }
    };
    let r = order_form_page(&s, StatusCode::OK, &form, &HashMap::new(), &[]).await;
    s.keep_draft(Draft {
        form,
        input: HashMap::new(),
        pending: None,
        sealed: None,
    });
    r
}

/// Builds the order from the form's input, or says what is wrong.
pub(crate) fn build_order(
    form: &OrderForm,
    data: &VaultData,
    input: &HashMap<String, String>,
    now: u64,
) -> std::result::Result<(Order, PartyId, String), Vec<String>> {
    let mut errs = Vec::new();
    let mut picks: Vec<(&str, u32)> = Vec::new();
    for item in &form.catalog {
        let raw = field(input, &format!("qty_{}", item.product_number));
        match raw.parse::<u32>() {
            _ if raw.is_empty() => {}
            Ok(q) if q <= 999 => {
                if q > 0 {
                    picks.push((&item.product_number, q));
                }
            }
            _ => errs.push(format!(
                "The quantity of {} must be a whole number from 0 to 999.",
                item.name
            )),
        }
    }
    if picks.is_empty() && errs.is_empty() {
        errs.push("Choose at least one product: set its quantity to 1 or more.".into());
    }
    let card = data.cards.iter().find(|c| c.id == field(input, "card"));
    if card.is_none() {
        errs.push("Choose a card.".into());
    }
    let method = match field(input, "method").as_str() {
        "lump_sum" => Some(PaymentMethod::LumpSum),
        "revolving" => Some(PaymentMethod::Revolving),
        "bonus" => Some(PaymentMethod::Bonus),
        "installments" => match field(input, "instalments").parse::<u8>() {
            Ok(n) if (2..=60).contains(&n) => Some(PaymentMethod::Installments { count: n }),
            _ => {
                errs.push("The number of instalments must be from 2 to 60.".into());
                None
            }
        },
        _ => {
            errs.push("Choose a payment method.".into());
            None
        }
    };
    let dest = field(input, "destination");
    let destination = if form.carrier.is_none() {
        None
    } else if dest == "gift" {
        let (who, addr) = (field(input, "gift_addressee"), field(input, "gift_address"));
        if who.is_empty() {
            errs.push("Enter the gift's addressee.".into());
        }
        if addr.is_empty() {
            errs.push("Enter the gift's address.".into());
        }
        Some(Destination {
            addressee: Secret::new(who),
            address: Secret::new(addr),
        })
    } else if let Some(a) = dest
        .strip_prefix("addr:")
        .and_then(|id| data.addresses.iter().find(|a| a.id == id))
    {
        Some(Destination {
            addressee: a.addressee.clone(),
            address: a.address.clone(),
        })
    } else {
        errs.push("Choose where the goods go.".into());
        None
    };
    let me = &data.me;
    if me.address.is_empty() || me.telephone.is_empty() {
        errs.push("Fill in your address and telephone under Cards & addresses first.".into());
    }
    if let Some(c) = card
        && !form.accepted_issuers.contains(&c.issuer)
    {
        errs.push(format!(
            "{} does not accept cards of {}; choose another card.",
            form.merchant, c.issuer
        ));
    }
    let (Some(card), Some(method), true) = (card, method, errs.is_empty()) else {
        return Err(errs);
    };
    let (lines, amount) = Order::lines_from(form, &picks).map_err(|e| vec![e.to_string()])?;
    let order = Order {
        cardholder_name: card.holder_name.clone(),
        cardholder_address: me.address.clone(),
        telephone: me.telephone.clone(),
        fax: me.fax.clone(),
        card: Card {
            number: card.number.clone(),
            expiry: card.expiry,
        },
        lines,
        amount,
        currency: form.currency.clone(),
        payment_method: method,
        destination,
    };
    order.validate(form, now).map_err(|e| vec![e.to_string()])?;
    Ok((order, card.issuer.clone(), card.last4()))
}

pub(crate) async fn preview(Posted { s, form: input }: Posted) -> Response {
    let Some(mut draft) = s.take_draft(&field(&input, "form_id")) else {
        return problem(
            &s,
            StatusCode::GONE,
            "This order form is closed",
            "The order form is no longer open (it was sent, or replaced). Start a new order."
                .into(),
        );
    };
    // Digital goods need a form without a carrier, and physical goods one with a carrier.
    let digital = field(&input, "destination") == "digital";
    if digital == draft.form.carrier.is_some() {
        match s.wallet.order_form(&draft.form.merchant, digital).await {
            Ok(f) => draft.form = f,
            Err(e) => {
                return problem(
                    &s,
                    StatusCode::BAD_GATEWAY,
                    "The merchant cannot be reached",
                    format!("{e}"),
                );
            }
        }
    }
    preview_or_form(&s, draft, input).await
}

/// The disclosure preview of `draft` filled with `input`, or its order form again with what is
/// wrong; the draft is kept either way.
pub(crate) async fn preview_or_form(
    s: &Session,
    mut draft: Draft,
    input: HashMap<String, String>,
) -> Response {
    let built = {
        let v = s.vault().await;
        build_order(&draft.form, &v.data, &input, s.wallet.clock().now_unix())
    };
    draft.input = input;
    draft.sealed = None;
    match built {
        Err(errs) => {
            let r = order_form_page(
                s,
                StatusCode::UNPROCESSABLE_ENTITY,
                &draft.form,
                &draft.input,
                &errs,
            )
            .await;
            draft.pending = None;
            s.keep_draft(draft);
            r
        }
        Ok((order, issuer, last4)) => {
            let beyond = views::beyond(&draft.form, s.wallet.ceiling());
            let body = views::preview(&s.csrf, &draft.form, &order, issuer.as_str(), &[], &beyond);
            draft.pending = Some((order, issuer, last4));
            s.keep_draft(draft);
            page(StatusCode::OK, "Preview", views::nav(&s.csrf), body)
        }
    }
}

pub(crate) async fn edit(Posted { s, form: input }: Posted) -> Response {
    let Some(draft) = s.take_draft(&field(&input, "form_id")) else {
        return redirect("/shop");
    };
    let r = order_form_page(&s, StatusCode::OK, &draft.form, &draft.input, &[]).await;
    s.keep_draft(draft);
    r
}

pub(crate) async fn submit(Posted { s, form: input }: Posted) -> Response {
    let Some(mut draft) = s.take_draft(&field(&input, "form_id")) else {
        return problem(
            &s,
            StatusCode::GONE,
            "This order form is closed",
            "The order was already sent, or its form is no longer open. See your orders.".into(),
        );
    };
    let Some((order, issuer, last4)) = draft.pending.clone() else {
        let r = order_form_page(&s, StatusCode::OK, &draft.form, &draft.input, &[]).await;
        s.keep_draft(draft);
        return r;
    };
    // What the form discloses beyond the wallet's ceiling is sealed only where the cardholder
    // ticked "I accept disclosing FIELD to PARTY" for this order.
    let beyond = views::beyond(&draft.form, s.wallet.ceiling());
    let mut ceiling = s.wallet.ceiling().clone();
    for (f, r) in &beyond {
        if input.contains_key(&format!("accept:{}={}", f.name(), r.as_str()))
            && let Ok(wider) = ceiling.widened(*f, *r)
        {
            ceiling = wider;
        }
    }
    // Seal once; a retry after an outage resubmits the same bundle, which the merchant resumes.
    let sealed = match &draft.sealed {
        Some(b) => b.clone(),
        None => match s
            .wallet
            .seal_within(&draft.form, &order, &issuer, &ceiling)
            .await
        {
            Ok(b) => b,
            Err(e) => {
                let body = views::preview(
                    &s.csrf,
                    &draft.form,
                    &order,
                    issuer.as_str(),
                    &[e.to_string()],
                    &beyond,
                );
                s.keep_draft(draft);
                return page(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Preview",
                    views::nav(&s.csrf),
                    body,
                );
            }
        },
    };
    draft.sealed = Some(sealed.clone());
    let order_id = draft.form.order_id.clone();
    match s.wallet.submit(&sealed).await {
        Ok(outcome) => {
            tracing::info!(order_id = %order_id, state = %outcome.state, "order sent from the wallet page");
            let oref = history::entry(
                &draft.form,
                &order,
                &issuer,
                &last4,
                &outcome.state,
                s.wallet.clock().now_ms(),
            );
            if let Err(e) = save_change(&s, |d| history::upsert(d, oref)).await {
                tracing::warn!(error = %e, "cannot save the wallet after an order");
            }
            redirect(&format!("/orders/{order_id}"))
        }
        Err(e) => {
            tracing::warn!(order_id = %order_id, error = %e, "sending the order failed");
            let body = views::preview(
                &s.csrf,
                &draft.form,
                &order,
                issuer.as_str(),
                &[format!(
                    "The order could not be sent: {e}. Sending again resends the same sealed order."
                )],
                &[],
            );
            s.keep_draft(draft);
            page(
                StatusCode::BAD_GATEWAY,
                "Preview",
                views::nav(&s.csrf),
                body,
            )
        }
    }
}

/// Stores the merchant's `state` of an order in the history, if it changed.
async fn remember_state(s: &Session, order_id: &OrderId, state: &str) {
    let changed = {
        let v = s.vault().await;
        v.data
            .orders
            .iter()
            .any(|o| o.order_id == order_id && o.state.as_deref() != Some(state))
    };
    if changed
        && let Err(e) = save_change(s, |d| {
            history::set_state(d, order_id, state);
        })
        .await
    {
        tracing::warn!(error = %e, "cannot save an order's state in the wallet");
    }
}

/// How many unsettled orders a list asks their merchants about before it is shown.
const REFRESH_AT_MOST: usize = 8;

/// Asks the merchants of the newest unsettled orders for their state (each at most 2 s) and
/// keeps the answers, so the order list shows each order's state.
pub(crate) async fn refresh_states(s: &Session) {
    let open: Vec<(OrderId, PartyId)> = {
        let v = s.vault().await;
        v.data
            .orders
            .iter()
            .rev()
            .filter(|o| {
                !o.state
                    .as_deref()
                    .and_then(OrderState::parse)
                    .is_some_and(|st| st.is_final())
            })
            .take(REFRESH_AT_MOST)
            .map(|o| (o.order_id.clone(), o.merchant.clone()))
            .collect()
    };
    for (id, merchant) in open {
        let asked = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            s.wallet.order_view(&merchant, &id),
        )
        .await;
        if let Ok(Ok(v)) = asked {
            remember_state(s, &id, v.merchant_state()).await;
        }
    }
}

pub(crate) async fn orders(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let Some(s) = app.session(&headers) else {
        return redirect("/");
    };
    refresh_states(&s).await;
    let v = s.vault().await;
    page(
        StatusCode::OK,
        "Orders",
        views::nav(&s.csrf),
        html! { h1 { "Your orders" } (views::orders_table(&v.data.orders)) },
    )
}

pub(crate) async fn order_page(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(order_id): Path<OrderId>,
) -> Response {
    let Some(s) = app.session(&headers) else {
        return redirect("/");
    };
    let oref = {
        let v = s.vault().await;
        v.data
            .orders
            .iter()
            .find(|o| o.order_id == order_id)
            .cloned()
    };
    let Some(o) = oref else {
        return problem(
            &s,
            StatusCode::NOT_FOUND,
            "No such order",
            "This wallet placed no order with that id.".into(),
        );
    };
    let mut problems = Vec::new();
    let view = match s.wallet.order_view(&o.merchant, &o.order_id).await {
        Ok(v) => {
            if let Some(e) = &v.tracking_error {
                problems.push(format!(
                    "The carrier cannot tell where the parcel is now: {e}"
                ));
            }
            Some(v)
        }
        Err(e) => {
            problems.push(format!(
                "The merchant cannot tell the order's state now: {e}"
            ));
            None
        }
    };
    let across = match &app.cfg.deployment {
        Some(d) => {
            let stores = Stores {
                merchant: d.merchant.store().as_ref(),
                issuer: d.issuer.store().as_ref(),
                carrier: d.carrier.store().as_ref(),
            };
            match across(stores, &o.policy, o.merchant.as_str(), &o.order_id).await {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the parties' stores");
                    None
                }
            }
        }
        None => None,
    };
    if let Some(v) = &view {
        remember_state(&s, &o.order_id, v.merchant_state()).await;
    }
    let settled = view
        .as_ref()
        .and_then(|v| OrderState::parse(v.merchant_state()))
        .is_some_and(|st| st.is_final());
    let body = views::order_page(&s.csrf, &o, view.as_ref(), &problems, across, settled);
    let markup = if settled {
        shared::layout("Order", "cardholder's wallet", views::nav(&s.csrf), body)
    } else {
        shared::layout_refreshing("Order", "cardholder's wallet", views::nav(&s.csrf), body, 3)
    };
    shared::respond(StatusCode::OK, markup)
}

pub(crate) async fn cancel(Path(order_id): Path<OrderId>, Posted { s, .. }: Posted) -> Response {
    let merchant = {
        let v = s.vault().await;
        v.data
            .orders
            .iter()
            .find(|o| o.order_id == order_id)
            .map(|o| o.merchant.clone())
    };
    let Some(merchant) = merchant else {
        return problem(
            &s,
            StatusCode::NOT_FOUND,
            "No such order",
            "This wallet placed no order with that id.".into(),
        );
    };
    // The carrier answers a cancel within moments; the order page refreshes past the wait.
    let wait = std::time::Duration::from_secs(5);
    match s.wallet.cancel_and_wait(&merchant, &order_id, wait).await {
        Ok((out, fate @ (CancelFate::RefusedDelivered | CancelFate::Other))) => {
            tracing::info!(order_id = %order_id, state = %out.state, "cancel refused");
            problem(
                &s,
                StatusCode::CONFLICT,
                "The order was not cancelled",
                fate.words(&out),
            )
        }
        Ok((out, _)) => {
            tracing::info!(order_id = %order_id, state = %out.state, "order cancelled from the wallet page");
            redirect(&format!("/orders/{order_id}"))
        }
        Err(e) => problem(
            &s,
            StatusCode::CONFLICT,
            "The order cannot be cancelled",
            format!("{e}"),
        ),
    }
}

/// `GET /link`: the page to paste a payment link into; with `?open=start`, opens the link the
/// wallet was started with (`wallet web --link URL`).
pub(crate) async fn link_page(
    State(app): State<Shared>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let Some(s) = app.session(&headers) else {
        return redirect("/");
    };
    if q.get("open").map(String::as_str) == Some("start")
        && let Some(url) = app.cfg.link.clone()
    {
        return open_link(&app, &s, &url).await;
    }
    link_form(&s, StatusCode::OK, "", &[])
}

fn link_form(s: &Session, status: StatusCode, url: &str, errs: &[String]) -> Response {
    page(
        status,
        "Pay a link",
        views::nav(&s.csrf),
        views::link_form(&s.csrf, url, errs),
    )
}

/// `POST /link`: opens a pasted payment link.
pub(crate) async fn post_link(State(app): State<Shared>, Posted { s, form }: Posted) -> Response {
    open_link(&app, &s, &field(&form, "url")).await
}

/// Opens a payment link: checks its merchant and endpoint against the key center's directory,
/// asks that merchant for an order form (a digital one when no item ships), fills in the
/// link's items, the first card and address, and shows the disclosure preview (or the form
/// with what is missing).
async fn open_link(app: &App, s: &Session, url: &str) -> Response {
    let refuse = |e: String| link_form(s, StatusCode::UNPROCESSABLE_ENTITY, url, &[e]);
    let link = match links::parse_link(url) {
        Ok(l) => l,
        Err(e) => return refuse(e.to_string()),
    };
    let listed = SharedDirectory::from_file(&app.cfg.directory)
        .ok()
        .and_then(|d| d.get().get(&link.merchant).map(|e| e.endpoint.clone()));
    match listed {
        None => {
            return refuse(format!(
                "The key center's directory does not list {}: this wallet cannot confirm who the link is from.",
                link.merchant
            ));
        }
        Some(e) if e.trim_end_matches('/') != link.endpoint => {
            return refuse(format!(
                "The link points at {}, but the key center's directory lists {} at {e}: not opened.",
                link.endpoint, link.merchant
            ));
        }
        Some(_) => {}
    }
    let mut form = match s.wallet.order_form(&link.merchant, false).await {
        Ok(f) => f,
        Err(e) => return refuse(format!("{} did not give an order form: {e}", link.merchant)),
    };
    let ships = |pn: &str| {
        form.catalog
            .iter()
            .any(|c| c.product_number == pn && c.ships)
    };
    let digital = !link.items.iter().any(|i| ships(&i.product_number));
    if digital && form.carrier.is_some() {
        match s.wallet.order_form(&link.merchant, true).await {
            Ok(f) => form = f,
            Err(e) => {
                return refuse(format!("{} did not give an order form: {e}", link.merchant));
            }
        }
    }
    let mut input: HashMap<String, String> = link
        .items
        .iter()
        .map(|i| (format!("qty_{}", i.product_number), i.quantity.to_string()))
        .collect();
    input.insert("method".into(), "lump_sum".into());
    {
        let v = s.vault().await;
        if let Some(c) = v.data.cards.first() {
            input.insert("card".into(), c.id.clone());
        }
        let dest = match v.data.addresses.first() {
            _ if digital => "digital".to_owned(),
            Some(a) => format!("addr:{}", a.id),
            None => "gift".to_owned(),
        };
        input.insert("destination".into(), dest);
    }
    let unknown: Vec<&str> = link
        .items
        .iter()
        .filter(|i| {
            !form
                .catalog
                .iter()
                .any(|c| c.product_number == i.product_number)
        })
        .map(|i| i.product_number.as_str())
        .collect();
    if !unknown.is_empty() {
        return refuse(format!(
            "{} does not sell {}.",
            link.merchant,
            unknown.join(", ")
        ));
    }
    tracing::info!(merchant = %link.merchant, "payment link opened");
    preview_or_form(
        s,
        Draft {
            form,
            input: HashMap::new(),
            pending: None,
            sealed: None,
        },
        input,
    )
    .await
}
