//! `redlab perf`: a hand-written RESP load generator (see engine.rs for why).

mod conn;
pub mod engine;
pub mod keys;
pub mod multi;
mod net;
mod open;
mod pacer;
pub mod pool;
mod redirect;
pub mod resp;
pub mod template;
mod timer;
pub mod tls;
