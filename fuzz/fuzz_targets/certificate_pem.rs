//! `Certificate::from_pem`: PEM parsing of the chain and the key, key loading, the key/leaf
//! match, and the hand-written DER walk that reads the leaf's `notAfter` (`expiry.rs`).
//!
//! Each input is used twice:
//! 1. As PEM text: split at the first NUL byte into (chain, key); without a NUL byte the whole
//!    input is both, as in a combined PEM file.
//! 2. As the raw DER of a leaf certificate (the bytes before the first NUL, if any), wrapped in
//!    a `CERTIFICATE` PEM block and paired with a fixed P-256 key, so that mutations reach the
//!    DER walk directly instead of through base64.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vestibule_tls::Certificate;

/// A throwaway P-256 key (PKCS#8), generated for fuzzing only; the `der-*` seeds are
/// certificates for it.
const FIXED_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg2rBY8QfQZ2YXEpEW
q76aO1aq2ZQ1fduTYxQIPNJAaxOhRANCAAStrSbCtrTa3i1sm3aiIBAkiFvf7UvQ
BD3PRwi9dpzn1M1n4vgWzsOXNFWvKLyKCJZX8HMpq+XEx9sLRV80oR0r
-----END PRIVATE KEY-----
";

fuzz_target!(|data: &[u8]| {
    let (chain, key) = match data.iter().position(|&byte| byte == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, data),
    };
    check(chain, key);

    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in chain.chunks(48) {
        base64(line, &mut pem);
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    check(pem.as_bytes(), FIXED_KEY.as_bytes());
});

fn check(chain: &[u8], key: &[u8]) {
    if let Ok(certificate) = Certificate::from_pem(chain, key, "fuzz") {
        assert!(certificate.not_after().is_some());
        assert!(!certificate.leaf().is_empty());
        assert_eq!(certificate.source(), "fuzz");
    }
}

/// Standard base64 with padding (RFC 4648), appended to `out`.
fn base64(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= group.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}
