//! `--ciphers` and `--ssl-version` read as gunicorn users write them (OpenSSL cipher lists,
//! `ssl.PROTOCOL_*` names), mapped onto what rustls offers. Pure: no files, no sockets; the
//! settings validators call in here so a bad value stops the server before it binds.
//!
//! Written by hand because no crate translates OpenSSL cipher strings for rustls; only the
//! parts of the grammar that select among rustls's nine suites are meaningful here.

use rustls::crypto::ring::cipher_suite as suite;
use rustls::SupportedCipherSuite;

/// One rustls suite with the names users know it by and the properties OpenSSL keywords select.
struct Known {
    suite: SupportedCipherSuite,
    /// OpenSSL's name (for TLS 1.3 suites OpenSSL uses the IANA name).
    openssl: &'static str,
    iana: &'static str,
    tls13: bool,
    /// Key exchange is ECDHE (all TLS 1.2 suites here); TLS 1.3 suites have no kx in the name.
    ecdsa: bool,
    rsa: bool,
    aes128: bool,
    aes256: bool,
    chacha: bool,
    sha384: bool,
}

const fn k(
    suite: SupportedCipherSuite,
    openssl: &'static str,
    iana: &'static str,
    tls13: bool,
    auth: u8,
    cipher: u8,
) -> Known {
    Known {
        suite,
        openssl,
        iana,
        tls13,
        ecdsa: auth == b'E',
        rsa: auth == b'R',
        aes128: cipher == 1,
        aes256: cipher == 2,
        chacha: cipher == 3,
        sha384: cipher == 2,
    }
}

/// How many suites the ring provider has.
const SUITES: usize = 9;

static KNOWN: [Known; SUITES] = [
    k(
        suite::TLS13_AES_256_GCM_SHA384,
        "TLS_AES_256_GCM_SHA384",
        "TLS_AES_256_GCM_SHA384",
        true,
        0,
        2,
    ),
    k(
        suite::TLS13_AES_128_GCM_SHA256,
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_128_GCM_SHA256",
        true,
        0,
        1,
    ),
    k(
        suite::TLS13_CHACHA20_POLY1305_SHA256,
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
        true,
        0,
        3,
    ),
    k(
        suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        false,
        b'E',
        2,
    ),
    k(
        suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        false,
        b'E',
        1,
    ),
    k(
        suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        false,
        b'E',
        3,
    ),
    k(
        suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        false,
        b'R',
        2,
    ),
    k(
        suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        false,
        b'R',
        1,
    ),
    k(
        suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        false,
        b'R',
        3,
    ),
];

/// What an OpenSSL keyword selects among `KNOWN`; `None` for words we do not know.
/// Keywords naming only what rustls never offers (RC4, CBC, DHE, PSK...) select nothing.
fn keyword(word: &str) -> Option<fn(&Known) -> bool> {
    Some(match word {
        "ALL" | "DEFAULT" | "HIGH" | "AEAD" | "ECDH" | "ECDHE" | "EECDH" | "kECDHE" | "kEECDH"
        | "kECDH" | "TLSv1.2" | "FIPS" => |s| !s.tls13,
        "aRSA" => |s| s.rsa,
        "aECDSA" | "ECDSA" => |s| s.ecdsa,
        "AESGCM" | "AES" => |s| s.aes128 || s.aes256,
        "AES128" => |s| s.aes128,
        "AES256" => |s| s.aes256,
        "CHACHA20" => |s| s.chacha,
        "SHA256" => |s| !s.sha384,
        "SHA384" => |s| s.sha384,
        "COMPLEMENTOFDEFAULT"
        | "COMPLEMENTOFALL"
        | "MEDIUM"
        | "LOW"
        | "EXPORT"
        | "EXP"
        | "aNULL"
        | "eNULL"
        | "NULL"
        | "MD5"
        | "RC4"
        | "DES"
        | "3DES"
        | "SHA1"
        | "SHA"
        | "PSK"
        | "SRP"
        | "aDSS"
        | "DSS"
        | "DH"
        | "DHE"
        | "EDH"
        | "kDHE"
        | "kEDH"
        | "kRSA"
        | "RSA"
        | "CAMELLIA"
        | "AESCCM"
        | "AESCCM8"
        | "ARIA"
        | "SEED"
        | "IDEA"
        | "IDEA-CBC"
        | "CBC"
        | "aPSK"
        | "kPSK"
        | "ECDHEPSK"
        | "DHEPSK"
        | "RSAPSK"
        | "GOST"
        | "SSLv3"
        | "TLSv1"
        | "TLSv1.0"
        | "aGOST"
        | "kGOST"
        | "CCM"
        | "CCM8" => |_| false,
        _ => return None,
    })
}

