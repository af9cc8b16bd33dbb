//! `redlab perf`: a hand-written RESP load generator (see engine.rs for why).

mod conn;
pub mod engine;
pub mod keys;
mod net;
pub mod resp;
pub mod template;
pub mod tls;
