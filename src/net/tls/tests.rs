use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::settings::{parse_args_with_env, Env, Parsed};

/// A throwaway CA, a server certificate it signed (SAN localhost / 127.0.0.1) and a client
/// certificate it signed, as PEM files in a fresh directory.
pub(crate) struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_key: PathBuf,
    pub ca_pem: String,
}

impl Pki {
    pub fn new() -> Pki {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ferricorn-tls-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ferricorn test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf = |names: Vec<String>| {
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &ca, &ca_key)
                .unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()]);
        let (_, client_key) = leaf(vec!["client.example".into()]);
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        Pki {
            ca: write("ca.pem", &ca.pem()),
            cert: write("server.pem", &server),
            key: write("server.key", &server_key),
            client_key: write("client.key", &client_key),
            ca_pem: ca.pem(),
            dir,
        }
    }

    pub fn settings(&self) -> TlsSettings {
        TlsSettings {
            certfile: self.cert.clone(),
            keyfile: Some(self.key.clone()),
            ca_certs: None,
            client_auth: ClientAuth::None,
            ciphers: None,
            versions: Versions::Default,
            alpn: vec![b"http/1.1".to_vec()],
        }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn err(s: &TlsSettings) -> String {
    s.load().map(|_| ()).unwrap_err().to_string()
}

#[test]
fn a_matching_certificate_and_key_make_a_config_offering_http11() {
    let pki = Pki::new();
    let config = pki.settings().load().unwrap();
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
}

#[test]
fn the_key_may_live_in_the_certificate_file() {
    let pki = Pki::new();
    let both = pki.dir.join("both.pem");
    let text =
        std::fs::read_to_string(&pki.cert).unwrap() + &std::fs::read_to_string(&pki.key).unwrap();
    std::fs::write(&both, text).unwrap();
    let mut s = pki.settings();
    s.certfile = both;
    s.keyfile = None;
    s.load().unwrap();
}

#[test]
fn unreadable_or_invalid_files_name_their_setting() {
    let pki = Pki::new();
    let mut s = pki.settings();
    s.certfile = pki.dir.join("missing.pem");
    let e = err(&s);
    assert!(e.starts_with("--certfile / certfile = "), "{e}");
    assert!(e.contains("cannot read it"), "{e}");

    let mut s = pki.settings();
    s.certfile = pki.key.clone();
    let e = err(&s);
    assert!(e.starts_with("--certfile / certfile"), "{e}");
    assert!(e.contains("no PEM certificate"), "{e}");

    let mut s = pki.settings();
    s.keyfile = Some(pki.cert.clone());
    let e = err(&s);
    assert!(e.starts_with("--keyfile / keyfile"), "{e}");
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let pki = Pki::new();
    let mut s = pki.settings();
    s.keyfile = Some(pki.client_key.clone());
    let e = err(&s);
    assert!(e.starts_with("--keyfile / keyfile"), "{e}");
    assert!(e.contains("does not belong to the certificate"), "{e}");
}

#[test]
fn client_verification_needs_a_usable_ca_file() {
    let pki = Pki::new();
    let mut s = pki.settings();
    s.client_auth = ClientAuth::Required;
    let e = err(&s);
    assert!(e.contains("--ca-certs"), "{e}");
    s.ca_certs = Some(pki.key.clone());
    let e = err(&s);
    assert!(e.starts_with("--ca-certs / ca_certs"), "{e}");
    s.ca_certs = Some(pki.ca.clone());
    s.load().unwrap();
    s.client_auth = ClientAuth::Optional;
    s.load().unwrap();
}

#[test]
fn a_cipher_list_leaving_only_tls12_suites_conflicts_with_tls13_only() {
    let pki = Pki::new();
    let mut s = pki.settings();
    s.ciphers = Some("ECDHE-RSA-AES128-GCM-SHA256:!TLS_AES_128_GCM_SHA256:!TLS_AES_256_GCM_SHA384:!TLS_CHACHA20_POLY1305_SHA256".into());
    s.load().unwrap();
    s.versions = Versions::Tls13Only;
    let e = err(&s);
    assert!(e.contains("--ssl-version"), "{e}");
}

fn parse(args: &[&str]) -> Parsed {
    let argv: Vec<String> = std::iter::once("ferricorn")
        .chain(args.iter().copied())
        .chain(["a:app"])
        .map(String::from)
        .collect();
    parse_args_with_env(&argv, Env::from_fn(&|_| None))
}

#[test]
fn settings_turn_tls_on_with_certfile_only() {
    match parse(&[]) {
        Parsed::Run(s) => assert!(s.tls.is_none()),
        other => panic!("{other:?}"),
    }
    match parse(&[
        "--certfile",
        "c.pem",
        "--cert-reqs",
        "1",
        "--ssl-version",
        "TLSv1_3",
    ]) {
        Parsed::Run(s) => {
            let t = s.tls.unwrap();
            assert_eq!(t.certfile, PathBuf::from("c.pem"));
            assert_eq!(t.client_auth, ClientAuth::Optional);
            assert_eq!(t.versions, Versions::Tls13Only);
        }
        other => panic!("{other:?}"),
    }
    let Parsed::Exit { output, code, .. } = parse(&["--keyfile", "k.pem"]) else {
        panic!("a key alone must be refused");
    };
    assert_ne!(code, 0);
    assert!(output.contains("--certfile"), "{output}");
}

#[test]
fn bad_ciphers_and_old_versions_stop_at_parse_time() {
    for args in [
        &["--ciphers", "NOPE"][..],
        &["--ssl-version", "TLSv1"][..],
        &["--ssl-version", "3"][..],
    ] {
        let Parsed::Exit { output, code, .. } = parse(args) else {
            panic!("{args:?} must be refused");
        };
        assert_ne!(code, 0);
        assert!(output.contains(args[0]), "{output}");
    }
}

#[test]
fn alpn_follows_http_protocols_in_preference_order() {
    assert_eq!(
        super::alpn_from_protocols(&["h2".into(), "h1".into()]),
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    assert_eq!(
        super::alpn_from_protocols(&["h1".into()]),
        vec![b"http/1.1".to_vec()]
    );
    assert_eq!(super::alpn_from_protocols(&[]), vec![b"http/1.1".to_vec()]);
}
