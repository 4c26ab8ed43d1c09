//! Reading a tcpdump capture to prove what crossed the wire: every TCP
//! stream in it, reassembled, must be a sequence of TLS records.

use std::{
    collections::{BTreeMap, HashMap},
    net::Ipv4Addr,
};

use anyhow::{bail, ensure};

/// One direction of one TCP connection.
pub type Flow = (Ipv4Addr, u16, Ipv4Addr, u16);

/// What [`tls_only`] checked.
#[derive(Debug, Default)]
pub struct Checked {
    /// Directions with payload.
    pub flows: usize,
    /// TLS records walked.
    pub records: usize,
    pub bytes: usize,
}

/// The payload of every TCP flow in a classic pcap of Ethernet frames,
/// in sequence order (retransmitted segments once).
pub fn tcp_streams(pcap: &[u8]) -> anyhow::Result<HashMap<Flow, Vec<u8>>> {
    ensure!(pcap.len() >= 24, "not a pcap file: {} bytes", pcap.len());
    let little = match pcap[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => bail!("not a pcap file (magic {:02x?})", &pcap[..4]),
    };
    let u32_at = |b: &[u8], at: usize| {
        let bytes = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if little {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        }
    };
    ensure!(u32_at(pcap, 20) == 1, "capture is not of Ethernet frames");
    let mut segments: HashMap<Flow, BTreeMap<u32, Vec<u8>>> = HashMap::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let len = usize::try_from(u32_at(pcap, at + 8))?;
        let frame = pcap.get(at + 16..at + 16 + len).unwrap_or(&[]);
        at += 16 + len;
        if let Some((flow, seq, payload)) = tcp_segment(frame)
            && !payload.is_empty()
        {
            segments
                .entry(flow)
                .or_default()
                .entry(seq)
                .or_insert_with(|| payload.to_vec());
        }
    }
    Ok(segments
        .into_iter()
        .map(|(flow, by_seq)| {
            let mut stream = Vec::new();
            let mut next: Option<u32> = None;
            for (seq, payload) in by_seq {
                // Skip what an earlier segment already covered.
                let skip = next.map_or(0, |n| usize::try_from(n.wrapping_sub(seq)).unwrap_or(0));
                if skip < payload.len() && next.is_none_or(|n| seq <= n) {
                    stream.extend_from_slice(&payload[skip.min(payload.len())..]);
                    next = Some(seq.wrapping_add(u32::try_from(payload.len()).unwrap_or(0)));
                }
            }
            (flow, stream)
        })
        .collect())
}

fn tcp_segment(frame: &[u8]) -> Option<(Flow, u32, &[u8])> {
    let ip = frame.get(14..)?;
    // A truncated frame (snap length, a cut capture) is skipped, not read past.
    let header = ip.get(..20)?;
    if frame.get(12..14)? != [0x08, 0x00] || header[0] >> 4 != 4 || header[9] != 6 {
        return None;
    }
    let ihl = usize::from(header[0] & 0x0f) * 4;
    if ihl < 20 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let src = Ipv4Addr::new(header[12], header[13], header[14], header[15]);
    let dst = Ipv4Addr::new(header[16], header[17], header[18], header[19]);
    let tcp = ip.get(ihl..total.min(ip.len()))?;
    let sport = u16::from_be_bytes([*tcp.first()?, *tcp.get(1)?]);
    let dport = u16::from_be_bytes([*tcp.get(2)?, *tcp.get(3)?]);
    let seq = u32::from_be_bytes([*tcp.get(4)?, *tcp.get(5)?, *tcp.get(6)?, *tcp.get(7)?]);
    let offset = usize::from(tcp.get(12)? >> 4) * 4;
    Some(((src, sport, dst, dport), seq, tcp.get(offset..)?))
}

/// Fails naming the first flow whose bytes are not TLS records (content
/// types 20-23, version 3.x, at most 2^14 + 2048 bytes each). A stream may
/// end inside a record: the capture stopped there.
pub fn tls_only(pcap: &[u8]) -> anyhow::Result<Checked> {
    let mut checked = Checked::default();
    for (flow, stream) in tcp_streams(pcap)? {
        checked.flows += 1;
        checked.bytes += stream.len();
        let mut at = 0;
        while at + 5 <= stream.len() {
            let (kind, major) = (stream[at], stream[at + 1]);
            let len = usize::from(u16::from_be_bytes([stream[at + 3], stream[at + 4]]));
            if !(20..=23).contains(&kind) || major != 3 || len > (1 << 14) + 2048 {
                let end = (at + 32).min(stream.len());
                bail!(
                    "{}:{} -> {}:{} is not TLS at byte {at}: {:?}",
                    flow.0,
                    flow.1,
                    flow.2,
                    flow.3,
                    String::from_utf8_lossy(&stream[at..end])
                );
            }
            checked.records += 1;
            at += 5 + len;
        }
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A little-endian pcap of Ethernet frames, one TCP segment each.
    fn pcap(segments: &[(u16, u32, &[u8])]) -> Vec<u8> {
        let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        out.extend([0u8; 8]);
        out.extend(65535u32.to_le_bytes());
        out.extend(1u32.to_le_bytes());
        for &(sport, seq, payload) in segments {
            let mut frame = vec![0u8; 12];
            frame.extend([0x08, 0x00]);
            let total = u16::try_from(20 + 20 + payload.len()).unwrap();
            frame.extend([
                0x45,
                0,
                (total >> 8) as u8,
                total as u8,
                0,
                0,
                0,
                0,
                64,
                6,
                0,
                0,
            ]);
            frame.extend([10, 77, 0, 2, 10, 77, 0, 3]);
            frame.extend(sport.to_be_bytes());
            frame.extend(20001u16.to_be_bytes());
            frame.extend(seq.to_be_bytes());
            frame.extend([0, 0, 0, 0, 0x50, 0x18, 0, 0, 0, 0, 0, 0]);
            frame.extend_from_slice(payload);
            out.extend([0u8; 8]);
            let len = u32::try_from(frame.len()).unwrap().to_le_bytes();
            out.extend(len);
            out.extend(len);
            out.extend(frame);
        }
        out
    }

    #[test]
    fn a_truncated_ipv4_frame_is_skipped() {
        let mut frame = vec![0_u8; 14 + 12];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame[14] = 0x45;
        assert!(tcp_segment(&frame).is_none());
    }

    #[test]
    fn tls_records_split_and_retransmitted_pass() {
        let record = [&[23u8, 3, 3, 0, 4][..], b"abcd"].concat();
        let capture = pcap(&[
            (40000, 100, &record[..3]),
            (40000, 103, &record[3..]),
            (40000, 103, &record[3..]), // a retransmission
            (40000, 109, &[22, 3, 1, 0, 1, 0x01]),
        ]);
        let checked = tls_only(&capture).unwrap();
        assert_eq!((checked.flows, checked.records, checked.bytes), (1, 2, 15));
    }

    #[test]
    fn plaintext_fails_naming_the_flow() {
        let capture = pcap(&[(40001, 7, b"GET /secret HTTP/1.1\r\n\r\n")]);
        let e = tls_only(&capture).unwrap_err().to_string();
        assert!(e.contains("10.77.0.2:40001 -> 10.77.0.3:20001"), "{e}");
        assert!(e.contains("GET /secret"), "{e}");
    }

    #[test]
    fn not_a_pcap_is_an_error() {
        assert!(tls_only(b"hello").is_err());
        assert!(tls_only(&[0u8; 24]).is_err());
    }
}
