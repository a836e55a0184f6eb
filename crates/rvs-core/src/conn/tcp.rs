//! The LVS TCP state machine (the `tcp_states` table of `ip_vs_proto_tcp.c`, as
//! DPVS uses it) and the per-state timeouts.
//!
//! The table does not track TCP: it classifies a packet by one flag (RST, else
//! SYN, else FIN, else ACK; a packet with none of them changes nothing) and moves
//! the conn along a coarse state chain whose only purpose is to pick a timeout and
//! to tell active from inactive conns.

use super::Dir;

/// TCP header flag bits (the low byte of the flags field).
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
}

/// LVS TCP connection state, in the kernel's numbering.
#[repr(u8)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum TcpState {
    /// Just created, nothing seen yet.
    #[default]
    None = 0,
    /// Handshake completed; the only state counted as active.
    Established = 1,
    /// SYN seen from the RS side (SNAT / outbound).
    SynSent = 2,
    /// SYN seen from the client.
    SynRecv = 3,
    /// FIN seen from the RS.
    FinWait = 4,
    /// Both sides closed.
    TimeWait = 5,
    /// Reset or closed.
    Close = 6,
    /// FIN seen from the client.
    CloseWait = 7,
    /// Last ACK awaited.
    LastAck = 8,
    /// Listening (not reached from NONE by normal traffic).
    Listen = 9,
    /// SYN-ACK seen (used by SYN proxy).
    Synack = 10,
}

use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    None as NO, SynRecv as SR, SynSent as SS, Synack as SA, TimeWait as TW,
};

/// Number of states.
pub const TCP_STATES: usize = 11;

/// Rows: SYN, FIN, ACK, RST. Columns: current state in enum order
/// (NO ES SS SR FW TW CL CW LA LI SA).
type Table = [[TcpState; TCP_STATES]; 4];

