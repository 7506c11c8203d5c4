//! STUN (RFC 5389), for two jobs: on the media port, telling a browser's ICE connectivity checks
//! (a Binding request with `USERNAME` = `<our ufrag>:<theirs>`) apart so they reach their peer;
//! on the STUN port (a port of its own: Chromium hands every packet from its STUN server's
//! address to its STUN client), answering plain Binding requests as a STUN server does, so a
//! browser given brazen as its `stun:` server finishes gathering candidates at once instead of
//! waiting out a timeout.

use std::net::SocketAddr;

const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER: usize = 20;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const USERNAME: u16 = 0x0006;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const SOFTWARE: u16 = 0x8022;

/// What a datagram on the media port is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// A Binding request for a STUN server (no `USERNAME`): answer it with [`binding_success`].
    StunServerRequest,
    /// A STUN message of an ICE session: the first half of its `USERNAME`, the receiver's ufrag.
    Ice(&'a str),
    /// Anything else (DTLS, RTP, RTCP, other STUN): it belongs to whichever peer uses its source
    /// address.
    Other,
}

/// The header of a STUN message: its type, or `None` when `packet` is not STUN.
fn stun_type(packet: &[u8]) -> Option<u16> {
    if packet.len() < HEADER || packet[0] & 0xC0 != 0 {
        return None;
    }
    let cookie = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
    let length = u16::from_be_bytes([packet[2], packet[3]]) as usize;
    (cookie == MAGIC_COOKIE && length.is_multiple_of(4) && HEADER + length <= packet.len())
        .then(|| u16::from_be_bytes([packet[0], packet[1]]))
}

/// The attributes of a STUN message: (type, value).
fn attributes(packet: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let length = u16::from_be_bytes([packet[2], packet[3]]) as usize;
    let body = &packet[HEADER..HEADER + length];
    let mut at = 0;
    std::iter::from_fn(move || {
        let header = body.get(at..at + 4)?;
        let kind = u16::from_be_bytes([header[0], header[1]]);
        let len = u16::from_be_bytes([header[2], header[3]]) as usize;
        let value = body.get(at + 4..at + 4 + len)?;
        at += 4 + len.div_ceil(4) * 4;
        Some((kind, value))
    })
}

/// Sorts a datagram received on the media port.
pub fn classify(packet: &[u8]) -> Datagram<'_> {
    let Some(kind) = stun_type(packet) else { return Datagram::Other };
    let username = attributes(packet).find(|(k, _)| *k == USERNAME).map(|(_, v)| v);
    match username {
        Some(name) => match std::str::from_utf8(name).ok().and_then(|n| n.split(':').next()) {
            Some(ufrag) => Datagram::Ice(ufrag),
            None => Datagram::Other,
        },
        None if kind == BINDING_REQUEST => Datagram::StunServerRequest,
        None => Datagram::Other,
    }
}

/// The answer to a STUN server's Binding `request` from `source`: a success response carrying
/// the address it came from (`XOR-MAPPED-ADDRESS`). `None` when `request` is not a Binding
/// request.
pub fn binding_success(request: &[u8], source: SocketAddr) -> Option<Vec<u8>> {
    if stun_type(request)? != BINDING_REQUEST {
        return None;
    }
    let transaction = &request[8..HEADER];
    let mut address = vec![0u8];
    let port = source.port() ^ (MAGIC_COOKIE >> 16) as u16;
    match source {
        SocketAddr::V4(v4) => {
            address.push(0x01);
            address.extend(port.to_be_bytes());
            address.extend((u32::from(*v4.ip()) ^ MAGIC_COOKIE).to_be_bytes());
        }
        SocketAddr::V6(v6) => {
            address.push(0x02);
            address.extend(port.to_be_bytes());
            let mut mask = MAGIC_COOKIE.to_be_bytes().to_vec();
            mask.extend(transaction);
            address.extend(v6.ip().octets().iter().zip(mask).map(|(a, m)| a ^ m));
        }
    }
    let software = b"brazen";
    let mut body = Vec::new();
    for (kind, value) in [(XOR_MAPPED_ADDRESS, &address[..]), (SOFTWARE, &software[..])] {
        body.extend(kind.to_be_bytes());
        body.extend((value.len() as u16).to_be_bytes());
        body.extend(value);
        body.resize(body.len().div_ceil(4) * 4, 0);
    }
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend(BINDING_SUCCESS.to_be_bytes());
    out.extend((body.len() as u16).to_be_bytes());
    out.extend(MAGIC_COOKIE.to_be_bytes());
    out.extend(transaction);
    out.extend(body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Binding request with an optional USERNAME.
    fn request(username: Option<&str>) -> Vec<u8> {
        let mut body = Vec::new();
        if let Some(name) = username {
            body.extend(USERNAME.to_be_bytes());
            body.extend((name.len() as u16).to_be_bytes());
            body.extend(name.as_bytes());
            body.resize(body.len().div_ceil(4) * 4, 0);
        }
        let mut out = Vec::new();
        out.extend(BINDING_REQUEST.to_be_bytes());
        out.extend((body.len() as u16).to_be_bytes());
        out.extend(MAGIC_COOKIE.to_be_bytes());
        out.extend([7u8; 12]);
        out.extend(body);
        out
    }

    #[test]
    fn requests_are_sorted_by_their_username() {
        assert_eq!(classify(&request(None)), Datagram::StunServerRequest);
        assert_eq!(classify(&request(Some("abcd:efgh"))), Datagram::Ice("abcd"));
        // DTLS, RTP and truncated STUN are someone's media.
        assert_eq!(classify(&[22, 254, 253, 0, 0]), Datagram::Other);
        assert_eq!(classify(&[0x80, 96, 0, 1]), Datagram::Other);
        let mut short = request(Some("abcd:efgh"));
        short.truncate(24);
        assert_eq!(classify(&short), Datagram::Other);
    }

    #[test]
    fn the_reply_carries_the_source_address_xored() {
        let source: SocketAddr = "192.0.2.7:54321".parse().unwrap();
        let reply = binding_success(&request(None), source).unwrap();
        assert_eq!(stun_type(&reply), Some(BINDING_SUCCESS));
        assert_eq!(&reply[8..20], &[7u8; 12], "same transaction");
        let (_, value) = attributes(&reply).find(|(k, _)| *k == XOR_MAPPED_ADDRESS).unwrap();
        let port = u16::from_be_bytes([value[2], value[3]]) ^ 0x2112;
        let ip = u32::from_be_bytes([value[4], value[5], value[6], value[7]]) ^ MAGIC_COOKIE;
        assert_eq!(SocketAddr::from((std::net::Ipv4Addr::from(ip), port)), source);
        // The answer to anything but a Binding request is nothing.
        assert_eq!(binding_success(&reply, source), None);
        assert_eq!(binding_success(b"hello", source), None);
    }
}
