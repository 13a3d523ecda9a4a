//! The HTTP/2 settings, typed once at startup: which protocols a connection may speak
//! (`--http-protocols`, `--http2-cleartext`, and the `--http` shorthand over both) and the
//! server's SETTINGS frame (`--http2-*`).

use crate::settings::{registry, SettingError, Value, Values};

/// How HTTP/2 may start on a connection without TLS (gunicorn's `http2_cleartext`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleartext {
    Off,
    /// Only HTTP/2 prior knowledge: a trusted peer that sends anything else gets 400.
    PriorKnowledge,
    /// `Upgrade: h2c`, which ferricorn does not honour: HTTP/1.x as usual.
    Upgrade,
    /// Prior knowledge, and HTTP/1.x for connections that do not open with the preface.
    Both,
}

/// `--http-protocols`, `--http2-cleartext` and the server's HTTP/2 SETTINGS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http2Options {
    /// `h2` is in `--http-protocols`.
    pub enabled: bool,
    pub cleartext: Cleartext,
    pub max_concurrent_streams: u32,
    pub initial_window_size: u32,
    pub max_frame_size: u32,
    pub max_header_list_size: u32,
}

impl Default for Http2Options {
    /// gunicorn's defaults: HTTP/1.x only.
    fn default() -> Self {
        Http2Options {
            enabled: false,
            cleartext: Cleartext::Off,
            max_concurrent_streams: 100,
            initial_window_size: 65_535,
            max_frame_size: 16_384,
            max_header_list_size: 65_536,
        }
    }
}

/// What a connection does with its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    /// HTTP/1.x, as if HTTP/2 did not exist (no byte is looked at).
    Off,
    /// Look for the preface; HTTP/1.x when it is not there.
    Either,
    /// Look for the preface; anything else is refused with 400.
    Required,
}

impl Http2Options {
    pub fn from_values(v: &Values) -> Result<Self, SettingError> {
        let (protocols, cleartext) = protocol_choice(v)?;
        // validators bound these; 0 header list size is gunicorn's "unlimited"
        let u32_of = |name: &'static str| {
            v.int(name)
                .map(|n| u32::try_from(n.max(0)).unwrap_or(u32::MAX))
        };
        Ok(Http2Options {
            enabled: protocols.iter().any(|p| p == "h2"),
            cleartext,
            max_concurrent_streams: u32_of("http2_max_concurrent_streams")?,
            initial_window_size: u32_of("http2_initial_window_size")?,
            max_frame_size: u32_of("http2_max_frame_size")?,
            max_header_list_size: match u32_of("http2_max_header_list_size")? {
                0 => u32::MAX,
                n => n,
            },
        })
    }

    /// gunicorn's rule: only peers trusted as front ends (`--forwarded-allow-ips`) may speak
    /// cleartext HTTP/2; everyone else is served HTTP/1.x as if it were off.
    pub fn sniff(&self, peer_trusted: bool) -> Sniff {
        if !self.enabled || !peer_trusted {
            return Sniff::Off;
        }
        match self.cleartext {
            Cleartext::Off | Cleartext::Upgrade => Sniff::Off,
            Cleartext::PriorKnowledge => Sniff::Required,
            Cleartext::Both => Sniff::Either,
        }
    }

    /// The h2 server builder for these settings.
    pub fn builder(&self) -> h2::server::Builder {
        let mut b = h2::server::Builder::new();
        b.max_concurrent_streams(self.max_concurrent_streams)
            .initial_window_size(self.initial_window_size)
            // the connection window grows with the streams it carries
            .initial_connection_window_size(
                self.initial_window_size
                    .saturating_mul(4)
                    .clamp(65_535, i32::MAX as u32),
            )
            .max_frame_size(self.max_frame_size)
            .max_header_list_size(self.max_header_list_size)
            // bounded memory per stream: what the app sent but the client's window does not
            // take yet stays in the app's reply channel instead
            .max_send_buffer_size(256 * 1024);
        b
    }
}

