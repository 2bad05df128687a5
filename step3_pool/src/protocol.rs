//! The chat protocol's rules for one line, as PROTOCOL.md states them: the longest line, what
//! a valid name and a valid text are, every `ERR` line the server may send, and how a line
//! reads as a command.
//!
//! This file is the same, byte for byte, in every step: the steps differ in how they move
//! bytes between sockets, not in what the bytes mean. A test in the grader
//! (`grader/tests/protocol_copies.rs`) fails when the copies differ; after changing one, copy
//! it over the others: `for s in step*/src; do cp step1_naive/src/protocol.rs $s/; done`.

/// The longest line a client may send, not counting its LF (or CR LF).
pub const MAX_LINE: usize = 1024;

/// The longest name, in bytes.
pub const MAX_NAME: usize = 32;

// Each ERR line is sent as is: `ERR <code> <reason>`. The codes are the protocol; the reasons
// are for the person reading them.
pub const ERR_UNKNOWN_COMMAND: &str = "ERR unknown-command expected USER <name> or MSG <text>\n";
pub const ERR_INVALID_NAME: &str =
    "ERR invalid-name a name is 1 to 32 bytes, without spaces or control characters\n";
pub const ERR_NAME_TAKEN: &str = "ERR name-taken another client uses this name\n";
pub const ERR_ALREADY_REGISTERED: &str = "ERR already-registered you already have a name\n";
pub const ERR_NOT_REGISTERED: &str = "ERR not-registered send USER <name> first\n";
pub const ERR_EMPTY_MESSAGE: &str = "ERR empty-message there is nothing after MSG\n";
pub const ERR_INVALID_TEXT: &str =
    "ERR invalid-text lines must be UTF-8 without control characters\n";
pub const ERR_LINE_TOO_LONG: &str = "ERR line-too-long a line is at most 1024 bytes; closing\n";
pub const ERR_SERVER_FULL: &str =
    "ERR server-full the server cannot take one more client; closing\n";
pub const ERR_TOO_SLOW: &str =
    "ERR too-slow you stopped reading and fell too far behind; closing\n";

/// What one line asks for, once read.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// An empty line: ignored, without a reply.
    Empty,
    /// `USER <name>`; the name is not checked yet (that needs the room: is it taken?).
    User(&'a str),
    /// `MSG <text>`; the text is not checked yet (`check_text` does it once registered).
    Msg(&'a str),
    /// Not UTF-8: answered with `ERR_INVALID_TEXT`.
    NotUtf8,
    /// Anything else: answered with `ERR_UNKNOWN_COMMAND`.
    Unknown,
}

/// Reads one line, without its LF; a CR before the LF is dropped. The length is the framing's
/// business (`MAX_LINE`), checked before a line is complete.
pub fn parse(line: &[u8]) -> Command<'_> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Command::Empty;
    }
    let Ok(line) = std::str::from_utf8(line) else {
        return Command::NotUtf8;
    };
    if let Some(name) = line.strip_prefix("USER ") {
        Command::User(name)
    } else if let Some(text) = line.strip_prefix("MSG ") {
        Command::Msg(text)
    } else {
        Command::Unknown
    }
}

/// A name is 1 to `MAX_NAME` bytes, with no whitespace and no control characters.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The refusal a message text earns, if any: it must not be empty, nor carry a control
/// character.
pub fn check_text(text: &str) -> Result<(), &'static str> {
    if text.is_empty() {
        Err(ERR_EMPTY_MESSAGE)
    } else if text.chars().any(char::is_control) {
        Err(ERR_INVALID_TEXT)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(parse(b""), Command::Empty);
        assert_eq!(parse(b"\r"), Command::Empty);
        assert_eq!(parse(b"USER ann"), Command::User("ann"));
        assert_eq!(parse(b"USER ann\r"), Command::User("ann"));
        assert_eq!(parse(b"MSG hi there"), Command::Msg("hi there"));
        assert_eq!(parse(b"MSG "), Command::Msg(""));
        assert_eq!(parse(b"msg hi"), Command::Unknown);
        assert_eq!(parse(b"MSG"), Command::Unknown);
        assert_eq!(parse(b"USER"), Command::Unknown);
        assert_eq!(parse(b"MSG \xff"), Command::NotUtf8);
    }

    #[test]
    fn names() {
        assert!(is_valid_name("alice"));
        assert!(is_valid_name("été"));
        assert!(is_valid_name(&"x".repeat(MAX_NAME)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"x".repeat(MAX_NAME + 1)));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("a\tb"));
        assert!(!is_valid_name("a\u{7f}"));
    }

    #[test]
    fn texts() {
        assert_eq!(check_text("hello world"), Ok(()));
        assert_eq!(check_text(""), Err(ERR_EMPTY_MESSAGE));
        assert_eq!(check_text("bell\u{7}"), Err(ERR_INVALID_TEXT));
        assert_eq!(check_text("esc\u{1b}[2J"), Err(ERR_INVALID_TEXT));
    }

    #[test]
    fn every_err_line_is_one_line_with_a_code() {
        let all = [
            ERR_UNKNOWN_COMMAND,
            ERR_INVALID_NAME,
            ERR_NAME_TAKEN,
            ERR_ALREADY_REGISTERED,
            ERR_NOT_REGISTERED,
            ERR_EMPTY_MESSAGE,
            ERR_INVALID_TEXT,
            ERR_LINE_TOO_LONG,
            ERR_SERVER_FULL,
            ERR_TOO_SLOW,
        ];
        for err in all {
            assert!(err.starts_with("ERR ") && err.ends_with('\n'), "{err:?}");
            assert_eq!(err.matches('\n').count(), 1, "{err:?}");
            assert!(err.split(' ').nth(2).is_some(), "no reason in {err:?}");
        }
    }
}
