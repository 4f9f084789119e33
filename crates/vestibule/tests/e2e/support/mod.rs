//! Shared pieces of the end-to-end tests: the real `vestibule` binary on loopback, real echo
//! backends, real HTTP clients, and manifests written to a temporary directory.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub mod apiserver;
pub mod tls;

/// How long any eventually-true condition may take before a test gives up.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// A running `vestibule serve`, stopped when dropped.
pub struct Vestibule {
    child: Child,
    /// The plain HTTP listener.
    pub http: SocketAddr,
    /// The HTTPS listener.
    pub https: SocketAddr,
    /// The admin listener.
    pub admin: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Vestibule {
    /// Starts `vestibule serve --manifests DIR` on loopback ports and waits until it listens.
    pub fn start(manifests: &Path, extra: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vestibule"));
        command.args(["serve", "--manifests"]).arg(manifests);
        Self::spawn(command, extra)
    }

    /// Starts `vestibule serve` against the Kubernetes API described by `kubeconfig`.
    pub fn start_cluster(kubeconfig: &Path, extra: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vestibule"));
        command.arg("serve").env("KUBECONFIG", kubeconfig);
        Self::spawn(command, extra)
    }

    /// Sends SIGTERM, as Kubernetes does to stop a pod.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM delivered");
    }

    /// Waits for the process to exit and returns whether it exited successfully.
    pub fn wait(&mut self) -> bool {
        self.child.wait().expect("wait").success()
    }

