//! TLS termination: certificates chosen by SNI from Secrets, the default certificate, rotation,
//! ALPN, HTTPS redirects, HSTS, misdirected requests and hostile handshakes.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::tls::*;
use crate::support::*;

/// A served site: `shop.example`, `other.example` and `*.apps.example` are TLS hosts with one
/// certificate each (the wildcard's Secret in base64 `data`); `plain.example` is not a TLS host.
struct Site {
    manifests: Manifests,
    vestibule: Vestibule,
    shop: KeyPair,
    other: KeyPair,
    wild: KeyPair,
}

/// Writes `pair` as the Secret `name`, in its own file.
fn write_secret(manifests: &Manifests, name: &str, pair: &KeyPair) {
    let text = tls_secret(name, &pair.cert_pem, &pair.key_pem);
    manifests.write(&format!("secret-{name}.yaml"), &text);
}

/// Starts the [`Site`] with `extra` flags; `files` are written before start-up.
async fn start_site(extra: &[&str], files: &[(&str, String)]) -> Site {
    let mut services = Vec::new();
    for name in ["shop", "other", "wildcard", "plain"] {
        services.push(service(name, &[echo_backend(name).await]));
    }
    let manifests = Manifests::new();
    manifests.write("services.yaml", &services.join("\n---\n"));
    let (shop, other, wild) = (
        generate(&["shop.example"]),
        generate(&["other.example"]),
        generate(&["*.apps.example"]),
    );
    write_secret(&manifests, "shop-tls", &shop);
    write_secret(&manifests, "other-tls", &other);
    manifests.write(
        "secret-wild-tls.yaml",
        &tls_secret_base64("wild-tls", &wild.cert_pem, &wild.key_pem),
    );
    manifests.write(
        "site.yaml",
        &tls_ingress(
            "site",
            &[
                ("shop.example", "/", "Prefix", "shop"),
                ("other.example", "/", "Prefix", "other"),
                ("*.apps.example", "/", "Prefix", "wildcard"),
                ("plain.example", "/", "Prefix", "plain"),
            ],
            &[
                (&["shop.example"], "shop-tls"),
                (&["other.example"], "other-tls"),
                (&["*.apps.example"], "wild-tls"),
            ],
        ),
    );
    for (name, text) in files {
        manifests.write(name, text);
    }
    let vestibule = Vestibule::start(manifests.path(), extra);
    vestibule.wait_ready().await;
    Site {
        manifests,
        vestibule,
        shop,
        other,
        wild,
    }
}

fn assert_served(answer: &Answer, backend: &str, what: &str) {
    assert_eq!(answer.status, 200, "{what}: {answer:?}");
    assert_eq!(answer.backend(), backend, "{what}");
}

#[tokio::test]
async fn sni_selects_the_exact_or_the_wildcard_certificate() {
    let site = start_site(&[], &[]).await;
    let https = site.vestibule.https;
    let cases = [
        ("shop.example", &site.shop),
        ("SHOP.Example", &site.shop),
        ("other.example", &site.other),
        ("a.apps.example", &site.wild),
        ("b.apps.example", &site.wild),
    ];
    for (sni, expected) in cases {
        assert!(leaf_for(https, Some(sni)).await == expected.der, "{sni}");
    }
    let deeper = leaf_for(https, Some("a.b.apps.example")).await;
    assert!(
        deeper != site.wild.der,
        "a wildcard covers exactly one label"
    );
    assert_served(
        &get_tls(https, Some("a.apps.example"), "a.apps.example", "/").await,
        "wildcard",
        "wildcard host over TLS",
    );
}

