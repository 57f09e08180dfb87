//! How many AutoscoreConversations calls run at once: at most `total` in
//! the process and `per_customer` for one customer, so one tenant cannot
//! take every scoring slot and the memory of concurrent calls stays
//! bounded. A call beyond either limit is refused at once, naming it; the
//! client retries later.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use scorekeeper_domain::CustomerId;

/// Which limit refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    #[error(
        "this customer already has {0} AutoQA calls in progress (AUTOQA_MAX_CALLS_PER_CUSTOMER); retry when one ends"
    )]
    Customer(usize),
    #[error("the server already runs {0} AutoQA calls (AUTOQA_MAX_CALLS); retry later")]
    Server(usize),
}

#[derive(Clone, Debug)]
pub struct CallSlots {
    total: usize,
    per_customer: usize,
    running: Arc<Mutex<Running>>,
}

#[derive(Debug, Default)]
struct Running {
    total: usize,
    by_customer: HashMap<CustomerId, usize>,
}

impl CallSlots {
    pub fn new(total: usize, per_customer: usize) -> CallSlots {
        CallSlots { total: total.max(1), per_customer: per_customer.max(1), running: Arc::default() }
    }

    /// A slot for one call of `customer_id`, held until the returned guard
    /// is dropped.
    pub fn enter(&self, customer_id: CustomerId) -> Result<CallSlot, Busy> {
        let mut running = self.running.lock().expect("call slots lock");
        let mine = running.by_customer.get(&customer_id).copied().unwrap_or(0);
        if mine >= self.per_customer {
            return Err(Busy::Customer(self.per_customer));
        }
        if running.total >= self.total {
            return Err(Busy::Server(self.total));
        }
        running.total += 1;
        *running.by_customer.entry(customer_id).or_default() += 1;
        Ok(CallSlot { slots: self.running.clone(), customer_id })
    }
}

/// One running call; its slot is given back on drop.
#[derive(Debug)]
pub struct CallSlot {
    slots: Arc<Mutex<Running>>,
    customer_id: CustomerId,
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        let mut running = self.slots.lock().expect("call slots lock");
        running.total -= 1;
        if let Some(mine) = running.by_customer.get_mut(&self.customer_id) {
            *mine -= 1;
            if *mine == 0 {
                running.by_customer.remove(&self.customer_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_customer_and_in_all_and_slots_come_back() {
        let slots = CallSlots::new(3, 2);
        let (a, b) = (CustomerId(1), CustomerId(2));
        let a1 = slots.enter(a).unwrap();
        let _a2 = slots.enter(a).unwrap();
        assert_eq!(slots.enter(a).unwrap_err(), Busy::Customer(2));
        let _b1 = slots.enter(b).unwrap();
        assert_eq!(slots.enter(b).unwrap_err(), Busy::Server(3));
        drop(a1);
        let _b2 = slots.enter(b).unwrap();
        assert_eq!(slots.enter(a).unwrap_err(), Busy::Server(3));
    }
}
