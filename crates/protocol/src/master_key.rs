//! Signing upstream requests with an account master key (used against the emulator, where
//! managed identity is not available).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::ProtocolError;

/// What `encodeURIComponent` leaves alone, which is how the SDKs encode key headers.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// A decoded account master key. Its bytes are wiped on drop and never printed.
pub struct MasterKey {
    bytes: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// Decodes the key as the portal shows it (standard base64); surrounding whitespace, such
    /// as the newline at the end of a key file, is ignored.
    pub fn from_base64(s: &str) -> Result<MasterKey, ProtocolError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(s.trim())
                .map_err(|_| ProtocolError::InvalidKey)?,
        );
        if bytes.is_empty() {
            return Err(ProtocolError::InvalidKey);
        }
        Ok(MasterKey { bytes })
    }

    /// The percent-encoded `Authorization` value for one request.
    ///
    /// `resource_type` and `resource_link` are as [`crate::parse_path`] computes them, and
    /// `x_ms_date` is the RFC 7231 date sent in the `x-ms-date` header.
    pub fn authorization(
        &self,
        verb: &http::Method,
        resource_type: &str,
        resource_link: &str,
        x_ms_date: &str,
    ) -> String {
        let payload = format!(
            "{}\n{}\n{}\n{}\n\n",
            verb.as_str().to_lowercase(),
            resource_type.to_lowercase(),
            resource_link,
            x_ms_date.to_lowercase(),
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.bytes)
            .expect("hmac must accept keys of any length");
        mac.update(payload.as_bytes());
        let signature = STANDARD.encode(mac.finalize().into_bytes());
        let header = format!("type=master&ver=1.0&sig={signature}");
        utf8_percent_encode(&header, URI_COMPONENT).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    /// The emulator's well-known, public key.
    const EMULATOR_KEY: &str =
        "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";
    const DATE: &str = "Thu, 03 Dec 2026 08:47:08 GMT";

    fn key() -> MasterKey {
        MasterKey::from_base64(EMULATOR_KEY).expect("emulator key must decode")
    }

    // Expected values below were produced once, outside this crate, with Python:
    //   base64.b64encode(hmac.new(base64.b64decode(KEY), payload.encode(), hashlib.sha256).digest())
    //   urllib.parse.quote("type=master&ver=1.0&sig=" + sig, safe="-_.!~*'()")
    // and the first one cross-checked with `openssl dgst -sha256 -mac HMAC -macopt hexkey:…`.

    #[test]
    fn point_read_signature_matches_an_independent_computation() {
        assert_eq!(
            key().authorization(&Method::GET, "docs", "dbs/d/colls/c/docs/item1", DATE),
            "type%3Dmaster%26ver%3D1.0%26sig%3DhWDDoKH5gjPb10YVGFNIO5uXlT8c8sCFNYdYkY5hO1s%3D"
        );
    }

    #[test]
    fn feed_signature_with_empty_link_matches() {
        assert_eq!(
            key().authorization(&Method::POST, "dbs", "", DATE),
            "type%3Dmaster%26ver%3D1.0%26sig%3Dnl2GFiarXN30gqv8%2F6uohiV5OVpTcOIzVrSnMqDvc0A%3D"
        );
    }

    #[test]
    fn account_read_signature_matches() {
        assert_eq!(
            key().authorization(&Method::GET, "", "", DATE),
            "type%3Dmaster%26ver%3D1.0%26sig%3DDBGWkqY3mEIqpYn5SMtsOHq8k%2FHeYQQkp2UMwbuI7%2FY%3D"
        );
    }

    #[test]
    fn decoded_names_with_spaces_and_non_ascii_are_signed_as_utf8() {
        let link = "dbs/Experiment DB/colls/Items ü";
        assert_eq!(
            key().authorization(&Method::POST, "docs", link, DATE),
            "type%3Dmaster%26ver%3D1.0%26sig%3DA66RzeODxQnlxtBJ1oXs%2F9jLQ7pa%2FeI%2Faqt03o07gn0%3D"
        );
    }

    #[test]
    fn verb_type_and_date_case_do_not_matter_but_link_case_does() {
        let k = key();
        let lower = k.authorization(&Method::GET, "docs", "dbs/d", &DATE.to_lowercase());
        assert_eq!(k.authorization(&Method::GET, "DOCS", "dbs/d", DATE), lower);
        assert_ne!(k.authorization(&Method::GET, "docs", "dbs/D", DATE), lower);
    }

    #[test]
    fn key_file_whitespace_is_trimmed_and_garbage_is_refused() {
        let padded = format!("  {EMULATOR_KEY}\n");
        let k = MasterKey::from_base64(&padded).expect("trailing newline must be ignored");
        assert_eq!(
            k.authorization(&Method::GET, "", "", DATE),
            key().authorization(&Method::GET, "", "", DATE)
        );
        for bad in ["", "   ", "not base64!", "abc"] {
            assert_eq!(
                MasterKey::from_base64(bad).err(),
                Some(ProtocolError::InvalidKey)
            );
        }
    }

    #[test]
    fn debug_output_is_redacted() {
        let debug = format!("{:?}", key());
        assert_eq!(debug, "MasterKey([redacted])");
    }
}
