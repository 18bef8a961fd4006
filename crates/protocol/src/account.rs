//! Rewriting the database account document (`GET /`) so that SDKs keep talking to the proxy.
//!
//! SDKs route every later request to the `databaseAccountEndpoint` of the advertised
//! locations, so each one is replaced by a public URL of the proxy: one URL for all of them,
//! or one per region so that the SDKs' own multi-region routing (reads to the nearest
//! readable region, writes to the write region, failover) keeps working, each region's
//! traffic arriving at the proxy under its own URL. Thin-client (Gateway 2.0) locations speak
//! a protocol the proxy cannot inspect, so they are removed. The `content-location` response
//! header can name an upstream host too; [`rewrite_content_location`] points it at the proxy.

use serde_json::{Map, Value};

use crate::error::ProtocolError;

const LOCATION_LISTS: [&str; 2] = ["writableLocations", "readableLocations"];
const THIN_CLIENT_LISTS: [&str; 2] = ["thinClientWritableLocations", "thinClientReadableLocations"];
const ENDPOINT: &str = "databaseAccountEndpoint";
const NAME: &str = "name";

/// Rewrites an account document, pointing every advertised location at `public_url`; every
/// other member is kept as it was.
///
/// A location list that is present but not an array of objects is refused rather than passed
/// on, since it might carry an endpoint we did not rewrite.
pub fn rewrite_account_document(body: &[u8], public_url: &str) -> Result<Vec<u8>, ProtocolError> {
    rewrite_account_document_by_region(body, public_url, &[])
}

/// Rewrites an account document with one public URL per region.
///
/// Each entry of `regions` is `(key, public_url)`. The key is a region name as the document
/// writes it (`"West US"`; compared ignoring case, spaces, `-` and `_`, so `westus` matches
/// too) or the upstream regional endpoint (`https://acct-westus.documents.azure.com:443/`;
/// compared by scheme, host and port, ignoring case, the default port and the path). The
/// first matching entry wins. A location that no entry matches, a region added to the
/// account later for instance, is pointed at `default_public_url`, so no upstream endpoint is
/// ever passed on.
pub fn rewrite_account_document_by_region(
    body: &[u8],
    default_public_url: &str,
    regions: &[(&str, &str)],
) -> Result<Vec<u8>, ProtocolError> {
    let mut document: Map<String, Value> =
        serde_json::from_slice(body).map_err(|_| ProtocolError::MalformedAccountDocument)?;

    for name in THIN_CLIENT_LISTS {
        document.remove(name);
    }
    for name in LOCATION_LISTS {
        if let Some(list) = document.get_mut(name) {
            point_locations_at(list, default_public_url, regions)?;
        }
    }
    serde_json::to_vec(&document).map_err(|_| ProtocolError::MalformedAccountDocument)
}

fn point_locations_at(
    list: &mut Value,
    default_public_url: &str,
    regions: &[(&str, &str)],
) -> Result<(), ProtocolError> {
    let Value::Array(locations) = list else {
        return Err(ProtocolError::MalformedAccountDocument);
    };
    for location in locations {
        let Value::Object(location) = location else {
            return Err(ProtocolError::MalformedAccountDocument);
        };
        let name = location.get(NAME).and_then(Value::as_str);
        let endpoint = location.get(ENDPOINT).and_then(Value::as_str);
        let url = public_url_for(name, endpoint, regions).unwrap_or(default_public_url);
        location.insert(ENDPOINT.to_owned(), Value::String(url.to_owned()));
    }
    Ok(())
}

/// The public URL of the first entry whose key names this region or its endpoint.
fn public_url_for<'a>(
    name: Option<&str>,
    endpoint: Option<&str>,
    regions: &[(&str, &'a str)],
) -> Option<&'a str> {
    let name = name.map(region_key);
    let endpoint = endpoint.and_then(origin);
    regions.iter().find_map(|(key, url)| {
        let hit = match origin(key) {
            Some(key_origin) => endpoint.as_ref() == Some(&key_origin),
            None => {
                let key = region_key(key);
                !key.is_empty() && name.as_deref() == Some(key.as_str())
            }
        };
        hit.then_some(*url)
    })
}

