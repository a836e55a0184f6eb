//! The keepalived.conf language (to be written).
