//! Captures every log line of a full run and checks that no token or signature leaks into it.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::json;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_never_contain_tokens_signatures_or_raw_control_characters() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("cosmogate_validator=trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let rig = rig().await;
    let evil = key("evil-rsa");
    let tokens = vec![
        t0(),
        t0_with("exp", Some(json!(NOW - 3600))),
        t0_header_with("kid", Some(json!("a\r\nFAKE-LOG-LINE")), &evil),
        t0_header_with("kid", Some(json!("unknown")), &evil),
        t0_with("iss", Some(json!("https://idp-c.test\nFAKE-LOG-LINE"))),
        sign(&t0_header(), &t0_payload(), &evil),
    ];
    for token in &tokens {
        let _ = rig.validator.validate(token).await;
    }

    let logs = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf-8 logs");
    assert!(
        logs.contains("Token refused"),
        "debug logs were captured: {logs}"
    );
    for token in &tokens {
        let signature = token.rsplit('.').next().expect("signature");
        assert!(!logs.contains(token.as_str()), "token leaked");
        assert!(!logs.contains(signature), "signature leaked");
    }
    assert!(
        !logs.lines().any(|line| line.starts_with("FAKE-LOG-LINE")),
        "{logs}"
    );
}
