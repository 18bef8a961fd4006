//! The `[telemetry]` section: where spans go, and how much may wait for the collector.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::TelemetryError;

/// The only OTLP protocol cosmogate speaks.
const HTTP_PROTOBUF: &str = "http/protobuf";

/// Where the OTLP/HTTP traces path is, below the collector's base URL.
const TRACES_PATH: &str = "v1/traces";

/// Telemetry cosmogate sends to other systems. Metrics are scraped from the admin listener
/// instead (`[admin]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OpenTelemetry trace export over OTLP. Default: none, no spans are exported.
    #[serde(default)]
    pub otlp: Option<OtlpConfig>,
}

/// OpenTelemetry trace export: one server span per request, batched to an OTLP collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// The collector's base URL, for example `http://127.0.0.1:4318`. Spans are posted to
    /// `<endpoint>/v1/traces`, or to the endpoint itself when its path already ends in
    /// `/v1/traces`. Required.
    pub endpoint: Url,
    /// The OTLP transport; only `http/protobuf` (the default) is supported.
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// `service.name` of the exported resource. Default `cosmogate`.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Longest wait for the collector per export, retries included; the batch is dropped
    /// and counted after that. Default 10, 1–60.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Most ended spans waiting for export; more are dropped and counted, never waited
    /// for. Default 2048, 1–1000000.
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
    /// The share of new traces (requests without a client `traceparent`) that are
    /// exported, 0.0–1.0. A client's sampling decision is always followed. Default 1.0.
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
    /// An environment variable holding headers for the collector (for example an API key)
    /// as `name=value` pairs separated by commas, values percent-encoded, as in
    /// `OTEL_EXPORTER_OTLP_HEADERS`. Default: none.
    #[serde(default)]
    pub headers_env: Option<String>,
}

fn default_protocol() -> String {
    HTTP_PROTOBUF.to_owned()
}

fn default_service_name() -> String {
    "cosmogate".to_owned()
}

fn default_timeout_seconds() -> u64 {
    10
}

fn default_queue_size() -> usize {
    2048
}

fn default_sample_ratio() -> f64 {
    1.0
}

impl TelemetryConfig {
    /// Every problem, each as `path.field: message`.
    pub fn validate(&self, path: &str) -> Vec<String> {
        match &self.otlp {
            Some(otlp) => otlp.validate(&format!("{path}.otlp")),
            None => Vec::new(),
        }
    }
}

impl OtlpConfig {
    /// Every problem, each as `path.field: message`.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let mut problem = |field: &str, message: &str| {
            problems.push(format!("{path}.{field}: {message}"));
        };
        let endpoint = &self.endpoint;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host().is_none() {
            problem("endpoint", "must be an http or https URL");
        }
        if !endpoint.username().is_empty() || endpoint.password().is_some() {
            problem("endpoint", "must not carry credentials; use headers_env");
        }
        if endpoint.query().is_some() || endpoint.fragment().is_some() {
            problem("endpoint", "must have no query or fragment");
        }
        if self.headers_env.is_some()
            && endpoint.scheme() == "http"
            && !cosmogate_upstream::is_loopback(endpoint)
        {
            problem(
                "headers_env",
                "collector headers are sent only over https, or over http to a loopback host",
            );
        }
        if self
            .headers_env
            .as_ref()
            .is_some_and(|name| name.is_empty())
        {
            problem("headers_env", "must not be empty");
        }
        if self.protocol != HTTP_PROTOBUF {
            problem("protocol", "only \"http/protobuf\" is supported");
        }
        if self.service_name.trim().is_empty() {
            problem("service_name", "must not be empty");
        }
        if !(1..=60).contains(&self.timeout_seconds) {
            problem("timeout_seconds", "must be between 1 and 60");
        }
        if !(1..=1_000_000).contains(&self.queue_size) {
            problem("queue_size", "must be between 1 and 1000000");
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            problem("sample_ratio", "must be between 0.0 and 1.0");
        }
        problems
    }

    /// The URL spans are posted to.
    pub(crate) fn traces_url(&self) -> String {
        let text = self.endpoint.as_str();
        if self.endpoint.path().ends_with(&format!("/{TRACES_PATH}")) {
            return text.to_owned();
        }
        format!("{}/{TRACES_PATH}", text.trim_end_matches('/'))
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    /// The collector headers from [`OtlpConfig::headers_env`]. Errors name the variable,
    /// never its value.
    pub(crate) fn headers(&self) -> Result<HashMap<String, String>, TelemetryError> {
        let Some(name) = &self.headers_env else {
            return Ok(HashMap::new());
        };
        let unusable = |problem: &'static str| TelemetryError::Headers {
            name: name.clone(),
            problem,
        };
        let text = std::env::var(name).map_err(|_| unusable("is not set"))?;
        parse_headers(&text).ok_or_else(|| unusable("does not hold name=value pairs"))
    }
}

