//! ceph-stats-exporter: periodic snapshots of a Ceph cluster's capacity and of the RADOS
//! Gateway usage log, archived as timestamped objects in an S3 bucket.
//!
//! Data flows one way: [`schedule`] decides when, a [`jobs`] instance collects a [`snapshot`],
//! [`format`] renders it, [`keys`] names it, [`delivery`] stores it through a [`sink`] (S3, via
//! [`s3`]) or keeps it in the [`spool`]. [`config`] resolves the file into each module's settings,
//! [`app`] assembles them, [`daemon`] runs them on a schedule under a shutdown token. Beside that
//! flow, [`report`] reads the archive back (sums, the completeness audit) and [`watch`] shows
//! live rates. The pure parts (signing, key templates, windows, parsing, formatting, records,
//! report sums, rates) do no I/O.

pub mod app;
pub mod catchup;
pub mod ceph_source;
pub mod check;
pub mod chunks;
pub mod config;
pub mod daemon;
pub mod delivery;
pub mod format;
pub mod http;
pub mod jobs;
pub mod jsonwalk;
pub mod keys;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod osd_df;
pub mod panics;
pub mod payload;
pub mod pipeline;
pub mod quickjson;
pub mod records;
pub mod report;
pub mod s3;
pub mod s3auth;
pub mod schedule;
pub mod scheduler;
pub mod secret;
pub mod sink;
pub mod snapshot;
pub mod spool;
pub mod state;
pub mod synth;
#[cfg(test)]
mod testutil;
pub mod trim;
pub mod usage;
pub mod watch;
pub mod window;
pub mod zones;
