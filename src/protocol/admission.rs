//! Admission: how many client connections this process holds, in all and per client
//! address, shared by every shard. Checked once per accepted connection (never on a
//! request), so one lock across cores is fine here.

use hashbrown::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The connection limits (`--max-connections`, `--max-connections-per-ip`) and what is
/// open now.
pub struct Admission {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A connection let in; its slot is given back when this is dropped.
pub struct Admitted {
    admission: Arc<Admission>,
    peer: IpAddr,
}

impl Admission {
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_ip,
            open: Mutex::default(),
        })
    }

    /// A slot for a connection from `peer`, or why there is none.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Admitted, String> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| "admission poisoned".to_string())?;
        let (total, by_ip) = &mut *open;
        if *total >= self.max_total {
            return Err(format!("{total} connections open (--max-connections)"));
        }
        let from_peer = by_ip.entry(peer).or_insert(0);
        if *from_peer >= self.max_per_ip {
            return Err(format!(
                "{from_peer} connections open from {peer} (--max-connections-per-ip)"
            ));
        }
        *from_peer += 1;
        *total += 1;
        Ok(Admitted {
            admission: self.clone(),
            peer,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Ok(mut open) = self.admission.open.lock() {
            let (total, by_ip) = &mut *open;
            *total = total.saturating_sub(1);
            if let Some(count) = by_ip.get_mut(&self.peer) {
                *count -= 1;
                if *count == 0 {
                    by_ip.remove(&self.peer);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_in_all_and_per_address_and_given_back() {
        let admission = Admission::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let first = admission.admit(a).expect("1st");
        let _second = admission.admit(a).expect("2nd");
        assert!(admission.admit(a).is_err(), "a third from one address");
        let _third = admission.admit(b).expect("another address");
        assert!(admission.admit(b).is_err(), "four in all");
        drop(first);
        assert!(admission.admit(a).is_ok(), "a slot came back");
    }
}
