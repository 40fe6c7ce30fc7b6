//! The wallet's pages as maud templates: unlock, home, wallet (contact, cards, addresses),
//! order form, disclosure preview, orders and one order.

use std::collections::HashMap;

use maud::{Markup, html};
use warifu_core::Role;
use warifu_core::order::{Order, OrderForm};
use warifu_core::policy::{Field, Policy};
use warifu_services::cardholder::OrderView;
use warifu_services::http::dashboard::{money, state_class, time_ms};

use super::history::payment_words;
use super::vault::{OrderRef, VaultData};

/// The navigation bar of an unlocked wallet.
pub fn nav(csrf: &str) -> Markup {
    html! {
        a href="/" { "Home" } " · "
        a href="/shop" { "Shop" } " · "
        a href="/wallet" { "Cards & addresses" } " · "
        a href="/orders" { "Orders" } " · "
        a href="/link" { "Pay a link" } " · "
        form method="post" action="/lock" style="display:inline" {
            input type="hidden" name="csrf" value=(csrf);
            button.secondary type="submit" { "Lock" }
        }
    }
}

fn errors(list: &[String]) -> Markup {
    html! {
        @if !list.is_empty() {
            div.error role="alert" id="errors" {
                strong { "Please correct the following:" }
                ul { @for e in list { li { (e) } } }
            }
        }
    }
}

/// The page to paste a merchant's payment link into.
pub fn link_form(csrf: &str, url: &str, errs: &[String]) -> Markup {
    html! {
        h1 { "Pay a link" }
        (errors(errs))
        p { "A merchant's payment link names the merchant, its address and what to order. The wallet checks both against the key center's directory, asks the merchant for an order form and shows what each party would receive before anything is sealed." }
        form.stack method="post" action="/link" {
            input type="hidden" name="csrf" value=(csrf);
            label for="url" { "Payment link" }
            input id="url" name="url" type="url" required value=(url) placeholder="http://127.0.0.1:PORT/pay?merchant=…&items=…";
            p { button type="submit" id="open-link" { "Open the link" } }
        }
    }
}

/// The unlock (or create) page.
pub fn unlock(
    csrf: &str,
    key_paths: &str,
    key_sealed: bool,
    vault_path: &str,
    vault_exists: bool,
    can_seed: bool,
    errs: &[String],
) -> Markup {
    html! {
        h1 { @if vault_exists { "Open your wallet" } @else { "Create your wallet" } }
        (errors(errs))
        p {
            "Your key file: " code { (key_paths) }
            @if key_sealed { " (sealed under a passphrase)" }
            br;
            "Your wallet file: " code { (vault_path) }
            @if !vault_exists { " (new: it will be created, encrypted under the passphrase you choose)" }
        }
        form.stack method="post" action="/unlock" {
            input type="hidden" name="csrf" value=(csrf);
            @if key_sealed {
                label for="key_passphrase" { "Passphrase of your key file" }
                input id="key_passphrase" name="key_passphrase" type="password" autocomplete="current-password" required;
            }
            @if vault_exists {
                label for="wallet_passphrase" { "Wallet passphrase" }
                input id="wallet_passphrase" name="wallet_passphrase" type="password" autocomplete="current-password" required autofocus;
            } @else {
                label for="wallet_passphrase" { "New wallet passphrase (at least 8 characters)" }
                input id="wallet_passphrase" name="wallet_passphrase" type="password" autocomplete="new-password" minlength="8" required autofocus;
                label for="wallet_passphrase2" { "Repeat the passphrase" }
                input id="wallet_passphrase2" name="wallet_passphrase2" type="password" autocomplete="new-password" minlength="8" required;
                @if can_seed {
                    div.choice {
                        input id="seed" name="seed" type="checkbox" value="1" checked;
                        label for="seed" { "Fill in the demo cardholder's details, the card the demo issuer enrolled, and two addresses" }
                    }
                }
            }
            p { button type="submit" { @if vault_exists { "Open wallet" } @else { "Create wallet" } } }
        }
        p.muted { "Everything stays on this computer: the card number is kept in the encrypted wallet file and leaves this program only sealed for the card's issuer." }
    }
}

