//! The delivery checker: nothing lost, nothing duplicated, each sender's order kept.
//!
//! Every sender numbers its messages 1, 2, 3, ... For each (receiver, sender) pair the checker
//! remembers the next number it expects; any other number is a misordering (a gap, a repeat or
//! a swap). At the end, the count a receiver got is compared with what the senders sent after
//! it joined: fewer is loss, more is duplication.

/// Largest receivers x senders table we allocate (4 bytes each).
pub const MAX_PAIRS: usize = 50_000_000;

pub struct Checker {
    senders: usize,
    /// Client id of each receiver (to leave out its own messages).
    receiver_ids: Vec<u32>,
    /// `next[receiver * senders + sender]`: the sequence number expected next.
    next: Vec<u32>,
    /// Data messages each receiver got.
    got: Vec<u64>,
    /// Messages each receiver could not see because they were sent before it joined.
    skipped: Vec<u64>,
    misordered: u64,
}

/// The outcome of a run, summed over all receivers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub misordered: u64,
}

impl Verdict {
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.misordered == 0
    }

    pub fn add(&mut self, other: &Verdict) {
        self.expected += other.expected;
        self.delivered += other.delivered;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.misordered += other.misordered;
    }
}

impl Checker {
    /// Receivers are numbered 0.. in the order of `receiver_ids`; senders are client ids
    /// `0..senders`. The caller keeps `receiver_ids.len() * senders <= MAX_PAIRS`.
    pub fn new(receiver_ids: Vec<u32>, senders: usize) -> Self {
        let receivers = receiver_ids.len();
        Checker {
            senders,
            receiver_ids,
            next: vec![1; receivers * senders],
            got: vec![0; receivers],
            skipped: vec![0; receivers],
            misordered: 0,
        }
    }

    /// Adds a receiver that joined late: it expects each sender's messages from
    /// `first_seq[sender]` on. Returns its receiver number.
    pub fn join(&mut self, receiver_id: u32, first_seq: &[u32]) -> usize {
        self.receiver_ids.push(receiver_id);
        self.next.extend_from_slice(first_seq);
        self.got.push(0);
        let skipped = first_seq
            .iter()
            .enumerate()
            .filter(|&(s, _)| s as u32 != receiver_id);
        self.skipped
            .push(skipped.map(|(_, &first)| first as u64 - 1).sum());
        self.receiver_ids.len() - 1
    }

    /// Records that `receiver` got message `seq` of `sender`; false if it was out of order.
    #[inline(always)]
    pub fn deliver(&mut self, receiver: usize, sender: u32, seq: u32) -> bool {
        let sender = sender as usize;
        if sender >= self.senders {
            return false; // not a sender we know
        }
        self.got[receiver] += 1;
        let next = &mut self.next[receiver * self.senders + sender];
        let in_order = seq == *next;
        if !in_order {
            self.misordered += 1;
        }
        *next = seq.wrapping_add(1);
        in_order
    }

    /// Data messages `receiver` got so far.
    pub fn got(&self, receiver: usize) -> u64 {
        self.got[receiver]
    }

    /// Compares what each receiver got with what the senders sent: `sent[s]` messages by
    /// sender `s`, numbered 1..=sent[s].
    pub fn verdict(&self, sent: &[u32]) -> Verdict {
        let total: u64 = sent.iter().map(|&n| n as u64).sum();
        let mut v = Verdict {
            misordered: self.misordered,
            ..Verdict::default()
        };
        for (r, &id) in self.receiver_ids.iter().enumerate() {
            let own = sent.get(id as usize).map_or(0, |&n| n as u64);
            let expected = total - own - self.skipped[r];
            let got = self.got[r];
            v.expected += expected;
            v.delivered += got;
            v.lost += expected.saturating_sub(got);
            v.duplicated += got.saturating_sub(expected);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three clients that each send to the two others.
    fn three() -> Checker {
        Checker::new(vec![0, 1, 2], 3)
    }

    fn deliver_all(c: &mut Checker, sent: &[u32]) {
        for r in 0..3u32 {
            for s in (0..3u32).filter(|&s| s != r) {
                for seq in 1..=sent[s as usize] {
                    assert!(c.deliver(r as usize, s, seq));
                }
            }
        }
    }

    #[test]
    fn a_perfect_run_is_clean() {
        let mut c = three();
        deliver_all(&mut c, &[5, 0, 2]);
        let v = c.verdict(&[5, 0, 2]);
        assert_eq!(
            v,
            Verdict {
                expected: 2 + 7 + 5,
                delivered: 14,
                ..Verdict::default()
            }
        );
        assert!(v.is_clean());
    }

    #[test]
    fn loss_is_counted_and_a_gap_is_misordered() {
        let mut c = three();
        deliver_all(&mut c, &[3, 3, 3]);
        assert!(!c.deliver(1, 0, 5)); // sender 0's message 4 never reached receiver 1
        let v = c.verdict(&[5, 3, 3]); // and neither 4 nor 5 reached receiver 2
        assert_eq!((v.lost, v.duplicated, v.misordered), (1 + 2, 0, 1));
        assert!(!v.is_clean());
    }

    #[test]
    fn duplicates_and_swaps_are_caught() {
        let mut c = three();
        assert!(c.deliver(1, 0, 1));
        assert!(!c.deliver(1, 0, 1));
        let v = c.verdict(&[1, 0, 0]);
        assert_eq!((v.lost, v.duplicated, v.misordered), (1, 1, 1)); // receiver 2 got nothing
        let mut c = three();
        assert!(!c.deliver(2, 0, 2));
        assert!(!c.deliver(2, 0, 1));
        assert_eq!(c.verdict(&[2, 0, 0]).misordered, 2);
    }

    #[test]
    fn late_joiners_expect_only_what_came_after_them() {
        let mut c = Checker::new(vec![], 1);
        let r = c.join(5, &[4]);
        assert!(!c.deliver(r, 0, 3));
        assert!(c.deliver(r, 0, 4));
        assert!(!c.deliver(r, 9, 1));
        let v = c.verdict(&[4]);
        assert_eq!((v.expected, v.delivered, v.duplicated), (1, 2, 1));
        assert_eq!(c.got(r), 2);
    }
}
