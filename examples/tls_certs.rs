//! A TLS server that issues a certificate on demand for the name each client asks for (SNI), the
//! way servers with automatic HTTPS do on a client's first visit, with a [`KeyedGroup`] in front
//! of its certificate cache: however many handshakes for a new name arrive at once, the
//! certificate is generated once and every handshake uses it.
//!
//! The server reads the client's hello with `tokio_rustls::LazyConfigAcceptor`, looks the name up
//! in a `Mutex<HashMap<String, Arc<CertifiedKey>>>` cache and, on a miss, joins the group's
//! flight for that name, whose work generates a self-signed certificate with `rcgen` (after a
//! pause that stands in for the round trips of an ACME order) and stores it in the cache.
//!
//! Run it from the workspace root:
//!
//! ```text
//! cargo run --release --example tls_certs
//! ```
//!
//! It starts the server on a free localhost port, runs 50 concurrent handshakes for each of three
//! names, prints per name how many certificates were generated and the SHA-256 fingerprint of the
//! certificate, then checks every certificate with full webpki verification. It exits non-zero
//! if a name got more than one certificate or a handshake failed.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::Acceptor;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use single_flight::KeyedGroup;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{LazyConfigAcceptor, TlsConnector};

/// The names the clients ask for.
const NAMES: [&str; 3] = ["shop.example.com", "api.example.com", "cdn.example.com"];
/// Concurrent handshakes per name.
const CLIENTS_PER_NAME: usize = 50;
/// Stands in for the round trips of an ACME order (a real CA takes seconds).
const ISSUE_TIME: Duration = Duration::from_millis(150);
/// The server issues certificates only for names under this domain: a server that issued one for
/// any name a client sends could be made to issue without end.
const OUR_DOMAIN: &str = ".example.com";

/// Why a certificate could not be issued.
#[derive(Debug)]
struct IssueError(String);

impl fmt::Display for IssueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IssueError {}

/// What one certificate lookup returns; the error is shared by every handshake of the flight.
type Issued = Result<Arc<CertifiedKey>, Arc<IssueError>>;

/// How the server found the certificate for a name, counted per name.
#[derive(Debug, Default, Clone)]
struct NameStats {
    /// Certificates generated (the point of the example: 1).
    generated: usize,
    /// Handshakes that started the flight.
    started: usize,
    /// Handshakes that joined a flight another handshake had started.
    joined: usize,
    /// Handshakes served from the cache.
    cached: usize,
}

/// The server's certificates: a cache, and a group that coalesces the misses.
#[derive(Debug)]
struct CertStore {
    cache: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    issuing: KeyedGroup<String, Issued>,
    stats: Mutex<BTreeMap<String, NameStats>>,
    provider: Arc<CryptoProvider>,
}

impl CertStore {
    fn new(provider: Arc<CryptoProvider>) -> Self {
        Self {
            cache: Mutex::new(HashMap::new()),
            issuing: KeyedGroup::new(),
            stats: Mutex::new(BTreeMap::new()),
            provider,
        }
    }

    fn cached(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        lock(&self.cache).get(name).cloned()
    }

    /// The certificate for `name`: from the cache, or from the one flight that issues it.
    async fn certificate(self: &Arc<Self>, name: &str) -> Issued {
        if let Some(key) = self.cached(name) {
            self.count(name, |s| s.cached += 1);
            return Ok(key);
        }
        let store = self.clone();
        let mut started = false;
        let issued = self
            .issuing
            .call_ref(name, |name: String| {
                started = true; // runs only in the handshake that starts the flight
                async move {
                    // A flight that ended between our cache miss and the start of this one has
                    // filled the cache already: without this second look, a handshake arriving
                    // at that moment would issue a second certificate.
                    if let Some(key) = store.cached(&name) {
                        return Ok(key);
                    }
                    let key = store.issue(&name).await?;
                    // Into the cache before the flight ends, so that a later miss finds it.
                    lock(&store.cache).insert(name, key.clone());
                    Ok(key)
                }
            })
            .await;
        self.count(name, |s| {
            if started {
                s.started += 1;
            } else {
                s.joined += 1;
            }
        });
        issued
    }