/// The home page.
pub fn home(id: &str, data: &VaultData) -> Markup {
    html! {
        h1 { "Wallet of " (id) }
        @if data.cards.is_empty() {
            p.notice { "Add a card in " a href="/wallet" { "Cards & addresses" } " before you shop." }
        }
        h2 { "Your cards" }
        (cards(data, None))
        p { a href="/shop" { "Go shopping →" } }
        h2 { "Recent orders" }
        (orders_table(&data.orders))
    }
}

fn cards(data: &VaultData, csrf: Option<&str>) -> Markup {
    html! {
        @if data.cards.is_empty() { p { "No cards yet." } }
        div.cards {
            @for c in &data.cards {
                div.card id=(format!("card-{}", c.id)) {
                    strong { "•••• " (c.last4()) }
                    br; (c.holder_name)
                    br; span.muted { "expires " (format!("{}-{:02}", c.expiry.year, c.expiry.month)) " · " (c.issuer) }
                    @if let Some(csrf) = csrf {
                        form method="post" action="/wallet/cards/delete" {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="id" value=(c.id);
                            button.secondary type="submit" aria-label=(format!("Remove card ending {}", c.last4())) { "Remove" }
                        }
                    }
                }
            }
        }
    }
}

/// The wallet page: contact details, cards, addresses. `input` refills the forms after an
/// error, never with a card number.
pub fn wallet(
    csrf: &str,
    data: &VaultData,
    issuers: &[String],
    input: &HashMap<String, String>,
    errs: &[String],
    notice: Option<&str>,
) -> Markup {
    let v = |k: &str| input.get(k).cloned().unwrap_or_default();
    let me = &data.me;
    html! {
        h1 { "Cards & addresses" }
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        (errors(errs))
        h2 id="cards" { "Cards" }
        (cards(data, Some(csrf)))
        form.stack method="post" action="/wallet/cards" {
            fieldset {
                legend { "Add a card" }
                input type="hidden" name="csrf" value=(csrf);
                label for="holder_name" { "Name on the card" }
                input id="holder_name" name="holder_name" autocomplete="cc-name" required value=(input.get("holder_name").cloned().unwrap_or_else(|| me.name.clone()));
                label for="number" { "Card number" }
                input id="number" name="number" inputmode="numeric" autocomplete="cc-number" required;
                label for="exp_month" { "Expiry month (1–12)" }
                input id="exp_month" name="exp_month" type="number" min="1" max="12" autocomplete="cc-exp-month" required value=(v("exp_month"));
                label for="exp_year" { "Expiry year (e.g. 2031)" }
                input id="exp_year" name="exp_year" type="number" min="2000" max="2100" autocomplete="cc-exp-year" required value=(v("exp_year"));
                label for="issuer" { "Issuer" }
                select id="issuer" name="issuer" required {
                    @for i in issuers { option value=(i) selected[v("issuer") == *i] { (i) } }
                }
                p { button type="submit" { "Add card" } }
            }
        }
        h2 id="addresses" { "Addresses" }
        @if data.addresses.is_empty() { p { "No addresses yet." } }
        ul {
            @for a in &data.addresses {
                li id=(format!("address-{}", a.id)) {
                    strong { (a.label) } ": " (a.addressee.expose()) ", " (a.address.expose())
                    form method="post" action="/wallet/addresses/delete" style="display:inline" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="id" value=(a.id);
                        " " button.secondary type="submit" aria-label=(format!("Remove address {}", a.label)) { "Remove" }
                    }
                }
            }
        }
        form.stack method="post" action="/wallet/addresses" {
            fieldset {
                legend { "Add an address" }
                input type="hidden" name="csrf" value=(csrf);
                label for="label" { "Label (e.g. home, Taro)" }
                input id="label" name="label" required value=(v("label"));
                label for="addressee" { "Addressee" }
                input id="addressee" name="addressee" required value=(v("addressee"));
                label for="address" { "Address" }
                textarea id="address" name="address" rows="2" required { (v("address")) }
                p { button type="submit" { "Add address" } }
            }
        }
        h2 id="me" { "Your details" }
        form.stack method="post" action="/wallet/me" {
            fieldset {
                legend { "Contact details (sealed for the parties the merchant's policy names)" }
                input type="hidden" name="csrf" value=(csrf);
                label for="me_name" { "Name" }
                input id="me_name" name="name" autocomplete="name" required value=(me.name);
                label for="me_address" { "Address" }
                input id="me_address" name="address" autocomplete="street-address" required value=(me.address);
                label for="me_telephone" { "Telephone" }
                input id="me_telephone" name="telephone" type="tel" autocomplete="tel" required value=(me.telephone);
                label for="me_fax" { "FAX (optional)" }
                input id="me_fax" name="fax" type="tel" value=(me.fax.clone().unwrap_or_default());
                p { button type="submit" { "Save details" } }
            }
        }
    }
}