/// A region name reduced to lowercase letters and digits: `West US 2` and `westus2` agree.
fn region_key(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The scheme and `host[:port]` of an absolute http(s) URL, lowercased, without a default
/// port; `None` for anything else.
fn origin(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest[..end].to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority
        .strip_suffix(default_port)
        .map(str::to_owned)
        .unwrap_or(authority);
    Some((scheme, authority))
}

/// The `content-location` value to send the client in place of `value`, or `None` when the
/// header should be dropped.
///
/// A relative reference (`/dbs/a/colls/b`) names no host and is kept. An absolute http(s)
/// URL gets the origin of the public URL its upstream host maps to (by the endpoint keys of
/// `regions`, as in [`rewrite_account_document_by_region`]), or of `default_public_url`,
/// with its path and query kept; the public URL's own path, if any, goes in front. Anything
/// else (another scheme, user information, no host) is dropped rather than passed on.
pub fn rewrite_content_location(
    value: &str,
    default_public_url: &str,
    regions: &[(&str, &str)],
) -> Option<String> {
    let value = value.trim();
    if !value.contains("://") {
        return (!value.is_empty() && !value.starts_with("//")).then(|| value.to_owned());
    }
    let upstream = origin(value)?;
    let public = regions
        .iter()
        .find(|(key, _)| origin(key).as_ref() == Some(&upstream))
        .map_or(default_public_url, |(_, url)| *url);
    origin(public)?;
    let (_, rest) = value.split_once("://")?;
    let tail = &rest[rest.find(['/', '?', '#']).unwrap_or(rest.len())..];
    let base = public.trim_end_matches('/');
    let tail = match tail.strip_prefix('/') {
        Some(path) => format!("/{path}"),
        None if tail.is_empty() => "/".to_owned(),
        None => format!("/{tail}"),
    };
    Some(format!("{base}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PROXY: &str = "https://cosmos-proxy.contoso.test/";
    const EAST: &str = "https://eastus.cosmos-proxy.contoso.test/";
    const WEST: &str = "https://westus.cosmos-proxy.contoso.test/";

    fn rewrite(document: Value) -> Result<Value, ProtocolError> {
        rewrite_regions(document, &[])
    }

    fn rewrite_regions(document: Value, regions: &[(&str, &str)]) -> Result<Value, ProtocolError> {
        let body = serde_json::to_vec(&document).expect("test document must serialize");
        let out = rewrite_account_document_by_region(&body, PROXY, regions)?;
        Ok(serde_json::from_slice(&out).expect("output must be json"))
    }

    fn two_regions() -> Value {
        json!({
            "id": "acct",
            "writableLocations": [
                {"name": "East US", "databaseAccountEndpoint": "https://acct-eastus.documents.azure.com:443/"}
            ],
            "readableLocations": [
                {"name": "East US", "databaseAccountEndpoint": "https://acct-eastus.documents.azure.com:443/"},
                {"name": "West US", "databaseAccountEndpoint": "https://acct-westus.documents.azure.com:443/"},
                {"name": "Central India", "databaseAccountEndpoint": "https://acct-centralindia.documents.azure.com:443/"}
            ],
            "thinClientReadableLocations": [{"name": "East US", "databaseAccountEndpoint": "https://x:10250/"}],
            "enableMultipleWriteLocations": false
        })
    }

    fn endpoints(out: &Value, list: &str) -> Vec<String> {
        out[list]
            .as_array()
            .expect("list must stay an array")
            .iter()
            .map(|l| l[ENDPOINT].as_str().unwrap_or("?").to_owned())
            .collect()
    }

    #[test]
    fn single_url_form_matches_the_per_region_form_without_regions() {
        let body = serde_json::to_vec(&two_regions()).expect("serialize");
        assert_eq!(
            rewrite_account_document(&body, PROXY),
            rewrite_account_document_by_region(&body, PROXY, &[])
        );
    }

    #[test]
    fn every_advertised_endpoint_points_at_the_proxy() {
        let out = rewrite(json!({
            "id": "acct",
            "writableLocations": [
                {"name": "East US", "databaseAccountEndpoint": "https://acct-eastus.documents.azure.com:443/"}
            ],
            "readableLocations": [
                {"name": "East US", "databaseAccountEndpoint": "https://acct-eastus.documents.azure.com:443/"},
                {"name": "West US", "databaseAccountEndpoint": "https://acct-westus.documents.azure.com:443/"},
                {"name": "No Endpoint"}
            ],
            "enableMultipleWriteLocations": false,
            "userConsistencyPolicy": {"defaultConsistencyLevel": "Session"},
            "queryEngineConfiguration": "{\"maxSqlQueryInputLength\":262144}",
            "media": "//media/",
            "addresses": "//addresses/",
            "_dbs": "//dbs/"
        }))
        .expect("document must rewrite");

        for list in LOCATION_LISTS {
            assert!(endpoints(&out, list).iter().all(|e| e == PROXY));
        }
        assert_eq!(out["readableLocations"][1]["name"], "West US");
        assert_eq!(
            out["userConsistencyPolicy"]["defaultConsistencyLevel"],
            "Session"
        );
        assert_eq!(
            out["queryEngineConfiguration"],
            "{\"maxSqlQueryInputLength\":262144}"
        );
        assert_eq!(out["_dbs"], "//dbs/");
        assert_eq!(out["enableMultipleWriteLocations"], false);
    }

    #[test]
    fn regions_map_by_name_and_unmapped_ones_fall_back_to_the_default() {
        let out = rewrite_regions(two_regions(), &[("eastus", EAST), ("West US", WEST)])
            .expect("document must rewrite");
        assert_eq!(endpoints(&out, "writableLocations"), [EAST]);
        assert_eq!(endpoints(&out, "readableLocations"), [EAST, WEST, PROXY]);
        assert_eq!(out["readableLocations"][2]["name"], "Central India");
        assert!(out.get("thinClientReadableLocations").is_none());
    }

    #[test]
    fn regions_map_by_upstream_endpoint_ignoring_case_default_port_and_path() {
        let regions = [
            ("HTTPS://ACCT-WESTUS.documents.azure.com", WEST),
            (
                "https://acct-eastus.documents.azure.com:443/ignored/path",
                EAST,
            ),
        ];
        let out = rewrite_regions(two_regions(), &regions).expect("document must rewrite");
        assert_eq!(endpoints(&out, "readableLocations"), [EAST, WEST, PROXY]);
    }

    #[test]
    fn first_matching_region_wins_and_a_different_port_does_not_match() {
        let regions = [
            ("https://acct-eastus.documents.azure.com:8443/", WEST),
            ("East US", EAST),
            ("eastus", WEST),
        ];
        let out = rewrite_regions(two_regions(), &regions).expect("document must rewrite");
        assert_eq!(endpoints(&out, "writableLocations"), [EAST]);
    }

    #[test]
    fn thin_client_locations_are_removed() {
        let out = rewrite(json!({
            "writableLocations": [],
            "thinClientWritableLocations": [{"name": "East US", "databaseAccountEndpoint": "https://x:10250/"}],
            "thinClientReadableLocations": [{"name": "East US", "databaseAccountEndpoint": "https://x:444/"}]
        }))
        .expect("document must rewrite");
        assert_eq!(out, json!({"writableLocations": []}));
    }

    #[test]
    fn documents_without_locations_pass_through() {
        let out = rewrite(json!({"id": "acct"})).expect("document must rewrite");
        assert_eq!(out, json!({"id": "acct"}));
    }

    #[test]
    fn non_objects_and_odd_location_shapes_are_refused() {
        for bad in [
            json!([1, 2]),
            json!("text"),
            json!({"writableLocations": {"databaseAccountEndpoint": "https://x/"}}),
            json!({"readableLocations": ["https://x/"]}),
        ] {
            assert_eq!(rewrite(bad), Err(ProtocolError::MalformedAccountDocument));
        }
        for body in [&b""[..], b"{", b"\xff", b"null"] {
            assert_eq!(
                rewrite_account_document(body, PROXY),
                Err(ProtocolError::MalformedAccountDocument)
            );
        }
    }

    #[test]
    fn odd_names_and_endpoints_never_escape_the_rewrite() {
        let out = rewrite_regions(
            json!({"readableLocations": [
                {"name": 7, "databaseAccountEndpoint": {"x": 1}},
                {"name": "", "databaseAccountEndpoint": "ftp://acct-eastus/"},
                {"databaseAccountEndpoint": "https://user@acct-eastus.documents.azure.com/"}
            ]}),
            &[("", EAST), ("ftp://acct-eastus/", EAST)],
        )
        .expect("document must rewrite");
        assert_eq!(endpoints(&out, "readableLocations"), [PROXY, PROXY, PROXY]);
    }

    #[test]
    fn content_location_on_an_upstream_host_points_at_the_proxy() {
        let regions = [("https://acct-westus.documents.azure.com/", WEST)];
        let cases = [
            (
                "https://acct.documents.azure.com:443/dbs/a/colls/b?x=1",
                "https://cosmos-proxy.contoso.test/dbs/a/colls/b?x=1",
            ),
            (
                "https://acct-westus.documents.azure.com/dbs/a",
                "https://westus.cosmos-proxy.contoso.test/dbs/a",
            ),
            (
                "https://acct.documents.azure.com",
                "https://cosmos-proxy.contoso.test/",
            ),
            (
                "https://acct.documents.azure.com?x",
                "https://cosmos-proxy.contoso.test/?x",
            ),
        ];
        for (upstream, public) in cases {
            let out = rewrite_content_location(upstream, PROXY, &regions);
            assert_eq!(out.as_deref(), Some(public), "{upstream}");
        }
    }

    #[test]
    fn content_location_keeps_relative_paths_and_drops_what_it_cannot_read() {
        assert_eq!(
            rewrite_content_location("/dbs/a/colls/b", PROXY, &[]).as_deref(),
            Some("/dbs/a/colls/b")
        );
        for dropped in [
            "",
            "//evil.example/x",
            "ftp://acct/x",
            "https://u@acct/x",
            "https:///x",
        ] {
            assert_eq!(
                rewrite_content_location(dropped, PROXY, &[]),
                None,
                "{dropped}"
            );
        }
    }

    #[test]
    fn content_location_keeps_a_public_path_prefix() {
        let out = rewrite_content_location(
            "https://acct.documents.azure.com/dbs/a",
            "https://gw.contoso.test/cosmos/",
            &[],
        );
        assert_eq!(out.as_deref(), Some("https://gw.contoso.test/cosmos/dbs/a"));
    }

    proptest::proptest! {
        #[test]
        fn content_location_never_panics_and_never_names_an_upstream_host(
            value in "(https?://)?[a-zA-Z0-9.:@/?#%-]{0,40}"
        ) {
            let regions = [("https://acct-westus.documents.azure.com/", WEST)];
            let upstream = format!("{value}.documents.azure.com");
            if let Some(out) = rewrite_content_location(&value, PROXY, &regions) {
                proptest::prop_assert!(!out.contains("://") || out.starts_with("https://"));
            }
            if let Some(out) = rewrite_content_location(&upstream, PROXY, &regions)
                && upstream.contains("://")
            {
                proptest::prop_assert!(out.starts_with("https://"), "{}", out);
                proptest::prop_assert!(!out[8..].split(['/', '?', '#']).next().unwrap_or("")
                    .contains("documents.azure.com"));
            }
        }
    }
}
