//! The bytes a terminal in raw mode sends for each key, turned into keys.
//!
//! A printable key is its UTF-8 bytes. Ctrl plus a letter is one byte, the letter's position
//! in the alphabet (Ctrl-A is 0x01). Enter is CR (0x0d), Backspace is DEL (0x7f) or Ctrl-H. The
//! other keys are escape sequences, which differ a little between terminals:
//!
//! | key            | bytes                        |
//! | -------------- | ---------------------------- |
//! | Up, Down       | `ESC [ A`, `ESC [ B` (or `ESC O A`, `ESC O B`) |
//! | Right, Left    | `ESC [ C`, `ESC [ D` (or `ESC O C`, `ESC O D`) |
//! | Home           | `ESC [ H`, `ESC O H`, `ESC [ 1 ~`, `ESC [ 7 ~` |
//! | End            | `ESC [ F`, `ESC O F`, `ESC [ 4 ~`, `ESC [ 8 ~` |
//! | Delete         | `ESC [ 3 ~`                  |
//! | Ctrl-Right, Ctrl-Left | `ESC [ 1 ; 5 C`, `ESC [ 1 ; 5 D` |
//!
//! Any other escape sequence (F1, Page Up, ...) is read to its end and ignored, so that none
//! of its bytes lands in the line. A read may end in the middle of a character or of a
//! sequence (a long paste is read in pieces): the start waits in `pending` for the next read.

/// What a key asks the line editor to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Backspace,
    Delete,
    Left,
    Right,
    WordLeft,
    WordRight,
    Home,
    End,
    Up,
    Down,
    Tab,
    /// Ctrl-D: delete under the cursor, or leave on an empty line.
    CtrlD,
    /// Ctrl-U: delete from the start of the line to the cursor.
    KillToStart,
    /// Ctrl-K: delete from the cursor to the end of the line.
    KillToEnd,
    /// Ctrl-W: delete the word before the cursor.
    KillWord,
    /// Ctrl-L: paint the whole screen again.
    Redraw,
}

const ESC: u8 = 0x1b;
/// An escape sequence longer than this is not one we know: it is dropped.
const MAX_SEQUENCE: usize = 16;

/// Turns bytes into keys, keeping an unfinished character or sequence for the next call.
#[derive(Default)]
pub struct Decoder {
    /// The start of a character or an escape sequence cut by the end of a read; never more
    /// than `MAX_SEQUENCE` bytes.
    pending: Vec<u8>,
    /// The last byte was CR: a LF right after it is the same Enter (CR LF), not a second one.
    after_cr: bool,
}

/// One step of decoding: a key (or nothing, for an ignored byte or sequence) and the number of
/// bytes it used; or `Incomplete` when more bytes are needed.
enum Step {
    Key(Option<Key>, usize),
    Incomplete,
}

impl Decoder {
    /// The keys in `bytes`, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Key> {
        let mut input = std::mem::take(&mut self.pending);
        input.extend_from_slice(bytes);
        let mut keys = Vec::new();
        let mut rest = &input[..];
        while !rest.is_empty() {
            match self.step(rest) {
                Step::Key(key, used) => {
                    keys.extend(key);
                    rest = &rest[used..];
                }
                Step::Incomplete => {
                    self.pending = rest.to_vec();
                    break;
                }
            }
        }
        keys
    }

    fn step(&mut self, bytes: &[u8]) -> Step {
        let first = bytes[0];
        let after_cr = std::mem::replace(&mut self.after_cr, first == b'\r');
        let key = match first {
            ESC => return escape(bytes),
            b'\r' => Key::Enter,
            b'\n' if after_cr => return Step::Key(None, 1),
            b'\n' => Key::Enter,
            0x01 => Key::Home,
            0x02 => Key::Left,
            0x04 => Key::CtrlD,
            0x05 => Key::End,
            0x06 => Key::Right,
            0x08 | 0x7f => Key::Backspace,
            b'\t' => Key::Tab,
            0x0b => Key::KillToEnd,
            0x0c => Key::Redraw,
            0x0e => Key::Down,
            0x10 => Key::Up,
            0x15 => Key::KillToStart,
            0x17 => Key::KillWord,
            0x00..=0x1f => return Step::Key(None, 1),
            0x20..=0x7e => Key::Char(char::from(first)),
            _ => return utf8(bytes),
        };
        Step::Key(Some(key), 1)
    }
}

/// A character of two to four bytes. A byte that cannot start one, or a sequence that is not
/// valid UTF-8, is dropped one byte at a time.
fn utf8(bytes: &[u8]) -> Step {
    let len = match bytes[0] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return Step::Key(None, 1),
    };
    if bytes.len() < len {
        // Only wait when what is there so far could still be the start of a character.
        let continues = bytes[1..].iter().all(|&b| b & 0xc0 == 0x80);
        return if continues {
            Step::Incomplete
        } else {
            Step::Key(None, 1)
        };
    }
    match std::str::from_utf8(&bytes[..len]) {
        Ok(text) => Step::Key(text.chars().next().map(Key::Char), len),
        Err(_) => Step::Key(None, 1),
    }
}

/// `bytes` starts with ESC.
fn escape(bytes: &[u8]) -> Step {
    match bytes.get(1) {
        None => Step::Incomplete,
        Some(b'[') => control_sequence(bytes),
        Some(b'O') => match bytes.get(2) {
            None => Step::Incomplete,
            Some(&last) => Step::Key(cursor_key(last, b""), 3),
        },
        // ESC and a key is what Alt and that key send; without Alt bindings, the key counts
        // as itself, and the ESC is dropped.
        Some(_) => Step::Key(None, 1),
    }
}