/// A cipher-suite name (OpenSSL or IANA style) rustls does not implement: skipped, as OpenSSL
/// skips names it lacks, so the lists gunicorn's docs recommend (OWASP's) still work.
fn looks_like_suite_name(word: &str) -> bool {
    (word.contains('-') || word.starts_with("TLS_") || word.starts_with("SSL_"))
        && word
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The rustls suites an OpenSSL cipher list selects, in rustls's preference order.
///
/// As in OpenSSL, the list only chooses TLS 1.2 suites unless it names TLS 1.3 suites itself
/// (Python's `set_ciphers` leaves TLS 1.3 alone); `!X`/`-X` remove, `+X` (reordering) and
/// `@SECLEVEL`/`@STRENGTH` change nothing here. An error says which part could not be read,
/// or that nothing rustls offers was selected.
pub fn select(list: &str) -> Result<Vec<SupportedCipherSuite>, String> {
    let mut chosen = [false; SUITES];
    let mut banned = [false; SUITES];
    let mut names_tls13 = false;
    for token in list
        .split([':', ',', ' '])
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let (op, body) = match token.as_bytes()[0] {
            b'!' | b'-' | b'+' => (token.as_bytes()[0], &token[1..]),
            _ => (b' ', token),
        };
        if body.starts_with('@') {
            continue;
        }
        let mut hits = [true; SUITES];
        for part in body.split('+') {
            let one = KNOWN
                .iter()
                .position(|s| s.openssl == part || s.iana == part);
            let mask: [bool; SUITES] = match (one, keyword(part)) {
                (Some(i), _) => {
                    names_tls13 |= KNOWN[i].tls13 && op == b' ';
                    std::array::from_fn(|j| j == i)
                }
                (None, Some(f)) => std::array::from_fn(|j| f(&KNOWN[j])),
                (None, None) if looks_like_suite_name(part) => [false; SUITES],
                (None, None) => {
                    return Err(format!(
                        "{part:?} is not a cipher name or an OpenSSL keyword ferricorn knows; \
                         rustls offers {}",
                        offered()
                    ))
                }
            };
            for (hit, m) in hits.iter_mut().zip(mask) {
                *hit &= m;
            }
        }
        for j in 0..KNOWN.len() {
            if hits[j] {
                match op {
                    b'!' => banned[j] = true,
                    b'-' => chosen[j] = false,
                    b'+' => {}
                    _ => chosen[j] = true,
                }
            }
        }
    }
    let out: Vec<SupportedCipherSuite> = KNOWN
        .iter()
        .enumerate()
        .filter(|(j, s)| !banned[*j] && (chosen[*j] || (s.tls13 && !names_tls13)))
        .map(|(_, s)| s.suite)
        .collect();
    if out.is_empty() {
        return Err(format!(
            "selects no cipher suite rustls implements; rustls offers {}",
            offered()
        ));
    }
    Ok(out)
}

