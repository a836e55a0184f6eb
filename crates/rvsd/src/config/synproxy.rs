//! `[synproxy]`: the SYN proxy's cookie key, shared by ECMP nodes.
//!
//! Without the section every rvsd draws a random key at start, and only the
//! node that answered a client's SYN can check the cookie in its ACK. Nodes
//! behind an ECMP router that may send a flow's ACK to another node than
//! its SYN (a node joined or left) need the same key: `key` (32 hex digits,
//! 128 bits, e.g. from `openssl rand -hex 16`) or `key_file` (a file that
//! holds them, readable by root only, so the key stays out of a
//! configuration file that may be world-readable). Cookie epochs then
//! follow the wall clock, which the nodes must keep in step (NTP).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Hex digits of a key.
const KEY_DIGITS: usize = 32;

/// `[synproxy]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SynproxySection {
    /// The cookie key, 32 hex digits.
    pub key: Option<String>,
    /// A file holding the cookie key (32 hex digits; blank space around
    /// ignored); relative to the configuration file's directory.
    pub key_file: Option<PathBuf>,
}

impl SynproxySection {
    /// The master key the section names (`None`: a random one per
    /// process), reading `key_file` relative to `conf_dir`; errors name the
    /// setting and what was wrong.
    pub fn master_key(&self, conf_dir: &Path) -> Result<Option<[u64; 2]>, (&'static str, String)> {
        match (&self.key, &self.key_file) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err((
                "key_file",
                "synproxy: key and key_file both set; give one".into(),
            )),
            (Some(k), None) => parse_key(k)
                .map(Some)
                .map_err(|why| ("key", format!("synproxy key: {why}"))),
            (None, Some(f)) => {
                let path = conf_dir.join(f);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    (
                        "key_file",
                        format!("synproxy key_file = {:?}: cannot read: {e}", path.display()),
                    )
                })?;
                parse_key(text.trim()).map(Some).map_err(|why| {
                    (
                        "key_file",
                        format!("synproxy key_file = {:?}: {why}", path.display()),
                    )
                })
            }
        }
    }
}

/// A key from its 32 hex digits (the first 16 are the first word).
fn parse_key(s: &str) -> Result<[u64; 2], String> {
    let fix = "expected 32 hex digits (128 bits, e.g. from `openssl rand -hex 16`)";
    if s.len() != KEY_DIGITS {
        return Err(format!("{fix}, got {} characters", s.chars().count()));
    }
    if let Some(c) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("{fix}, got {c:?}"));
    }
    let word =
        |r: std::ops::Range<usize>| u64::from_str_radix(&s[r], 16).map_err(|e| e.to_string());
    let key = [word(0..16)?, word(16..32)?];
    if key == [0, 0] {
        return Err(format!("{fix}; an all-zero key is no secret"));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_key("0123456789abcdefFEDCBA9876543210"),
            Ok([0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210])
        );
        for bad in [
            "",
            "0123",
            "0123456789abcdef0123456789abcdeg",
            &"0".repeat(32),
            &"1".repeat(64),
        ] {
            let e = parse_key(bad).unwrap_err();
            assert!(e.contains("32 hex digits"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_section_reaches_the_pipeline_and_a_bad_key_names_its_line() {
        use crate::config::Config;
        let one = "[[netif]]\nname = \"dpdk0\"\niface = \"a\"\n";
        let parse = |t: &str| Config::parse(Path::new("/etc/rvs/rvs.toml"), t);
        assert_eq!(parse(one).unwrap().pipeline_conf().synproxy_key, None);
        let c = parse(&format!(
            "{one}[synproxy]\nkey = \"000000000000002a0000000000000007\"\n"
        ))
        .unwrap();
        assert_eq!(c.pipeline_conf().synproxy_key, Some([42, 7]));
        let e = parse(&format!("{one}[synproxy]\n\nkey = \"xyz\"\n")).unwrap_err();
        assert_eq!(e.line, Some(6), "{e}");
        assert!(
            e.to_string()
                .contains("synproxy key: expected 32 hex digits"),
            "{e}"
        );
        let e = parse(&format!("{one}[synproxy]\nkeyfile = \"x\"\n")).unwrap_err();
        assert!(e.to_string().contains("keyfile"), "{e}");
    }

    #[test]
    fn a_key_file_is_read_relative_to_the_configuration() {
        let dir = std::env::temp_dir().join(format!("rvs-spkey-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sp.key"), "000102030405060708090a0b0c0d0e0f\n").unwrap();
        let s = SynproxySection {
            key: None,
            key_file: Some("sp.key".into()),
        };
        assert_eq!(
            s.master_key(&dir),
            Ok(Some([0x0001_0203_0405_0607, 0x0809_0a0b_0c0d_0e0f]))
        );
        let missing = SynproxySection {
            key_file: Some("nope.key".into()),
            ..s.clone()
        };
        let (key, m) = missing.master_key(&dir).unwrap_err();
        assert_eq!(key, "key_file");
        assert!(m.contains("nope.key") && m.contains("cannot read"), "{m}");
        let both = SynproxySection {
            key: Some("000102030405060708090a0b0c0d0e0f".into()),
            ..s
        };
        assert!(both.master_key(&dir).unwrap_err().1.contains("both"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
