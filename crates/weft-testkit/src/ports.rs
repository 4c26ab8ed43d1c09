//! Free loopback ports for test processes.

use std::{
    collections::HashSet,
    net::TcpListener,
    sync::{Mutex, OnceLock},
};

/// A port that was free a moment ago and that this process has not handed
/// out before (tests in one binary run in parallel and must not collide).
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(Default::default);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(0);
        if port == 0 {
            continue;
        }
        let mut set = given.lock().unwrap_or_else(|p| p.into_inner());
        if set.insert(port) {
            return port;
        }
    }
}
