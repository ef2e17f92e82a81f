//! The few small XML documents of the S3 API the exporter writes or reads: the list of parts
//! that completes a multipart upload, and single fields of the answers (`UploadId`, `Code`).
//! Pure; no XML library, since these documents are flat and tiny.

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
    let text = std::str::from_utf8(xml).ok()?;
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&format!("</{name}>"))?;
    Some(text[start..start + len].trim().to_string()).filter(|v| !v.is_empty())
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
    }
}
