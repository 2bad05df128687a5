//! The line being typed, edited the way readline and linenoise do it: a buffer of characters,
//! a cursor, a history of the lines sent, and the names to complete. It does no I/O at all:
//! `apply` takes a key and says what came of it, `view` says what the input row shows. So it
//! is tested here with plain asserts, and `ui.rs` only has to paint what `view` returns.

use std::collections::VecDeque;

use crate::keys::Key;
use crate::protocol::{check_name, is_invisible};
use crate::width::char_width;

/// The longest line the editor holds, in characters: well over what one `MSG` may carry (1020
/// bytes), so that an overlong paste is refused on Enter, with its length, instead of being
/// cut without a word and sent; and a bound on memory (16 KiB) whatever is pasted.
pub const MAX_DRAFT: usize = 4096;
/// Lines kept for Up and Down.
pub const MAX_HISTORY: usize = 100;
/// Names kept for Tab: the most recent speakers.
pub const MAX_NAMES: usize = 200;

/// What a key did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to show (a key with nothing to do here, such as Left at the start).
    Unchanged,
    /// The line or the cursor changed: paint the input row again.
    Edited,
    /// Enter: this line was typed (the editor is empty again).
    Submit(String),
    /// Ctrl-D on an empty line.
    Leave,
    /// Tab had several names to offer: show them.
    Candidates(Vec<String>),
    /// Ctrl-L: paint the whole screen again.
    Redraw,
}

/// What the input row shows: `text` fits in the row, and the cursor is `cursor` columns from
/// its left edge.
#[derive(Debug, PartialEq, Eq)]
pub struct View {
    pub text: String,
    pub cursor: usize,
}

#[derive(Default)]
pub struct Editor {
    line: Vec<char>,
    /// Index into `line`: the cursor is before `line[cursor]`, or at the end.
    cursor: usize,
    /// Lines sent, oldest first.
    history: VecDeque<String>,
    /// While going through the history with Up and Down: which entry is shown...
    browsing: Option<usize>,
    /// ...and the line that was being typed before, which Down past the newest brings back.
    stashed: Vec<char>,
}

impl Editor {
    /// The line as it is now.
    #[cfg(test)]
    fn text(&self) -> String {
        self.line.iter().collect()
    }