/// `name=value,name=value`, values percent-decoded; `None` when any pair is malformed.
fn parse_headers(text: &str) -> Option<HashMap<String, String>> {
    let mut headers = HashMap::new();
    for pair in text
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
    {
        let (name, value) = pair.split_once('=')?;
        let name = name.trim();
        http::HeaderName::from_bytes(name.as_bytes()).ok()?;
        let value = percent_encoding::percent_decode_str(value.trim())
            .decode_utf8()
            .ok()?;
        http::HeaderValue::from_str(&value).ok()?;
        headers.insert(name.to_ascii_lowercase(), value.into_owned());
    }
    Some(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn otlp(extra: &str) -> OtlpConfig {
        toml::from_str(&format!("endpoint = \"http://127.0.0.1:4318\"\n{extra}"))
            .expect("a valid otlp table")
    }

    #[test]
    fn defaults_are_http_protobuf_to_the_traces_path() {
        let config = otlp("");
        assert!(config.validate("telemetry.otlp").is_empty());
        assert_eq!(config.traces_url(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(config.service_name, "cosmogate");
        assert_eq!(config.timeout(), Duration::from_secs(10));
        assert_eq!(config.queue_size, 2048);
    }

    #[test]
    fn an_endpoint_naming_the_traces_path_is_used_as_it_is() {
        let mut config = otlp("");
        config.endpoint = Url::parse("https://otel.example/otlp/v1/traces").expect("url");
        assert_eq!(config.traces_url(), "https://otel.example/otlp/v1/traces");
        config.endpoint = Url::parse("https://otel.example/otlp/").expect("url");
        assert_eq!(config.traces_url(), "https://otel.example/otlp/v1/traces");
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let mut config = otlp(
            "protocol = \"grpc\"\ntimeout_seconds = 0\nqueue_size = 0\nsample_ratio = 2.0\n\
             service_name = \" \"\nheaders_env = \"OTLP_HEADERS\"\n",
        );
        config.endpoint = Url::parse("http://user:pw@otel.example:4318/?x=1").expect("url");
        let problems = config.validate("telemetry.otlp");
        for field in [
            "endpoint: must not carry credentials",
            "endpoint: must have no query",
            "headers_env: collector headers are sent only over https",
            "protocol:",
            "service_name:",
            "timeout_seconds:",
            "queue_size:",
            "sample_ratio:",
        ] {
            let wanted = format!("telemetry.otlp.{field}");
            assert!(
                problems.iter().any(|p| p.starts_with(&wanted)),
                "{wanted} in {problems:?}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let parsed: Result<OtlpConfig, _> =
            toml::from_str("endpoint = \"http://127.0.0.1:4318\"\ninsecure = true\n");
        assert!(parsed.is_err());
    }

    #[test]
    fn headers_are_pairs_with_percent_encoded_values() {
        let headers = parse_headers("api-key=s%3Dcret, X-Tenant = a b ").expect("pairs");
        assert_eq!(headers["api-key"], "s=cret");
        assert_eq!(headers["x-tenant"], "a b");
        assert!(parse_headers("no-equals-sign").is_none());
        assert!(parse_headers("bad name=x").is_none());
        assert!(parse_headers("").expect("no pairs").is_empty());
    }
}
