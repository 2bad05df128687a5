//! The reader thread: shows each line from the server the moment it arrives, whatever the
//! user is doing, until the connection ends; then it ends the client.

use std::io::{self, BufRead, BufReader, Read};
use std::net::TcpStream;
use std::sync::mpsc::Sender;

use crate::protocol::{MAX_LINE, ServerLine, parse_server_line, sanitize, strip_line_end};
use crate::ui::{Line, Ui};

/// A server line longer than this (the contract's are at most about 1060 bytes) is shown in
/// pieces, so a broken server cannot make us buffer without end.
const MAX_RECEIVED: u64 = 4 * MAX_LINE as u64;

/// Shows what arrives; the answers to the probe that follows each name (see `chat::register`)
/// go to `answers_to_names` instead.
pub fn receive(
    ui: &Ui,
    mut from_server: BufReader<TcpStream>,
    answers_to_names: Sender<bool>,
) -> ! {
    let mut last = String::new();
    loop {
        let line = match read_server_line(&mut from_server) {
            Ok(Some(line)) => line,
            Ok(None) => closed(ui, &last, None),
            Err(e) => closed(ui, &last, Some(e)),
        };
        let parsed = parse_server_line(&line);
        match answer_to_name(&parsed) {
            // Only gone once the main thread is leaving too.
            Some(accepted) => {
                let _ = answers_to_names.send(accepted);
            }
            None => {
                ui.show(&shown(&parsed));
                last = line;
            }
        }
    }
}

/// The two refusals that only the probe after a name can cause: the client never sends an
/// empty message, nor a message before it has a name.
fn answer_to_name(line: &ServerLine) -> Option<bool> {
    match line {
        ServerLine::Err { code, .. } if code == "empty-message" => Some(true),
        ServerLine::Err { code, .. } if code == "not-registered" => Some(false),
        _ => None,
    }
}

fn shown(line: &ServerLine) -> Line<'_> {
    match line {
        ServerLine::Msg { name, text } => Line::Chat { name, text },
        ServerLine::Err { code, reason } => Line::ServerError { code, reason },
        ServerLine::Other(line) => Line::Other(line),
    }
}

/// The server ended the connection (or it broke). A server that closes on purpose says why in
/// its last line (`ERR too-slow ...`); in a terminal that line vanishes with the split screen,
/// so it is repeated on standard error.
pub fn closed(ui: &Ui, last: &str, error: Option<io::Error>) -> ! {
    let mut why = "connection closed by server".to_string();
    if let Some(e) = error {
        why.push_str(&format!(" ({e})"));
    }
    if last.starts_with("ERR ") {
        why.push_str(&format!("; its last line: {}", sanitize(last)));
    }
    ui.leave(1, &why)
}

/// One line from the server without its line end; `None` when the server closed. A line that
/// is not UTF-8 is shown with U+FFFD in place of the bad bytes.
fn read_server_line(from_server: &mut BufReader<TcpStream>) -> io::Result<Option<String>> {
    let mut bytes = Vec::new();
    let mut limited = from_server.by_ref().take(MAX_RECEIVED);
    if limited.read_until(b'\n', &mut bytes)? == 0 {
        return Ok(None);
    }
    strip_line_end(&mut bytes);
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}
