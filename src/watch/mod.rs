//! `watch`: live traffic per pool, gateway, user and bucket, as rates with trends.
//!
//! [`rates`] turns counters into rates, trends and histories. The parsers ([`pools`], [`prom`],
//! [`gateways`], [`usage`]) are pure.

pub mod gateways;
pub mod pools;
pub mod prom;
pub mod rates;
pub mod usage;
