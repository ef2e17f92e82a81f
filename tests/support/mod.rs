//! Helpers shared by the integration tests. Each test binary declares `mod support;` and uses
//! the part it needs, so the rest is dead code in that binary.
#![allow(dead_code)]

pub mod cluster;
pub mod exporter;
pub mod fake;
pub mod fixtures;
pub mod zones;
