//! TAP devices: the kernel answers through them and they vanish on drop.

mod common;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::Netns;
use rvs_io::iface::{if_index, mac_of, mtu_of};
use rvs_io::{wait_any, Tap};

const TAP_MAC: [u8; 6] = [0x02, 0x52, 0x56, 0x53, 0x00, 0x01];
const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x77, 0x02];

fn arp_request() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&[10, 77, 0, 2]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[10, 77, 0, 1]);
    f
}

#[test]
fn kernel_answers_arp_through_the_tap_and_drop_removes_it() {
    let ns = Netns::new();
    let name = "rvst0.kni";
    ns.run(|| {
        let mut tap = Tap::open(name, TAP_MAC, 1400).expect("create tap");
        assert_eq!(tap.name(), name);
        assert_eq!(mac_of(name).unwrap(), TAP_MAC);
        assert_eq!(mtu_of(name).unwrap(), 1400);
        let mut buf = [0u8; 2048];
        assert_eq!(
            tap.read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );

        ns.ip(&["addr", "add", "10.77.0.1/24", "dev", name]);
        tap.write(&arp_request()).expect("write arp request");
        let deadline = Instant::now() + Duration::from_secs(3);
        let reply = loop {
            assert!(Instant::now() < deadline, "no ARP reply from the kernel");
            match tap.read(&mut buf) {
                Ok(n) if n >= 42 && buf[12..14] == [0x08, 0x06] && buf[21] == 2 => {
                    break buf[..n].to_vec()
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    wait_any(&[tap.fd()], 50).unwrap();
                }
                Err(e) => panic!("read: {e}"),
            }
        };
        assert_eq!(&reply[0..6], &PEER_MAC);
        assert_eq!(&reply[6..12], &TAP_MAC);
        assert_eq!(&reply[22..28], &TAP_MAC, "sender hardware address");
        assert_eq!(&reply[28..32], &[10, 77, 0, 1], "sender protocol address");
        assert_eq!(&reply[32..38], &PEER_MAC);
        assert_eq!(&reply[38..42], &[10, 77, 0, 2]);

        drop(tap);
        assert!(if_index(name).is_err(), "tap still present after drop");
    });
}

#[test]
fn bad_names_are_refused() {
    let ns = Netns::new();
    ns.run(|| {
        assert!(Tap::open("a-name-far-too-long", TAP_MAC, 1500).is_err());
        assert!(Tap::open("", TAP_MAC, 1500).is_err());
    });
}
