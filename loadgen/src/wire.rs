//! The lines loadgen sends and the fast scanner for the lines it receives.
//!
//! Every test message carries who sent it, its sequence number and when it was sent, in fixed
//! width so a receiver parses it at known offsets without searching:
//!
//! ```text
//! sent:      MSG d 0000000001 0000001234567 ......\n
//! delivered: MSG u0000042 d 0000000001 0000001234567 ......\n
//!                 name     kind  seq   nanoseconds   padding
//! ```
//!
//! The name is `u` (a test client) or `c` (a churn connection) and seven digits of id; the
//! kind is `d` (data, checked and timed) or `s` (sync probe, proves registration); the time is
//! nanoseconds since the run's common `Instant`, so any receiver computes the delivery latency.

/// Bytes of a client name: a letter and seven digits.
pub const NAME_LEN: usize = 8;
/// Bytes of the message text without padding: `d 0000000001 0000001234567`.
pub const MIN_TEXT: usize = 26;
/// Bytes of a delivered line up to the padding: `MSG <name> ` and the text.
const HEADER: usize = 4 + NAME_LEN + 1 + MIN_TEXT;
const SEQ_AT: usize = 4 + NAME_LEN + 3;
const NANOS_AT: usize = SEQ_AT + 11;
/// Lines with no newline after this many bytes are not from a server that keeps the protocol.
pub const MAX_PARTIAL: usize = 4096;

pub const DATA: u8 = b'd';
pub const SYNC: u8 = b's';
pub const CLIENT: u8 = b'u';
pub const CHURN: u8 = b'c';

/// The name a client registers with, e.g. `u0000042`.
pub fn name(prefix: u8, id: u32) -> String {
    format!("{}{id:07}", prefix as char)
}

/// One test message as a receiver sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msg {
    /// `CLIENT` or `CHURN`: the first letter of the sender's name.
    pub origin: u8,
    /// The sender's id (the digits of its name).
    pub sender: u32,
    /// `DATA` or `SYNC`.
    pub kind: u8,
    pub seq: u32,
    pub sent_ns: u64,
}

/// A line received from the server.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Ours(Msg),
    /// `ERR <code> <reason>`: the code alone.
    Err(&'a [u8]),
    /// Anything else, e.g. a person chatting in the same room.
    Other,
}

/// Writes test messages of one fixed size quickly: a template whose digits get overwritten.
#[derive(Clone)]
pub struct Encoder {
    template: Vec<u8>,
    /// The last eight bytes before the newline of a delivered line, as `load8` reads them,
    /// and the mask of those that are padding (the rest are digits).
    tail: u64,
    tail_mask: u64,
}

impl Encoder {
    /// `text_len` is the length of the text after `MSG `, at least `MIN_TEXT`.
    pub fn new(text_len: usize) -> Self {
        let mut template = b"MSG d 0000000000 0000000000000".to_vec();
        if text_len > MIN_TEXT {
            template.push(b' ');
            template.resize(4 + text_len, b'.');
        }
        template.push(b'\n');
        let padding = template.len() - 1 - (4 + MIN_TEXT);
        let tail = load8(&template, template.len() - 9);
        let tail_mask = if padding >= 8 {
            u64::MAX
        } else {
            !(u64::MAX >> (8 * padding))
        };
        Encoder {
            template,
            tail,
            tail_mask,
        }
    }

    /// Length of the line a client sends (with the newline).
    pub fn sent_len(&self) -> usize {
        self.template.len()
    }

    /// Length of the line the server delivers for this message (with the newline).
    pub fn delivered_len(&self) -> usize {
        self.template.len() + NAME_LEN + 1
    }

    /// True if the eight bytes before the newline of a line of `delivered_len` bytes at the
    /// start of `rest` hold our padding where we put padding.
    #[inline(always)]
    fn padding_fits(&self, rest: &[u8]) -> bool {
        (load8(rest, self.delivered_len() - 9) ^ self.tail) & self.tail_mask == 0
    }

    /// Appends `MSG <kind> <seq> <sent_ns> <padding>\n` to `out`.
    pub fn put(&self, out: &mut Vec<u8>, kind: u8, seq: u32, sent_ns: u64) {
        let start = out.len();
        out.extend_from_slice(&self.template);
        let line = &mut out[start..];
        line[4] = kind;
        put_digits(&mut line[6..16], seq as u64);
        put_digits(&mut line[17..30], sent_ns);
    }
}

fn put_digits(field: &mut [u8], mut value: u64) {
    for digit in field.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Eight bytes at `at`, little-endian: the first byte is the lowest.
#[inline(always)]
fn load8(line: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&line[at..at + 8]);
    u64::from_le_bytes(bytes)
}