    pub fn apply(&mut self, key: Key, names: &Names) -> Outcome {
        match key {
            Key::Char(c) => self.insert(c),
            Key::Enter => return Outcome::Submit(self.submit()),
            Key::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.line.remove(self.cursor);
            }
            Key::Delete if self.cursor < self.line.len() => {
                self.line.remove(self.cursor);
            }
            Key::CtrlD if self.line.is_empty() => return Outcome::Leave,
            Key::CtrlD if self.cursor < self.line.len() => {
                self.line.remove(self.cursor);
            }
            Key::Left if self.cursor > 0 => self.cursor -= 1,
            Key::Right if self.cursor < self.line.len() => self.cursor += 1,
            Key::WordLeft if self.cursor > 0 => self.cursor = self.word_start(),
            Key::WordRight if self.cursor < self.line.len() => self.cursor = self.word_end(),
            Key::Home if self.cursor > 0 => self.cursor = 0,
            Key::End if self.cursor < self.line.len() => self.cursor = self.line.len(),
            Key::KillToStart if self.cursor > 0 => {
                self.line.drain(..self.cursor);
                self.cursor = 0;
            }
            Key::KillToEnd if self.cursor < self.line.len() => self.line.truncate(self.cursor),
            Key::KillWord if self.cursor > 0 => {
                let start = self.word_start();
                self.line.drain(start..self.cursor);
                self.cursor = start;
            }
            Key::Up => return self.older(),
            Key::Down => return self.newer(),
            Key::Tab => return self.complete(names),
            Key::Redraw => return Outcome::Redraw,
            _ => return Outcome::Unchanged,
        }
        Outcome::Edited
    }

    fn insert(&mut self, c: char) {
        if c.is_control() || self.line.len() == MAX_DRAFT {
            return;
        }
        self.line.insert(self.cursor, c);
        self.cursor += 1;
    }

    /// Empties the editor and returns what it held; a line that is not empty, nor the same
    /// as the last one, goes into the history.
    fn submit(&mut self) -> String {
        let text: String = self.line.drain(..).collect();
        self.cursor = 0;
        self.browsing = None;
        self.stashed.clear();
        if !text.is_empty() && self.history.back() != Some(&text) {
            if self.history.len() == MAX_HISTORY {
                self.history.pop_front();
            }
            self.history.push_back(text.clone());
        }
        text
    }

    /// Where the word before the cursor starts: skip spaces, then non-spaces (as Ctrl-W does
    /// in a shell).
    fn word_start(&self) -> usize {
        let mut at = self.cursor;
        while at > 0 && self.line[at - 1] == ' ' {
            at -= 1;
        }
        while at > 0 && self.line[at - 1] != ' ' {
            at -= 1;
        }
        at
    }

    fn word_end(&self) -> usize {
        let mut at = self.cursor;
        while at < self.line.len() && self.line[at] == ' ' {
            at += 1;
        }
        while at < self.line.len() && self.line[at] != ' ' {
            at += 1;
        }
        at
    }

    /// Up: the line sent before the one shown.
    fn older(&mut self) -> Outcome {
        let shown = match self.browsing {
            None if self.history.is_empty() => return Outcome::Unchanged,
            None => {
                self.stashed = std::mem::take(&mut self.line);
                self.history.len() - 1
            }
            Some(0) => return Outcome::Unchanged,
            Some(at) => at - 1,
        };
        self.show_entry(Some(shown));
        Outcome::Edited
    }

    /// Down: the line sent after the one shown, or back to what was being typed.
    fn newer(&mut self) -> Outcome {
        match self.browsing {
            None => return Outcome::Unchanged,
            Some(at) if at + 1 < self.history.len() => self.show_entry(Some(at + 1)),
            Some(_) => self.show_entry(None),
        }
        Outcome::Edited
    }

    fn show_entry(&mut self, entry: Option<usize>) {
        self.browsing = entry;
        self.line = match entry {
            Some(at) => self.history[at].chars().collect(),
            None => std::mem::take(&mut self.stashed),
        };
        self.cursor = self.line.len();
    }

    /// Tab: completes the word before the cursor to the one name that starts with it (case
    /// aside), followed by ": " at the start of the line, as IRC clients do, or a space
    /// elsewhere. With several such names, they are listed instead; with an empty word, all.
    fn complete(&mut self, names: &Names) -> Outcome {
        let start = self.word_start_no_spaces();
        let word: String = self.line[start..self.cursor].iter().collect();
        let mut matches = names.starting_with(&word);
        match matches.len() {
            0 => Outcome::Unchanged,
            1 if !word.is_empty() => {
                let suffix = if start == 0 { ": " } else { " " };
                let name = matches.remove(0);
                let completed: Vec<char> = name.chars().chain(suffix.chars()).collect();
                let added = completed.len();
                if self.line.len() - (self.cursor - start) + added > MAX_DRAFT {
                    return Outcome::Unchanged;
                }
                self.line.splice(start..self.cursor, completed);
                self.cursor = start + added;
                Outcome::Edited
            }
            _ => {
                matches.sort();
                Outcome::Candidates(matches)
            }
        }
    }

    /// The start of the word touching the cursor on its left (empty if a space is there).
    fn word_start_no_spaces(&self) -> usize {
        let mut at = self.cursor;
        while at > 0 && self.line[at - 1] != ' ' {
            at -= 1;
        }
        at
    }

    /// The part of the line a row of `width` columns shows: all of it if it fits, else the
    /// part around the cursor, so the cursor is always on screen. The last column is never
    /// written (the cursor can stand there): a character there would make some terminals wrap
    /// to the next row. Invisible characters are shown as `<U+XXXX>`, as in messages.
    pub fn view(&self, width: usize) -> View {
        let room = width.saturating_sub(1).max(1);
        let cells: Vec<(String, usize)> = self.line.iter().map(|&c| cell(c)).collect();
        // Walk left from the cursor while the characters still fit: where the row starts.
        let mut start = self.cursor;
        let mut cursor = 0;
        while start > 0 && cursor + cells[start - 1].1 <= room {
            start -= 1;
            cursor += cells[start].1;
        }
        let mut text = String::new();
        let mut used = 0;
        for (shown, width) in &cells[start..] {
            if used + width > room {
                break;
            }
            text.push_str(shown);
            used += width;
        }
        View { text, cursor }
    }
}

/// How one character of the line is shown, and its width in columns.
fn cell(c: char) -> (String, usize) {
    if is_invisible(c) {
        let shown = format!("<U+{:04X}>", u32::from(c));
        let width = shown.len();
        (shown, width)
    } else {
        (c.to_string(), char_width(c))
    }
}

/// The names seen in the room, most recent last, for Tab. Only names the contract allows are
/// kept (a server could send anything), and at most `MAX_NAMES` of them.
#[derive(Default)]
pub struct Names {
    recent: VecDeque<String>,
}

impl Names {
    pub fn seen(&mut self, name: &str) {
        if check_name(name).is_err() {
            return;
        }
        if let Some(at) = self.recent.iter().position(|known| known == name) {
            self.recent.remove(at);
        } else if self.recent.len() == MAX_NAMES {
            self.recent.pop_front();
        }
        self.recent.push_back(name.to_string());
    }

