//! `read_client_hello`: the ClientHello reader SSL passthrough runs on the first bytes of every
//! HTTPS connection while some host is passed through.
//!
//! Beyond "no panic": `Incomplete(n)` asks for more bytes than it was given; any other verdict
//! stays the same when more bytes follow (what comes after a ClientHello, or after bytes that
//! cannot start one, never matters); a host name found is lower case, without a trailing dot,
//! non-empty and at most 253 bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vestibule_tls::{ClientHello, read_client_hello};

fuzz_target!(|data: &[u8]| {
    let verdict = read_client_hello(data);
    match &verdict {
        ClientHello::Incomplete(needed) => {
            assert!(
                *needed > data.len(),
                "Incomplete({needed}) for {} bytes",
                data.len()
            );
            return;
        }
        ClientHello::Complete(Some(host)) => {
            assert!(!host.is_empty() && host.len() <= 253, "{host:?}");
            assert!(!host.ends_with('.'), "{host:?}");
            assert_eq!(*host, host.to_ascii_lowercase());
        }
        ClientHello::Complete(None) | ClientHello::Invalid => {}
    }
    let mut longer = data.to_vec();
    longer.extend_from_slice(&[0x16, 0x03, 0x01, 0x00, 0x01, 0x01]);
    assert_eq!(
        read_client_hello(&longer),
        verdict,
        "more bytes changed the verdict"
    );
});