const ZEROS: u64 = 0x3030_3030_3030_3030;

const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;

/// Zero if all eight bytes of `chunk` are ASCII digits (the checks of several chunks can be
/// OR-ed together and tested once).
#[inline(always)]
fn not_digits(chunk: u64) -> u64 {
    ((chunk & HIGH_NIBBLES) | ((chunk.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES) >> 4))
        ^ 0x3333_3333_3333_3333
}

/// The value of eight ASCII digits loaded by `load8`: all eight at once (SWAR, as in
/// simdjson), three multiplications instead of a loop. Meaningless unless `not_digits` is 0.
#[inline(always)]
fn eight_digits(chunk: u64) -> u64 {
    let v = chunk.wrapping_sub(ZEROS);
    let v = v.wrapping_mul(10).wrapping_add(v >> 8); // pairs of digits
    (v & 0x0000_00FF_0000_00FF)
        .wrapping_mul(100 + (1_000_000 << 32))
        .wrapping_add(((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32)))
        >> 32
}

/// The eight bytes at `at` with all but the last `keep` replaced by `0` digits.
#[inline(always)]
fn last_digits(line: &[u8], at: usize, keep: u32) -> u64 {
    let low_mask = (1u64 << (8 * (8 - keep))) - 1;
    (load8(line, at) & !low_mask) | (ZEROS & low_mask)
}

/// Parses the fixed fields of a delivered test message; `line` may be longer (padding).
#[inline(always)]
fn parse_header(line: &[u8]) -> Option<Msg> {
    if line.len() < HEADER || line[..4] != *b"MSG " {
        return None;
    }
    let origin = line[4];
    let kind = line[4 + NAME_LEN + 1];
    let spaces = [line[4 + NAME_LEN], line[SEQ_AT - 1], line[NANOS_AT - 1]];
    if !(origin == CLIENT || origin == CHURN)
        || !(kind == DATA || kind == SYNC)
        || spaces != [b' '; 3]
    {
        return None;
    }
    // Fields: name digits 5..12, seq 15..25, nanoseconds 26..39, read as 7, 2+8 and 5+8 digits.
    let chunks = [
        last_digits(line, 4, 7),
        last_digits(line, SEQ_AT - 6, 2),
        load8(line, SEQ_AT + 2),
        last_digits(line, NANOS_AT - 3, 5),
        load8(line, NANOS_AT + 5),
    ];
    let [sender, seq_high, seq_low, ns_high, ns_low] = chunks;
    if not_digits(sender)
        | not_digits(seq_high)
        | not_digits(seq_low)
        | not_digits(ns_high)
        | not_digits(ns_low)
        != 0
    {
        return None;
    }
    Some(Msg {
        origin,
        sender: eight_digits(sender) as u32,
        kind,
        seq: (eight_digits(seq_high) * 100_000_000 + eight_digits(seq_low)) as u32,
        sent_ns: eight_digits(ns_high) * 100_000_000 + eight_digits(ns_low),
    })
}

/// Classifies one line (without its newline).
pub fn parse_line(line: &[u8]) -> Line<'_> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if let Some(msg) = parse_header(line) {
        return Line::Ours(msg);
    }
    match line.strip_prefix(b"ERR ") {
        Some(rest) => Line::Err(rest.split(|&b| b == b' ').next().unwrap_or(rest)),
        None => Line::Other,
    }
}

/// Calls `each` for every complete line in `buf` and returns the number of bytes consumed; the
/// rest is the start of a line still arriving. Lines of exactly the expected length that end in
/// our padding take a fast path that never searches for the newline.
#[inline]
pub fn scan(buf: &[u8], encoder: &Encoder, mut each: impl FnMut(Line)) -> usize {
    let fast_len = encoder.delivered_len();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let fast = if rest.len() >= fast_len
            && rest[fast_len - 1] == b'\n'
            && encoder.padding_fits(rest)
        {
            parse_header(rest)
        } else {
            None
        };
        let (line, len) = match fast {
            Some(msg) => (Line::Ours(msg), fast_len),
            None => match slow_line(rest) {
                Some(found) => found,
                None => break,
            },
        };
        each(line);
        pos += len;
    }
    pos
}

