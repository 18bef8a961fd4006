//! The one error type of this crate.

/// How the server should answer a [`ProtocolError`] that a client caused.
///
/// [`ProtocolError::MalformedAccountDocument`] and [`ProtocolError::InvalidKey`] are not client
/// mistakes: the first is an upstream fault (the server answers 502), the second a configuration
/// fault found at start-up. They report [`ErrorClass::BadRequest`] only because the class has no
/// better bucket; the server handles them by variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request cannot be interpreted (400).
    BadRequest,
    /// The credential is missing, malformed or of a refused kind (401).
    Unauthenticated,
    /// The request is understood but never allowed through the proxy (403).
    Forbidden,
}

/// Everything that can go wrong while reading the Cosmos wire protocol.
///
/// Messages never contain the client's token, a key or a signature. Where a message names an
/// input, it names the header, never its value.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The `Authorization` header is neither an AAD token nor a bearer token.
    #[error("malformed authorization header")]
    MalformedAuthorization,

    /// The client sent a key-derived credential (`master`, `resource` or `sas`).
    #[error("{kind} key credentials are not accepted; send an entra id token")]
    KeyCredential {
        /// The `type=` of the refused credential.
        kind: &'static str,
    },

    /// The request path is not in the canonical form the proxy accepts.
    #[error("malformed or non-canonical request path")]
    MalformedPath,

    /// A header that decides how the request is classified is invalid.
    #[error("malformed {name} header")]
    MalformedHeader {
        /// The header's name.
        name: &'static str,
    },

    /// A batch or bulk body is not a JSON array of known operations.
    #[error("malformed batch body")]
    MalformedBatch,

    /// The method and path do not name a known data-plane operation.
    #[error("unknown operation")]
    UnknownOperation,

    /// A management operation (databases, containers, scripts, users, offers).
    #[error("control-plane operations are not available through this proxy")]
    ControlPlane,

    /// A Direct-mode address lookup, which an HTTP proxy cannot serve.
    #[error("direct mode is not supported; switch the cosmos sdk connection mode to gateway")]
    DirectMode,

    /// A data operation addressed by `_rid` rather than by name.
    #[error("addressing resources by _rid is only allowed for metadata reads")]
    RidAddressing,

    /// The upstream `GET /` answer is not a JSON object.
    #[error("malformed database account document")]
    MalformedAccountDocument,

    /// The configured master key is not valid base64.
    #[error("invalid master key")]
    InvalidKey,
}

impl ProtocolError {
    /// A stable short code for audit records and metrics.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::MalformedAuthorization => "malformed_authorization",
            Self::KeyCredential { .. } => "key_credential_refused",
            Self::MalformedPath => "malformed_path",
            Self::MalformedHeader { .. } => "malformed_header",
            Self::MalformedBatch => "malformed_batch",
            Self::UnknownOperation => "unknown_operation",
            Self::ControlPlane => "control_plane_operation",
            Self::DirectMode => "direct_mode_unsupported",
            Self::RidAddressing => "rid_addressing_refused",
            Self::MalformedAccountDocument => "malformed_account_document",
            Self::InvalidKey => "invalid_master_key",
        }
    }

    /// Which class of HTTP answer fits this error; see [`ErrorClass`] for the two exceptions.
    pub fn kind(&self) -> ErrorClass {
        match self {
            Self::MalformedAuthorization | Self::KeyCredential { .. } => {
                ErrorClass::Unauthenticated
            }
            Self::UnknownOperation
            | Self::ControlPlane
            | Self::DirectMode
            | Self::RidAddressing => ErrorClass::Forbidden,
            Self::MalformedPath
            | Self::MalformedHeader { .. }
            | Self::MalformedBatch
            | Self::MalformedAccountDocument
            | Self::InvalidKey => ErrorClass::BadRequest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_credential_message_names_the_kind_only() {
        let err = ProtocolError::KeyCredential { kind: "master" };
        assert_eq!(
            err.to_string(),
            "master key credentials are not accepted; send an entra id token"
        );
        assert_eq!(err.kind(), ErrorClass::Unauthenticated);
    }

    #[test]
    fn direct_mode_message_points_to_gateway_mode() {
        let err = ProtocolError::DirectMode;
        assert!(err.to_string().contains("gateway"));
        assert_eq!(err.reason_code(), "direct_mode_unsupported");
        assert_eq!(err.kind(), ErrorClass::Forbidden);
    }

    #[test]
    fn every_reason_code_is_snake_case() {
        let all = [
            ProtocolError::MalformedAuthorization,
            ProtocolError::KeyCredential { kind: "sas" },
            ProtocolError::MalformedPath,
            ProtocolError::MalformedHeader { name: "x" },
            ProtocolError::MalformedBatch,
            ProtocolError::UnknownOperation,
            ProtocolError::ControlPlane,
            ProtocolError::DirectMode,
            ProtocolError::RidAddressing,
            ProtocolError::MalformedAccountDocument,
            ProtocolError::InvalidKey,
        ];
        for err in all {
            let code = err.reason_code();
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
            let message = err.to_string();
            assert_eq!(message, message.to_lowercase(), "{message}");
        }
    }
}
