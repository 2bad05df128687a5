//! The line rules of the chat protocol: the longest line, valid names and texts, the ERR lines.

/// The longest line a client may send, not counting its CR/LF.
pub const MAX_LINE: usize = 1024;

/// The longest name, in bytes.
const MAX_NAME: usize = 32;

pub const ERR_INVALID_TEXT: &str =
    "ERR invalid-text lines must be UTF-8 without control characters\n";
pub const ERR_UNKNOWN_COMMAND: &str = "ERR unknown-command expected USER <name> or MSG <text>\n";
pub const ERR_ALREADY_REGISTERED: &str = "ERR already-registered you already have a name\n";
pub const ERR_INVALID_NAME: &str =
    "ERR invalid-name a name is 1 to 32 bytes, without spaces or control characters\n";
pub const ERR_NAME_TAKEN: &str = "ERR name-taken another client uses this name\n";
pub const ERR_NOT_REGISTERED: &str = "ERR not-registered send USER <name> first\n";
pub const ERR_EMPTY_MESSAGE: &str = "ERR empty-message there is nothing after MSG\n";
pub const ERR_LINE_TOO_LONG: &str = "ERR line-too-long a line is at most 1024 bytes; closing\n";
pub const ERR_SERVER_FULL: &str = "ERR server-full no thread left for a new client; closing\n";
pub const ERR_OUT_OF_FILES: &str =
    "ERR server-full no file descriptor left for a new client; closing\n";
pub const ERR_TOO_SLOW: &str =
    "ERR too-slow you stopped reading and fell too far behind; closing\n";

/// A name is 1 to 32 bytes, with no whitespace and no control characters.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A message text carries no control character (its emptiness is checked apart).
pub fn is_valid_text(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("alice"));
        assert!(is_valid_name("été"));
        assert!(is_valid_name(&"x".repeat(32)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"x".repeat(33)));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("a\tb"));
        assert!(!is_valid_name("a\u{7f}"));
    }

    #[test]
    fn texts() {
        assert!(is_valid_text("hello world"));
        assert!(!is_valid_text("bell\u{7}"));
        assert!(!is_valid_text("esc\u{1b}[2J"));
    }
}
