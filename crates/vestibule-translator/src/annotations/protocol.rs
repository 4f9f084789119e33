//! `backend-protocol`: how requests are carried to a route's endpoints.
//!
//! As in ingress-nginx the value is trimmed and case-insensitive, and anything it does not
//! accept leaves the route on HTTP. `FCGI` (and `AJP`, which older ingress-nginx releases
//! accepted) name protocols Vestibule does not speak: they are reported as unsupported and the
//! route stays on HTTP too.

use vestibule_routing::BackendProtocol;

use super::values::Invalid;
use super::{Reader, Verdict};

/// What a `backend-protocol` value asks for.
#[derive(Debug, PartialEq, Eq)]
enum Asked {
    /// A protocol Vestibule speaks.
    Supported(BackendProtocol),
    /// A protocol ingress-nginx knows and Vestibule does not speak; the text says why.
    Unsupported(&'static str),
}

/// The route's protocol: HTTP unless `backend-protocol` names a supported one.
pub(super) fn backend_protocol(reader: &mut Reader<'_>) -> BackendProtocol {
    const NAME: &str = "backend-protocol";
    let Some((key, value)) = reader.get(NAME) else {
        return BackendProtocol::Http;
    };
    match parse(value) {
        Ok(Asked::Supported(protocol)) => protocol,
        Ok(Asked::Unsupported(why)) => {
            reader.verdicts.insert(key, Verdict::Unsupported(why));
            BackendProtocol::Http
        }
        Err(why) => {
            reader
                .verdicts
                .insert(key, Verdict::Invalid(format!("value {value:?}: {why}")));
            BackendProtocol::Http
        }
    }
}

fn parse(text: &str) -> Result<Asked, Invalid> {
    let asked = match text.trim().to_ascii_lowercase().as_str() {
        "http" => Asked::Supported(BackendProtocol::Http),
        "https" => Asked::Supported(BackendProtocol::Https),
        "auto_http" => Asked::Supported(BackendProtocol::AutoHttp),
        "grpc" => Asked::Supported(BackendProtocol::Grpc),
        "grpcs" => Asked::Supported(BackendProtocol::Grpcs),
        "fcgi" => Asked::Unsupported("FastCGI backends are not supported; the route uses HTTP"),
        "ajp" => Asked::Unsupported("AJP backends are not supported; the route uses HTTP"),
        _ => return Err("expected HTTP, HTTPS, AUTO_HTTP, GRPC or GRPCS".to_owned()),
    };
    Ok(asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_trimmed_and_case_insensitive() {
        assert_eq!(
            parse(" grpcs "),
            Ok(Asked::Supported(BackendProtocol::Grpcs))
        );
        assert_eq!(parse("Https"), Ok(Asked::Supported(BackendProtocol::Https)));
        assert_eq!(
            parse("AUTO_HTTP"),
            Ok(Asked::Supported(BackendProtocol::AutoHttp))
        );
        assert!(matches!(parse("FCGI"), Ok(Asked::Unsupported(_))));
        assert!(parse("http2").is_err());
        assert!(parse("").is_err());
    }
}