/// `ESC [`, parameters (digits and `;`), and one final byte from `@` to `~`.
fn control_sequence(bytes: &[u8]) -> Step {
    let body = &bytes[2..];
    let Some(end) = body.iter().position(|b| (0x40..=0x7e).contains(b)) else {
        if bytes.len() < MAX_SEQUENCE {
            return Step::Incomplete;
        }
        return Step::Key(None, bytes.len());
    };
    if end + 3 > MAX_SEQUENCE {
        return Step::Key(None, end + 3);
    }
    let params = &body[..end];
    let key = match body[end] {
        b'~' => match params {
            b"1" | b"7" => Some(Key::Home),
            b"4" | b"8" => Some(Key::End),
            b"3" => Some(Key::Delete),
            _ => None,
        },
        last => cursor_key(last, params),
    };
    Step::Key(key, end + 3)
}

fn cursor_key(last: u8, params: &[u8]) -> Option<Key> {
    let ctrl = params == b"1;5";
    match (last, ctrl) {
        (b'A', _) => Some(Key::Up),
        (b'B', _) => Some(Key::Down),
        (b'C', false) => Some(Key::Right),
        (b'C', true) => Some(Key::WordRight),
        (b'D', false) => Some(Key::Left),
        (b'D', true) => Some(Key::WordLeft),
        (b'H', _) => Some(Key::Home),
        (b'F', _) => Some(Key::End),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(bytes: &[u8]) -> Vec<Key> {
        Decoder::default().feed(bytes)
    }

    fn chars(text: &str) -> Vec<Key> {
        text.chars().map(Key::Char).collect()
    }

    #[test]
    fn printable_keys_are_characters() {
        assert_eq!(keys(b"hi!"), chars("hi!"));
        assert_eq!(keys("é日😀".as_bytes()), chars("é日😀"));
    }

    #[test]
    fn control_keys() {
        assert_eq!(
            keys(b"\x01\x05\x02\x06\x7f\x08\x04\x15\x0b\x17\t\x0c\x10\x0e"),
            [
                Key::Home,
                Key::End,
                Key::Left,
                Key::Right,
                Key::Backspace,
                Key::Backspace,
                Key::CtrlD,
                Key::KillToStart,
                Key::KillToEnd,
                Key::KillWord,
                Key::Tab,
                Key::Redraw,
                Key::Up,
                Key::Down,
            ]
        );
        // Other control bytes are ignored.
        assert_eq!(keys(b"a\x07\x00b"), chars("ab"));
    }

    #[test]
    fn cr_lf_and_cr_lf_are_one_enter_each() {
        assert_eq!(
            keys(b"a\rb\nc\r\nd"),
            [
                Key::Char('a'),
                Key::Enter,
                Key::Char('b'),
                Key::Enter,
                Key::Char('c'),
                Key::Enter,
                Key::Char('d'),
            ]
        );
        assert_eq!(keys(b"\r\r\n\n"), [Key::Enter, Key::Enter, Key::Enter]);
    }

    #[test]
    fn escape_sequences() {
        assert_eq!(
            keys(b"\x1b[A\x1b[B\x1b[C\x1b[D\x1bOA\x1bOD"),
            [
                Key::Up,
                Key::Down,
                Key::Right,
                Key::Left,
                Key::Up,
                Key::Left
            ]
        );
        assert_eq!(
            keys(b"\x1b[H\x1b[F\x1b[1~\x1b[4~\x1b[7~\x1b[8~\x1bOH\x1bOF\x1b[3~"),
            [
                Key::Home,
                Key::End,
                Key::Home,
                Key::End,
                Key::Home,
                Key::End,
                Key::Home,
                Key::End,
                Key::Delete
            ]
        );
        assert_eq!(keys(b"\x1b[1;5C\x1b[1;5D"), [Key::WordRight, Key::WordLeft]);
    }

    #[test]
    fn unknown_sequences_leave_nothing_behind() {
        // F5, Page Up, a mouse report, bracketed paste markers.
        assert_eq!(
            keys(b"a\x1b[15~b\x1b[5~c\x1b[200~d\x1b[201~"),
            chars("abcd")
        );
        // Alt-x: the ESC is dropped, the x is typed.
        assert_eq!(keys(b"\x1bx"), chars("x"));
    }

    #[test]
    fn a_character_or_sequence_cut_between_reads_is_finished_by_the_next() {
        let mut decoder = Decoder::default();
        let text = "日".as_bytes();
        assert_eq!(decoder.feed(&text[..1]), []);
        assert_eq!(decoder.feed(&text[1..2]), []);
        assert_eq!(decoder.feed(&text[2..]), chars("日"));
        assert_eq!(decoder.feed(b"\x1b"), []);
        assert_eq!(decoder.feed(b"["), []);
        assert_eq!(decoder.feed(b"3~x"), [Key::Delete, Key::Char('x')]);
        assert_eq!(decoder.feed(b"a\r"), [Key::Char('a'), Key::Enter]);
        assert_eq!(decoder.feed(b"\nb"), [Key::Char('b')]);
    }

    #[test]
    fn bad_utf8_is_dropped() {
        assert_eq!(keys(b"a\xffb\xc3(c"), chars("ab(c"));
        assert_eq!(keys(b"\xed\xa0\x80z"), chars("z")); // a UTF-16 surrogate
    }

    #[test]
    fn a_runaway_sequence_is_bounded() {
        let mut decoder = Decoder::default();
        let mut junk = b"\x1b[".to_vec();
        junk.extend([b'1'; 100]);
        assert_eq!(decoder.feed(&junk), []);
        assert!(decoder.pending.len() <= MAX_SEQUENCE);
        assert_eq!(decoder.feed(b"x"), chars("x"));
    }
}