fn offered() -> String {
    KNOWN
        .iter()
        .map(|s| s.openssl)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which TLS versions to offer, from `--ssl-version` (a `ssl.PROTOCOL_*` number or name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versions {
    /// TLS 1.2 and 1.3 (`TLS`, `SSLv23`, `TLS_SERVER`, and `TLSv1_2`'s "1.2 or later").
    Default,
    Tls13Only,
}

impl Versions {
    /// Reads the setting's canonical value; the error is the validator's reason.
    pub fn parse(value: &str) -> Result<Versions, String> {
        const REFUSED: &str = "rustls implements TLS 1.2 and 1.3 only (older versions are \
                               insecure); use TLS (the default), TLSv1_2 or TLSv1_3";
        match value {
            // ssl.PROTOCOL_TLS (= SSLv23) and PROTOCOL_TLS_SERVER
            "2" | "17" | "TLS" | "SSLv23" | "TLS_SERVER" => Ok(Versions::Default),
            // PROTOCOL_TLSv1_2; rustls's 1.2 floor is already what it asks for
            "5" | "TLSv1_2" => Ok(Versions::Default),
            "TLSv1_3" => Ok(Versions::Tls13Only),
            "0" | "1" | "3" | "4" | "SSLv2" | "SSLv3" | "TLSv1" | "TLSv1_1" => {
                Err(REFUSED.to_owned())
            }
            "16" | "TLS_CLIENT" => {
                Err("PROTOCOL_TLS_CLIENT is for clients; a server wants TLS_SERVER".to_owned())
            }
            _ => Err(format!(
                "not an ssl.PROTOCOL_* value ferricorn knows; {REFUSED}"
            )),
        }
    }

    pub fn protocols(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        match self {
            Versions::Default => rustls::ALL_VERSIONS,
            Versions::Tls13Only => {
                static ONLY_13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
                ONLY_13
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &str) -> Vec<String> {
        select(list)
            .unwrap()
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect()
    }

    #[test]
    fn pythons_and_owasps_default_strings_are_accepted() {
        // CPython's ssl._DEFAULT_CIPHERS and OWASP's "A" list (gunicorn's docs point there)
        let py = names("@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM");
        assert_eq!(py.len(), 9, "{py:?}");
        let owasp = names("TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305");
        assert!(owasp.contains(&"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".to_owned()));
        assert_eq!(owasp.len(), 5, "{owasp:?}");
        // gunicorn before 20 defaulted to "TLSv1": as with OpenSSL, that selects no TLS 1.2
        // suite rustls has and leaves TLS 1.3 alone
        assert_eq!(names("TLSv1").len(), 3);
    }

    #[test]
    fn single_names_select_one_tls12_suite_and_keep_tls13() {
        let one = names("ECDHE-RSA-AES128-GCM-SHA256");
        assert_eq!(one.len(), 4, "{one:?}");
        assert!(one.contains(&"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_owned()));
        let only13 = names("TLS_AES_128_GCM_SHA256");
        assert_eq!(only13, vec!["TLS13_AES_128_GCM_SHA256".to_owned()]);
        let iana = names("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
        assert_eq!(iana.len(), 4);
    }

    #[test]
    fn exclusions_and_intersections_apply() {
        let no_chacha = names("HIGH:!CHACHA20");
        assert!(
            no_chacha.iter().all(|n| !n.contains("CHACHA")),
            "{no_chacha:?}"
        );
        let rsa_gcm = names("aRSA+AESGCM");
        assert_eq!(rsa_gcm.len(), 5, "{rsa_gcm:?}");
    }

    #[test]
    fn unreadable_lists_are_errors() {
        let e = select("ECDHE+AESGCM:bogus").unwrap_err();
        assert!(e.contains("\"bogus\""), "{e}");
        let e = select("TLS_AES_128_GCM_SHA256:!TLS_AES_128_GCM_SHA256").unwrap_err();
        assert!(e.starts_with("selects no cipher suite"), "{e}");
    }

    #[test]
    fn versions_map_onto_rustls() {
        assert_eq!(Versions::parse("2"), Ok(Versions::Default));
        assert_eq!(Versions::parse("TLS_SERVER"), Ok(Versions::Default));
        assert_eq!(Versions::parse("TLSv1_2"), Ok(Versions::Default));
        assert_eq!(Versions::parse("TLSv1_3"), Ok(Versions::Tls13Only));
        for old in ["SSLv3", "TLSv1", "TLSv1_1", "3", "4"] {
            assert!(
                Versions::parse(old)
                    .unwrap_err()
                    .contains("TLS 1.2 and 1.3"),
                "{old}"
            );
        }
        assert_eq!(Versions::Tls13Only.protocols().len(), 1);
    }
}
