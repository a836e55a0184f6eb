//! Decodes arbitrary bytes as a hand-over message (`rvs_core::sync::local`,
//! version 4: the `Local` records of issue 14's design, which named them
//! version 3 before the PROXY protocol took that number). Besides "never
//! panics": whatever decodes from a local stream must re-encode to exactly
//! the same bytes, the network's decoder must refuse it, and the local
//! decoder must refuse it as from the network.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_core::sync::{encode_local, DecodeError, LocalMessage, LocalRecord, Message, Source};

fuzz_target!(|data: &[u8]| {
    assert_eq!(
        LocalMessage::parse(data, Source::Network).err(),
        Some(DecodeError::LocalOnly)
    );
    let Ok(m) = LocalMessage::parse(data, Source::Local) else {
        return;
    };
    assert!(Message::parse(data).is_err(), "the network decoder took it");
    let mut recs: Vec<LocalRecord> = Vec::with_capacity(m.len());
    recs.extend(m.records());
    assert_eq!(recs.len(), m.len(), "a checked message lost records");
    let mut out = vec![0u8; data.len()];
    let (len, n) = encode_local(&mut out, m.header(), &recs).expect("re-encode");
    assert_eq!(n, recs.len(), "records did not fit in their own length");
    assert_eq!(&out[..len], data, "re-encoding differs");
});