/// `http_protocols` and `http2_cleartext`, or what `--http` means when it is set. `--http`
/// owns the choice then; the long spellings may only repeat it.
pub(crate) fn protocol_choice(v: &Values) -> Result<(Vec<String>, Cleartext), SettingError> {
    let protocols = v.list("http_protocols")?.to_vec();
    let cleartext = v.str("http2_cleartext")?;
    let Some(short) = v.opt_str("http")? else {
        return Ok((protocols, parse_cleartext(cleartext)));
    };
    let (want_protocols, want_cleartext): (&[&str], &str) = match short {
        "auto" => (&["h1", "h2"], "both"),
        "2" => (&["h2"], "prior-knowledge"),
        _ => (&["h1"], "off"),
    };
    let conflict = |name: &'static str, given: String| {
        let setting = registry::find("http").expect("http is declared");
        let other = registry::find(name).expect("http2 settings are declared");
        SettingError::invalid(
            setting,
            Value::Str(short.to_owned()),
            format!(
                "conflicts with {} / {name} = {given}; set one of the two spellings, not both",
                other.long_flag().unwrap_or(name)
            ),
        )
    };
    // left at its default, a long spelling says nothing; changed, it must agree
    let mut given: Vec<&str> = protocols.iter().map(String::as_str).collect();
    given.sort_unstable();
    let mut wanted = want_protocols.to_vec();
    wanted.sort_unstable();
    if protocols != ["h1"] && given != wanted {
        return Err(conflict("http_protocols", protocols.join(",")));
    }
    if cleartext != "off" && cleartext != want_cleartext {
        return Err(conflict("http2_cleartext", cleartext.to_owned()));
    }
    Ok((
        want_protocols.iter().map(|p| (*p).to_owned()).collect(),
        parse_cleartext(want_cleartext),
    ))
}

fn parse_cleartext(s: &str) -> Cleartext {
    match s {
        "prior-knowledge" => Cleartext::PriorKnowledge,
        "upgrade" => Cleartext::Upgrade,
        "both" => Cleartext::Both,
        _ => Cleartext::Off,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::registry::Env;

    fn opts(pairs: &[(&'static str, &str)]) -> Result<Http2Options, SettingError> {
        let mut v = Values::default();
        for (name, raw) in pairs {
            let setting = registry::find(name).unwrap();
            v.set_setting(setting, Value::Str((*raw).to_owned()))?;
        }
        let v = v.with_defaults(Env::from_fn(&|_| None))?;
        Http2Options::from_values(&v)
    }

    #[test]
    fn defaults_serve_http1_only() {
        let o = opts(&[]).unwrap();
        assert_eq!(o, Http2Options::default());
        assert_eq!(o.sniff(true), Sniff::Off);
    }

    #[test]
    fn gunicorn_spellings_pick_the_mechanism_for_trusted_peers_only() {
        let o = opts(&[
            ("http_protocols", "h2,h1"),
            ("http2_cleartext", "prior-knowledge"),
        ])
        .unwrap();
        assert_eq!(o.sniff(true), Sniff::Required);
        assert_eq!(o.sniff(false), Sniff::Off);
        let both = opts(&[("http_protocols", "h1,h2"), ("http2_cleartext", "both")]).unwrap();
        assert_eq!(both.sniff(true), Sniff::Either);
        // cleartext without h2 in the protocols does nothing, as in gunicorn
        let no_h2 = opts(&[("http2_cleartext", "both")]).unwrap();
        assert_eq!(no_h2.sniff(true), Sniff::Off);
    }

    #[test]
    fn http_shorthand_maps_onto_the_long_settings() {
        assert_eq!(
            opts(&[("http", "auto")]).unwrap().sniff(true),
            Sniff::Either
        );
        assert_eq!(opts(&[("http", "2")]).unwrap().sniff(true), Sniff::Required);
        assert_eq!(opts(&[("http", "1")]).unwrap().sniff(true), Sniff::Off);
        // repeating the same choice in the long spelling is fine
        assert!(opts(&[("http", "auto"), ("http_protocols", "h2,h1")]).is_ok());
    }

    #[test]
    fn http_shorthand_conflicting_with_a_long_spelling_names_both() {
        let err = opts(&[("http", "1"), ("http2_cleartext", "prior-knowledge")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--http"), "{err}");
        assert!(err.contains("--http2-cleartext"), "{err}");
        assert!(opts(&[("http", "2"), ("http_protocols", "h1,h2")]).is_err());
    }

    #[test]
    fn settings_reach_the_builder_values() {
        let o = opts(&[
            ("http2_max_concurrent_streams", "7"),
            ("http2_max_header_list_size", "0"),
        ])
        .unwrap();
        assert_eq!(o.max_concurrent_streams, 7);
        assert_eq!(o.max_header_list_size, u32::MAX);
    }
}
