//! Sockets that have not authenticated yet, counted per source address and in total, so a
//! stranger cannot hold thousands of them open (each costs buffers until the auth timeout).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct PendingSockets {
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Why a new socket was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// This address already holds its share.
    Address,
    /// The server holds the most it allows.
    Total,
}

/// One pending socket's place; given back when dropped (authenticated, refused or gone).
pub struct PendingSlot {
    owner: Arc<PendingSockets>,
    addr: IpAddr,
}

impl PendingSockets {
    pub fn try_acquire(
        self: &Arc<Self>,
        addr: IpAddr,
        per_address: usize,
        total: usize,
    ) -> Result<PendingSlot, Refused> {
        let addr = bucket(addr);
        let mut c = self.counts.lock().expect("pending lock");
        if c.by_address.get(&addr).copied().unwrap_or(0) >= per_address {
            return Err(Refused::Address);
        }
        if c.total >= total {
            return Err(Refused::Total);
        }
        c.total += 1;
        *c.by_address.entry(addr).or_default() += 1;
        Ok(PendingSlot {
            owner: self.clone(),
            addr,
        })
    }

    pub fn total(&self) -> usize {
        self.counts.lock().expect("pending lock").total
    }
}

/// The address a socket counts against: IPv4 as is, IPv6 by its /64 (one subscriber's
/// network, which an attacker would otherwise spread over).
fn bucket(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut c = self.owner.counts.lock().expect("pending lock");
        c.total -= 1;
        if let Some(n) = c.by_address.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                c.by_address.remove(&self.addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_in_total_and_frees_on_drop() {
        let p = Arc::new(PendingSockets::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = p.try_acquire(a, 2, 3).unwrap();
        let _second = p.try_acquire(a, 2, 3).unwrap();
        assert_eq!(p.try_acquire(a, 2, 3).err(), Some(Refused::Address));
        let _third = p.try_acquire(b, 2, 3).unwrap();
        assert_eq!(p.try_acquire(b, 2, 3).err(), Some(Refused::Total));
        drop(first);
        assert_eq!(p.total(), 2);
        assert!(p.try_acquire(a, 2, 3).is_ok());
    }

    #[test]
    fn ipv6_counts_by_its_64_prefix() {
        let p = Arc::new(PendingSockets::default());
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_net: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_net: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _a = p.try_acquire(one, 1, 10).unwrap();
        assert_eq!(p.try_acquire(same_net, 1, 10).err(), Some(Refused::Address));
        assert!(p.try_acquire(other_net, 1, 10).is_ok());
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let _b = p.try_acquire(mapped, 1, 10).unwrap();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(p.try_acquire(v4, 1, 10).err(), Some(Refused::Address));
    }
}