/// The first line of `rest` and its length with the newline, found by searching; `None` if
/// the newline has not arrived yet.
#[inline(never)]
fn slow_line(rest: &[u8]) -> Option<(Line<'_>, usize)> {
    let end = rest.iter().position(|&b| b == b'\n')?;
    Some((parse_line(&rest[..end]), end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(buf: &[u8], enc: &Encoder) -> (Vec<String>, usize) {
        let mut seen = Vec::new();
        let used = scan(buf, enc, |line| seen.push(format!("{line:?}")));
        (seen, used)
    }

    /// What the server makes of a line a client with `name` sent.
    fn delivered(name: &str, sent: &[u8]) -> Vec<u8> {
        let mut line = format!("MSG {name} ").into_bytes();
        line.extend_from_slice(&sent[4..]);
        line
    }

    #[test]
    fn encoded_messages_parse_back() {
        for size in [MIN_TEXT, MIN_TEXT + 1, 32, 200] {
            let enc = Encoder::new(size);
            let mut sent = Vec::new();
            enc.put(&mut sent, DATA, 42, 1_234_567_890);
            assert_eq!(sent.len(), 4 + size + 1);
            let line = delivered(&name(CLIENT, 7), &sent);
            assert_eq!(line.len(), enc.delivered_len());
            let msg = Msg {
                origin: CLIENT,
                sender: 7,
                kind: DATA,
                seq: 42,
                sent_ns: 1_234_567_890,
            };
            assert_eq!(parse_line(&line[..line.len() - 1]), Line::Ours(msg));
            let (seen, used) = collect(&line, &enc);
            assert_eq!((seen.len(), used), (1, line.len()));
        }
    }

    #[test]
    fn scan_handles_mixed_lines_and_keeps_the_partial_tail() {
        let enc = Encoder::new(32);
        let mut sent = Vec::new();
        enc.put(&mut sent, SYNC, 3, 99);
        let mut buf = delivered("c0000001", &sent);
        buf.extend_from_slice(b"ERR server-full the room is full\r\n");
        buf.extend_from_slice(b"MSG alice hello\n");
        buf.extend_from_slice(&delivered("u0000002", &sent)[..20]);
        let (seen, used) = collect(&buf, &enc);
        assert_eq!(seen.len(), 3);
        assert!(seen[0].contains("origin: 99") && seen[0].contains("kind: 115"));
        assert_eq!(seen[1], format!("{:?}", Line::Err(b"server-full")));
        assert_eq!(seen[2], "Other");
        assert_eq!(used, buf.len() - 20);
    }

    #[test]
    fn lines_that_only_look_like_ours_are_not_taken_for_ours() {
        let enc = Encoder::new(40);
        assert_eq!(
            parse_line(b"MSG u000000x d 0000000001 0000000000001"),
            Line::Other
        );
        assert_eq!(parse_line(b"MSG u0000001 d 0000000001"), Line::Other);
        // A short line of ours followed by another: the fast path must not swallow both.
        let short = Encoder::new(MIN_TEXT);
        let mut sent = Vec::new();
        short.put(&mut sent, DATA, 1, 5);
        short.put(&mut sent, DATA, 2, 6);
        let mut buf = delivered("u0000001", &sent[..31]);
        buf.extend(delivered("u0000001", &sent[31..]));
        let (seen, used) = collect(&buf, &enc);
        assert_eq!((seen.len(), used), (2, buf.len()));
        assert!(seen[1].contains("seq: 2"));
    }
}

#[cfg(test)]
mod speed {
    use super::*;
    use crate::check::Checker;
    use crate::stats::Histogram;

    /// `cargo test --release -p loadgen -- --ignored --nocapture scan_speed`
    #[test]
    #[ignore]
    fn scan_speed() {
        let enc = Encoder::new(32);
        let mut buf = Vec::new();
        let mut sent = Vec::new();
        for i in 0..200_000u32 {
            sent.clear();
            enc.put(&mut sent, DATA, i / 100 + 1, 1_000_000 + i as u64);
            buf.extend_from_slice(b"MSG ");
            buf.extend_from_slice(name(CLIENT, i % 100).as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(&sent[4..]);
        }
        let mut checker = Checker::new(vec![100], 100);
        let mut hist = Histogram::new();
        let start = std::time::Instant::now();
        let meter = crate::server::CpuMeter::start(None);
        let rounds = 100;
        let mut lines = 0u64;
        for round in 0..rounds {
            let mut c2 = Checker::new(vec![100], 100);
            let used = scan(&buf, &enc, |line| {
                if let Line::Ours(m) = line {
                    c2.deliver(0, m.sender, m.seq);
                    hist.record(2_000_000u64.saturating_sub(m.sent_ns));
                    lines += 1;
                }
            });
            assert_eq!(used, buf.len());
            if round == 0 {
                checker = c2;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let cpu = meter.read().loadgen_cpu.unwrap() / 100.0 * secs;
        println!(
            "wall {:.1} ns/line, cpu {:.1} ns/line",
            secs * 1e9 / lines as f64,
            cpu * 1e9 / lines as f64
        );
        assert!(checker.verdict(&[2000; 100]).is_clean());
    }
}
