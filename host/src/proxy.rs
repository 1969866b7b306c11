//! Where a request comes from: the peer's address, or, when the peer is one of the
//! server's trusted proxies, the address the proxies recorded in `X-Forwarded-For`.
//!
//! `X-Forwarded-For` is a list each proxy appends the address it received the request from
//! to, so only its right end can be believed: walking from the right, every address that
//! is a trusted proxy is skipped and the first one that is not is the client. Anything to
//! its left was written by the client itself. A peer that is not a trusted proxy is the
//! client, whatever the header says, so nobody can choose the address sign-in limits count
//! against by sending the header directly.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result, bail};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

/// The addresses (single addresses or CIDR ranges) of the proxies whose `X-Forwarded-For`
/// is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    ranges: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// Parses entries such as `127.0.0.1`, `10.0.0.0/8` or `::1`.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<TrustedProxies> {
        let mut ranges = Vec::new();
        for entry in entries {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let (address, bits) = match entry.split_once('/') {
                Some((address, bits)) => (
                    address,
                    Some(bits.parse::<u8>().with_context(|| {
                        format!("trusted proxy {entry:?}: the prefix length is not a number")
                    })?),
                ),
                None => (entry, None),
            };
            let address: IpAddr = address.parse().with_context(|| {
                format!("trusted proxy {entry:?} is not an IP address or range")
            })?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let bits = bits.unwrap_or(max);
            if bits > max {
                bail!("trusted proxy {entry:?}: the prefix length is larger than {max}");
            }
            ranges.push((address, bits));
        }
        Ok(TrustedProxies { ranges })
    }

    /// True when no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// True when `address` is a trusted proxy.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.ranges
            .iter()
            .any(|(network, bits)| match (canonical(*network), address) {
                (IpAddr::V4(n), IpAddr::V4(a)) => prefix_matches(&n.octets(), &a.octets(), *bits),
                (IpAddr::V6(n), IpAddr::V6(a)) => prefix_matches(&n.octets(), &a.octets(), *bits),
                _ => false,
            })
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            // A hop that is not an address ends what can be believed: the nearest proxy
            // that wrote something readable stands for the client.
            let Some(address) = parse_hop(hop) else {
                break;
            };
            client = address;
            if !self.contains(address) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry as an address (`203.0.113.7`, `2001:db8::1`,
/// `[2001:db8::1]:443`, `203.0.113.7:5000`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = hop.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    hop.parse::<SocketAddr>()
        .ok()
        .map(|socket| canonical(socket.ip()))
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) as the IPv4 address they are.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_matches(network: &[u8], address: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    let rest = bits % 8;
    if network[..full] != address[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    network[full] & mask == address[full] & mask
}

/// The address a request comes from (see the module's documentation), for handlers.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    /// The address as text, `unknown` when the server did not record the peer.
    pub fn text(&self) -> String {
        self.0
            .map_or_else(|| "unknown".to_owned(), |address| address.to_string())
    }
}

/// A router state that knows which proxies to believe (the application's state does).
pub trait Proxies {
    /// The trusted proxies.
    fn trusted_proxies(&self) -> &TrustedProxies;
}

impl<S: Proxies + Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|connect| connect.0.ip());
        Ok(ClientAddr(peer.map(|peer| {
            state.trusted_proxies().client(peer, &parts.headers)
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append("x-forwarded-for", value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse(["127.0.0.1", "10.0.0.0/8"]).unwrap();
        let forwarded = headers(&["198.51.100.1, 203.0.113.7"]);
        assert_eq!(
            TrustedProxies::default().client(ip("127.0.0.1"), &forwarded),
            ip("127.0.0.1"),
            "no proxy trusted: the header is ignored"
        );
        assert_eq!(
            proxies.client(ip("192.0.2.9"), &forwarded),
            ip("192.0.2.9"),
            "an untrusted peer is the client"
        );
        assert_eq!(
            proxies.client(ip("127.0.0.1"), &forwarded),
            ip("203.0.113.7"),
            "the rightmost address is the one the proxy saw"
        );
        let chained = headers(&["6.6.6.6, 203.0.113.7", "10.1.2.3"]);
        assert_eq!(
            proxies.client(ip("::ffff:127.0.0.1"), &chained),
            ip("203.0.113.7"),
            "trusted hops are skipped, what the client wrote on the left is not believed"
        );
        assert_eq!(
            proxies.client(ip("127.0.0.1"), &headers(&["10.0.0.1, 10.0.0.2"])),
            ip("10.0.0.1"),
            "only proxies: the leftmost"
        );
        assert_eq!(
            proxies.client(ip("127.0.0.1"), &headers(&["203.0.113.7, garbage"])),
            ip("127.0.0.1"),
            "an unreadable hop stops the walk at the proxy"
        );
        assert_eq!(
            proxies.client(ip("127.0.0.1"), &headers(&["[2001:db8::1]:443"])),
            ip("2001:db8::1")
        );
        assert_eq!(
            proxies.client(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn ranges_are_checked() {
        assert!(TrustedProxies::parse(["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(["proxy.example"]).is_err());
        let proxies = TrustedProxies::parse(["fd00::/8", "192.168.1.0/25"]).unwrap();
        assert!(proxies.contains(ip("fd12::1")));
        assert!(proxies.contains(ip("192.168.1.127")));
        assert!(!proxies.contains(ip("192.168.1.128")));
        assert!(!proxies.contains(ip("fe80::1")));
    }
}