/// The order form: catalog with quantities, card, payment method, destination.
pub fn order_form(
    csrf: &str,
    form: &OrderForm,
    data: &VaultData,
    input: &HashMap<String, String>,
    errs: &[String],
) -> Markup {
    let v = |k: &str| input.get(k).cloned().unwrap_or_default();
    let method = input
        .get("method")
        .cloned()
        .unwrap_or_else(|| "lump_sum".into());
    let default_dest = data
        .addresses
        .first()
        .map(|a| format!("addr:{}", a.id))
        .unwrap_or_else(|| "gift".into());
    let dest = input.get("destination").cloned().unwrap_or(default_dest);
    html! {
        h1 { "Order from " (form.merchant) }
        p.muted {
            "Order form " code { (form.order_id) } ", valid until " (time_ms(i64::try_from(form.expires_at).unwrap_or(0).saturating_mul(1000))) " UTC. "
            "Delivery by " (form.carrier.as_ref().map(|c| c.as_str()).unwrap_or("nobody (digital goods)")) "."
        }
        (errors(errs))
        form.stack method="post" action="/order/preview" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="form_id" value=(form.order_id);
            fieldset id="catalog" {
                legend { "Catalog" }
                table {
                    thead { tr { th scope="col" { "Product" } th scope="col" { "Number" } th scope="col" { "Price" } th scope="col" { "Quantity" } } }
                    tbody {
                        @for item in &form.catalog {
                            @let name = format!("qty_{}", item.product_number);
                            tr {
                                td { label for=(name) { (item.name) } }
                                td { code { (item.product_number) } }
                                td.num { (money(item.unit_price, &form.currency)) }
                                td { input id=(name) name=(name) type="number" min="0" max="999" value=(input.get(&name).cloned().unwrap_or_else(|| "0".into())) style="min-width:5rem;width:6rem"; }
                            }
                        }
                    }
                }
            }
            fieldset {
                legend { "Card" }
                @if data.cards.is_empty() {
                    p.error { "Your wallet holds no card: " a href="/wallet" { "add one" } "." }
                }
                @for (i, c) in data.cards.iter().enumerate() {
                    @let id = format!("card_{}", c.id);
                    div.choice {
                        input type="radio" id=(id) name="card" value=(c.id) checked[v("card") == c.id || (v("card").is_empty() && i == 0)];
                        label for=(id) { "•••• " (c.last4()) " — " (c.holder_name) ", expires " (format!("{}-{:02}", c.expiry.year, c.expiry.month)) " (" (c.issuer) ")" }
                    }
                }
            }
            fieldset.method {
                legend { "Payment method" }
                @for (val, text) in [("lump_sum", "Lump sum"), ("installments", "Instalments"), ("revolving", "Revolving credit"), ("bonus", "With the next bonus")] {
                    div.choice {
                        input type="radio" id=(format!("method_{val}")) name="method" value=(val) checked[method == val];
                        label for=(format!("method_{val}")) { (text) }
                    }
                    @if val == "installments" {
                        // Shown only while instalments are chosen (CSS :has, no script); the
                        // count is ignored for any other method.
                        div.count {
                            label for="instalments" { "Number of instalments (2–60)" }
                            input id="instalments" name="instalments" type="number" min="2" max="60" value=(input.get("instalments").cloned().unwrap_or_else(|| "3".into()));
                        }
                    }
                }
            }
            fieldset {
                legend { "Delivery destination" }
                @for a in &data.addresses {
                    @let val = format!("addr:{}", a.id);
                    div.choice {
                        input type="radio" id=(format!("dest_{}", a.id)) name="destination" value=(val) checked[dest == val];
                        label for=(format!("dest_{}", a.id)) { (a.label) ": " (a.addressee.expose()) ", " (a.address.expose()) }
                    }
                }
                div.choice {
                    input type="radio" id="dest_gift" name="destination" value="gift" checked[dest == "gift"];
                    label for="dest_gift" { "A gift to another address:" }
                }
                label for="gift_addressee" { "Gift addressee" }
                input id="gift_addressee" name="gift_addressee" value=(v("gift_addressee"));
                label for="gift_address" { "Gift address" }
                textarea id="gift_address" name="gift_address" rows="2" { (v("gift_address")) }
                div.choice {
                    input type="radio" id="dest_digital" name="destination" value="digital" checked[dest == "digital"];
                    label for="dest_digital" { "No delivery: digital goods only (no carrier learns anything)" }
                }
            }
            p { button type="submit" id="preview" { "Preview what each party receives" } }
        }
    }
}

