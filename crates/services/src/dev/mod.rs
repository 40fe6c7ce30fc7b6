//! Tooling for a whole deployment in one process (the demo, `warifu up`, the tests): never
//! part of a party's service.
//!
//! - [`fixture`]: the orders `warifu bench` and the test kits buy.
//! - [`local`]: a key center, the directory and the three services on loopback.
//! - [`holdings`]: what each party holds about an order, read back from its own store.
//! - [`order`]: the page of one order across every party (timeline, disclosure matrix).

pub mod fixture;
pub mod holdings;
pub mod local;
pub mod order;
