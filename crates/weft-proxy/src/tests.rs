//! Data-path tests: real sockets, real peers, configs built directly.
