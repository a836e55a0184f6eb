use super::*;

fn a(s: &str) -> Addr {
    s.parse().unwrap()
}

const MAC: Mac = Mac([2, 0, 0, 0, 0, 0x10]);

/// The Ethernet, IPv6 and Hop-by-Hop headers of an MLD frame, written out.
fn headers(dst_mac: [u8; 6], src: &str, dst: &str, payload: u16) -> Vec<u8> {
    let mut v = dst_mac.to_vec();
    v.extend_from_slice(&MAC.0);
    v.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    v.extend_from_slice(&payload.to_be_bytes());
    // Next header Hop-by-Hop, hop limit 1.
    v.extend_from_slice(&[0, 1]);
    v.extend_from_slice(&a(src).0);
    v.extend_from_slice(&a(dst).0);
    // ICMPv6 next; Router Alert (MLD); PadN.
    v.extend_from_slice(&[58, 0, 5, 2, 0, 0, 1, 0]);
    v
}

#[test]
fn report_exact_bytes() {
    let mut b = [0u8; 200];
    let recs = [
        (record::CHANGE_TO_EXCLUDE, a("ff02::1:ff00:100")),
        (record::CHANGE_TO_INCLUDE, a("ff02::1:ff00:200")),
    ];
    let n = write_report(&mut b, MAC, &a("fe80::1"), &recs);
    let mut want = headers(
        [0x33, 0x33, 0, 0, 0, 0x16],
        "fe80::1",
        "ff02::16",
        8 + 8 + 40,
    );
    // Type 143, checksum (computed apart, by Python), 2 records.
    want.extend_from_slice(&[143, 0, 0x6c, 0xee, 0, 0, 0, 2]);
    want.extend_from_slice(&[4, 0, 0, 0]);
    want.extend_from_slice(&a("ff02::1:ff00:100").0);
    want.extend_from_slice(&[3, 0, 0, 0]);
    want.extend_from_slice(&a("ff02::1:ff00:200").0);
    assert_eq!(&b[..n], &want[..]);
    let r = ReportPacket::new_checked(message(&b[..n])).unwrap();
    assert!(r.verify_checksum(&a("fe80::1"), &ALL_MLDV2_ROUTERS));
    assert_eq!(r.records().collect::<Vec<_>>(), recs.to_vec());
}

#[test]
fn report_from_the_unspecified_address() {
    let mut b = [0u8; 200];
    let recs = [(record::MODE_IS_EXCLUDE, a("ff02::1:ff00:100"))];
    let n = write_report(&mut b, MAC, &Addr::UNSPECIFIED, &recs);
    let mut want = headers([0x33, 0x33, 0, 0, 0, 0x16], "::", "ff02::16", 8 + 8 + 20);
    want.extend_from_slice(&[143, 0, 0x70, 0x8a, 0, 0, 0, 1, 2, 0, 0, 0]);
    want.extend_from_slice(&a("ff02::1:ff00:100").0);
    assert_eq!(&b[..n], &want[..]);
}

#[test]
fn report_refuses_short_buffers_and_too_many_records() {
    let recs = [(record::MODE_IS_EXCLUDE, a("ff02::1:ff00:100"))];
    let mut b = [0u8; MSG_OFF + 27];
    assert_eq!(write_report(&mut b, MAC, &Addr::UNSPECIFIED, &recs), 0);
    let many = vec![recs[0]; MAX_RECORDS + 1];
    let mut b = vec![0u8; 4096];
    assert_eq!(write_report(&mut b, MAC, &Addr::UNSPECIFIED, &many), 0);
    let n = write_report(&mut b, MAC, &Addr::UNSPECIFIED, &many[..MAX_RECORDS]);
    assert_eq!(n, MAX_REPORT_FRAME);
}

