//! The webhook's certificate: loaded from PEM files at start-up, and again whenever their
//! contents change (cert-manager renewing it, a Secret updated), without a restart. A pair that
//! does not load (a key written before its certificate, say) keeps the one in force until the
//! next check; each handshake takes whichever pair is current.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The outcome of looking at the files again.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    /// Same bytes as last time.
    Unchanged,
    /// A new pair is in force.
    Loaded,
    /// The files changed but do not make a usable pair; the previous one stays.
    Failed(String),
}

/// The serving certificate and key, as the files hold them now.
pub struct Certificate {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: ArcSwap<CertifiedKey>,
    /// The files' bytes when last read (empty after a failed read), so an unchanged pair is not
    /// parsed again and a broken or missing one is reported once.
    seen: Mutex<Vec<u8>>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Both files' bytes, or which one cannot be read.
fn read(cert_path: &PathBuf, key_path: &PathBuf) -> Result<(Vec<u8>, Vec<u8>), String> {
    let cert =
        std::fs::read(cert_path).map_err(|e| format!("--tls-cert {}: {e}", cert_path.display()))?;
    let key =
        std::fs::read(key_path).map_err(|e| format!("--tls-key {}: {e}", key_path.display()))?;
    Ok((cert, key))
}

fn parse(cert: &[u8], key: &[u8]) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--tls-cert: not PEM certificates ({e})"))?;
    if chain.is_empty() {
        return Err("--tls-cert: no certificate in the file".to_string());
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| format!("--tls-key: not a PEM private key ({e})"))?;
    CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| format!("--tls-cert and --tls-key do not make a pair: {e}"))
}

impl Certificate {
    /// Loads the pair, or says which file is at fault.
    pub fn load(cert_path: PathBuf, key_path: PathBuf) -> Result<Arc<Self>, String> {
        let (cert, key) = read(&cert_path, &key_path)?;
        let pair = parse(&cert, &key)?;
        Ok(Arc::new(Self {
            cert_path,
            key_path,
            current: ArcSwap::from_pointee(pair),
            seen: Mutex::new([cert, key].concat()),
        }))
    }

    /// Reads the files again and puts a changed, valid pair in force.
    pub fn reload(&self) -> Reload {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (cert, key) = match read(&self.cert_path, &self.key_path) {
            Ok(files) => files,
            // Empty `seen` marks a read failure already reported.
            Err(_) if seen.is_empty() => return Reload::Unchanged,
            Err(e) => {
                seen.clear();
                return Reload::Failed(e);
            }
        };
        let bytes = [cert.as_slice(), key.as_slice()].concat();
        if *seen == bytes {
            return Reload::Unchanged;
        }
        *seen = bytes;
        match parse(&cert, &key) {
            Ok(pair) => {
                self.current.store(Arc::new(pair));
                Reload::Loaded
            }
            Err(e) => Reload::Failed(e),
        }
    }

    /// A TLS server configuration that serves whichever pair is current, offering HTTP/2 and
    /// HTTP/1.1 (the API server speaks either).
    pub fn server_config(self: &Arc<Self>) -> Result<ServerConfig, String> {
        let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}