/// The disclosure preview: every field of the order, its value (the card masked) and which
/// party receives it under the form's policy.
pub fn preview(
    csrf: &str,
    form: &OrderForm,
    order: &Order,
    issuer: &str,
    errs: &[String],
    beyond: &[(Field, Role)],
) -> Markup {
    let policy: &Policy = &form.policy;
    let n = order.card.number.expose();
    let masked = format!(
        "•••• {} (expires {}-{:02})",
        &n[n.len().saturating_sub(4)..],
        order.card.expiry.year,
        order.card.expiry.month
    );
    let lines = |f: &dyn Fn(&warifu_core::order::Line) -> String| {
        order.lines.iter().map(f).collect::<Vec<_>>().join("; ")
    };
    let value = |f: Field| -> String {
        match f {
            Field::CardholderName => order.cardholder_name.clone(),
            Field::CardholderAddress => order.cardholder_address.clone(),
            Field::Telephone => order.telephone.clone(),
            Field::Fax => order.fax.clone().unwrap_or_else(|| "(none)".into()),
            Field::Card => masked.clone(),
            Field::ProductName => lines(&|l| l.product_name.clone()),
            Field::Quantity => lines(&|l| l.quantity.to_string()),
            Field::ProductNumber => lines(&|l| l.product_number.clone()),
            Field::Amount => format!(
                "{} (lines: {})",
                money(order.amount, &order.currency),
                lines(&|l| money(l.amount, &order.currency))
            ),
            Field::PaymentMethod => payment_words(order.payment_method),
            Field::DeliveryDestination => match &order.destination {
                Some(d) => format!("{}, {}", d.addressee.expose(), d.address.expose()),
                None => "(none: digital goods)".into(),
            },
        }
    };
    let parties = [
        (Role::Merchant, form.merchant.as_str().to_owned()),
        (Role::Issuer, issuer.to_owned()),
        (
            Role::Carrier,
            form.carrier
                .as_ref()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_else(|| "no carrier".into()),
        ),
    ];
    html! {
        h1 { "Before you send: who receives what" }
        (errors(errs))
        p {
            "Your wallet will seal each party's part of order " code { (form.order_id) } " separately, in this program, "
            "under the disclosure policy of the merchant's order form. Each party can open only its own part."
        }
        table id="disclosure" {
            caption { "Disclosure preview — " (money(order.amount, &order.currency)) ", " (payment_words(order.payment_method)) }
            thead { tr {
                th scope="col" { "Field" } th scope="col" { "Your value" }
                @for (r, who) in &parties { th scope="col" { (r.as_str()) br; span.muted { (who) } } }
            } }
            tbody {
                @for f in Field::ALL {
                    tr id=(format!("field-{}", f.name())) {
                        th scope="row" { (f.name().replace('_', " ")) }
                        td { (value(f)) }
                        @for (r, _) in &parties {
                            @let gets = policy.receives(*r, f) && !(*r == Role::Carrier && form.carrier.is_none());
                            td class=(if gets { "yes" } else { "no" }) data-party=(r.as_str()) {
                                @if gets { "✔ receives" } @else { "— never" }
                            }
                        }
                    }
                }
            }
        }
        p.muted {
            "The card number goes to the issuer only"
            @if policy.recipients(Field::DeliveryDestination).eq([Role::Carrier]) { "; the delivery destination to the carrier only" }
            "."
        }
        @if !beyond.is_empty() {
            div.error id="beyond" role="alert" {
                p { strong { "This merchant's form asks for more than your wallet discloses." } }
                ul {
                    @for (f, r) in beyond {
                        li data-grant=(format!("{}={}", f.name(), r.as_str())) {
                            "It gives your " (f.name().replace('_', " ")) " to the " (r.as_str()) "."
                        }
                    }
                }
                p { "Nothing is sealed unless you accept each of these for this order below." }
            }
        }
        form method="post" action="/order/submit" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="form_id" value=(form.order_id);
            @for (f, r) in beyond {
                @let name = format!("accept:{}={}", f.name(), r.as_str());
                label {
                    input type="checkbox" name=(name) value="yes";
                    " I accept disclosing " (f.name().replace('_', " ")) " to the " (r.as_str()) " for this order"
                }
                br;
            }
            button type="submit" id="send" { "Seal and send the order" }
        }
        form method="post" action="/order/edit" style="margin-top:.6rem" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="form_id" value=(form.order_id);
            button.secondary type="submit" { "Change the order" }
        }
    }
}