#[tokio::test]
async fn unknown_names_get_the_self_signed_default() {
    let site = start_site(&[], &[]).await;
    let https = site.vestibule.https;
    let default = leaf_for(https, Some("unknown.example")).await;
    for pair in [&site.shop, &site.other, &site.wild] {
        assert!(default != pair.der);
    }
    assert!(certifies(&default, "vestibule.invalid"));
    assert!(!certifies(&default, "unknown.example"));
    for sni in [Some("another.example"), Some("plain.example"), None] {
        assert!(leaf_for(https, sni).await == default, "{sni:?}");
    }
}

#[tokio::test]
async fn the_default_certificate_can_come_from_a_secret() {
    let fallback = generate(&["fallback.example"]);
    let secret = tls_secret("fallback-tls", &fallback.cert_pem, &fallback.key_pem);
    let site = start_site(
        &["--default-ssl-certificate", "default/fallback-tls"],
        &[("secret-fallback-tls.yaml", secret)],
    )
    .await;
    let https = site.vestibule.https;
    for sni in [Some("unknown.example"), Some("plain.example"), None] {
        assert!(leaf_for(https, sni).await == fallback.der, "{sni:?}");
    }
    assert!(leaf_for(https, Some("shop.example")).await == site.shop.der);
}

#[tokio::test]
async fn broken_secrets_fall_back_to_the_default_and_are_reported() {
    let good = generate(&["mismatch.example"]);
    let stranger = generate(&["stranger.example"]);
    let broken = tls_ingress(
        "broken",
        &[
            ("garbage.example", "/", "Prefix", "plain"),
            ("mismatch.example", "/", "Prefix", "plain"),
            ("missing.example", "/", "Prefix", "plain"),
        ],
        &[
            (&["garbage.example"], "garbage-tls"),
            (&["mismatch.example"], "mismatched-tls"),
            (&["missing.example"], "absent-tls"),
        ],
    );
    let site = start_site(
        &[],
        &[
            (
                "secret-garbage-tls.yaml",
                tls_secret("garbage-tls", "not a certificate", "not a key"),
            ),
            (
                "secret-mismatched-tls.yaml",
                tls_secret("mismatched-tls", &good.cert_pem, &stranger.key_pem),
            ),
            ("broken.yaml", broken),
        ],
    )
    .await;
    let https = site.vestibule.https;
    for secret in ["garbage-tls", "mismatched-tls"] {
        site.vestibule.wait_for_log(secret).await;
        let reported = site
            .vestibule
            .log()
            .iter()
            .any(|line| line.contains("InvalidSecret") && line.contains(secret));
        assert!(reported, "no InvalidSecret warning names {secret}");
    }
    let default = leaf_for(https, Some("unknown.example")).await;
    for sni in ["garbage.example", "mismatch.example", "missing.example"] {
        assert!(leaf_for(https, Some(sni)).await == default, "{sni}");
        assert_served(&get_tls(https, Some(sni), sni, "/").await, "plain", sni);
    }
    assert!(leaf_for(https, Some("shop.example")).await == site.shop.der);
    assert_served(
        &get_tls(https, Some("shop.example"), "shop.example", "/").await,
        "shop",
        "an unrelated TLS host",
    );

    let repaired = generate(&["garbage.example"]);
    write_secret(&site.manifests, "garbage-tls", &repaired);
    eventually(|| async { leaf_for(https, Some("garbage.example")).await == repaired.der }).await;
}

