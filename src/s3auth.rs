//! The hand-written AWS signature v2 signer lives in [`crate::s3::sign::v2`]; this module keeps
//! it (and the key encoding it signs) under the name it has always had.

pub use crate::s3::request::encode_key;
pub use crate::s3::sign::v2::*;
pub use crate::s3::{Addressing, Credentials};