#[test]
fn general_query_exact_bytes_and_view() {
    let mut b = [0u8; 200];
    let n = write_query(&mut b, MAC, &a("fe80::fe"), &Addr::UNSPECIFIED, 10_000, 2);
    let mut want = headers([0x33, 0x33, 0, 0, 0, 1], "fe80::fe", "ff02::1", 8 + 28);
    want.extend_from_slice(&[130, 0, 0x55, 0x99, 0x27, 0x10, 0, 0]);
    want.extend_from_slice(&[0; 16]);
    want.extend_from_slice(&[2, 125, 0, 0]);
    assert_eq!(&b[..n], &want[..]);
    let q = QueryPacket::new_checked(message(&b[..n])).unwrap();
    assert!(q.verify_checksum(&a("fe80::fe"), &ALL_NODES));
    assert!(q.is_v2());
    assert!(q.group().is_unspecified());
    assert_eq!((q.max_resp_ms(), q.qrv(), q.sources()), (10_000, 2, 0));
}

#[test]
fn group_query_goes_to_the_group() {
    let mut b = [0u8; 200];
    let g = a("ff02::1:ff00:100");
    let n = write_query(&mut b, MAC, &a("fe80::fe"), &g, 1000, 2);
    assert_eq!(&b[..6], &[0x33, 0x33, 0xff, 0, 1, 0]);
    assert_eq!(&b[38..54], &g.0);
    let q = QueryPacket::new_checked(message(&b[..n])).unwrap();
    assert_eq!(q.group(), g);
    assert!(q.verify_checksum(&a("fe80::fe"), &g));
}

#[test]
fn max_response_code_floating_point() {
    let mut m = [0u8; 28];
    m[0] = QUERY;
    // exp 1, mant 0: (0x1000) << 4.
    m[4..6].copy_from_slice(&0x9000u16.to_be_bytes());
    assert_eq!(
        QueryPacket::new_checked(&m[..]).unwrap().max_resp_ms(),
        0x1000 << 4
    );
    m[4..6].copy_from_slice(&0xffffu16.to_be_bytes());
    assert_eq!(
        QueryPacket::new_checked(&m[..]).unwrap().max_resp_ms(),
        0x1fff << 10
    );
    // Version 1: milliseconds whatever the value.
    assert_eq!(
        QueryPacket::new_checked(&m[..24]).unwrap().max_resp_ms(),
        0xffff
    );
}

#[test]
fn malformed_messages_are_refused() {
    let mut m = [0u8; 44];
    m[0] = QUERY;
    assert_eq!(
        QueryPacket::new_checked(&m[..23]).unwrap_err(),
        WireError::Truncated
    );
    assert_eq!(
        QueryPacket::new_checked(&m[..26]).unwrap_err(),
        WireError::BadLength
    );
    // One source announced, none there.
    m[27] = 1;
    assert_eq!(
        QueryPacket::new_checked(&m[..28]).unwrap_err(),
        WireError::Truncated
    );
    assert!(QueryPacket::new_checked(&m[..44]).is_ok());
    m[0] = REPORT_V2;
    assert_eq!(
        QueryPacket::new_checked(&m[..28]).unwrap_err(),
        WireError::Unsupported
    );
    // A report announcing a record it does not hold.
    let mut r = [0u8; 28];
    r[0] = REPORT_V2;
    r[7] = 1;
    assert!(ReportPacket::new_checked(&r[..]).is_ok());
    r[7] = 2;
    assert_eq!(
        ReportPacket::new_checked(&r[..]).unwrap_err(),
        WireError::Truncated
    );
    // A record with sources past the end.
    r[7] = 1;
    r[11] = 1;
    assert_eq!(
        ReportPacket::new_checked(&r[..]).unwrap_err(),
        WireError::Truncated
    );
}

#[test]
fn reportable_groups() {
    assert!(reportable(&a("ff02::1:ff00:100")));
    assert!(reportable(&a("ff05::2")));
    assert!(!reportable(&ALL_NODES));
    assert!(!reportable(&a("ff01::5")), "interface-local");
    assert!(!reportable(&a("2001:db8::1")));
    assert_eq!(
        group_mac(&a("ff02::1:ff12:3456")),
        Mac([0x33, 0x33, 0xff, 0x12, 0x34, 0x56])
    );
}
