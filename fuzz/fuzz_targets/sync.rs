//! Decodes arbitrary bytes as a connection-sync message
//! (`rvs_core::sync`). Besides "never panics": whatever decodes must
//! re-encode to exactly the same bytes (every accepted message has one
//! encoding), and the records must be readable after a successful parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_core::sync::{encode, Message, Record};

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::parse(data) else {
        return;
    };
    let mut recs: Vec<Record> = Vec::with_capacity(m.len());
    recs.extend(m.records());
    assert_eq!(recs.len(), m.len(), "a checked message lost records");
    let mut out = vec![0u8; data.len()];
    let (len, n) = encode(&mut out, m.header(), &recs).expect("re-encode");
    assert_eq!(n, recs.len(), "records did not fit in their own length");
    assert_eq!(&out[..len], data, "re-encoding differs");
});