#[tokio::test]
async fn a_rotated_secret_reaches_new_handshakes_and_open_connections_keep_working() {
    let site = start_site(&[], &[]).await;
    let https = site.vestibule.https;
    let stream = connect(https, Some("shop.example"), &[b"http/1.1"]).await;
    assert!(leaf(&stream) == site.shop.der);
    let mut open = Https1::over(stream).await;
    let before = open.get("shop.example", "/before").await.expect("answer");
    assert_served(&before, "shop", "before rotation");

    let rotated = generate(&["shop.example"]);
    write_secret(&site.manifests, "shop-tls", &rotated);
    eventually(|| async { leaf_for(https, Some("shop.example")).await == rotated.der }).await;

    let after = open.get("shop.example", "/after").await.expect("answer");
    assert_served(&after, "shop", "the connection opened before rotation");
    assert_eq!(after.json()["uri"], "/after");
    assert!(leaf_for(https, Some("other.example")).await == site.other.der);
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn_and_multiplexed() {
    let site = start_site(&[], &[]).await;
    let https = site.vestibule.https;
    let stream = connect(https, Some("shop.example"), &[b"h2", b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let h2 = Https2::over(stream).await;
    let requests: Vec<_> = (0..20)
        .map(|index| {
            let h2 = h2.clone();
            tokio::spawn(async move { h2.get("shop.example", &format!("/path/{index}")).await })
        })
        .collect();
    for (index, request) in requests.into_iter().enumerate() {
        let answer = request.await.expect("request task").expect("answer");
        assert_served(&answer, "shop", "HTTP/2 stream");
        assert_eq!(answer.json()["uri"], format!("/path/{index}"));
        assert_eq!(answer.json()["host"], "shop.example");
        assert_eq!(answer.json()["headers"]["x-forwarded-proto"], "https");
        assert!(answer.headers.contains_key("strict-transport-security"));
    }
    let wildcard = connect(https, Some("x.apps.example"), &[b"h2"]).await;
    let answer = Https2::over(wildcard)
        .await
        .get("x.apps.example", "/")
        .await;
    assert_served(&answer.expect("answer"), "wildcard", ":authority routes");
}

#[tokio::test]
async fn http11_over_tls_carries_forwarding_headers_and_hsts() {
    let site = start_site(&[], &[]).await;
    let https = site.vestibule.https;
    let stream = connect(https, Some("shop.example"), &[b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let answer = Https1::over(stream).await.get("shop.example", "/").await;
    let answer = answer.expect("answer");
    assert_served(&answer, "shop", "HTTP/1.1 over TLS");
    let headers = &answer.json()["headers"];
    assert_eq!(headers["x-forwarded-proto"], "https");
    assert_eq!(headers["x-forwarded-port"], https.port().to_string());
    assert_eq!(
        answer.headers["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );

    let plain = get_tls(https, Some("plain.example"), "plain.example", "/").await;
    assert_served(&plain, "plain", "a host without spec.tls over HTTPS");
    assert_eq!(plain.json()["headers"]["x-forwarded-proto"], "https");
    assert!(!plain.headers.contains_key("strict-transport-security"));

    let no_alpn = connect(https, Some("shop.example"), &[]).await;
    assert_eq!(no_alpn.get_ref().1.alpn_protocol(), None);
    let answer = Https1::over(no_alpn).await.get("shop.example", "/").await;
    assert_served(&answer.expect("answer"), "shop", "a client without ALPN");

    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let config = client_config(&[b"http/1.1"], &[version]);
        let stream = try_connect_with(config, https, Some("shop.example"))
            .await
            .expect("handshake");
        assert_eq!(stream.get_ref().1.protocol_version(), Some(version.version));
        assert!(leaf(&stream) == site.shop.der);
        let answer = Https1::over(stream).await.get("shop.example", "/").await;
        assert_served(&answer.expect("answer"), "shop", "TLS version");
    }
}

#[tokio::test]
async fn plain_http_to_a_tls_host_is_redirected_to_https() {
    let site = start_site(&[], &[]).await;
    let http = site.vestibule.http;
    for host in ["shop.example", "shop.example:8080", "a.apps.example"] {
        let answer = get_via(http, host, "/cart?x=1").await.expect("answer");
        assert_eq!(answer.status, 308, "{host}");
        let name = host.split(':').next().unwrap_or_default();
        let location = format!("https://{name}/cart?x=1");
        assert_eq!(answer.headers["location"], location.as_str(), "{host}");
    }
    let challenge = get_via(http, "shop.example", "/.well-known/acme-challenge/token").await;
    let challenge = challenge.expect("answer");
    assert_served(&challenge, "shop", "ACME challenge");
    assert_eq!(challenge.json()["uri"], "/.well-known/acme-challenge/token");
    let plain = get_via(http, "plain.example", "/cart")
        .await
        .expect("answer");
    assert_served(&plain, "plain", "a host without spec.tls");

    let site = start_site(&["--https-redirect-port", "8443"], &[]).await;
    let answer = get_via(site.vestibule.http, "shop.example", "/cart?x=1").await;
    let answer = answer.expect("answer");
    assert_eq!(answer.status, 308);
    assert_eq!(
        answer.headers["location"],
        "https://shop.example:8443/cart?x=1"
    );
}

#[tokio::test]
async fn redirects_and_hsts_can_be_turned_off() {
    let site = start_site(&["--default-ssl-redirect=false", "--hsts=false"], &[]).await;
    let answer = get_via(site.vestibule.http, "shop.example", "/cart").await;
    let answer = answer.expect("answer");
    assert_served(&answer, "shop", "plain HTTP without redirects");
    assert_eq!(answer.json()["headers"]["x-forwarded-proto"], "http");
    let https = site.vestibule.https;
    let answer = get_tls(https, Some("shop.example"), "shop.example", "/").await;
    assert_served(&answer, "shop", "HTTPS without HSTS");
    assert!(!answer.headers.contains_key("strict-transport-security"));
}

#[tokio::test]
async fn https_without_sni_is_served_not_redirected() {
    let site = start_site(&[], &[]).await;
    let https = site.vestibule.https;
    let answer = get_tls(https, None, "shop.example", "/cart?x=1").await;
    assert_eq!(
        answer.headers.get("location"),
        None,
        "an HTTPS request was redirected to HTTPS"
    );
    assert_served(&answer, "shop", "HTTPS request without SNI");
    assert_eq!(answer.json()["headers"]["x-forwarded-proto"], "https");
    assert_eq!(
        answer.headers["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}

#[tokio::test]
async fn a_host_with_another_certificate_is_misdirected() {
    let site = start_site(&[], &[]).await;
    let https = site.vestibule.https;
    let mut shop = Https1::over(connect(https, Some("shop.example"), &[b"http/1.1"]).await).await;
    let answer = shop.get("other.example", "/").await.expect("answer");
    assert_eq!(answer.status, 421);
    let answer = shop.get("plain.example", "/").await.expect("answer");
    assert_eq!(answer.status, 421, "a host served the default certificate");
    let answer = shop.get("shop.example:443", "/").await.expect("answer");
    assert_served(&answer, "shop", "the SNI host on the same connection");

    let h2 = Https2::over(connect(https, Some("shop.example"), &[b"h2"]).await).await;
    assert_eq!(
        h2.get("other.example", "/").await.expect("answer").status,
        421
    );
    assert_served(
        &h2.get("shop.example", "/").await.expect("answer"),
        "shop",
        "h2",
    );

    let mut wild = Https1::over(connect(https, Some("a.apps.example"), &[]).await).await;
    let answer = wild.get("b.apps.example", "/").await.expect("answer");
    assert_served(&answer, "wildcard", "another name under the same wildcard");
    let h2 = Https2::over(connect(https, Some("a.apps.example"), &[b"h2"]).await).await;
    let answer = h2.get("c.apps.example", "/").await.expect("answer");
    assert_served(
        &answer,
        "wildcard",
        "coalesced HTTP/2 under the same wildcard",
    );
}

#[tokio::test]
async fn hosts_served_the_same_default_certificate_are_not_misdirected() {
    // One certificate for both names is the default certificate and also named for
    // `first.example`; `second.example` lists no secretName, so it gets the default: both names
    // are served exactly the same certificate.
    let both = generate(&["first.example", "second.example"]);
    let shared = tls_ingress(
        "shared",
        &[
            ("first.example", "/", "Prefix", "shop"),
            ("second.example", "/", "Prefix", "other"),
        ],
        &[(&["first.example"], "both-tls"), (&["second.example"], "")],
    );
    let site = start_site(
        &["--default-ssl-certificate", "default/both-tls"],
        &[
            (
                "secret-both-tls.yaml",
                tls_secret("both-tls", &both.cert_pem, &both.key_pem),
            ),
            ("shared.yaml", shared),
        ],
    )
    .await;
    let https = site.vestibule.https;
    assert!(leaf_for(https, Some("first.example")).await == both.der);
    assert!(leaf_for(https, Some("second.example")).await == both.der);
    let mut second = Https1::over(connect(https, Some("second.example"), &[]).await).await;
    let answer = second.get("first.example", "/").await.expect("answer");
    assert_served(&answer, "shop", "SNI second.example, Host first.example");
    let mut first = Https1::over(connect(https, Some("first.example"), &[]).await).await;
    let answer = first.get("second.example", "/").await.expect("answer");
    assert_served(&answer, "other", "SNI first.example, Host second.example");
}

#[tokio::test]
async fn an_expired_certificate_is_still_served_and_reported() {
    let expired = generate_expired(&["old.example"]);
    let old = tls_ingress(
        "old",
        &[("old.example", "/", "Prefix", "plain")],
        &[(&["old.example"], "old-tls")],
    );
    let site = start_site(
        &[],
        &[
            (
                "secret-old-tls.yaml",
                tls_secret("old-tls", &expired.cert_pem, &expired.key_pem),
            ),
            ("old.yaml", old),
        ],
    )
    .await;
    let https = site.vestibule.https;
    assert!(leaf_for(https, Some("old.example")).await == expired.der);
    assert_served(
        &get_tls(https, Some("old.example"), "old.example", "/").await,
        "plain",
        "a host with an expired certificate",
    );
    let line = site.vestibule.wait_for_log("expired on").await;
    assert!(line.contains("old-tls"), "{line}");
    assert!(line.contains("2021"), "{line}");
}

#[tokio::test]
async fn garbage_handshakes_are_dropped_without_harm() {
    let site = start_site(&[], &[]).await;
    let https = site.vestibule.https;
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let garbage: Vec<u8> = (0..1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect();
    let mut stream = TcpStream::connect(https).await.expect("connect");
    stream.write_all(&garbage).await.expect("garbage sent");
    assert!(closed_by_peer(&mut stream, Duration::from_secs(10)).await);

    let mut plain_http = TcpStream::connect(https).await.expect("connect");
    let request = b"GET / HTTP/1.1\r\nHost: shop.example\r\n\r\n";
    plain_http.write_all(request).await.expect("request sent");
    assert!(closed_by_peer(&mut plain_http, Duration::from_secs(10)).await);

    assert_served(
        &get_tls(https, Some("shop.example"), "shop.example", "/").await,
        "shop",
        "after garbage",
    );
}

#[tokio::test]
async fn stalled_handshakes_are_disconnected() {
    let site = start_site(&["--tls-handshake-timeout", "1s"], &[]).await;
    let https = site.vestibule.https;
    let mut silent = TcpStream::connect(https).await.expect("connect");
    let mut half = TcpStream::connect(https).await.expect("connect");
    let hello = client_hello("shop.example");
    half.write_all(&hello[..10])
        .await
        .expect("half a ClientHello");

    let answer = get_tls(https, Some("shop.example"), "shop.example", "/").await;
    assert_served(&answer, "shop", "while two handshakes stall");
    let limit = Duration::from_secs(10);
    assert!(closed_by_peer(&mut silent, limit).await, "silent client");
    assert!(closed_by_peer(&mut half, limit).await, "half a ClientHello");
    assert_served(
        &get_tls(https, Some("shop.example"), "shop.example", "/").await,
        "shop",
        "after the stalled handshakes",
    );
}
