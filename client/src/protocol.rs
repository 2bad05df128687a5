//! The client's side of the contract (PROTOCOL.md): what a server line means, which names and
//! texts may be sent, and how to show untrusted text without letting it drive the terminal.

/// Longest line on the wire, not counting CR/LF.
pub const MAX_LINE: usize = 1024;
/// Longest name, in bytes.
pub const MAX_NAME: usize = 32;
/// Longest text a `MSG <text>` line can carry.
pub const MAX_TEXT: usize = MAX_LINE - "MSG ".len();

/// One line received from the server.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerLine {
    /// `MSG <name> <text>`: someone else spoke.
    Msg { name: String, text: String },
    /// `ERR <code> <reason>`: our last line was refused.
    Err { code: String, reason: String },
    /// Anything else, shown as it is (after sanitising).
    Other(String),
}

/// Splits a server line (without its LF; a trailing CR is dropped here) into its parts.
pub fn parse_server_line(line: &str) -> ServerLine {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if let Some(rest) = line.strip_prefix("MSG ")
        && let Some((name, text)) = rest.split_once(' ')
        && !name.is_empty()
    {
        return ServerLine::Msg {
            name: name.to_string(),
            text: text.to_string(),
        };
    }
    if let Some(rest) = line.strip_prefix("ERR ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if !code.is_empty() {
            return ServerLine::Err {
                code: code.to_string(),
                reason: reason.to_string(),
            };
        }
    }
    ServerLine::Other(line.to_string())
}

/// Drops a line's LF, and a CR before it (netcat, telnet and Windows send CR LF).
pub fn strip_line_end(bytes: &mut Vec<u8>) {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
}

/// Checks a name against the contract; the error says what is wrong, for the user.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a name cannot be empty".to_string());
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "a name is at most {MAX_NAME} bytes; that one is {}",
            name.len()
        ));
    }
    if name.chars().any(char::is_whitespace) {
        return Err("a name cannot contain spaces".to_string());
    }
    if name.chars().any(char::is_control) {
        return Err("a name cannot contain control characters".to_string());
    }
    Ok(())
}

/// Checks a non-empty text before it is sent as `MSG <text>`.
pub fn check_text(text: &str) -> Result<(), String> {
    if text.len() > MAX_TEXT {
        return Err(format!(
            "not sent: the line is {} bytes, the limit is {MAX_TEXT}",
            text.len()
        ));
    }
    if text.chars().any(char::is_control) {
        // From a pipe, a Tab or an escape sequence can be in the line (the line editor never
        // puts one there); the server would refuse it (`ERR invalid-text`), so say it here.
        return Err("not sent: the line contains control characters".to_string());
    }
    Ok(())
}

/// Makes text from the network safe to print: every character that a terminal would treat as
/// a command becomes visible, so a message cannot clear the screen, move the cursor, set the
/// window title, or hide what follows it; and no invisible character can make two different
/// texts look the same.
///
/// - C0 controls and DEL in caret notation, as `cat -v` does: ESC is `^[`, BEL `^G`, DEL `^?`.
/// - C1 controls (U+0080..U+009F; U+009B alone starts a command on some terminals) as
///   `<U+XXXX>`.
/// - The invisible characters of `is_invisible` as `<U+XXXX>` too: with them shown,
///   `a<U+200B>b` cannot pass for `ab`, nor a reversed text for a normal one.
pub fn sanitize(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        let code = u32::from(c);
        if code < 0x20 || code == 0x7f {
            shown.push('^');
            shown.push(char::from((code as u8) ^ 0x40));
        } else if (0x80..=0x9f).contains(&code) || is_invisible(c) {
            shown.push_str(&format!("<U+{code:04X}>"));
        } else {
            shown.push(c);
        }
    }
    shown
}

