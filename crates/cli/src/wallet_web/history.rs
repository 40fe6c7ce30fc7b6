//! The wallet's one order history, shared by the wallet page and `warifu wallet buy`: the orders
//! live in the wallet file (see [`super::vault`]); a writer takes an advisory lock beside it
//! (`FILE.lock`), reopens the file if another process changed it since it was read, applies its
//! change and saves, so an order placed from the shell while the page is open is never lost.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use warifu_core::OrderId;

use anyhow::{Context, Result};
use warifu_core::PartyId;
use warifu_core::order::{Order, OrderForm, PaymentMethod};
use warifu_core::secret::Secret;

use super::vault::{OrderRef, Vault, VaultData};

/// The wallet file used when none is named: `wallet.vault` next to the first key file.
pub fn default_path(key_paths: &[PathBuf]) -> PathBuf {
    key_paths
        .first()
        .and_then(|k| k.parent())
        .unwrap_or(Path::new("."))
        .join("wallet.vault")
}

/// What identifies one version of the wallet file on disk: its modification time and length.
pub type Stamp = Option<(SystemTime, u64)>;

/// The stamp of the wallet file at `path` now (`None` if it cannot be read).
pub fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Holds the wallet file's advisory lock (`FILE.lock`, 0600) until dropped.
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Waits for the lock of the wallet file at `path`.
    pub fn take(path: &Path) -> Result<Lock> {
        let mut name = path.as_os_str().to_owned();
        name.push(".lock");
        let mut o = OpenOptions::new();
        o.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let f = o
            .open(PathBuf::from(&name))
            .with_context(|| format!("cannot open the wallet's lock file {}", name.display()))?;
        f.lock().context("cannot lock the wallet file")?;
        Ok(Lock { _file: f })
    }
}

/// The payment method in words, as the order list shows it.
pub fn payment_words(m: PaymentMethod) -> String {
    match m {
        PaymentMethod::LumpSum => "lump sum".into(),
        PaymentMethod::Installments { count } => format!("{count} monthly instalments"),
        PaymentMethod::Revolving => "revolving credit".into(),
        PaymentMethod::Bonus => "with the next bonus".into(),
    }
}

/// What was bought, in words: `2 × Sencha, 1 × Cup`.
pub fn summary(order: &Order) -> String {
    order
        .lines
        .iter()
        .map(|l| format!("{} × {}", l.quantity, l.product_name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The history entry of `order`, placed at `placed_at_ms` on `form` with a card of `issuer`
/// ending `last4`, in the merchant's `state`.
pub fn entry(
    form: &OrderForm,
    order: &Order,
    issuer: &PartyId,
    last4: &str,
    state: &str,
    placed_at_ms: i64,
) -> OrderRef {
    OrderRef {
        order_id: form.order_id.clone(),
        merchant: form.merchant.clone(),
        issuer: issuer.clone(),
        carrier: form.carrier.clone(),
        amount: order.amount,
        currency: order.currency.clone(),
        summary: summary(order),
        payment: payment_words(order.payment_method),
        card_last4: last4.to_owned(),
        policy: form.policy.clone(),
        placed_at_ms,
        state: Some(state.to_owned()),
    }
}

/// Adds `o` to the history, or updates the entry of its order id (its state).
pub fn upsert(data: &mut VaultData, o: OrderRef) {
    match data.orders.iter_mut().find(|x| x.order_id == o.order_id) {
        Some(x) => x.state = o.state,
        None => data.orders.push(o),
    }
}

/// Sets the state of order `order_id` in the history; whether it changed.
pub fn set_state(data: &mut VaultData, order_id: &OrderId, state: &str) -> bool {
    match data.orders.iter_mut().find(|x| x.order_id == order_id) {
        Some(x) if x.state.as_deref() != Some(state) => {
            x.state = Some(state.to_owned());
            true
        }
        _ => false,
    }
}

/// Records `o` in the wallet file at `path` from another process than the wallet page
/// (`wallet buy`): under the lock, opened with `pass` (created with it if missing), saved.
pub fn record(path: &Path, pass: &Secret, o: OrderRef) -> Result<()> {
    let _lock = Lock::take(path)?;
    let mut v = if Vault::exists(path) {
        Vault::open(path, pass)?
    } else {
        Vault::create(path, pass, VaultData::default())?
    };
    upsert(&mut v.data, o);
    v.save()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order_ref(id: &str) -> OrderRef {
        OrderRef {
            order_id: id.into(),
            merchant: PartyId::parse("merchant:shop.example").expect("id"),
            issuer: PartyId::parse("issuer:bank.example").expect("id"),
            carrier: None,
            amount: 1200,
            currency: "JPY".into(),
            summary: "1 × Sencha".into(),
            payment: "lump sum".into(),
            card_last4: "6467".into(),
            policy: warifu_core::policy::Policy::patent_default(),
            placed_at_ms: 0,
            state: Some("received".into()),
        }
    }

    /// Two writers (the page and `wallet buy`) keep both orders: each reopens the file under
    /// the lock before saving; the history is encrypted and an entry's state is updated in place.
    #[test]
    fn a_second_writer_keeps_the_first_writers_order() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("wallet.vault");
        let pass = Secret::new("correct horse");
        record(&path, &pass, order_ref("ord_a")).expect("first");
        let before = stamp(&path);
        record(&path, &pass, order_ref("ord_b")).expect("second");
        assert_ne!(stamp(&path), before, "the stamp changes with the file");
        let mut again = order_ref("ord_a");
        again.state = Some("declined".into());
        record(&path, &pass, again).expect("update");
        let v = Vault::open(&path, &pass).expect("open");
        let states: Vec<_> = v
            .data
            .orders
            .iter()
            .map(|o| (o.order_id.as_str(), o.state.as_deref()))
            .collect();
        assert_eq!(
            states,
            [("ord_a", Some("declined")), ("ord_b", Some("received"))]
        );
        let raw = std::fs::read(&path).expect("raw");
        assert!(!raw.windows(5).any(|w| w == b"ord_a"), "encrypted");
        assert!(record(&path, &Secret::new("wrong horse"), order_ref("x")).is_err());
    }
}
