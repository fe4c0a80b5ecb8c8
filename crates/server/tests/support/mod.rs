//! What the fault tests run on: a PostgreSQL cluster of their own, the real service binary,
//! and a bank workload with the checks that prove nothing was lost or applied twice.

pub mod bank;
pub mod pg_cluster;
pub mod service;

/// A TCP port on 127.0.0.1 that was free a moment ago. The caller binds it soon after; a
/// process that takes it in between makes that bind fail loudly, never silently share it.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}
