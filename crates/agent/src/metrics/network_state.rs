//! The machine's network state (interfaces, MACs, addresses) and its hash, so the agent sends
//! it only when it changes.

use gururmm_protocol::{NetworkInterface, NetworkState};
use sha2::{Digest, Sha256};
use sysinfo::Networks;

/// Reads the interfaces now.
pub fn read() -> NetworkState {
    let networks = Networks::new_with_refreshed_list();
    let interfaces = networks
        .list()
        .iter()
        .map(|(name, data)| {
            let mac = data.mac_address();
            NetworkInterface {
                name: name.clone(),
                mac: (!mac.is_unspecified()).then(|| mac.to_string()),
                addresses: data
                    .ip_networks()
                    .iter()
                    .map(|n| format!("{}/{}", n.addr, n.prefix))
                    .collect(),
            }
        })
        .collect();
    canonical(interfaces)
}

/// Sorts interfaces and addresses and computes the SHA-256 over a canonical text form, so the
/// same network always has the same hash whatever order the OS listed it in.
pub fn canonical(mut interfaces: Vec<NetworkInterface>) -> NetworkState {
    for i in &mut interfaces {
        i.addresses.sort();
        i.addresses.dedup();
        if let Some(mac) = &mut i.mac {
            *mac = mac.to_ascii_lowercase();
        }
    }
    interfaces.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h = Sha256::new();
    for i in &interfaces {
        h.update(i.name.as_bytes());
        h.update(b"\x1f");
        h.update(i.mac.as_deref().unwrap_or("").as_bytes());
        for a in &i.addresses {
            h.update(b"\x1f");
            h.update(a.as_bytes());
        }
        h.update(b"\x1e");
    }
    NetworkState {
        hash: hex::encode(h.finalize()),
        interfaces,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, addrs: &[&str]) -> NetworkInterface {
        NetworkInterface {
            name: name.into(),
            mac: Some("02:00:00:00:00:0A".into()),
            addresses: addrs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn hash_ignores_order_and_sees_changes() {
        let a = canonical(vec![
            iface("eth0", &["192.0.2.1/24", "2001:db8::1/64"]),
            iface("lo", &[]),
        ]);
        let b = canonical(vec![
            iface("lo", &[]),
            iface("eth0", &["2001:db8::1/64", "192.0.2.1/24"]),
        ]);
        assert_eq!(a.hash, b.hash);
        let c = canonical(vec![iface("eth0", &["192.0.2.2/24"]), iface("lo", &[])]);
        assert_ne!(a.hash, c.hash);
        assert_eq!(a.hash.len(), 64);
    }

    #[test]
    fn reads_this_machine() {
        let s = read();
        assert_eq!(s.hash, canonical(s.interfaces.clone()).hash);
    }
}
