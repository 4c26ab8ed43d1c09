//! A stand-in for a host's DNS resolver, in a namespace of a
//! [`super::Network`]: it answers every A question with one address, so a
//! test can tell a forwarded answer from the proxy's own.
//!
//! The socket is made by a thread that first joins the namespace
//! (`setns`): a socket belongs to the namespace it was created in, so the
//! test's runtime can then serve it from anywhere.

#![allow(unsafe_code)]

use std::{
    fs::File,
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    os::fd::AsRawFd,
};

use anyhow::{Context, bail};

use super::Host;

/// Binds UDP `port` on every address of `host`'s namespace.
pub fn bind_udp(host: &Host, port: u16) -> anyhow::Result<UdpSocket> {
    let path = format!("/var/run/netns/{}", host.ns);
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let ns = File::open(&path).with_context(|| format!("cannot open {path}"))?;
                // SAFETY: setns on a namespace fd we hold open; it changes
                // only this short-lived thread's network namespace.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    bail!("setns {path}: {}", std::io::Error::last_os_error());
                }
                let socket = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))?;
                socket.set_nonblocking(true)?;
                Ok(socket)
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the resolver thread panicked"))?
    })
}

/// Answers every query on `socket` with an A record of `answer`, copying
/// the question (a minimal DNS response, written by hand).
pub async fn answer_all(socket: UdpSocket, answer: Ipv4Addr) -> anyhow::Result<()> {
    let socket = tokio::net::UdpSocket::from_std(socket)?;
    let mut buf = [0u8; 512];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await?;
        let Some(reply) = reply(&buf[..n], answer) else {
            continue;
        };
        socket.send_to(&reply, from).await?;
    }
}

/// The question section ends after the name's labels and 4 bytes of
/// type and class.
fn reply(query: &[u8], answer: Ipv4Addr) -> Option<Vec<u8>> {
    let mut end = 12;
    loop {
        let len = usize::from(*query.get(end)?);
        end += 1 + len;
        if len == 0 {
            break;
        }
    }
    let question = query.get(12..end + 4)?;
    let mut out = Vec::with_capacity(question.len() + 28);
    out.extend_from_slice(query.get(..2)?);
    // Response, recursion desired and available, no error; one question, one answer.
    out.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    out.extend_from_slice(question);
    // The answer: a pointer to the question's name, A, IN, TTL 60, 4 bytes.
    out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
    out.extend_from_slice(&answer.octets());
    Some(out)
}
