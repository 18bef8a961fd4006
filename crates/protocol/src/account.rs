//! Rewriting the database account document (`GET /`) so that SDKs keep talking to the proxy.
//!
//! SDKs route every later request to the `databaseAccountEndpoint` of the advertised
//! locations, so each one is replaced by the proxy's public URL. Thin-client (Gateway 2.0)
//! locations speak a protocol the proxy cannot inspect, so they are removed.

use serde_json::{Map, Value};

use crate::error::ProtocolError;

const LOCATION_LISTS: [&str; 2] = ["writableLocations", "readableLocations"];
const THIN_CLIENT_LISTS: [&str; 2] = ["thinClientWritableLocations", "thinClientReadableLocations"];
const ENDPOINT: &str = "databaseAccountEndpoint";

/// Rewrites an account document; every other member is kept as it was.
///
/// A location list that is present but not an array of objects is refused rather than passed
/// on, since it might carry an endpoint we did not rewrite.
pub fn rewrite_account_document(body: &[u8], public_url: &str) -> Result<Vec<u8>, ProtocolError> {
    let mut document: Map<String, Value> =
        serde_json::from_slice(body).map_err(|_| ProtocolError::MalformedAccountDocument)?;

    for name in THIN_CLIENT_LISTS {
        document.remove(name);
    }
    for name in LOCATION_LISTS {
        if let Some(list) = document.get_mut(name) {
            point_locations_at(list, public_url)?;
        }
    }
    serde_json::to_vec(&document).map_err(|_| ProtocolError::MalformedAccountDocument)
}

fn point_locations_at(list: &mut Value, public_url: &str) -> Result<(), ProtocolError> {
    let Value::Array(locations) = list else {
        return Err(ProtocolError::MalformedAccountDocument);
    };
    for location in locations {
        let Value::Object(location) = location else {
            return Err(ProtocolError::MalformedAccountDocument);
        };
        location.insert(ENDPOINT.to_owned(), Value::String(public_url.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PROXY: &str = "https://cosmos-proxy.contoso.test/";

    fn rewrite(document: Value) -> Result<Value, ProtocolError> {
        let body = serde_json::to_vec(&document).expect("test document must serialize");
        let out = rewrite_account_document(&body, PROXY)?;
        Ok(serde_json::from_slice(&out).expect("output must be json"))
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

        for list in ["writableLocations", "readableLocations"] {
            for location in out[list].as_array().expect("list must stay an array") {
                assert_eq!(location["databaseAccountEndpoint"], PROXY);
            }
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
}