    /// Generates a self-signed certificate for `name`.
    async fn issue(&self, name: &str) -> Issued {
        if !name.ends_with(OUR_DOMAIN) {
            return Err(Arc::new(IssueError(format!(
                "{name:?} is not under {OUR_DOMAIN}"
            ))));
        }
        tokio::time::sleep(ISSUE_TIME).await;
        self.count(name, |s| s.generated += 1);
        let fail = |e: &dyn fmt::Display| Arc::new(IssueError(format!("{name}: {e}")));
        let key_pair = rcgen::KeyPair::generate().map_err(|e| fail(&e))?;
        let mut params =
            rcgen::CertificateParams::new(vec![name.to_owned()]).map_err(|e| fail(&e))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key_pair).map_err(|e| fail(&e))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        let certified = CertifiedKey::from_der(vec![cert.der().clone()], key, &self.provider)
            .map_err(|e| fail(&e))?;
        Ok(Arc::new(certified))
    }

    fn count(&self, name: &str, f: impl FnOnce(&mut NameStats)) {
        f(lock(&self.stats).entry(name.to_owned()).or_default());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accepts connections until the process ends; counts the handshakes that failed.
async fn serve(listener: TcpListener, store: Arc<CertStore>, failures: Arc<AtomicUsize>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (store, failures) = (store.clone(), failures.clone());
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &store).await {
                failures.fetch_add(1, Ordering::Relaxed);
                eprintln!("server: handshake failed: {e}");
            }
        });
    }
}

/// One connection: read the hello, get the certificate for its name, finish the handshake,
/// greet the client.
async fn handle(stream: TcpStream, store: &Arc<CertStore>) -> Result<(), String> {
    let start = LazyConfigAcceptor::new(Acceptor::default(), stream)
        .await
        .map_err(|e| format!("reading the client hello: {e}"))?;
    let name = start
        .client_hello()
        .server_name()
        .ok_or("the client sent no server name")?
        .to_owned();
    let key = store
        .certificate(&name)
        .await
        .map_err(|e| format!("no certificate: {e}"))?;
    let config = ServerConfig::builder_with_provider(store.provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(key)));
    let mut tls = start
        .into_stream(Arc::new(config))
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    tls.write_all(format!("hello from {name}\n").as_bytes())
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    tls.shutdown().await.map_err(|e| format!("{name}: {e}"))
}

/// The herd's clients cannot trust the server's certificates in advance: they do not exist until
/// the first handshake asks for them. So these clients accept the certificate the server
/// presents (and record it, from the connection's `peer_certificates`), but still check the
/// handshake signature against it, so the server proves it holds the certificate's key. Once the
/// herd is done, [`verify_all`] checks every certificate with full webpki verification against a
/// root store built from the server's cache.
#[derive(Debug)]
struct AcceptPresentedCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptPresentedCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Connects to `addr` asking for `name`; returns the certificate the server presented.
async fn handshake(
    addr: SocketAddr,
    name: &str,
    config: Arc<ClientConfig>,
) -> Result<CertificateDer<'static>, String> {
    let server_name = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut tls = TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("{name}: handshake: {e}"))?;
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or("the server sent no certificate")?
        .clone()
        .into_owned();
    let mut greeting = String::new();
    tls.read_to_string(&mut greeting)
        .await
        .map_err(|e| format!("{name}: read: {e}"))?;
    if greeting != format!("hello from {name}\n") {
        return Err(format!("{name}: unexpected greeting {greeting:?}"));
    }
    Ok(cert)
}

/// Connects once per name with a client that trusts only the certificates in the server's cache
/// and verifies them as any TLS client would (chain, name, validity, handshake signature).
async fn verify_all(addr: SocketAddr, store: &CertStore) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    for key in lock(&store.cache).values() {
        roots
            .add(key.cert[0].clone())
            .map_err(|e| format!("root store: {e}"))?;
    }
    let config = ClientConfig::builder_with_provider(store.provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let config = Arc::new(config);
    for name in NAMES {
        handshake(addr, name, config.clone()).await?;
    }
    Ok(())
}

