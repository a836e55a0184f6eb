//! Ethernet II frames with up to two 802.1Q / 802.1ad VLAN tags.

use super::{rd16, rd_arr, sub, sub_mut, wr_bytes, WireError};
use crate::addr::Mac;

/// EtherType values used by the data path.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IPv6.
    pub const IPV6: u16 = 0x86DD;
    /// 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88A8;
}

/// Length of an untagged Ethernet header.
pub const HEADER_LEN: usize = 14;

#[inline(always)]
fn is_tag(t: u16) -> bool {
    t == ethertype::VLAN || t == ethertype::QINQ
}

/// A view of an Ethernet frame (without FCS).
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buf` without checking it, for a frame an earlier check already
    /// validated. The getters stay panic-free whatever the buffer holds.
    #[inline]
    pub fn new_unchecked(buf: T) -> Self {
        EthernetFrame { buf }
    }

    /// Validates that the header, including any VLAN tags, fits the buffer.
    ///
    /// A third stacked tag is `Unsupported`: nothing in front of us produces
    /// one, and accepting it would make every later offset variable.
    #[inline]
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if is_tag(rd16(b, 12)) {
            if b.len() < 18 {
                return Err(WireError::Truncated);
            }
            if is_tag(rd16(b, 16)) {
                if b.len() < 22 {
                    return Err(WireError::Truncated);
                }
                if is_tag(rd16(b, 20)) {
                    return Err(WireError::Unsupported);
                }
            }
        }
        Ok(EthernetFrame { buf })
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// The whole frame.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Destination MAC address.
    #[inline]
    pub fn dst(&self) -> Mac {
        Mac(rd_arr(self.buf.as_ref(), 0))
    }

    /// Source MAC address.
    #[inline]
    pub fn src(&self) -> Mac {
        Mac(rd_arr(self.buf.as_ref(), 6))
    }

    /// Number of VLAN tags (0, 1 or 2).
    #[inline]
    pub fn vlan_tags(&self) -> usize {
        let b = self.buf.as_ref();
        if !is_tag(rd16(b, 12)) {
            0
        } else if !is_tag(rd16(b, 16)) {
            1
        } else {
            2
        }
    }

    /// Header length: 14, 18 or 22 bytes.
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + 4 * self.vlan_tags()
    }

    /// The EtherType after any VLAN tags (the payload's protocol).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        rd16(self.buf.as_ref(), self.header_len() - 2)
    }

    /// The VLAN ID of the outermost tag (the S-tag for QinQ), if tagged.
    #[inline]
    pub fn vlan_id(&self) -> Option<u16> {
        if self.vlan_tags() > 0 {
            Some(rd16(self.buf.as_ref(), 14) & 0x0fff)
        } else {
            None
        }
    }

    /// The VLAN ID of the inner tag (the C-tag) of a double-tagged frame.
    #[inline]
    pub fn inner_vlan_id(&self) -> Option<u16> {
        if self.vlan_tags() == 2 {
            Some(rd16(self.buf.as_ref(), 18) & 0x0fff)
        } else {
            None
        }
    }

    /// The payload after the header (including any padding).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buf.as_ref();
        sub(b, self.header_len(), b.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC address.
    #[inline]
    pub fn set_dst(&mut self, m: Mac) {
        wr_bytes(self.buf.as_mut(), 0, &m.0);
    }

    /// Sets the source MAC address.
    #[inline]
    pub fn set_src(&mut self, m: Mac) {
        wr_bytes(self.buf.as_mut(), 6, &m.0);
    }

    /// Sets the EtherType after any VLAN tags.
    #[inline]
    pub fn set_ethertype(&mut self, t: u16) {
        let off = self.header_len() - 2;
        wr_bytes(self.buf.as_mut(), off, &t.to_be_bytes());
    }

    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let h = self.header_len();
        let b = self.buf.as_mut();
        let n = b.len();
        sub_mut(b, h, n)
    }
}

/// Writes an untagged Ethernet header; returns 14, or 0 if `buf` is shorter.
#[inline]
pub fn write_header(buf: &mut [u8], dst: Mac, src: Mac, ethertype: u16) -> usize {
    let Some(h) = buf.get_mut(..HEADER_LEN) else {
        return 0;
    };
    h[..6].copy_from_slice(&dst.0);
    h[6..12].copy_from_slice(&src.0);
    h[12..14].copy_from_slice(&ethertype.to_be_bytes());
    HEADER_LEN
}

/// Length of one VLAN tag (tag protocol identifier, then the TCI).
pub const TAG_LEN: usize = 4;

/// Removes the outer VLAN tag of the frame `buf[head..head + len]` by moving
/// the two MAC addresses over it: returns the frame's new start and length
/// (`head + 4`, `len - 4`), or `None` (nothing changed) when the frame is
/// not tagged or is shorter than a tagged header.
#[inline]
pub fn strip_tag(buf: &mut [u8], head: usize, len: usize) -> Option<(usize, usize)> {
    let f = buf.get_mut(head..head.checked_add(len)?)?;
    if len < HEADER_LEN + TAG_LEN || !is_tag(rd16(f, 12)) {
        return None;
    }
    f.copy_within(0..12, TAG_LEN);
    Some((head + TAG_LEN, len - TAG_LEN))
}

/// Puts a VLAN tag (`tpid`, priority 0, `vid`) after the MAC addresses of the
/// frame `buf[head..head + len]`: into the headroom when there are 4 bytes
/// before `head` (the MACs move back), else by moving the rest of the frame
/// 4 bytes on. Returns the tagged frame's start and length, or `None`
/// (nothing changed) when the buffer has room on neither side or the frame
/// is shorter than an Ethernet header.
#[inline]
pub fn push_tag(
    buf: &mut [u8],
    head: usize,
    len: usize,
    tpid: u16,
    vid: u16,
) -> Option<(usize, usize)> {
    let end = head.checked_add(len)?;
    if len < HEADER_LEN || end > buf.len() {
        return None;
    }
    let start = if head >= TAG_LEN {
        buf.copy_within(head..head + 12, head - TAG_LEN);
        head - TAG_LEN
    } else if end + TAG_LEN <= buf.len() {
        buf.copy_within(head + 12..end, head + 12 + TAG_LEN);
        head
    } else {
        return None;
    };
    buf[start + 12..start + 14].copy_from_slice(&tpid.to_be_bytes());
    buf[start + 14..start + 16].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
    Some((start, len + TAG_LEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_tag_is_byte_exact() {
        // Two bytes of headroom, then a frame tagged 802.1Q VID 100, PCP 5.
        let tagged = frame(&[[0x81, 0x00, 0xa0, 0x64]], [0x08, 0x00], &[0x45, 1, 2]);
        let mut buf = vec![0xee, 0xee];
        buf.extend_from_slice(&tagged);
        let (h, l) = strip_tag(&mut buf, 2, tagged.len()).expect("tagged");
        assert_eq!((h, l), (6, tagged.len() - 4));
        assert_eq!(&buf[h..h + l], &frame(&[], [0x08, 0x00], &[0x45, 1, 2])[..]);
        // Untagged or too short: untouched.
        let mut plain = frame(&[], [0x08, 0x00], &[0x45, 1, 2, 3, 4, 5]);
        let before = plain.clone();
        assert_eq!(strip_tag(&mut plain, 0, before.len()), None);
        assert_eq!(plain, before);
        let mut short = tagged[..17].to_vec();
        assert_eq!(strip_tag(&mut short, 0, 17), None);
        assert_eq!(strip_tag(&mut short, 10, 17), None, "past the buffer");
    }

    #[test]
    fn push_tag_is_byte_exact_with_and_without_headroom() {
        let plain = frame(&[], [0x08, 0x06], &[1, 2, 3, 4]);
        let want = frame(&[[0x81, 0x00, 0x00, 0x64]], [0x08, 0x06], &[1, 2, 3, 4]);
        // Headroom: the MACs move back.
        let mut buf = vec![0u8; 4];
        buf.extend_from_slice(&plain);
        let (h, l) = push_tag(&mut buf, 4, plain.len(), ethertype::VLAN, 100).expect("room");
        assert_eq!((h, l), (0, plain.len() + 4));
        assert_eq!(&buf[h..h + l], &want[..]);
        // No headroom, tailroom: the payload moves on.
        let mut buf = plain.clone();
        buf.extend_from_slice(&[0; 4]);
        let (h, l) = push_tag(&mut buf, 0, plain.len(), ethertype::VLAN, 100).expect("room");
        assert_eq!(&buf[h..h + l], &want[..]);
        // 802.1ad, the VID masked to 12 bits.
        let mut buf = vec![0u8; 4];
        buf.extend_from_slice(&plain);
        let (h, l) = push_tag(&mut buf, 4, plain.len(), ethertype::QINQ, 0xf065).unwrap();
        assert_eq!(&buf[h + 12..h + 16], &[0x88, 0xa8, 0x00, 0x65]);
        assert_eq!(l, plain.len() + 4);
        // No room on either side: untouched.
        let mut buf = plain.clone();
        assert_eq!(
            push_tag(&mut buf, 0, plain.len(), ethertype::VLAN, 100),
            None
        );
        assert_eq!(buf, plain);
        // Strip undoes push.
        let mut buf = vec![0u8; 4];
        buf.extend_from_slice(&plain);
        let (h, l) = push_tag(&mut buf, 4, plain.len(), ethertype::VLAN, 7).unwrap();
        let (h, l) = strip_tag(&mut buf, h, l).unwrap();
        assert_eq!(&buf[h..h + l], &plain[..]);
    }

    const DST: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
    const SRC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    fn frame(tags: &[[u8; 4]], et: [u8; 2], payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&DST);
        v.extend_from_slice(&SRC);
        for t in tags {
            v.extend_from_slice(t);
        }
        v.extend_from_slice(&et);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn untagged() {
        let f = frame(&[], [0x08, 0x00], &[0x45, 0, 0, 20]);
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(e.dst(), Mac(DST));
        assert_eq!(e.src(), Mac(SRC));
        assert_eq!(e.ethertype(), ethertype::IPV4);
        assert_eq!(e.header_len(), 14);
        assert_eq!(e.vlan_id(), None);
        assert_eq!(e.payload(), &[0x45, 0, 0, 20]);
    }

    #[test]
    fn single_and_double_tag() {
        // 802.1Q tag, PCP 5, VID 0x123.
        let f = frame(&[[0x81, 0x00, 0xa1, 0x23]], [0x86, 0xdd], &[0x60]);
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(e.header_len(), 18);
        assert_eq!(e.vlan_id(), Some(0x123));
        assert_eq!(e.inner_vlan_id(), None);
        assert_eq!(e.ethertype(), ethertype::IPV6);
        assert_eq!(e.payload(), &[0x60]);

        // QinQ: S-tag VID 100, C-tag VID 4094, then ARP.
        let f = frame(
            &[[0x88, 0xa8, 0x00, 0x64], [0x81, 0x00, 0x0f, 0xfe]],
            [0x08, 0x06],
            &[],
        );
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(e.header_len(), 22);
        assert_eq!(e.vlan_id(), Some(100));
        assert_eq!(e.inner_vlan_id(), Some(4094));
        assert_eq!(e.ethertype(), ethertype::ARP);
        assert!(e.payload().is_empty());
    }

    #[test]
    fn malformed() {
        let f = frame(&[], [0x08, 0x00], &[]);
        assert_eq!(
            EthernetFrame::new_checked(&f[..13]).unwrap_err(),
            WireError::Truncated
        );
        // A tag announced but the frame ends inside it.
        let f = frame(&[[0x81, 0x00, 0x00, 0x01]], [0x08, 0x00], &[]);
        assert_eq!(
            EthernetFrame::new_checked(&f[..17]).unwrap_err(),
            WireError::Truncated
        );
        let f = frame(
            &[[0x81, 0x00, 0x00, 0x01], [0x81, 0x00, 0x00, 0x02]],
            [0x08, 0x00],
            &[],
        );
        assert_eq!(
            EthernetFrame::new_checked(&f[..21]).unwrap_err(),
            WireError::Truncated
        );
        assert!(EthernetFrame::new_checked(&f[..]).is_ok());
        let f = frame(
            &[[0x88, 0xa8, 0, 1], [0x81, 0x00, 0, 2], [0x81, 0x00, 0, 3]],
            [0x08, 0x00],
            &[],
        );
        assert_eq!(
            EthernetFrame::new_checked(&f[..]).unwrap_err(),
            WireError::Unsupported
        );
    }

    #[test]
    fn setters_and_builder() {
        let mut f = frame(&[[0x81, 0x00, 0x00, 0x07]], [0x08, 0x00], &[1, 2]);
        let mut e = EthernetFrame::new_checked(&mut f[..]).unwrap();
        e.set_dst(Mac::BROADCAST);
        e.set_src(Mac([1, 2, 3, 4, 5, 6]));
        e.set_ethertype(ethertype::IPV6);
        e.payload_mut()[0] = 9;
        assert_eq!(
            f,
            [
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 0x81, 0x00, 0x00, 0x07, 0x86,
                0xdd, 9, 2
            ]
        );
        let mut b = [0u8; 16];
        assert_eq!(write_header(&mut b, Mac(DST), Mac(SRC), ethertype::ARP), 14);
        assert_eq!(&b[..14], &frame(&[], [0x08, 0x06], &[])[..]);
        assert_eq!(write_header(&mut b[..13], Mac(DST), Mac(SRC), 0), 0);
    }
}
