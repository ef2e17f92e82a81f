//! The few small XML documents of the S3 API the exporter writes or reads: the list of parts
//! that completes a multipart upload, single fields of the answers (`UploadId`, `Code`), and a
//! page of ListObjectsV2. Pure; no XML library, since these documents are flat and small.

use percent_encoding::percent_decode_str;

/// The body that completes a multipart upload: each part's number (from 1) and ETag.
pub fn complete_multipart(etags: &[String]) -> String {
    let mut out = String::from("<CompleteMultipartUpload>");
    for (i, etag) in etags.iter().enumerate() {
        let n = i + 1;
        out.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
        ));
    }
    out.push_str("</CompleteMultipartUpload>");
    out
}

/// The text of the first `<NAME>...</NAME>` element of an XML answer.
pub fn field(xml: &[u8], name: &str) -> Option<String> {
    field_in(std::str::from_utf8(xml).ok()?, name)
}

fn field_in(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&format!("</{name}>"))?;
    Some(unescape(text[start..start + len].trim())).filter(|v| !v.is_empty())
}

/// Text with XML's five predefined entities resolved (`&amp;` last, so `&amp;lt;` stays `&lt;`).
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// One object of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
}

/// One page of ListObjectsV2, and the token of the next when there is one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<Listed>,
    pub next: Option<String>,
}

/// Reads a ListObjectsV2 answer asked with `encoding-type=url` (keys percent-encoded, `+` for
/// a space). A page that says it is truncated must name the next one: a listing never ends early
/// without saying so.
pub fn list_page(xml: &[u8]) -> Result<ListPage, String> {
    let text = std::str::from_utf8(xml).map_err(|_| "the listing is not UTF-8".to_string())?;
    if !text.contains("<ListBucketResult") {
        return Err(format!("not a listing: {}", crate::http::excerpt(xml)));
    }
    let mut page = ListPage::default();
    for contents in text.split("<Contents>").skip(1) {
        let entry = contents.split("</Contents>").next().unwrap_or_default();
        let encoded = field_in(entry, "Key").ok_or("an entry has no Key")?;
        let key = percent_decode_str(&encoded.replace('+', " "))
            .decode_utf8()
            .map_err(|_| format!("key {encoded:?} is not UTF-8 once decoded"))?
            .into_owned();
        let size = field_in(entry, "Size")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("key {encoded:?} has no Size"))?;
        page.objects.push(Listed { key, size });
    }
    if field_in(text, "IsTruncated").as_deref() == Some("true") {
        page.next = Some(
            field_in(text, "NextContinuationToken")
                .ok_or("the listing is truncated but names no NextContinuationToken")?,
        );
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_complete_body_lists_parts_in_order() {
        assert_eq!(
            complete_multipart(&["\"a\"".into(), "\"b\"".into()]),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"a\"</ETag></Part>\
             <Part><PartNumber>2</PartNumber><ETag>\"b\"</ETag></Part></CompleteMultipartUpload>"
        );
    }

    #[test]
    fn fields_are_the_first_non_empty_element_text() {
        let xml = b"<InitiateMultipartUploadResult><Bucket>info</Bucket>\
                    <UploadId> 2~x </UploadId></InitiateMultipartUploadResult>";
        assert_eq!(field(xml, "UploadId").as_deref(), Some("2~x"));
        assert_eq!(field(xml, "Code"), None);
        assert_eq!(field(b"<Code></Code>", "Code"), None);
        assert_eq!(field(b"\xff<Code>X</Code>", "Code"), None);
        assert_eq!(
            field(
                b"<Message>a &lt;b&gt; &amp;amp; &quot;c&apos;</Message>",
                "Message"
            )
            .as_deref(),
            Some("a <b> &amp; \"c'")
        );
    }

    #[test]
    fn a_listing_page_decodes_its_keys_and_names_the_next() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>info</Name>
<Prefix>it</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><EncodingType>url</EncodingType>
<IsTruncated>true</IsTruncated>
<Contents><Key>it/space+key%2Bplus%25~</Key><LastModified>2026-11-22T17:46:43.000Z</LastModified>
<ETag>&quot;e1&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>it/non-ascii/%C3%A9%20%E6%97%A5</Key><Size>0</Size></Contents>
<NextContinuationToken>1/a&amp;b==</NextContinuationToken></ListBucketResult>"#;
        assert_eq!(
            list_page(xml),
            Ok(ListPage {
                objects: vec![
                    Listed {
                        key: "it/space key+plus%~".into(),
                        size: 12
                    },
                    Listed {
                        key: "it/non-ascii/é 日".into(),
                        size: 0
                    },
                ],
                next: Some("1/a&b==".into()),
            })
        );
        let last = b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
        assert_eq!(list_page(last), Ok(ListPage::default()));
    }

    #[test]
    fn a_listing_that_cannot_be_read_whole_is_an_error() {
        for bad in [
            &b"<html>proxy</html>"[..],
            b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
            b"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Key>%FF</Key><Size>1</Size></Contents></ListBucketResult>",
        ] {
            assert!(list_page(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
