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
}