/// The grants of `form`'s policy beyond `ceiling`: each field and party the form would
/// disclose that the cardholder's ceiling does not allow.
pub fn beyond(form: &OrderForm, ceiling: &Policy) -> Vec<(Field, Role)> {
    let mut out = Vec::new();
    for f in Field::ALL {
        for r in [Role::Merchant, Role::Issuer, Role::Carrier] {
            if form.policy.receives(r, f) && !ceiling.receives(r, f) {
                out.push((f, r));
            }
        }
    }
    out
}

/// The orders table.
pub fn orders_table(orders: &[OrderRef]) -> Markup {
    html! {
        @if orders.is_empty() {
            p { "No orders yet." }
        } @else {
            table {
                thead { tr { th scope="col" { "Order" } th scope="col" { "Placed" } th scope="col" { "Merchant" } th scope="col" { "State" } th scope="col" { "Goods" } th scope="col" { "Amount" } th scope="col" { "Card" } } }
                tbody {
                    @for o in orders.iter().rev() {
                        @let state = o.state.as_deref().unwrap_or("unknown");
                        tr id=(format!("order-{}", o.order_id)) {
                            td { a href=(format!("/orders/{}", o.order_id)) { (o.order_id) } }
                            td { (time_ms(o.placed_at_ms)) }
                            td { (o.merchant) }
                            td { span class=(state_class(state)) data-state=(state) { (state) } }
                            td { (o.summary) }
                            td.num { (money(o.amount, &o.currency)) }
                            td { "•••• " (o.card_last4) }
                        }
                    }
                }
            }
        }
    }
}

