#!/usr/bin/env python3
"""A real server for rvs's TUNNEL mode on a kernel without the ipip module.

`tun_rs.py serve LABEL` runs in a real server's namespace: it receives the
IPIP packets rvs sends (a raw IPPROTO_IPIP socket sees them although no
kernel tunnel decapsulates them), prints what the outer and inner headers
carry, and answers each inner UDP datagram straight to the client, as a
DR/TUN real server does: a UDP reply from VIP:vport to the client's
address:port, sent with IP_HDRINCL so that its source is the VIP, and
carrying "LABEL <client ip>:<client port> <request>".

`tun_rs.py serve6 LABEL` does the same for IPv6-in-IPv6 (next header 41):
a raw IPv6 socket of protocol 41 gets the inner IPv6 packet (the kernel
strips the outer header of raw IPv6 sockets), and the reply goes out on an
IPv6 IPPROTO_RAW socket (header included), from the VIP.

`tun_rs.py ask HOST PORT MESSAGE [TIMEOUT]` is the client: it sends MESSAGE
to HOST:PORT over UDP (IPv6 when HOST has a colon) and prints
"reply from IP:PORT: TEXT", exiting 1 when no reply came within TIMEOUT
seconds (2 by default).
"""
import socket
import struct
import sys


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip_str(b):
    return socket.inet_ntoa(b)


def udp_reply(src, dst, sport, dport, payload):
    ulen = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, ulen)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    c = csum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 0, 0x4000, 64, 17, 0, src, dst)
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + udp


def serve(label):
    rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, 4)  # IPPROTO_IPIP
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    print("ready", flush=True)
    while True:
        pkt = rx.recv(65535)
        ohl = (pkt[0] & 0xF) * 4
        outer_src, outer_dst = pkt[12:16], pkt[16:20]
        inner = pkt[ohl:]
        if len(inner) < 20 or inner[0] >> 4 != 4:
            print("not IPv4 inside: %r" % inner[:20], flush=True)
            continue
        ihl = (inner[0] & 0xF) * 4
        proto = inner[9]
        isrc, idst = inner[12:16], inner[16:20]
        l4 = inner[ihl:]
        print(
            "ipip outer %s -> %s inner proto %d %s -> %s"
            % (ip_str(outer_src), ip_str(outer_dst), proto, ip_str(isrc), ip_str(idst)),
            flush=True,
        )
        if proto != 17 or len(l4) < 8:
            continue
        sport, dport, ulen = struct.unpack("!HHH", l4[:6])
        data = l4[8:ulen]
        text = "%s %s:%d %s" % (label, ip_str(isrc), sport, data.decode(errors="replace"))
        print("  udp %d -> %d %r; answering %r" % (sport, dport, data, text), flush=True)
        reply = udp_reply(idst, isrc, dport, sport, text.encode())
        tx.sendto(reply, (ip_str(isrc), 0))


def udp6_reply(src, dst, sport, dport, payload):
    ulen = 8 + len(payload)
    pseudo = src + dst + struct.pack("!IxxxB", ulen, 17)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    c = csum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    hdr = struct.pack("!IHBB16s16s", 6 << 28, ulen, 17, 64, src, dst)
    return hdr + udp


def serve6(label):
    rx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 41)  # IPPROTO_IPV6
    tx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    print("ready", flush=True)
    while True:
        inner, frm = rx.recvfrom(65535)
        if len(inner) < 48 or inner[0] >> 4 != 6:
            print("not IPv6 inside: %r" % inner[:40], flush=True)
            continue
        nh = inner[6]
        isrc, idst = inner[8:24], inner[24:40]
        a6 = lambda b: socket.inet_ntop(socket.AF_INET6, b)
        print("ip6ip6 outer from %s inner nh %d %s -> %s" % (frm[0], nh, a6(isrc), a6(idst)), flush=True)
        l4 = inner[40:]
        if nh != 17 or len(l4) < 8:
            continue
        sport, dport, ulen = struct.unpack("!HHH", l4[:6])
        data = l4[8:ulen]
        text = "%s %s:%d %s" % (label, a6(isrc), sport, data.decode(errors="replace"))
        print("  udp %d -> %d %r; answering %r" % (sport, dport, data, text), flush=True)
        tx.sendto(udp6_reply(idst, isrc, dport, sport, text.encode()), (a6(isrc), 0))


def ask(host, port, msg, timeout):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    s.sendto(msg.encode(), (host, port))
    try:
        data, frm = s.recvfrom(65535)
    except socket.timeout:
        print("no reply from %s:%d within %ss" % (host, port, timeout), flush=True)
        return 1
    print("reply from %s:%d: %s" % (frm[0], frm[1], data.decode(errors="replace")), flush=True)
    return 0


def main():
    a = sys.argv[1:]
    if len(a) == 2 and a[0] == "serve":
        serve(a[1])
    elif len(a) == 2 and a[0] == "serve6":
        serve6(a[1])
    elif len(a) in (4, 5) and a[0] == "ask":
        sys.exit(ask(a[1], int(a[2]), a[3], float(a[4]) if len(a) == 5 else 2.0))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
