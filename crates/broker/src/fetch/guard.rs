//! The network side of the URL policy: a DNS resolver that refuses names resolving to any
//! non-public address (the connection then goes to exactly the addresses it checked, so a
//! second lookup cannot rebind the name), and a redirect policy that checks every hop.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;

use super::address::{literal_host, non_public};

/// Most redirects followed for a request URL.
pub const MAX_REDIRECTS: usize = 5;

/// Resolves names with the system resolver and refuses any name with a non-public address.
#[derive(Debug, Default)]
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let addrs =
                public_addrs(name.as_str()).await.map_err(|r| NameRefused(r.to_string()))?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A name refused by [`PublicOnly`], with the reason.
#[derive(Debug)]
pub struct NameRefused(pub String);

impl std::fmt::Display for NameRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NameRefused {}

/// Why a name was not resolved to public addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The name has no address (or the lookup failed): a fetch error, maybe transient.
    Unresolved(String),
    /// The name has a non-public address: refused.
    Internal(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unresolved(why) | Refusal::Internal(why) => f.write_str(why),
        }
    }
}

/// Every address of `host`, or why it is refused: no address, or any non-public one.
pub async fn public_addrs(host: &str) -> Result<Vec<SocketAddr>, Refusal> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| Refusal::Unresolved(format!("{host} does not resolve: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(Refusal::Unresolved(format!("{host} has no address")));
    }
    if let Some((addr, class)) = addrs.iter().find_map(|a| non_public(a.ip()).map(|c| (a.ip(), c)))
    {
        return Err(Refusal::Internal(format!("{host} resolves to {addr}, a {class} address")));
    }
    Ok(addrs)
}

/// Why a URL (a request URL or a redirect hop) may not be fetched, if it may not.
pub fn refuse_hop(url: &reqwest::Url) -> Option<String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Some(format!("scheme {:?} (only http and https)", url.scheme()));
    }
    let ip = literal_host(url)?;
    non_public(ip).map(|class| format!("{ip} is a {class} address"))
}

/// Follows at most [`MAX_REDIRECTS`] redirects, each to an allowed URL.
pub fn redirects() -> redirect::Policy {
    redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        match refuse_hop(attempt.url()) {
            Some(why) => {
                let message = format!("redirect to {} refused: {why}", attempt.url());
                attempt.error(message)
            }
            None => attempt.follow(),
        }
    })
}

/// The resolver as reqwest takes it.
pub fn resolver() -> Arc<PublicOnly> {
    Arc::new(PublicOnly)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_to_other_schemes_or_internal_literals_are_refused() {
        let table: &[(&str, &str, bool)] = &[
            ("public name", "https://example.com/input", true),
            ("public literal", "http://93.184.216.34/x", true),
            ("file", "file:///proc/self/environ", false),
            ("ftp", "ftp://example.com/x", false),
            ("loopback", "http://127.0.0.1:8080/", false),
            ("loopback in decimal", "http://2130706433/", false),
            ("metadata", "http://169.254.169.254/latest/meta-data/", false),
            ("mapped loopback", "http://[::ffff:127.0.0.1]/", false),
        ];
        for (name, url, allowed) in table {
            let got = refuse_hop(&reqwest::Url::parse(url).unwrap());
            assert_eq!(got.is_none(), *allowed, "{name}: {url} -> {got:?}");
        }
    }

    #[tokio::test]
    async fn names_of_internal_addresses_do_not_resolve() {
        let err = PublicOnly.resolve("localhost".parse().unwrap()).await.err().unwrap();
        assert!(err.to_string().contains("loopback"), "{err}");
    }
}