/// A decline reason in words for the cardholder.
pub fn decline_words(code: &str) -> &'static str {
    match code {
        "card_mismatch" => {
            "the card number, expiry or name does not match a card the issuer issued to you. Check the card's details, or use another card."
        }
        "unknown_cardholder" => "the issuer has no card enrolled for you.",
        "expired" => "the card has expired.",
        "blocked" => "the card is blocked; contact your issuer.",
        "insufficient_credit" => "there is not enough credit left on the card for this amount.",
        "currency_mismatch" => "the card cannot pay in this currency.",
        "invalid_amount" => "the amount is not one the issuer can authorize.",
        _ => "the issuer did not authorize the payment.",
    }
}

/// One order: the merchant's state, the payment, the delivery, and (unless settled) a
/// cancel button.
pub fn order_page(
    csrf: &str,
    o: &OrderRef,
    view: Option<&OrderView>,
    problems: &[String],
    across: Option<Markup>,
    settled: bool,
) -> Markup {
    let outcome = view.map(|v| &v.outcome);
    let state = outcome.map(|x| x.state.as_str()).unwrap_or("unknown");
    let decision = outcome.and_then(|x| x.decision.as_ref());
    let payment_state = view.and_then(|v| v.payment_state());
    let receipt = outcome.and_then(|x| x.payment.as_ref());
    let tracking = view.and_then(|v| v.tracking.as_ref());
    let instalments = view.and_then(|v| v.instalments()).filter(|i| i.len() > 1);
    html! {
        h1 { "Order " (o.order_id) }
        @for p in problems { p.error role="alert" { (p) } }
        @if let Some(d) = decision.filter(|d| !d.approved()) {
            div.error role="alert" id="declined" {
                strong { "Payment declined. " }
                "The issuer " (d.issuer) " declined the payment: "
                (decline_words(d.reason.map(|r| r.as_str()).unwrap_or("")))
                " Nothing was charged and no carrier received your address."
            }
        }
        table id="status" {
            tbody {
                tr { th scope="row" { "Merchant" } td { (o.merchant) } td { span class=(state_class(state)) id="merchant-state" { (state) } } }
                tr {
                    th scope="row" { "Payment" }
                    td { (o.issuer) }
                    td {
                        @match &payment_state {
                            Some(p) => { span class=(state_class(p)) id="payment-state" { (p) } }
                            None => { span.state id="payment-state" { "not decided yet" } }
                        }
                        @if let Some(d) = decision.filter(|d| d.approved()) {
                            " " (money(d.amount, &d.currency)) ", authorization " code { (d.authorization_id.clone().unwrap_or_default()) }
                            " — issuer's receipt verified"
                        }
                        @if let Some(r) = receipt {
                            br; span.muted { "captured " (money(r.captured, &r.currency)) ", refunded " (money(r.refunded, &r.currency)) }
                        }
                        @if let Some(i) = instalments {
                            br; span id="instalments" { "Instalments: " (i.iter().map(|x| money(*x, &o.currency)).collect::<Vec<_>>().join(" + ")) }
                        }
                    }
                }
                tr {
                    th scope="row" { "Delivery" }
                    td { (o.carrier.as_ref().map(|c| c.as_str()).unwrap_or("none (digital goods)")) }
                    td {
                        @if let Some(t) = tracking {
                            span class=(state_class(&t.status)) id="delivery-state" { (t.status) } " tracking " code { (t.tracking_number) }
                            @if let Some(d) = &t.destination { br; "to " (d.addressee.expose()) ", " (d.address.expose()) }
                            @for e in &t.events { br; span.muted { (time_ms(e.at_ms)) " " (e.status) @if let Some(n) = &e.note { " (" (n) ")" } } }
                            @if let Some(p) = &t.proof_of_delivery { br; "delivered " (time_ms(p.delivered_at_ms)) " (carrier's proof of delivery)" }
                        } @else if let Some(d) = outcome.and_then(|x| x.delivery.as_ref()) {
                            span class=(state_class(d)) id="delivery-state" { (d) }
                        } @else {
                            span.muted id="delivery-state" { "—" }
                        }
                    }
                }
            }
        }
        table {
            tbody {
                tr { th scope="row" { "Goods" } td { (o.summary) } }
                tr { th scope="row" { "Amount" } td { (money(o.amount, &o.currency)) } }
                tr { th scope="row" { "Payment method" } td { (o.payment) } }
                tr { th scope="row" { "Card" } td { "•••• " (o.card_last4) } }
                tr { th scope="row" { "Placed" } td { (time_ms(o.placed_at_ms)) " UTC" } }
            }
        }
        @if !settled && decision.is_some_and(|d| d.approved()) {
            form method="post" action=(format!("/orders/{}/cancel", o.order_id)) {
                input type="hidden" name="csrf" value=(csrf);
                button.secondary type="submit" id="cancel" { "Cancel this order" }
                " "
                span.muted { "Before shipping the hold is released; after capture the payment is refunded." }
            }
        }
        @if let Some(a) = across { (a) }
        @if !settled { p.muted { "This page refreshes itself while the order moves." } }
    }
}