/// The SHA-256 fingerprint of a DER certificate, as colon-separated hex.
fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tls_certs: FAILED: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    // ring, not the default aws-lc-rs (which needs cmake to build).
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let store = Arc::new(CertStore::new(provider.clone()));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server_failures = Arc::new(AtomicUsize::new(0));
    tokio::spawn(serve(listener, store.clone(), server_failures.clone()));
    println!(
        "TLS server on {addr}: certificates issued on demand per SNI name, each issue takes {} ms",
        ISSUE_TIME.as_millis()
    );

    let mut client = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptPresentedCert(provider.clone())))
        .with_no_client_auth();
    client.resumption = Resumption::disabled(); // every handshake is a full one
    let client = Arc::new(client);

    println!(
        "{} concurrent handshakes: {CLIENTS_PER_NAME} for each of {} names",
        CLIENTS_PER_NAME * NAMES.len(),
        NAMES.len()
    );
    let start = Instant::now();
    let mut clients = Vec::new();
    for i in 0..CLIENTS_PER_NAME * NAMES.len() {
        let name = NAMES[i % NAMES.len()];
        let client = client.clone();
        clients.push(tokio::spawn(async move {
            (name, handshake(addr, name, client).await)
        }));
    }
    let mut seen: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut client_failures = Vec::new();
    for client in clients {
        let (name, result) = client.await.map_err(|e| format!("client task: {e}"))?;
        match result {
            Ok(cert) => seen.entry(name).or_default().push(fingerprint(&cert)),
            Err(e) => client_failures.push(e),
        }
    }
    let elapsed = start.elapsed();
    println!("done in {} ms", elapsed.as_millis());
    println!();

    let stats = lock(&store.stats).clone();
    println!(
        "{:<18}  {:>10}  {:>9}  {:>7}  {:>6}  {:>6}  {:>10}",
        "name", "handshakes", "generated", "started", "joined", "cached", "certs seen"
    );
    let mut problems = Vec::new();
    for name in NAMES {
        let s = stats.get(name).cloned().unwrap_or_default();
        let fingerprints = seen.get(name).cloned().unwrap_or_default();
        let mut distinct = fingerprints.clone();
        distinct.sort();
        distinct.dedup();
        println!(
            "{name:<18}  {:>10}  {:>9}  {:>7}  {:>6}  {:>6}  {:>10}",
            fingerprints.len(),
            s.generated,
            s.started,
            s.joined,
            s.cached,
            distinct.len()
        );
        if s.generated != 1 {
            problems.push(format!("{name}: {} certificates generated", s.generated));
        }
        if distinct.len() != 1 || fingerprints.len() != CLIENTS_PER_NAME {
            problems.push(format!(
                "{name}: {} handshakes saw {} distinct certificates",
                fingerprints.len(),
                distinct.len()
            ));
        }
        if let Some(key) = store.cached(name) {
            if distinct.first() != Some(&fingerprint(&key.cert[0])) {
                problems.push(format!(
                    "{name}: clients saw another certificate than cached"
                ));
            }
        }
    }
    println!();
    println!("SHA-256 fingerprints of the certificates in the server's cache:");
    for name in NAMES {
        if let Some(key) = store.cached(name) {
            println!("  {name:<18}  {}", fingerprint(&key.cert[0]));
        }
    }
    println!();

    if let Some(first) = client_failures.first() {
        problems.push(format!(
            "{} client handshakes failed, the first with: {first}",
            client_failures.len()
        ));
    }
    match verify_all(addr, &store).await {
        Ok(()) => println!(
            "webpki verification against a root store of the cached certificates: {} of {} names ok",
            NAMES.len(),
            NAMES.len()
        ),
        Err(e) => problems.push(format!("webpki verification: {e}")),
    }
    let failures = server_failures.load(Ordering::Relaxed);
    if failures > 0 {
        problems.push(format!("{failures} server-side handshakes failed"));
    }
    if store.issuing.in_flight() != 0 {
        problems.push("a flight is still registered".into());
    }
    if problems.is_empty() {
        println!(
            "one certificate per name for {} handshakes",
            CLIENTS_PER_NAME * NAMES.len()
        );
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
