use std::sync::Arc;

use bytes::BytesMut;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::http::socket::{read_more, write_all};
use crate::net::tls::tests::Pki;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn pair(
    pki: &Pki,
) -> (
    TlsSocket<TcpStream>,
    tokio_rustls::client::TlsStream<TcpStream>,
) {
    let config = pki.settings().load().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let client_cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_cfg));
    let client = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        connector.connect(name, tcp).await.unwrap()
    };
    let server = async {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = TlsSocket::new(
            tcp,
            rustls::ServerConnection::new(config).unwrap(),
            BytesMut::new(),
        );
        tls.handshake().await.unwrap();
        tls
    };
    tokio::join!(server, client)
}

#[tokio::test]
async fn megabytes_cross_both_ways_through_the_socket_trait() {
    let pki = Pki::new();
    let (server, client) = pair(&pki).await;
    let up = pattern(1 << 20, 1);
    let down = pattern(3 << 20, 7);
    let (up2, down2) = (up.clone(), down.clone());
    let client_side = async move {
        // write and read at once: neither side may wait for the other to finish
        let (mut rd, mut wr) = tokio::io::split(client);
        let writer = async move {
            wr.write_all(&up2).await.unwrap();
            wr.flush().await.unwrap();
            wr
        };
        let reader = async move {
            let mut got = Vec::new();
            rd.read_to_end(&mut got).await.unwrap();
            got
        };
        let (_wr, got) = tokio::join!(writer, reader);
        got
    };
    let server_side = async move {
        let mut buf = BytesMut::new();
        let writer = write_all(&server, &down2);
        let reader = async {
            while buf.len() < up.len() {
                assert!(read_more(&server, &mut buf).await.unwrap() > 0);
            }
        };
        let (w, ()) = tokio::join!(writer, reader);
        w.unwrap();
        server.shutdown_write().await;
        (buf, up)
    };
    let (got, (received, sent)) = tokio::join!(client_side, server_side);
    assert_eq!(got.len(), down.len());
    assert!(got == down, "download corrupted");
    assert!(received[..] == sent[..], "upload corrupted");
}

#[tokio::test]
async fn the_async_io_traits_carry_an_echo() {
    let pki = Pki::new();
    let (mut server, mut client) = pair(&pki).await;
    let data = pattern(300 * 1024, 3);
    let expect = data.clone();
    let echo = async move {
        let mut buf = vec![0u8; 8192];
        let mut total = 0;
        while total < expect.len() {
            let n = server.read(&mut buf).await.unwrap();
            assert!(n > 0);
            server.write_all(&buf[..n]).await.unwrap();
            total += n;
        }
        server.flush().await.unwrap();
        server.shutdown().await.unwrap();
    };
    let talk = async move {
        let (mut rd, mut wr) = tokio::io::split(&mut client);
        let w = async {
            wr.write_all(&data).await.unwrap();
            wr.flush().await.unwrap();
        };
        let r = async {
            let mut got = Vec::new();
            rd.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = tokio::join!(w, r);
        assert!(got == data, "echo corrupted");
    };
    tokio::join!(echo, talk);
}

#[tokio::test]
async fn a_plain_http_client_fails_the_handshake_at_once() {
    let pki = Pki::new();
    let config = pki.settings().load().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let tls = TlsSocket::new(
        tcp,
        rustls::ServerConnection::new(config).unwrap(),
        BytesMut::new(),
    );
    let r = tokio::time::timeout(std::time::Duration::from_secs(5), tls.handshake()).await;
    assert!(matches!(r, Ok(Err(_))), "{r:?}");
}

#[test]
fn certificates_become_pem_text() {
    let pki = Pki::new();
    let der = rustls::pki_types::CertificateDer::from_pem_file(&pki.ca).unwrap();
    let pem = pem_certificate(&der);
    assert_eq!(pem.trim_end(), pki.ca_pem.trim_end().replace("\r\n", "\n"));
}
