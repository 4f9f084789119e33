//! A real etcd and kube-apiserver on loopback, as the Kubernetes tests need them.
//!
//! The binaries come from `scripts/kube-apiserver.sh` (which honours `KUBE_APISERVER_BIN` and
//! `ETCD_BIN`, and otherwise builds the API server once per machine). One server is shared by
//! the tests of a run; a test that stops the server starts its own.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// The token of a cluster administrator.
pub const ADMIN_TOKEN: &str = "admin-token";
/// The token of the controller's ServiceAccount from `deploy/` (authorised only by its RBAC).
pub const CONTROLLER_TOKEN: &str = "vestibule-token";
/// The controller's namespace in `deploy/`.
pub const CONTROLLER_NAMESPACE: &str = "vestibule-system";

/// An etcd and a kube-apiserver, stopped when dropped (or when the test process exits).
pub struct ApiServer {
    dir: tempfile::TempDir,
    etcd: Child,
    apiserver: Option<Child>,
    apiserver_bin: PathBuf,
    etcd_port: u16,
    /// The API server's port on 127.0.0.1.
    pub port: u16,
}

/// The API server shared by the tests of this run.
pub fn shared() -> &'static ApiServer {
    static SHARED: OnceLock<ApiServer> = OnceLock::new();
    SHARED.get_or_init(ApiServer::start)
}

impl ApiServer {
    /// Starts etcd and kube-apiserver and waits until the API server accepts connections.
    pub fn start() -> Self {
        let (apiserver_bin, etcd_bin) = binaries();
        let dir = tempfile::tempdir().expect("temp dir");
        write_credentials(dir.path());
        let etcd_port = free_port();
        let peer_port = free_port();
        let etcd = Command::new(&etcd_bin)
            .args(["--name", "test", "--data-dir"])
            .arg(dir.path().join("etcd"))
            .arg(format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"))
            .arg(format!(
                "--advertise-client-urls=http://127.0.0.1:{etcd_port}"
            ))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"
            ))
            .arg(format!(
                "--initial-cluster=test=http://127.0.0.1:{peer_port}"
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd starts");
        watchdog(etcd.id());
        let mut server = Self {
            dir,
            etcd,
            apiserver: None,
            apiserver_bin,
            etcd_port,
            port: free_port(),
        };
        server.start_apiserver();
        server
    }

    /// Starts (or restarts) the API server on the same port, certificates and etcd.
    pub fn start_apiserver(&mut self) {
        let dir = self.dir.path();
        let log = std::fs::File::create(dir.join("apiserver.log")).expect("log file");
        let child = Command::new(&self.apiserver_bin)
            .arg(format!(
                "--etcd-servers=http://127.0.0.1:{}",
                self.etcd_port
            ))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={}", self.port))
            .arg("--insecure-port=0")
            .arg("--advertise-address=127.0.0.1")
            .arg(format!("--cert-dir={}", dir.join("certs").display()))
            .arg(format!(
                "--tls-cert-file={}",
                dir.join("server.crt").display()
            ))
            .arg(format!(
                "--tls-private-key-file={}",
                dir.join("server.key").display()
            ))
            .arg(format!(
                "--token-auth-file={}",
                dir.join("tokens.csv").display()
            ))
            .arg("--authorization-mode=RBAC")
            .arg("--service-account-issuer=https://kubernetes.default.svc")
            .arg(format!(
                "--service-account-key-file={}",
                dir.join("sa.pub").display()
            ))
            .arg(format!(
                "--service-account-signing-key-file={}",
                dir.join("sa.key").display()
            ))
            .arg("--service-cluster-ip-range=10.96.0.0/16")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("kube-apiserver starts");
        watchdog(child.id());
        self.apiserver = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "kube-apiserver did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the API server (etcd keeps running).
    pub fn stop_apiserver(&mut self) {
        if let Some(mut child) = self.apiserver.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The API server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("apiserver.log")).unwrap_or_default()
    }

    /// Writes a kubeconfig for `token` and returns its path.
    pub fn kubeconfig(&self, token: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{token}.kubeconfig"));
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\nusers:\n- name: user\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context: {{cluster: test, user: user}}\ncurrent-context: test\n",
            self.port,
            self.dir.path().join("ca.crt").display()
        );
        // Tests run in parallel and rewrite the same file: replace it whole, never in place.
        let staging = self.dir.path().join(format!(
            "{token}.kubeconfig.{:?}",
            std::thread::current().id()
        ));
        std::fs::write(&staging, text).expect("kubeconfig written");
        std::fs::rename(&staging, &path).expect("kubeconfig replaced");
        path
    }

    /// A client with administrator rights, once the API server answers `/readyz`.
    pub async fn admin(&self) -> kube::Client {
        let kubeconfig = Kubeconfig::read_from(self.kubeconfig(ADMIN_TOKEN)).expect("kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("client config");
        let client = kube::Client::try_from(config).expect("client");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let request = http::Request::get("/readyz")
                .body(Vec::new())
                .expect("request");
            if client
                .request_text(request)
                .await
                .is_ok_and(|text| text == "ok")
            {
                return client;
            }
            assert!(
                Instant::now() < deadline,
                "kube-apiserver not ready: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop_apiserver();
        let _ = self.etcd.kill();
        let _ = self.etcd.wait();
    }
}

/// The binaries, from `scripts/kube-apiserver.sh`.
fn binaries() -> (PathBuf, PathBuf) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kube-apiserver.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/kube-apiserver.sh runs");
    assert!(
        output.status.success(),
        "scripts/kube-apiserver.sh failed: set KUBE_APISERVER_BIN and ETCD_BIN, or run ./scripts/test"
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("scripts/kube-apiserver.sh printed no {name}"))
    };
    (value("KUBE_APISERVER_BIN="), value("ETCD_BIN="))
}

/// A CA, a serving certificate for 127.0.0.1 signed by it, a service-account key and the
/// static tokens.
fn write_credentials(dir: &Path) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "vestibule test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server params")
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    let service_account_key = KeyPair::generate().expect("service account key");
    let tokens = format!(
        "{ADMIN_TOKEN},admin,admin,\"system:masters\"\n{CONTROLLER_TOKEN},system:serviceaccount:{CONTROLLER_NAMESPACE}:vestibule,vestibule,\"system:serviceaccounts,system:serviceaccounts:{CONTROLLER_NAMESPACE}\"\n"
    );
    for (name, text) in [
        ("ca.crt", ca_cert.pem()),
        ("server.crt", server.pem()),
        ("server.key", server_key.serialize_pem()),
        ("sa.key", service_account_key.serialize_pem()),
        ("sa.pub", service_account_key.public_key_pem()),
        ("tokens.csv", tokens),
    ] {
        std::fs::write(dir.join(name), text).expect("credential written");
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

/// Kills `pid` when this test process exits, however it exits: statics are never dropped.
fn watchdog(pid: u32) {
    let parent = std::process::id();
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill {pid} 2>/dev/null"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}
