//! `watch`: live traffic per pool, gateway, user and bucket, as rates with trends.
//!
//! [`rates`] turns counters into rates, trends and histories.

pub mod rates;
