//! TLS configuration: gunicorn's SSL settings turned into a rustls `ServerConfig`.
//!
//! `TlsSettings` is the typed, file-free form `Settings` carries (so a HUP re-reads it);
//! `TlsSettings::load` reads the PEM files and builds the config. The master calls it once
//! before binding, only to fail early with an error naming the setting; every worker calls it
//! again when it boots, so the workers a HUP starts serve renewed certificates. Handshakes and
//! the encrypted stream live in `http::tls`.

pub mod ciphers;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::settings::{registry, SettingError, Value, Values};
use ciphers::Versions;

/// The warning for a conf file's `ssl_context(config, default_ssl_context_factory)` hook: it
/// returns a Python `ssl.SSLContext`, which cannot configure rustls.
pub const SSL_CONTEXT_IGNORED: &str = "the ssl_context hook has no effect in ferricorn: TLS is     rustls, not Python's ssl module; configure it with --certfile, --keyfile, --ca-certs,     --cert-reqs, --ciphers and --ssl-version";

/// gunicorn's `cert_reqs` (Python's `ssl.CERT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    /// A client certificate is verified when sent, not required.
    Optional,
    Required,
}

/// The SSL settings, validated but not yet read from disk.
#[derive(Clone, Debug, PartialEq)]
pub struct TlsSettings {
    pub certfile: PathBuf,
    /// `None`: the key is in `certfile` too (as Python's `load_cert_chain` allows).
    pub keyfile: Option<PathBuf>,
    pub ca_certs: Option<PathBuf>,
    pub client_auth: ClientAuth,
    /// `None`: rustls's defaults (all its suites).
    pub ciphers: Option<String>,
    pub versions: Versions,
    /// ALPN names to offer, most preferred first, from `--http-protocols` (gunicorn's order).
    pub alpn: Vec<Vec<u8>>,
}

/// Why the TLS configuration cannot be built; the message names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{flag} / {name} = {path:?}: {reason}")]
    File {
        flag: &'static str,
        name: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{0}")]
    Setting(String),
}

impl TlsSettings {
    /// `None` when neither `--certfile` nor `--keyfile` is set (plain HTTP).
    pub fn from_values(v: &Values) -> Result<Option<Self>, SettingError> {
        let certfile = v.opt_str("certfile")?;
        let keyfile = v.opt_str("keyfile")?;
        let Some(certfile) = certfile else {
            if let Some(key) = keyfile {
                let s = registry::find("certfile").expect("declared");
                return Err(SettingError::invalid(
                    s,
                    Value::None,
                    format!("--keyfile {key} turns TLS on and needs the certificate too"),
                ));
            }
            return Ok(None);
        };
        let client_auth = match v.int("cert_reqs")? {
            0 => ClientAuth::None,
            1 => ClientAuth::Optional,
            _ => ClientAuth::Required,
        };
        let version = v.get("ssl_version").map(|x| match x {
            Value::Str(s) => s.clone(),
            other => other.to_string(),
        });
        let invalid = |name: &'static str, value: Value, reason: String| {
            SettingError::invalid(registry::find(name).expect("declared"), value, reason)
        };
        let versions = match version {
            Some(raw) => {
                Versions::parse(&raw).map_err(|e| invalid("ssl_version", Value::Str(raw), e))?
            }
            None => Versions::Default,
        };
        Ok(Some(TlsSettings {
            certfile: PathBuf::from(certfile),
            keyfile: keyfile.map(PathBuf::from),
            ca_certs: v.opt_str("ca_certs")?.map(PathBuf::from),
            client_auth,
            ciphers: v.opt_str("ciphers")?.map(str::to_owned),
            versions,
            alpn: alpn_from_protocols(&crate::http::h2::options::protocol_choice(v)?.0),
        }))
    }

    /// Reads the certificate, key and CA files and builds the server's rustls config.
    pub fn load(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let mut provider = rustls::crypto::ring::default_provider();
        if let Some(list) = &self.ciphers {
            provider.cipher_suites = ciphers::select(list)
                .map_err(|e| TlsError::Setting(format!("--ciphers / ciphers = {list:?}: {e}")))?;
        }
        let provider = Arc::new(provider);
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(self.versions.protocols())
            .map_err(|e| {
                TlsError::Setting(format!(
                    "--ciphers / ciphers and --ssl-version / ssl_version leave nothing to \
                     negotiate ({e}); allow a TLS 1.3 suite or TLS 1.2"
                ))
            })?;
        let builder = match (self.client_auth, &self.ca_certs) {
            (ClientAuth::None, _) => builder.with_no_client_auth(),
            (_, None) => {
                return Err(TlsError::Setting(
                    "--cert-reqs / cert_reqs asks for client certificates: --ca-certs / \
                     ca_certs must name the CA file that signs them, e.g. --ca-certs \
                     /etc/ssl/certs/clients-ca.pem"
                        .to_owned(),
                ))
            }
            (auth, Some(ca)) => {
                let ca_err = |reason: String| file_err("--ca-certs", "ca_certs", ca, reason);
                let mut roots = RootCertStore::empty();
                for cert in read_certs(ca).map_err(ca_err)? {
                    roots
                        .add(cert)
                        .map_err(|e| ca_err(format!("not a usable CA certificate: {e}")))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let verifier = if auth == ClientAuth::Optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| ca_err(format!("cannot verify clients with it: {e}")))?,
                )
            }
        };
        let cert_err = |reason: String| file_err("--certfile", "certfile", &self.certfile, reason);
        let certs = read_certs(&self.certfile).map_err(cert_err)?;
        let (key_flag, key_name, key_path) = match &self.keyfile {
            Some(k) => ("--keyfile", "keyfile", k.as_path()),
            None => ("--certfile", "certfile", self.certfile.as_path()),
        };
        let key_err = |reason: String| file_err(key_flag, key_name, key_path, reason);
        let key = read_key(key_path).map_err(key_err)?;
        let mut config = builder.with_single_cert(certs, key).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => key_err(format!(
                "this private key does not belong to the certificate in {}",
                self.certfile.display()
            )),
            rustls::Error::General(ref m) if m.contains("key") => {
                key_err(format!("unusable private key: {e}"))
            }
            other => cert_err(format!("unusable certificate: {other}")),
        })?;
        config.alpn_protocols = self.alpn_protocols();
        Ok(Arc::new(config))
    }

    /// The ALPN protocols to offer, most preferred first; `http::tls::serve` routes the one
    /// negotiated.
    pub fn alpn_protocols(&self) -> Vec<Vec<u8>> {
        self.alpn.clone()
    }
}

/// `--http-protocols` (`h1`, `h2`, in preference order) as ALPN names. A client that offers
/// no ALPN at all still gets HTTP/1.1.
fn alpn_from_protocols(protocols: &[String]) -> Vec<Vec<u8>> {
    let names: Vec<Vec<u8>> = protocols
        .iter()
        .filter_map(|p| match p.as_str() {
            "h2" => Some(b"h2".to_vec()),
            "h1" => Some(b"http/1.1".to_vec()),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        vec![b"http/1.1".to_vec()]
    } else {
        names
    }
}

fn file_err(flag: &'static str, name: &'static str, path: &Path, reason: String) -> TlsError {
    TlsError::File {
        flag,
        name,
        path: path.to_owned(),
        reason,
    }
}

fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_pem(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in it".to_owned());
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read_pem(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            "no PEM private key (PKCS#8, PKCS#1 or SEC1) in it".to_owned()
        }
        other => format!("not a readable private key: {other}"),
    })
}

#[cfg(test)]
pub(crate) mod tests;
