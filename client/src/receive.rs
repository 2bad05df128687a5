//! The reader thread: shows the lines from the server the moment they arrive, whatever the
//! user is doing, until the connection ends; then it ends the client.
//!
//! Lines are shown in batches: after waiting for one line, the thread takes every further
//! complete line already read into its buffer, and shows them all in one update. A quiet room
//! gives batches of one line, so nothing waits; a flood gives batches of hundreds, so the
//! screen is updated once per batch instead of once per line.

use std::io::{self, BufRead, BufReader, Read};
use std::net::TcpStream;
use std::sync::mpsc::SyncSender;

use crate::protocol::{MAX_LINE, ServerLine, parse_server_line, sanitize, strip_line_end};
use crate::ui::{Line, Ui};

/// A server line longer than this (the contract's are at most about 1060 bytes) is shown in
/// pieces, so a broken server cannot make us buffer without end.
const MAX_RECEIVED: u64 = 4 * MAX_LINE as u64;
/// What one `read` may bring at most; a batch never holds more than this and one line.
const READ_BUFFER: usize = 64 * 1024;
/// Lines per batch at most: more than any screen is tall, so a bigger batch would show
/// nothing more.
const MAX_BATCH: usize = 1000;

/// Shows what arrives. The answers to the probe that follows each name (see
/// `chat::register`) go to `answers_to_names` instead, until a name is taken; after that they
/// are shown like any other refusal (a server that sends them then is confused, or hostile).
pub fn receive(ui: &Ui, from_server: TcpStream, answers_to_names: SyncSender<bool>) -> ! {
    let mut from_server = BufReader::with_capacity(READ_BUFFER, from_server);
    let mut last = String::new();
    let mut registered = false;
    loop {
        let (batch, end) = read_batch(&mut from_server);
        let mut parsed = Vec::with_capacity(batch.len());
        for raw in &batch {
            let line = parse_server_line(raw);
            match answer_to_name(&line) {
                Some(accepted) if !registered => {
                    // The lines before the answer are shown before the main thread goes on.
                    show(ui, &parsed);
                    parsed.clear();
                    registered = accepted;
                    // Full: an answer no one asked for yet is waiting already; one is enough.
                    let _ = answers_to_names.try_send(accepted);
                }
                _ => {
                    parsed.push(line);
                    last.clone_from(raw);
                }
            }
        }
        show(ui, &parsed);
        if let Some(Closed(error)) = end {
            closed(ui, &last, error);
        }
    }
}

fn show(ui: &Ui, lines: &[ServerLine]) {
    if !lines.is_empty() {
        let shown: Vec<Line> = lines.iter().map(shown).collect();
        ui.show_all(&shown);
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

/// The connection ended: the server closed it (`None`), or it broke.
struct Closed(Option<io::Error>);

/// Waits for one line, then takes every further complete line already in the buffer (without
/// waiting), up to `MAX_BATCH`. When the connection ends, the lines that came before the end
/// come with the reason.
fn read_batch<R: Read>(from_server: &mut BufReader<R>) -> (Vec<String>, Option<Closed>) {
    let mut batch = Vec::new();
    loop {
        match read_server_line(from_server) {
            Ok(Some(line)) => batch.push(line),
            Ok(None) => return (batch, Some(Closed(None))),
            Err(e) => return (batch, Some(Closed(Some(e)))),
        }
        // The buffer holds the rest of the last read: a line end there means that the next
        // line is complete, and reading it will not wait for the network.
        if batch.len() == MAX_BATCH || !from_server.buffer().contains(&b'\n') {
            return (batch, None);
        }
    }
}

/// One line from the server without its line end; `None` when the server closed. A line that
/// is not UTF-8 is shown with U+FFFD in place of the bad bytes.
fn read_server_line<R: Read>(from_server: &mut BufReader<R>) -> io::Result<Option<String>> {
    let mut bytes = Vec::new();
    let mut limited = from_server.by_ref().take(MAX_RECEIVED);
    if limited.read_until(b'\n', &mut bytes)? == 0 {
        return Ok(None);
    }
    strip_line_end(&mut bytes);
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes in the pieces given, one piece per `read`, like a socket.
    struct Pieces(Vec<Vec<u8>>);

    impl Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let piece = self.0.remove(0);
            assert!(piece.len() <= buf.len());
            buf[..piece.len()].copy_from_slice(&piece);
            Ok(piece.len())
        }
    }

    fn reader(pieces: &[&[u8]]) -> BufReader<Pieces> {
        BufReader::new(Pieces(pieces.iter().map(|piece| piece.to_vec()).collect()))
    }

    #[test]
    fn a_batch_is_every_complete_line_of_one_read() {
        let mut from_server = reader(&[b"MSG a 1\nMSG b 2\nMSG c", b" 3\n"]);
        let (batch, end) = read_batch(&mut from_server);
        assert_eq!(batch, ["MSG a 1", "MSG b 2"]);
        assert!(end.is_none());
        // The cut line waits for the next read.
        let (batch, end) = read_batch(&mut from_server);
        assert_eq!(batch, ["MSG c 3"]);
        assert!(end.is_none());
        let (batch, end) = read_batch(&mut from_server);
        assert!(batch.is_empty());
        assert!(matches!(end, Some(Closed(None))));
    }

    #[test]
    fn a_batch_is_bounded() {
        let flood = "x\n".repeat(MAX_BATCH + 5);
        let mut from_server = reader(&[flood.as_bytes()]);
        assert_eq!(read_batch(&mut from_server).0.len(), MAX_BATCH);
        assert_eq!(read_batch(&mut from_server).0.len(), 5);
    }

    #[test]
    fn a_line_without_end_comes_in_bounded_pieces_then_with_the_close() {
        let long = vec![b'y'; MAX_RECEIVED as usize + 10];
        let mut from_server = reader(&[&long]);
        let (batch, end) = read_batch(&mut from_server);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].len(), MAX_RECEIVED as usize);
        assert!(end.is_none());
        let (batch, end) = read_batch(&mut from_server);
        assert_eq!(batch, ["y".repeat(10)]);
        assert!(end.is_none());
        let (batch, end) = read_batch(&mut from_server);
        assert!(batch.is_empty());
        assert!(matches!(end, Some(Closed(None))));
    }
}
