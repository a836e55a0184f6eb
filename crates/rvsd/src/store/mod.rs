//! The configuration store (being written).