#[cfg(test)]
mod tests {
    use warifu_core::PartyId;
    use warifu_core::order::{Card, CatalogItem, Destination, Expiry, PaymentMethod};

    use super::*;

    fn form(policy: Policy) -> OrderForm {
        let id = |s: &str| PartyId::parse(s).expect("id");
        OrderForm {
            order_id: "ord-1".into(),
            merchant: id("merchant:shop.example"),
            carrier: Some(id("carrier:post.example")),
            accepted_issuers: vec![id("issuer:bank.example")],
            currency: "JPY".into(),
            catalog: vec![CatalogItem {
                product_number: "TEA-001".into(),
                name: "Sencha".into(),
                unit_price: 1200,
                ships: true,
            }],
            expires_at: u64::MAX / 2,
            policy,
        }
    }

    /// Issue 19.1 on the wallet page: a form beyond the ceiling is named on the preview, field
    /// and party, with one explicit per-order checkbox each; a form within it shows none.
    #[test]
    fn the_preview_names_what_a_greedy_form_asks_and_offers_an_explicit_choice() {
        let greedy = form(
            Policy::patent_default()
                .widened(Field::DeliveryDestination, Role::Merchant)
                .expect("widen"),
        );
        let (lines, amount) = Order::lines_from(&greedy, &[("TEA-001", 1)]).expect("lines");
        let order = Order {
            cardholder_name: "Hanako Yamada".into(),
            cardholder_address: "1-1 Chiyoda".into(),
            telephone: "+81-3-0000-0000".into(),
            fax: None,
            card: Card {
                number: "4539148803436467".into(),
                expiry: Expiry {
                    year: 2035,
                    month: 7,
                },
            },
            lines,
            amount,
            currency: "JPY".into(),
            payment_method: PaymentMethod::LumpSum,
            destination: Some(Destination {
                addressee: "Taro".into(),
                address: "2-2 Umeda".into(),
            }),
        };
        let ceiling = Policy::patent_default();
        let beyond = beyond(&greedy, &ceiling);
        assert_eq!(beyond, [(Field::DeliveryDestination, Role::Merchant)]);
        let html = preview("t", &greedy, &order, "issuer:bank.example", &[], &beyond).into_string();
        assert!(
            html.contains("data-grant=\"delivery_destination=merchant\""),
            "{html}"
        );
        assert!(
            html.contains("name=\"accept:delivery_destination=merchant\""),
            "{html}"
        );
        assert!(html.contains("I accept disclosing delivery destination to the merchant"));
        assert!(!html.contains("checked"), "never ticked for the cardholder");

        let fair = form(Policy::patent_default());
        assert!(super::beyond(&fair, &ceiling).is_empty());
        let html = preview("t", &fair, &order, "issuer:bank.example", &[], &[]).into_string();
        assert!(!html.contains("accept:"), "{html}");
    }
}
