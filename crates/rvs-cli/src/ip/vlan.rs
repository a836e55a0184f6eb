//! `rvsip vlan`: DPVS's `dpip vlan` (add, del, show) and its output, one
//! line per device: `dpdk0.100 link dpdk0 proto 802.1q id 100`.

use rvs_api::{Request, VlanProto, VlanSel, VlanSpec};

use super::IpCommand;
use crate::client::CliError;

/// `rvsip vlan help`.
pub const VLAN_HELP: &str = "Usage:
    rvsip vlan add [ NAME ] VLAN-PARAM
    rvsip vlan del { NAME | VLAN-PARAM }
    rvsip vlan show [ NAME | link DEV [ proto VLAN-PROTO ] [ id VLAN-ID ] ]
Parameters:
    NAME       := DEV
    DEV        := STRING
    VLAN-PARAM := link DEV [ proto VLAN-PROTO ] id VLAN-ID
    VLAN-PROTO := { 802.1q | 802.1ad | vlan | QinQ }
    VLAN-ID    := NUMBER (1 to 4094)

    The default VLAN-PROTO is 802.1q (vlan); 802.1ad equals QinQ.
    Without NAME, add names the device LINK.ID (dpdk0.100).
Examples:
    rvsip vlan add dpdk0.100 link dpdk0 proto 802.1q id 100
    rvsip vlan add link dpdk0 proto 802.1q id 101
    rvsip vlan del dpdk0.100
    rvsip vlan del link dpdk0 id 101
    rvsip vlan show link dpdk0
";

fn proto(s: &str) -> Result<VlanProto, CliError> {
    match s {
        "802.1q" | "vlan" => Ok(VlanProto::Dot1q),
        "802.1ad" => Ok(VlanProto::Dot1ad),
        _ if s.eq_ignore_ascii_case("qinq") => Ok(VlanProto::Dot1ad),
        _ => Err(CliError::usage(format!(
            "invalid VLAN protocol \"{s}\" (802.1q, vlan, 802.1ad or QinQ)"
        ))),
    }
}

fn vid(s: &str) -> Result<u16, CliError> {
    match s.parse::<u16>() {
        Ok(v) if (1..=4094).contains(&v) => Ok(v),
        _ => Err(CliError::usage(format!(
            "invalid VLAN ID \"{s}\" (1 to 4094)"
        ))),
    }
}

/// The words after `rvsip vlan CMD`: a bare name and keyword/value pairs.
fn sel(words: &[&str]) -> Result<VlanSel, CliError> {
    let mut s = VlanSel::default();
    let mut i = 0;
    while let Some(&w) = words.get(i) {
        let value = || {
            words
                .get(i + 1)
                .copied()
                .ok_or_else(|| CliError::usage(format!("missing argument for \"{w}\"")))
        };
        match w {
            "link" | "dev" => s.link = Some(value()?.to_string()),
            "proto" => s.proto = Some(proto(value()?)?),
            "id" => s.id = Some(vid(value()?)?),
            "name" => s.name = Some(value()?.to_string()),
            _ if s.name.is_none() => {
                s.name = Some(w.to_string());
                i += 1;
                continue;
            }
            _ => return Err(CliError::usage("too many arguments")),
        }
        i += 2;
    }
    Ok(s)
}

/// Parses `rvsip vlan [CMD] ARGS` (`cmd`: the word after `vlan`).
pub fn parse_vlan(cmd: Option<&str>, words: &[&str]) -> Result<IpCommand, CliError> {
    match cmd {
        None | Some("show" | "list" | "ls") => Ok(IpCommand::ShowVlans { sel: sel(words)? }),
        Some("help") => Ok(IpCommand::Help(VLAN_HELP.to_string())),
        Some("add") => {
            let s = sel(words)?;
            let link = s
                .link
                .ok_or_else(|| CliError::usage("missing real device (link DEV)"))?;
            let id =
                s.id.ok_or_else(|| CliError::usage("missing or invalid VLAN ID (id ID)"))?;
            Ok(IpCommand::Apply(Request::AddVlan {
                spec: VlanSpec {
                    name: s.name,
                    link,
                    proto: s.proto.unwrap_or_default(),
                    id,
                },
            }))
        }
        Some("del" | "delete") => {
            let s = sel(words)?;
            if s.name.is_none() && (s.link.is_none() || s.id.is_none()) {
                return Err(CliError::usage(
                    "missing device: give NAME, or link DEV and id ID",
                ));
            }
            Ok(IpCommand::Apply(Request::DelVlan { sel: s }))
        }
        Some(c) => Err(CliError::usage(format!(
            "unknown command \"{c}\" for vlan, try \"rvsip vlan help\""
        ))),
    }
}

