//! The object: what one fire becomes once rendered and named, and what the delivery path
//! passes along. Pipeline makes it, the spool keeps it, a sink stores it. It lives with
//! delivery, not with a sink, so that the spool depends on nothing that talks to S3.

use crate::payload::Payload;

/// A rendered object, ready to store.
#[derive(Clone, Debug)]
pub struct Object {
    pub key: String,
    pub body: Payload,
    pub content_type: String,
    /// Sent as `x-amz-meta-NAME: VALUE`.
    pub metadata: Vec<(String, String)>,
}