    fn spawn(mut command: Command, extra: &[&str]) -> Self {
        let mut child = command
            .args(["--http-addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0"])
            .args(["--admin-addr", "127.0.0.1:0"])
            .args(["--workers", "2", "--log-level", "debug"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("vestibule starts");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let lines = stdout.clone();
        let out = child.stdout.take().expect("stdout piped");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                lines.lock().expect("stdout lock").push(line);
            }
        });
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addrs_tx, addrs_rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening") {
                    let kind = field(&line, "kind=").unwrap_or_default();
                    if let Some(addr) = field(&line, "addr=").and_then(|a| a.parse().ok()) {
                        let _ = addrs_tx.send((kind, addr));
                    }
                }
                sink.lock().expect("log lock").push(line);
            }
        });
        let (mut http, mut https, mut admin) = (None, None, None);
        while http.is_none() || https.is_none() || admin.is_none() {
            let (kind, addr) = addrs_rx
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("vestibule did not start: {:?}", log.lock()));
            match kind.as_str() {
                "\"http\"" => http = Some(addr),
                "\"https\"" => https = Some(addr),
                "\"admin\"" => admin = Some(addr),
                _ => {}
            }
        }
        let http = http.expect("http address");
        let https = https.expect("https address");
        let admin = admin.expect("admin address");
        Self {
            child,
            http,
            https,
            admin,
            log,
            stdout,
        }
    }

    /// The lines written to stdout so far (the access log).
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().expect("stdout lock").clone()
    }

    /// Waits until a stdout line contains `text`; panics with stdout after [`PATIENCE`].
    pub async fn wait_for_stdout(&self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self.stdout().into_iter().find(|line| line.contains(text)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no stdout line contains {text:?}:\n{}",
                self.stdout().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The log lines written so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }

    /// Waits until a log line contains `text`; panics with the log after [`PATIENCE`].
    pub async fn wait_for_log(&self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self.log().into_iter().find(|line| line.contains(text)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no log line contains {text:?}:\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The resident memory of the process now, in KiB (`VmRSS` in `/proc/PID/status`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process status is readable");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in the process status")
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let url = format!("http://{}/readyz", self.admin);
        eventually(|| async { get(&url, &[]).await.map(|r| r.status) == Some(200) }).await;
    }
}

impl Drop for Vestibule {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field(line: &str, name: &str) -> Option<String> {
    let start = line.find(name)? + name.len();
    let rest = &line[start..];
    let end = rest.find(' ').unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

/// Starts an echo backend named `name` on a loopback port, for the life of the test runtime.
pub async fn echo_backend(name: &str) -> SocketAddr {
    echo_backend_at("127.0.0.1:0".parse().expect("address"), name).await
}

/// Starts an echo backend named `name` on `addr`.
pub async fn echo_backend_at(addr: SocketAddr, name: &str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(vestibule_echo::serve(listener, name.to_owned()));
    addr
}

/// Echo backends named `names` on the same port of 127.0.0.1, 127.0.0.2, ..., so that one
/// EndpointSlice port can list them all.
pub async fn echo_backends(names: &[&str]) -> Vec<SocketAddr> {
    let first = echo_backend(names[0]).await;
    let mut addrs = vec![first];
    for (index, name) in names.iter().enumerate().skip(1) {
        let ip = std::net::Ipv4Addr::new(127, 0, 0, 1 + index as u8);
        addrs.push(echo_backend_at(SocketAddr::new(ip.into(), first.port()), name).await);
    }
    addrs
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON (an echo backend's description of the request).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The name of the echo backend that answered; empty when the proxy answered itself.
    pub fn backend(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|json| json["name"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// An HTTP/1.1 client with keep-alive.
pub fn http1_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// One cleartext HTTP/2 connection (prior knowledge) to the proxy. Requests carry their host
/// in `:authority`, taken from the request URI (`http://host/path`).
#[derive(Clone)]
pub struct Http2 {
    sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
}

impl Http2 {
    /// Connects to `proxy`.
    pub async fn connect(proxy: SocketAddr) -> Self {
        let stream = tokio::net::TcpStream::connect(proxy)
            .await
            .expect("connect");
        let (sender, connection) = hyper::client::conn::http2::handshake(
            TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        Self { sender }
    }

    /// Sends a request on a new stream and reads the whole answer.
    pub async fn send(&self, request: http::Request<Full<Bytes>>) -> Option<Answer> {
        let mut sender = self.sender.clone();
        sender.ready().await.ok()?;
        read_answer(sender.send_request(request).await.ok()?).await
    }

    /// GET `path` on `host`.
    pub async fn get(&self, host: &str, path: &str) -> Option<Answer> {
        let request = http::Request::get(format!("http://{host}{path}"))
            .body(Full::default())
            .expect("request");
        self.send(request).await
    }
}

/// Sends a request and reads the whole answer; `None` if the connection failed.
pub async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    request: http::Request<Full<Bytes>>,
) -> Option<Answer> {
    read_answer(client.request(request).await.ok()?).await
}

/// Reads a response whole; `None` if the body broke off.
pub async fn read_answer(response: http::Response<hyper::body::Incoming>) -> Option<Answer> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some(Answer {
        status,
        headers,
        body,
    })
}

/// One echo backend named `web`, served for `web.example`, and Vestibule (with `extra` flags)
/// in front of it.
pub async fn single_backend(extra: &[&str]) -> (Manifests, Vestibule, SocketAddr) {
    let backend = echo_backend("web").await;
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("web", &[backend]));
    manifests.write(
        "ing.yaml",
        &ingress("web", &[("web.example", "/", "Prefix", "web")]),
    );
    let vestibule = Vestibule::start(manifests.path(), extra);
    vestibule.wait_ready().await;
    (manifests, vestibule, backend)
}

/// GET `url` over HTTP/1.1 with extra headers (e.g. `Host`).
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Option<Answer> {
    let mut request = http::Request::get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(
        &http1_client(),
        request.body(Full::default()).expect("request"),
    )
    .await
}

/// A WebSocket opened through the proxy at `proxy` to `url` (`ws://host/path`), with the
/// handshake's response.
pub async fn websocket(
    proxy: SocketAddr,
    url: &str,
) -> (
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    tokio_tungstenite::tungstenite::handshake::client::Response,
) {
    let stream = tokio::net::TcpStream::connect(proxy)
        .await
        .expect("connect");
    tokio_tungstenite::client_async(url, stream)
        .await
        .expect("websocket handshake through the proxy")
}

/// GET `path` on `host` through the proxy at `proxy`, on a new connection.
pub async fn get_via(proxy: SocketAddr, host: &str, path: &str) -> Option<Answer> {
    get_with(&http1_client(), proxy, host, path).await
}

/// GET `path` on `host` through the proxy at `proxy` with `client`, reusing its connections.
pub async fn get_with(
    client: &Client<HttpConnector, Full<Bytes>>,
    proxy: SocketAddr,
    host: &str,
    path: &str,
) -> Option<Answer> {
    let request = http::Request::get(format!("http://{proxy}{path}"))
        .header("host", host)
        .body(Full::default())
        .expect("request");
    send(client, request).await
}

/// Polls `check` until it holds; panics after [`PATIENCE`].
pub async fn eventually<F, Fut>(check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(PATIENCE, check).await;
}

/// Polls `check` until it holds; panics after `patience`.
pub async fn eventually_within<F, Fut>(patience: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + patience;
    while !check().await {
        assert!(Instant::now() < deadline, "condition not met in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A temporary manifest directory.
pub struct Manifests {
    dir: tempfile::TempDir,
}

impl Manifests {
    /// An empty directory.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes (or replaces) a file atomically, as kubectl-style tools and editors do.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let staging = self.dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&staging, text).expect("write manifest");
        std::fs::rename(&staging, &path).expect("rename manifest");
        path
    }

    /// Removes a file.
    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.dir.path().join(name)).expect("remove manifest");
    }
}

/// A Service named `name` on port 80 with one ready endpoint per address in `backends`.
pub fn service(name: &str, backends: &[SocketAddr]) -> String {
    let endpoints: Vec<String> = backends
        .iter()
        .map(|addr| format!("  - addresses: [\"{}\"]\n", addr.ip()))
        .collect();
    let port = backends.first().map_or(8080, SocketAddr::port);
    assert!(
        backends.iter().all(|addr| addr.port() == port),
        "one slice port per service: give backends the same port or use several services"
    );
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  ports: [{{name: http, port: 80, targetPort: http}}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}-1, labels: {{kubernetes.io/service-name: {name}}}}}\naddressType: IPv4\nports: [{{name: http, port: {port}}}]\nendpoints:\n{}",
        endpoints.concat()
    )
}

/// An Ingress of class `vestibule` with one rule per `(host, path, pathType, service)`.
pub fn ingress(name: &str, rules: &[(&str, &str, &str, &str)]) -> String {
    let mut text = format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}}}\nspec:\n  ingressClassName: vestibule\n  rules:\n"
    );
    for (host, path, path_type, service) in rules {
        text.push_str(&format!(
            "  - host: \"{host}\"\n    http:\n      paths:\n      - {{path: \"{path}\", pathType: {path_type}, backend: {{service: {{name: {service}, port: {{number: 80}}}}}}}}\n"
        ));
    }
    text
}