const INPUT: Table = [
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
    [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
];

const OUTPUT: Table = [
    [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
    [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
];

/// For conns whose replies bypass the LB (DR, TUNNEL): a client FIN alone ends
/// the conn's life on the LB, and RST in SYNACK closes.
const INPUT_ONLY: Table = [
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

const ALL: [TcpState; TCP_STATES] = [NO, ES, SS, SR, FW, TW, CL, CW, LA, LI, SA];

impl TcpState {
    /// The state's name as `ipvsadm -lnc` prints it ("ESTABLISHED", ...).
    pub fn name(self) -> &'static str {
        match self {
            NO => "NONE",
            ES => "ESTABLISHED",
            SS => "SYN_SENT",
            SR => "SYN_RECV",
            FW => "FIN_WAIT",
            TW => "TIME_WAIT",
            CL => "CLOSE",
            CW => "CLOSE_WAIT",
            LA => "LAST_ACK",
            LI => "LISTEN",
            SA => "SYNACK",
        }
    }

    /// The state stored as `v` in [`super::Conn::state`], if valid.
    pub fn from_u8(v: u8) -> Option<TcpState> {
        ALL.get(usize::from(v)).copied()
    }
}

/// Row of the table for a packet's flags: RST wins, then SYN, FIN, ACK.
fn row(tcp_flags: u8) -> Option<usize> {
    if tcp_flags & tcp_flags::RST != 0 {
        Some(3)
    } else if tcp_flags & tcp_flags::SYN != 0 {
        Some(0)
    } else if tcp_flags & tcp_flags::FIN != 0 {
        Some(1)
    } else if tcp_flags & tcp_flags::ACK != 0 {
        Some(2)
    } else {
        None
    }
}

fn step(table: &Table, state: TcpState, tcp_flags: u8) -> TcpState {
    match row(tcp_flags) {
        Some(r) => table[r][state as usize],
        None => state,
    }
}

/// The next state of a conn that sees both directions (FNAT, NAT, SNAT) after a
/// packet with `tcp_flags` from side `dir` (In = client, Out = RS).
pub fn transition(state: TcpState, dir: Dir, tcp_flags: u8) -> TcpState {
    match dir {
        Dir::In => step(&INPUT, state, tcp_flags),
        Dir::Out => step(&OUTPUT, state, tcp_flags),
    }
}

/// The next state of a conn that only sees client packets (DR, TUNNEL: the LVS
/// "input only" table, used when the conn has no out tuple).
pub fn transition_input_only(state: TcpState, tcp_flags: u8) -> TcpState {
    step(&INPUT_ONLY, state, tcp_flags)
}

/// Whether a conn in `state` counts as active (LVS ActiveConn: ESTABLISHED only).
pub fn is_active(state: TcpState) -> bool {
    state == ES
}

/// Conn timeouts in milliseconds, per TCP state and for UDP and ICMP.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP NONE.
    pub none_ms: u32,
    /// TCP ESTABLISHED.
    pub established_ms: u32,
    /// TCP SYN_SENT.
    pub syn_sent_ms: u32,
    /// TCP SYN_RECV.
    pub syn_recv_ms: u32,
    /// TCP FIN_WAIT.
    pub fin_wait_ms: u32,
    /// TCP TIME_WAIT.
    pub time_wait_ms: u32,
    /// TCP CLOSE.
    pub close_ms: u32,
    /// TCP CLOSE_WAIT.
    pub close_wait_ms: u32,
    /// TCP LAST_ACK.
    pub last_ack_ms: u32,
    /// TCP LISTEN.
    pub listen_ms: u32,
    /// TCP SYNACK.
    pub synack_ms: u32,
    /// UDP (normal state).
    pub udp_ms: u32,
    /// UDP once the flow is considered finished (e.g. a one-packet exchange answered).
    pub udp_last_ms: u32,
    /// ICMP echo and errors.
    pub icmp_ms: u32,
}

impl Default for Timeouts {
    /// DPVS defaults.
    fn default() -> Timeouts {
        Timeouts {
            none_ms: 2_000,
            established_ms: 90_000,
            syn_sent_ms: 3_000,
            syn_recv_ms: 30_000,
            fin_wait_ms: 7_000,
            time_wait_ms: 7_000,
            close_ms: 3_000,
            close_wait_ms: 7_000,
            last_ack_ms: 7_000,
            listen_ms: 120_000,
            synack_ms: 30_000,
            udp_ms: 300_000,
            udp_last_ms: 3_000,
            icmp_ms: 60_000,
        }
    }
}

impl Timeouts {
    /// The timeout of a TCP conn in state `s`.
    pub fn tcp(&self, s: TcpState) -> u32 {
        match s {
            NO => self.none_ms,
            ES => self.established_ms,
            SS => self.syn_sent_ms,
            SR => self.syn_recv_ms,
            FW => self.fin_wait_ms,
            TW => self.time_wait_ms,
            CL => self.close_ms,
            CW => self.close_wait_ms,
            LA => self.last_ack_ms,
            LI => self.listen_ms,
            SA => self.synack_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tcp_flags::{ACK, FIN, PSH, RST, SYN};
    use super::*;

    #[test]
    fn client_open_close_follows_lvs_states() {
        // SYN in, SYN-ACK out, ACK in, FIN in, ACK out, FIN out, ACK in.
        let steps = [
            (Dir::In, SYN, "SYN_RECV"),
            (Dir::Out, SYN | ACK, "SYN_RECV"),
            (Dir::In, ACK, "ESTABLISHED"),
            (Dir::In, FIN | ACK, "CLOSE_WAIT"),
            (Dir::Out, ACK, "CLOSE_WAIT"),
            (Dir::Out, FIN | ACK, "TIME_WAIT"),
            (Dir::In, ACK, "TIME_WAIT"),
        ];
        let mut s = TcpState::None;
        for (i, (dir, fl, want)) in steps.iter().enumerate() {
            s = transition(s, *dir, *fl);
            assert_eq!(s.name(), *want, "step {i}");
        }
    }

    #[test]
    fn server_closes_first() {
        let mut s = TcpState::Established;
        s = transition(s, Dir::Out, FIN | ACK);
        assert_eq!(s, TcpState::FinWait);
        s = transition(s, Dir::In, ACK);
        assert_eq!(s, TcpState::FinWait);
        s = transition(s, Dir::In, FIN | ACK);
        assert_eq!(s, TcpState::TimeWait);
    }

    #[test]
    fn rst_closes_from_either_side() {
        for dir in [Dir::In, Dir::Out] {
            assert_eq!(transition(TcpState::Established, dir, RST), TcpState::Close);
            assert_eq!(
                transition(TcpState::Established, dir, RST | ACK),
                TcpState::Close
            );
            // RST wins over SYN and FIN.
            assert_eq!(
                transition(TcpState::Established, dir, RST | SYN | FIN),
                TcpState::Close
            );
        }
        assert_eq!(
            transition(TcpState::CloseWait, Dir::In, RST),
            TcpState::Close
        );
        assert_eq!(
            transition_input_only(TcpState::Established, RST),
            TcpState::Close
        );
    }

    #[test]
    fn flagless_packet_keeps_state_and_psh_alone_too() {
        assert_eq!(transition(TcpState::SynRecv, Dir::In, 0), TcpState::SynRecv);
        assert_eq!(
            transition(TcpState::SynRecv, Dir::In, PSH),
            TcpState::SynRecv
        );
        assert_eq!(
            transition(TcpState::SynRecv, Dir::In, PSH | ACK),
            TcpState::Established
        );
    }

    #[test]
    fn input_only_fin_goes_to_fin_wait() {
        // DR: the LB never sees the RS's FIN, so a client FIN starts the close.
        let mut s = transition_input_only(TcpState::None, SYN);
        assert_eq!(s, TcpState::SynRecv);
        s = transition_input_only(s, ACK);
        assert_eq!(s, TcpState::Established);
        s = transition_input_only(s, FIN | ACK);
        assert_eq!(s, TcpState::FinWait);
        s = transition_input_only(s, ACK);
        assert_eq!(s, TcpState::FinWait);
        // ...whereas with both directions a client FIN means CLOSE_WAIT.
        assert_eq!(
            transition(TcpState::Established, Dir::In, FIN),
            TcpState::CloseWait
        );
    }

    #[test]
    fn stray_ack_on_new_conn_closes_it() {
        // An ACK without a handshake from the client does not establish anything.
        assert_eq!(transition(TcpState::None, Dir::In, ACK), TcpState::Close);
        // Outbound (SNAT) handshake: SYN out, SYN-ACK in, ACK out.
        let mut s = transition(TcpState::None, Dir::Out, SYN);
        assert_eq!(s, TcpState::SynSent);
        s = transition(s, Dir::In, SYN | ACK);
        assert_eq!(s, TcpState::Established);
    }

    #[test]
    fn names_numbering_and_activity() {
        let names = [
            "NONE",
            "ESTABLISHED",
            "SYN_SENT",
            "SYN_RECV",
            "FIN_WAIT",
            "TIME_WAIT",
            "CLOSE",
            "CLOSE_WAIT",
            "LAST_ACK",
            "LISTEN",
            "SYNACK",
        ];
        for (i, n) in names.iter().enumerate() {
            let s = TcpState::from_u8(i as u8).expect("valid state");
            assert_eq!(s as u8, i as u8);
            assert_eq!(s.name(), *n);
            assert_eq!(is_active(s), *n == "ESTABLISHED");
        }
        assert_eq!(TcpState::from_u8(11), None);
        assert_eq!(TcpState::from_u8(255), None);
    }

    #[test]
    fn default_timeouts_are_dpvs_values() {
        let t = Timeouts::default();
        assert_eq!(t.tcp(TcpState::Established), 90_000);
        assert_eq!(t.tcp(TcpState::SynSent), 3_000);
        assert_eq!(t.tcp(TcpState::SynRecv), 30_000);
        assert_eq!(t.tcp(TcpState::FinWait), 7_000);
        assert_eq!(t.tcp(TcpState::TimeWait), 7_000);
        assert_eq!(t.tcp(TcpState::Close), 3_000);
        assert_eq!(t.tcp(TcpState::CloseWait), 7_000);
        assert_eq!(t.tcp(TcpState::LastAck), 7_000);
        assert_eq!(t.tcp(TcpState::Listen), 120_000);
        assert_eq!(t.tcp(TcpState::Synack), 30_000);
        assert_eq!(t.udp_ms, 300_000);
        assert_eq!(t.icmp_ms, 60_000);
    }
}
