//! Where a client talks to, and how: URL, credentials, addressing, signing, timeouts, retries.

use std::time::Duration;

use url::Url;

use super::retry::RetryPolicy;
use super::{Addressing, Credentials, Signing};

/// An HTTP(S) endpoint with its credentials and timeouts.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub url: Url,
    pub credentials: Credentials,
    pub addressing: Addressing,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_response_bytes: u64,
    pub retry: RetryPolicy,
    /// The signature version and, for v4, the region.
    pub signing: Signing,
}