/// `ingress` (as [`ingress`] writes it) with these settings as `nginx.ingress.kubernetes.io/`
/// annotations.
pub fn nginx_annotated(ingress: &str, settings: &[(&str, &str)]) -> String {
    let keys: Vec<String> = settings
        .iter()
        .map(|(name, _)| format!("nginx.ingress.kubernetes.io/{name}"))
        .collect();
    let annotations: Vec<(&str, &str)> = keys
        .iter()
        .zip(settings)
        .map(|(key, (_, value))| (key.as_str(), *value))
        .collect();
    annotated(ingress, &annotations)
}

/// `ingress` (as [`ingress`] writes it) with these annotations added.
pub fn annotated(ingress: &str, annotations: &[(&str, &str)]) -> String {
    let pairs: Vec<String> = annotations
        .iter()
        .map(|(key, value)| {
            let value = serde_json::to_string(value).expect("a string");
            format!("\"{key}\": {value}")
        })
        .collect();
    let (head, rest) = ingress
        .split_once("metadata: {name: ")
        .expect("an Ingress written by ingress()");
    let (name, tail) = rest.split_once('}').expect("metadata closes");
    format!(
        "{head}metadata: {{name: {name}, annotations: {{{}}}}}{tail}",
        pairs.join(", ")
    )
}
