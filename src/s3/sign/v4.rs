//! AWS signature version 4, computed by the `aws-sigv4` crate (not written here: v4's canonical
//! request has enough corners that the maintained implementation is the safer one), set up the
//! way S3 wants it:
//!
//! - the payload is signed: `x-amz-content-sha256` is the SHA-256 of the bytes sent, and part
//!   of the signature;
//! - the path is signed as sent, once percent-encoded (no second encoding, which other AWS
//!   services want) and not normalized (`a//b` and `a/./b` are keys, not paths to tidy);
//! - the time is the caller's (injected, like v2's), the service `s3`, the region configured.
//!
//! RGW checks v4 on the admin API the same way, with the same service name. One corner differs
//! between implementations: a header value with a tab next to a space (aws-sigv4 collapses runs
//! of spaces only; RGW and botocore any white space). No header the exporter sends has one.

use std::time::SystemTime;

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4::SigningParams;

use super::{http_date, Credentials, SignError, Signer, Unsigned};

/// The v4 signer behind the [`Signer`] seam: adds `x-amz-date`, `x-amz-content-sha256` and
/// `Authorization`.
#[derive(Debug)]
pub struct V4 {
    pub credentials: Credentials,
    pub region: String,
}

impl Signer for V4 {
    fn sign(
        &self,
        req: &Unsigned<'_>,
        time: SystemTime,
    ) -> Result<Vec<(String, String)>, SignError> {
        // The crate's date formatting panics where an HTTP date cannot be written either.
        http_date(time).map_err(SignError::Time)?;
        let refused = |e: &dyn std::fmt::Display| SignError::V4(e.to_string());
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let identity = aws_credential_types::Credentials::new(
            &self.credentials.access_key,
            self.credentials.secret_key.expose(),
            None,
            None,
            "config",
        )
        .into();
        let params = SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| refused(&e))?
            .into();
        // The Host signed is the one the HTTP client sends: the URL's host, and its port unless
        // it is the scheme's default (which `Url::port` leaves out).
        let host = match req.url.port() {
            Some(port) => format!("{}:{port}", req.url.host_str().unwrap_or_default()),
            None => req.url.host_str().unwrap_or_default().to_string(),
        };
        let headers = req.header_pairs().chain([("host", host.as_str())]);
        let signable = SignableRequest::new(
            req.method,
            req.url.as_str(),
            headers,
            SignableBody::Bytes(req.body),
        )
        .map_err(|e| refused(&e))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| refused(&e))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::secret::Secret;

    /// The example key pair and instant of the AWS S3 SigV4 documentation's examples.
    fn aws_example() -> V4 {
        V4 {
            credentials: Credentials {
                access_key: "AKIAIOSFODNN7EXAMPLE".into(),
                secret_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            },
            region: "us-east-1".into(),
        }
    }

    /// 2013-05-24T00:00:00Z.
    fn example_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    fn signed(
        signer: &V4,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<(String, String)> {
        let url: url::Url = url.parse().unwrap();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let req = Unsigned {
            method,
            url: &url,
            headers: &headers,
            body,
            virtual_host_bucket: None,
        };
        signer.sign(&req, example_time()).unwrap()
    }

    fn signature(headers: &[(String, String)]) -> &str {
        let auth = &headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .unwrap()
            .1;
        auth.rsplit_once("Signature=").unwrap().1
    }

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    // The worked examples of the AWS S3 "Signature Calculations for the Authorization Header:
    // Transferring Payload in a Single Chunk" page.
    #[test]
    fn aws_example_get_object_with_range() {
        let mut h = signed(
            &aws_example(),
            "GET",
            "https://examplebucket.s3.amazonaws.com/test.txt",
            &[("Range", "bytes=0-9")],
            b"",
        );
        h.sort();
        assert_eq!(
            h,
            [
                (
                    "authorization".to_string(),
                    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/\
                     aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
                     Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
                        .to_string()
                ),
                ("x-amz-content-sha256".into(), EMPTY_SHA256.into()),
                ("x-amz-date".into(), "20130524T000000Z".into()),
            ]
        );
    }

    #[test]
    fn aws_example_put_object_signs_the_payload_hash() {
        let h = signed(
            &aws_example(),
            "PUT",
            "https://examplebucket.s3.amazonaws.com/test%24file.text",
            &[
                ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ],
            b"Welcome to Amazon S3.",
        );
        assert!(h.contains(&(
            "x-amz-content-sha256".into(),
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072".into()
        )));
        assert_eq!(
            signature(&h),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
    }

    #[test]
    fn aws_example_sub_resource_and_list_query() {
        let example = aws_example();
        let sign = |url| signed(&example, "GET", url, &[], b"");
        assert_eq!(
            signature(&sign("https://examplebucket.s3.amazonaws.com/?lifecycle")),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        );
        // Parameters are signed sorted, whatever their order on the wire.
        for url in [
            "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
            "https://examplebucket.s3.amazonaws.com/?prefix=J&max-keys=2",
        ] {
            assert_eq!(
                signature(&sign(url)),
                "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            );
        }
    }

    #[test]
    fn the_path_is_signed_as_sent_not_encoded_twice_nor_normalized() {
        let example = aws_example();
        let sig = |path: &str| {
            let url = format!("http://127.0.0.1:8000{path}");
            signature(&signed(&example, "GET", &url, &[], b"")).to_string()
        };
        // Each of these is a different key: were `%` encoded again, or `//` tidied, two of them
        // would share a signature. (`./` never reaches the signer: the URL resolves it, which is
        // why key templates may not render such a segment.)
        let paths = ["/info/a%20b", "/info/a%2520b", "/info/a//b", "/info/a/b"];
        let sigs: std::collections::BTreeSet<String> = paths.iter().map(|p| sig(p)).collect();
        assert_eq!(sigs.len(), paths.len());
    }

    #[test]
    fn the_host_carries_its_port_unless_it_is_the_default() {
        let example = aws_example();
        let sig = |url: &str| signature(&signed(&example, "GET", url, &[], b"")).to_string();
        assert_ne!(
            sig("http://127.0.0.1:8000/info/k"),
            sig("http://127.0.0.1/info/k")
        );
        assert_eq!(
            sig("http://rgw.example:80/info/k"),
            sig("http://rgw.example/info/k")
        );
        assert_eq!(
            sig("https://info.rgw.example:443/k"),
            sig("https://info.rgw.example/k")
        );
        assert_ne!(
            sig("https://info.rgw.example:80/k"),
            sig("https://info.rgw.example/k")
        );
    }

    #[test]
    fn an_unwritable_time_is_an_error_not_a_panic() {
        let url: url::Url = "http://127.0.0.1:8000/info/k".parse().unwrap();
        let req = Unsigned {
            method: "GET",
            url: &url,
            headers: &[],
            body: b"",
            virtual_host_bucket: None,
        };
        let year_10000 = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        assert!(matches!(
            aws_example().sign(&req, year_10000),
            Err(SignError::Time(_))
        ));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", aws_example());
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(shown.contains("AKIAIOSFODNN7EXAMPLE"), "{shown}");
    }
}