/// `rvsip vlan show`'s output, as dpip prints it.
pub fn format_vlans(v: &[VlanSpec]) -> String {
    let mut out = String::new();
    for s in v {
        out.push_str(&format!(
            "{} link {} proto {} id {}\n",
            s.name.as_deref().unwrap_or("?"),
            s.link,
            s.proto.name(),
            s.id
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip::parse_args;

    fn parse(line: &str) -> Result<IpCommand, CliError> {
        let args: Vec<&str> = line.split_whitespace().collect();
        parse_args(&args)
    }

    fn add(name: Option<&str>, link: &str, proto: VlanProto, id: u16) -> IpCommand {
        IpCommand::Apply(Request::AddVlan {
            spec: VlanSpec {
                name: name.map(String::from),
                link: link.into(),
                proto,
                id,
            },
        })
    }

    #[test]
    fn the_tutorials_lines() {
        assert_eq!(
            parse("vlan add dpdk0.100 link dpdk0 proto 802.1q id 100").unwrap(),
            add(Some("dpdk0.100"), "dpdk0", VlanProto::Dot1q, 100)
        );
        assert_eq!(
            parse("vlan add link dpdk0 proto 802.1q id 101").unwrap(),
            add(None, "dpdk0", VlanProto::Dot1q, 101)
        );
        assert_eq!(
            parse("vlan add link dpdk1 id 102").unwrap(),
            add(None, "dpdk1", VlanProto::Dot1q, 102)
        );
        assert_eq!(
            parse("vlan add link bond1 id 103").unwrap(),
            add(None, "bond1", VlanProto::Dot1q, 103)
        );
    }

    #[test]
    fn dpip_help_examples_and_protocols() {
        assert_eq!(
            parse("vlan add link dpdk1 proto QinQ id 7").unwrap(),
            add(None, "dpdk1", VlanProto::Dot1ad, 7)
        );
        assert_eq!(
            parse("vlan add dpdk0.9 link dpdk0 proto vlan id 9").unwrap(),
            add(Some("dpdk0.9"), "dpdk0", VlanProto::Dot1q, 9)
        );
        let del = |sel| IpCommand::Apply(Request::DelVlan { sel });
        assert_eq!(
            parse("vlan del dpdk0.100").unwrap(),
            del(VlanSel {
                name: Some("dpdk0.100".into()),
                ..Default::default()
            })
        );
        assert_eq!(
            parse("vlan del link dpdk1 id 100").unwrap(),
            del(VlanSel {
                link: Some("dpdk1".into()),
                id: Some(100),
                ..Default::default()
            })
        );
        assert_eq!(
            parse("vlan show link dpdk1 id 100").unwrap(),
            IpCommand::ShowVlans {
                sel: VlanSel {
                    link: Some("dpdk1".into()),
                    id: Some(100),
                    ..Default::default()
                }
            }
        );
        assert_eq!(
            parse("vlan").unwrap(),
            IpCommand::ShowVlans {
                sel: VlanSel::default()
            }
        );
        assert!(
            matches!(parse("vlan help").unwrap(), IpCommand::Help(t) if t.contains("VLAN-PARAM"))
        );
    }

    #[test]
    fn mistakes_are_named() {
        let msg = |l: &str| parse(l).unwrap_err().to_string();
        assert!(msg("vlan add dpdk0.5 id 5").contains("missing real device"));
        assert!(msg("vlan add link dpdk0").contains("missing or invalid VLAN ID"));
        assert!(msg("vlan add link dpdk0 id 4095").contains("invalid VLAN ID \"4095\""));
        assert!(msg("vlan add link dpdk0 id 0").contains("invalid VLAN ID \"0\""));
        assert!(msg("vlan add link dpdk0 proto 802.3 id 5").contains("invalid VLAN protocol"));
        assert!(msg("vlan add a b link dpdk0 id 5").contains("too many arguments"));
        assert!(msg("vlan del link dpdk0").contains("missing device"));
        assert!(msg("vlan add link dpdk0 id").contains("missing argument for \"id\""));
        assert!(msg("vlan frob").contains("unknown command \"frob\" for vlan"));
    }

    #[test]
    fn show_prints_dpips_lines() {
        let v = vec![
            VlanSpec {
                name: Some("dpdk0.100".into()),
                link: "dpdk0".into(),
                proto: VlanProto::Dot1q,
                id: 100,
            },
            VlanSpec {
                name: Some("dpdk1.7".into()),
                link: "dpdk1".into(),
                proto: VlanProto::Dot1ad,
                id: 7,
            },
        ];
        assert_eq!(
            format_vlans(&v),
            "dpdk0.100 link dpdk0 proto 802.1q id 100\ndpdk1.7 link dpdk1 proto 802.1ad id 7\n"
        );
        assert_eq!(format_vlans(&[]), "");
    }
}