    fn starting_with(&self, prefix: &str) -> Vec<String> {
        let prefix = prefix.to_lowercase();
        self.recent
            .iter()
            .filter(|name| name.to_lowercase().starts_with(&prefix))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> Editor {
        let mut editor = Editor::default();
        type_text(&mut editor, text);
        editor
    }

    fn type_text(editor: &mut Editor, text: &str) {
        for c in text.chars() {
            editor.apply(Key::Char(c), &Names::default());
        }
    }

    fn press(editor: &mut Editor, keys: &[Key]) {
        for key in keys {
            editor.apply(key.clone(), &Names::default());
        }
    }

    /// The line with `|` at the cursor.
    fn shown(editor: &Editor) -> String {
        let mut text = editor.line.clone();
        text.insert(editor.cursor, '|');
        text.into_iter().collect()
    }

    #[test]
    fn typing_inserts_at_the_cursor() {
        let mut editor = typed("helo wrld");
        press(&mut editor, &[Key::Left, Key::Left, Key::Left]);
        type_text(&mut editor, "o");
        press(
            &mut editor,
            &[Key::Home, Key::Right, Key::Right, Key::Right],
        );
        type_text(&mut editor, "l");
        assert_eq!(shown(&editor), "hell|o world");
        press(&mut editor, &[Key::End]);
        assert_eq!(shown(&editor), "hello world|");
    }

    #[test]
    fn backspace_delete_and_ctrl_d() {
        let mut editor = typed("abcd");
        press(&mut editor, &[Key::Backspace]);
        assert_eq!(shown(&editor), "abc|");
        press(&mut editor, &[Key::Home, Key::Delete]);
        assert_eq!(shown(&editor), "|bc");
        assert_eq!(editor.apply(Key::CtrlD, &Names::default()), Outcome::Edited);
        assert_eq!(shown(&editor), "|c");
        // At the start, Backspace does nothing; at the end, Delete and Ctrl-D neither.
        assert_eq!(
            editor.apply(Key::Backspace, &Names::default()),
            Outcome::Unchanged
        );
        press(&mut editor, &[Key::End]);
        assert_eq!(
            editor.apply(Key::CtrlD, &Names::default()),
            Outcome::Unchanged
        );
        assert_eq!(shown(&editor), "c|");
        press(&mut editor, &[Key::Backspace]);
        assert_eq!(editor.apply(Key::CtrlD, &Names::default()), Outcome::Leave);
    }

    #[test]
    fn kill_keys() {
        let mut editor = typed("one two  three");
        press(&mut editor, &[Key::KillWord]);
        assert_eq!(shown(&editor), "one two  |");
        press(&mut editor, &[Key::KillWord]);
        assert_eq!(shown(&editor), "one |");
        type_text(&mut editor, "four five");
        press(&mut editor, &[Key::WordLeft, Key::KillToEnd]);
        assert_eq!(shown(&editor), "one four |");
        press(&mut editor, &[Key::Left, Key::KillToStart]);
        assert_eq!(shown(&editor), "| ");
        press(&mut editor, &[Key::WordRight]);
        assert_eq!(shown(&editor), " |");
    }

    #[test]
    fn enter_submits_and_empties() {
        let mut editor = typed("hi");
        press(&mut editor, &[Key::Left]);
        assert_eq!(
            editor.apply(Key::Enter, &Names::default()),
            Outcome::Submit("hi".to_string())
        );
        assert_eq!(shown(&editor), "|");
        assert_eq!(
            editor.apply(Key::Enter, &Names::default()),
            Outcome::Submit(String::new())
        );
    }

    #[test]
    fn up_and_down_go_through_the_history_and_back_to_the_draft() {
        let mut editor = Editor::default();
        for line in ["first", "second", "second", "third"] {
            type_text(&mut editor, line);
            press(&mut editor, &[Key::Enter]);
        }
        type_text(&mut editor, "draft");
        press(&mut editor, &[Key::Up]);
        assert_eq!(shown(&editor), "third|");
        press(&mut editor, &[Key::Up, Key::Up]);
        assert_eq!(shown(&editor), "first|", "a repeated line is kept once");
        assert_eq!(editor.apply(Key::Up, &Names::default()), Outcome::Unchanged);
        press(&mut editor, &[Key::Down]);
        assert_eq!(shown(&editor), "second|");
        press(&mut editor, &[Key::Down, Key::Down]);
        assert_eq!(shown(&editor), "draft|");
        assert_eq!(
            editor.apply(Key::Down, &Names::default()),
            Outcome::Unchanged
        );
        press(&mut editor, &[Key::Up, Key::Up]);
        assert_eq!(
            editor.apply(Key::Enter, &Names::default()),
            Outcome::Submit("second".to_string())
        );
    }

    #[test]
    fn the_history_and_the_line_are_bounded() {
        let mut editor = Editor::default();
        for n in 0..MAX_HISTORY + 10 {
            type_text(&mut editor, &n.to_string());
            press(&mut editor, &[Key::Enter]);
        }
        assert_eq!(editor.history.len(), MAX_HISTORY);
        assert_eq!(editor.history[0], "10");
        type_text(&mut editor, &"€".repeat(MAX_DRAFT + 10));
        assert_eq!(editor.text(), "€".repeat(MAX_DRAFT));
    }

    #[test]
    fn control_characters_are_never_inserted() {
        let editor = typed("a\u{1b}b\u{9b}c");
        assert_eq!(editor.text(), "abc");
    }

    #[test]
    fn tab_completes_a_name() {
        let mut names = Names::default();
        for name in ["bob", "Carol", "bobby", "bad name", "\u{1b}evil"] {
            names.seen(name);
        }
        let mut editor = typed("c");
        assert_eq!(editor.apply(Key::Tab, &names), Outcome::Edited);
        assert_eq!(shown(&editor), "Carol: |");
        type_text(&mut editor, "hi b");
        assert_eq!(
            editor.apply(Key::Tab, &names),
            Outcome::Candidates(vec!["bob".to_string(), "bobby".to_string()])
        );
        type_text(&mut editor, "obb");
        assert_eq!(editor.apply(Key::Tab, &names), Outcome::Edited);
        assert_eq!(shown(&editor), "Carol: hi bobby |");
        assert_eq!(
            editor.apply(Key::Tab, &names),
            Outcome::Candidates(vec![
                "Carol".to_string(),
                "bob".to_string(),
                "bobby".to_string()
            ])
        );
        type_text(&mut editor, "x");
        assert_eq!(editor.apply(Key::Tab, &names), Outcome::Unchanged);
    }

    #[test]
    fn names_are_bounded_and_most_recent_last() {
        let mut names = Names::default();
        for n in 0..MAX_NAMES + 5 {
            names.seen(&format!("user{n}"));
        }
        names.seen("user10");
        assert_eq!(names.recent.len(), MAX_NAMES);
        assert_eq!(names.recent.back().map(String::as_str), Some("user10"));
        assert!(!names.recent.contains(&"user0".to_string()));
    }

    #[test]
    fn a_short_line_is_shown_whole() {
        let mut editor = typed("hello");
        assert_eq!(
            editor.view(80),
            View {
                text: "hello".to_string(),
                cursor: 5
            }
        );
        press(&mut editor, &[Key::Home]);
        assert_eq!(editor.view(80).cursor, 0);
    }

    #[test]
    fn a_long_line_shows_the_part_around_the_cursor() {
        let line: String = (0..200)
            .map(|n| char::from(b'a' + (n % 26) as u8))
            .collect();
        let mut editor = typed(&line);
        // At the end: the last 79 characters, and the cursor in the last column.
        let view = editor.view(80);
        assert_eq!(view.text, line[121..]);
        assert_eq!(view.cursor, 79);
        // At the start: the first 79.
        press(&mut editor, &[Key::Home]);
        let view = editor.view(80);
        assert_eq!(view.text, line[..79]);
        assert_eq!(view.cursor, 0);
        // And the line is sent whole.
        assert_eq!(
            editor.apply(Key::Enter, &Names::default()),
            Outcome::Submit(line)
        );
    }

    #[test]
    fn wide_characters_take_two_columns_and_are_never_cut() {
        let mut editor = typed("日本語");
        assert_eq!(editor.view(80).cursor, 6);
        press(&mut editor, &[Key::Left]);
        assert_eq!(editor.view(80).cursor, 4);
        // A row of 6 columns has room for 5: two wide characters and the cursor.
        press(&mut editor, &[Key::End]);
        assert_eq!(
            editor.view(6),
            View {
                text: "本語".to_string(),
                cursor: 4
            }
        );
        press(&mut editor, &[Key::Home]);
        assert_eq!(
            editor.view(6),
            View {
                text: "日本".to_string(),
                cursor: 0
            }
        );
    }

    #[test]
    fn invisible_characters_are_shown() {
        let editor = typed("a\u{200b}b");
        assert_eq!(
            editor.view(80),
            View {
                text: "a<U+200B>b".to_string(),
                cursor: 10
            }
        );
        assert_eq!(editor.text(), "a\u{200b}b");
    }
}