/// Characters that draw nothing yet change what a reader sees: the bidirectional controls
/// (Bidi_Control in Unicode's PropList.txt: U+061C, U+200E, U+200F, the embeddings and
/// overrides U+202A..U+202E and the isolates U+2066..U+2069), which can make text read in
/// another order than it is written; and the zero-width space U+200B, the word joiner and
/// invisible operators U+2060..U+2064, and the byte order mark U+FEFF, which hide inside a
/// word. (The joiners U+200C and U+200D stay: emoji sequences need them.)
pub fn is_invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x061c | 0x200b | 0x200e | 0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x2069 | 0xfeff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(name: &str, text: &str) -> ServerLine {
        ServerLine::Msg {
            name: name.to_string(),
            text: text.to_string(),
        }
    }

    fn err(code: &str, reason: &str) -> ServerLine {
        ServerLine::Err {
            code: code.to_string(),
            reason: reason.to_string(),
        }
    }

    #[test]
    fn parses_messages() {
        assert_eq!(parse_server_line("MSG bob hi"), msg("bob", "hi"));
        assert_eq!(
            parse_server_line("MSG bob hi there  "),
            msg("bob", "hi there  ")
        );
        assert_eq!(parse_server_line("MSG bob hi\r"), msg("bob", "hi"));
        // The text may itself start with a space or be empty: it is everything after one space.
        assert_eq!(parse_server_line("MSG bob  x"), msg("bob", " x"));
        assert_eq!(parse_server_line("MSG bob "), msg("bob", ""));
    }

    #[test]
    fn parses_errors() {
        assert_eq!(
            parse_server_line("ERR name-taken that name is in use"),
            err("name-taken", "that name is in use")
        );
        assert_eq!(parse_server_line("ERR too-slow"), err("too-slow", ""));
    }

    #[test]
    fn anything_else_is_other() {
        for line in [
            "",
            "MSG",
            "MSG bob",
            "MSG  hi",
            "ERR",
            "ERR ",
            "msg bob hi",
            "hello",
        ] {
            assert_eq!(
                parse_server_line(line),
                ServerLine::Other(line.to_string()),
                "{line:?}"
            );
        }
    }

    #[test]
    fn checks_names() {
        assert!(check_name("alice").is_ok());
        assert!(check_name("é").is_ok());
        assert!(check_name(&"a".repeat(MAX_NAME)).is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(&"a".repeat(MAX_NAME + 1)).is_err());
        // 11 three-byte characters: 33 bytes, although only 11 characters.
        assert!(check_name(&"€".repeat(11)).is_err());
        assert!(check_name("al ice").is_err());
        assert!(check_name("al\tice").is_err());
        assert!(check_name("al\u{a0}ice").is_err());
        assert!(check_name("al\u{1b}ice").is_err());
        assert!(check_name("al\u{9b}ice").is_err());
    }

    #[test]
    fn checks_texts() {
        assert!(check_text("hello world").is_ok());
        assert!(check_text("   ").is_ok());
        assert!(check_text(&"x".repeat(MAX_TEXT)).is_ok());
        assert!(check_text(&"x".repeat(MAX_TEXT + 1)).is_err());
        assert!(check_text("a\tb").is_err());
        assert!(check_text("up\u{1b}[A").is_err());
    }

    #[test]
    fn sanitize_keeps_ordinary_text() {
        assert_eq!(sanitize("hello, wörld ✓ 日本"), "hello, wörld ✓ 日本");
    }

    #[test]
    fn sanitize_shows_c0_controls_and_del_in_caret_notation() {
        assert_eq!(sanitize("\u{1b}[2J"), "^[[2J");
        assert_eq!(sanitize("a\u{7}b\u{0}c\u{7f}"), "a^Gb^@c^?");
        assert_eq!(sanitize("\r\n\t"), "^M^J^I");
        assert_eq!(sanitize("\u{1b}]0;pwned\u{7}"), "^[]0;pwned^G");
    }

    #[test]
    fn sanitize_shows_invisible_characters() {
        assert_eq!(sanitize("a\u{200b}b"), "a<U+200B>b");
        assert_eq!(sanitize("\u{feff}x\u{2060}y"), "<U+FEFF>x<U+2060>y");
        assert_eq!(sanitize("\u{200e}\u{200f}"), "<U+200E><U+200F>");
        // An emoji family is joined by U+200D, which stays as it is.
        assert_eq!(sanitize("👩\u{200d}👧"), "👩\u{200d}👧");
    }

    #[test]
    fn sanitize_shows_c1_and_bidi_controls_as_code_points() {
        assert_eq!(sanitize("\u{9b}2J"), "<U+009B>2J");
        assert_eq!(sanitize("\u{80}\u{9f}"), "<U+0080><U+009F>");
        assert_eq!(sanitize("abc\u{202e}fed"), "abc<U+202E>fed");
        assert_eq!(sanitize("\u{2066}x\u{2069}"), "<U+2066>x<U+2069>");
    }

    #[test]
    fn sanitized_text_holds_no_control_character() {
        let every_char: String = (0..0x1_0000).filter_map(char::from_u32).collect();
        let shown = sanitize(&every_char);
        assert!(!shown.chars().any(|c| c.is_control() || is_invisible(c)));
    }
}
