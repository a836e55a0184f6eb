//! `bytes_per_conn` and its parts: every structure of a worker whose size
//! grows with the connections it holds. The connection table (the store of
//! `Conn` entries, the hash index, the timer wheel's heads); the local
//! address port pools, of which FNAT needs one per 64,512 connections per
//! real server at most and the bench configures one per 60,000 connections
//! (a free-port ring, a position index and a bitmap); and each pool's
//! half-open ring (connection, port) that lets a new flow take the port of
//! the oldest half-open connection. The per-source limit table is sized by
//! `limit_sources`, not by connections, and is reported on its own; the
//! rest of a worker (neighbours, sync log, SYN-proxy frames, outbox) has a
//! fixed size.

use rvs_core::pipeline::Worker;

/// A worker's memory, in bytes.
pub(crate) struct Memory {
    capacity: usize,
    store: usize,
    table: usize,
    port_pools: usize,
    half_open: usize,
    src_limits: usize,
}

impl Memory {
    /// What `w` holds now.
    pub(crate) fn of(w: &Worker) -> Memory {
        let t = w.conns();
        let m = w.memory();
        Memory {
            capacity: t.capacity().max(1),
            store: t.capacity() * std::mem::size_of::<rvs_core::conn::Conn>(),
            table: t.memory_bytes(),
            port_pools: m.port_pools,
            half_open: m.half_open,
            src_limits: m.src_limits,
        }
    }

    fn per_conn(&self, bytes: usize) -> String {
        format!("{:.1}", bytes as f64 / self.capacity as f64)
    }

    /// `bytes_per_conn` (everything that grows with connections, over the
    /// table's capacity), its parts, and the per-source table in MiB.
    pub(crate) fn push(&self, out: &mut Vec<(&'static str, String)>) {
        let all = self.table + self.port_pools + self.half_open;
        out.push(("bytes_per_conn", self.per_conn(all)));
        out.push(("bytes_per_conn_table", self.per_conn(self.table)));
        out.push(("bytes_per_conn_store", self.per_conn(self.store)));
        out.push((
            "bytes_per_conn_index_wheel",
            self.per_conn(self.table - self.store),
        ));
        out.push(("bytes_per_conn_port_pools", self.per_conn(self.port_pools)));
        out.push(("bytes_per_conn_half_open", self.per_conn(self.half_open)));
        out.push((
            "src_limits_mib",
            format!("{:.1}", self.src_limits as f64 / f64::from(1 << 20)),
        ));
    }
}
