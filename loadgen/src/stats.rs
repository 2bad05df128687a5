//! Percentiles. A run records up to hundreds of millions of latencies, too many to keep, so
//! they go into a `Histogram` of fixed size whose buckets are at most 1/64 (1.6 %) wide
//! relative to their values: the same idea as HdrHistogram, in a few lines.

/// Nearest-rank percentile of sorted values: the smallest value such that at least `p` % of
/// the values are less than or equal to it. `None` for no values. (The definition the
/// histogram follows; the tests hold it to it.)
#[cfg(test)]
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    let rank = rank_of(sorted.len() as u64, p)?;
    Some(sorted[(rank - 1) as usize])
}

/// 1-based nearest rank of percentile `p` among `count` values.
fn rank_of(count: u64, p: f64) -> Option<u64> {
    if count == 0 {
        return None;
    }
    let rank = (p / 100.0 * count as f64).ceil() as u64;
    Some(rank.clamp(1, count))
}

/// Bits of mantissa kept per power of two: 64 buckets per doubling.
const PRECISION: u32 = 6;
const SUB: u64 = 1 << PRECISION;
const BUCKETS: usize = ((64 - PRECISION + 1) as usize) << PRECISION;

/// Counts of values (nanoseconds here) in log-linear buckets. `record` is on the hot path
/// of every delivery, so it only bumps a bucket and the maximum; the count is summed when
/// asked for.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            max: 0,
        }
    }

    #[inline(always)]
    pub fn record(&mut self, value: u64) {
        self.counts[bucket_of(value)] += 1;
        self.max = self.max.max(value);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn max(&self) -> Option<u64> {
        (self.count() > 0).then_some(self.max)
    }

    /// Nearest-rank percentile, exact to within one bucket (1.6 %), never above the maximum.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        let rank = rank_of(self.count(), p)?;
        let mut seen = 0;
        for (bucket, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(middle_of(bucket).min(self.max));
            }
        }
        Some(self.max)
    }
}

#[inline(always)]
fn bucket_of(value: u64) -> usize {
    if value < SUB {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros(); // >= PRECISION
    let shift = exponent - PRECISION;
    let mantissa = (value >> shift) - SUB; // 0..SUB
    (((shift + 1) as u64 * SUB) + mantissa) as usize
}

/// The value in the middle of a bucket's range.
fn middle_of(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < SUB {
        return bucket;
    }
    let shift = bucket / SUB - 1;
    let low = (SUB + bucket % SUB) << shift;
    low + ((1u64 << shift) >> 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values = [15, 20, 35, 40, 50];
        assert_eq!(percentile(&values, 5.0), Some(15));
        assert_eq!(percentile(&values, 30.0), Some(20));
        assert_eq!(percentile(&values, 40.0), Some(20));
        assert_eq!(percentile(&values, 50.0), Some(35));
        assert_eq!(percentile(&values, 100.0), Some(50));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 99.0), Some(99));
        assert_eq!(percentile(&hundred, 90.0), Some(90));
        assert_eq!(percentile(&hundred, 0.0), Some(1));
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 0..64 {
            h.record(v);
        }
        assert_eq!(h.percentile(50.0), Some(31));
        assert_eq!(h.percentile(100.0), Some(63));
        assert_eq!(h.max(), Some(63));
        assert_eq!(Histogram::new().percentile(50.0), None);
    }

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut values: Vec<u64> = (0..64)
            .flat_map(|s| [1u64 << s, (1u64 << s) + 1, (1u64 << s) / 2 * 3])
            .collect();
        values.push(u64::MAX);
        values.sort_unstable();
        let mut last = 0;
        for v in values {
            let b = bucket_of(v);
            assert!(b < BUCKETS && b >= last, "{v} -> bucket {b}");
            let m = middle_of(b);
            assert!(m.abs_diff(v) as f64 <= v as f64 / SUB as f64, "{v} -> {m}");
            last = b;
        }
    }

    #[test]
    fn histogram_agrees_with_exact_percentiles() {
        // A deterministic spread of values over six decades, in a scrambled order.
        let mut values: Vec<u64> = (0..10_000u64)
            .map(|i| 1_000 + (i * i * 7919) % 9_999_000)
            .collect();
        let mut h = Histogram::new();
        let (mut a, mut b) = (Histogram::new(), Histogram::new());
        for (i, &v) in values.iter().enumerate() {
            h.record(v);
            if i % 2 == 0 { a.record(v) } else { b.record(v) }
        }
        a.merge(&b);
        values.sort_unstable();
        for p in [1.0, 50.0, 90.0, 99.0, 99.9, 100.0] {
            let exact = percentile(&values, p).unwrap() as f64;
            let approx = h.percentile(p).unwrap() as f64;
            assert!(
                (approx - exact).abs() <= exact / 64.0,
                "p{p}: {approx} vs {exact}"
            );
            assert_eq!(a.percentile(p), h.percentile(p));
        }
        assert_eq!(h.count(), 10_000);
        assert_eq!(h.max(), values.last().copied());
    }
}
