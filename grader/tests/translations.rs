//! The French course must not drift from the English one.
//!
//! `README.fr.md` and `exercises.fr.md` translate `README.md` and `exercises.md`. The prose is
//! free, but what a student types or reads back must be the same in both languages. For each
//! pair this test compares:
//! - the headings: the same levels in the same order (so the same count at each level);
//! - the fenced code blocks (commands, outputs, protocol lines): the same ones, byte for byte,
//!   in the same order;
//! - the link targets, in the same order. A link from one twin to the other is left out, and a
//!   French file links to the French twin of a translated file (`exercises.fr.md`, never
//!   `exercises.md`); the comparison reads such a target as the English name.
//!
//! The scanner below knows just enough markdown for these files: fences of three or more
//! backticks or tildes, ATX headings (`#` to `######`), inline links `[text](target)`, and
//! code spans, whose contents are not searched for links.

use std::fs;
use std::path::PathBuf;

/// Each English file and its French twin, relative to the repository's root.
const PAIRS: [(&str, &str); 2] = [
    ("README.md", "README.fr.md"),
    ("exercises.md", "exercises.fr.md"),
];

/// How many differing code blocks one failure lists (after an inserted block, every later
/// block differs too, and the first few say enough).
const MAX_BLOCKS_SHOWN: usize = 4;

/// How many lines of each block a failure shows.
const LINES_SHOWN: usize = 3;

struct Heading {
    level: usize,
    text: String,
    line: usize,
}

struct Block {
    /// The opening fence, every line inside, and the closing fence, each with its newline.
    text: String,
    /// The line of the opening fence, from 1.
    line: usize,
    /// The headings the block is under, outermost first ("## Step 3 > ### Measure (line 293)"),
    /// since a file has many sections of the same name.
    under: String,
}

struct Link {
    target: String,
    line: usize,
}

struct Doc {
    headings: Vec<Heading>,
    blocks: Vec<Block>,
    links: Vec<Link>,
}

/// An opening or closing fence: up to three spaces, then three or more '`' or '~'.
/// Returns the fence character and the length of the run.
fn fence(line: &str) -> Option<(char, usize)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let first = rest.chars().next()?;
    if first != '`' && first != '~' {
        return None;
    }
    let run = rest.len() - rest.trim_start_matches(first).len();
    if run < 3 {
        return None;
    }
    Some((first, run))
}

/// An ATX heading: up to three spaces, one to six '#', then a space or the end of the line.
fn heading(line: &str) -> Option<(usize, String)> {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let level = trimmed.len() - trimmed.trim_start_matches('#').len();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &trimmed[level..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    Some((level, trimmed.trim_end().to_string()))
}

fn scan(text: &str) -> Doc {
    let mut headings = Vec::new();
    let mut blocks = Vec::new();
    // The text outside code blocks, with each block's lines left empty so that line numbers
    // still match the file.
    let mut prose = String::new();
    let mut under = String::from("(top of file)");
    // The heading in force at each level, so that `under` names the whole path.
    let mut path: Vec<(usize, String)> = Vec::new();
    // The block being read: its fence, its text so far, its first line.
    let mut open: Option<((char, usize), String, usize)> = None;

    for (index, line) in text.split_inclusive('\n').enumerate() {
        let number = index + 1;
        let bare = line.trim_end_matches('\n').trim_end_matches('\r');
        if let Some(((ch, run), mut body, start)) = open.take() {
            body.push_str(line);
            prose.push('\n');
            // A closing fence has the same character, at least as long a run, and nothing after.
            let closes = match fence(bare) {
                Some((c, r)) => {
                    c == ch && r >= run && bare.trim().trim_start_matches(ch).is_empty()
                }
                None => false,
            };
            if closes {
                blocks.push(Block {
                    text: body,
                    line: start,
                    under: under.clone(),
                });
            } else {
                open = Some(((ch, run), body, start));
            }
            continue;
        }
        if let Some(found) = fence(bare) {
            open = Some((found, line.to_string(), number));
            prose.push('\n');
            continue;
        }
        if let Some((level, text)) = heading(bare) {
            path.retain(|(l, _)| *l < level);
            path.push((level, text.clone()));
            let names: Vec<&str> = path.iter().map(|(_, t)| t.as_str()).collect();
            under = format!("{} (line {number})", names.join(" > "));
            headings.push(Heading {
                level,
                text,
                line: number,
            });
        }
        prose.push_str(bare);
        prose.push('\n');
    }
    // A fence left open runs to the end of the file, as markdown renders it.
    if let Some((_, body, start)) = open {
        blocks.push(Block {
            text: body,
            line: start,
            under,
        });
    }
    Doc {
        headings,
        blocks,
        links: links(&prose),
    }
}

/// Every `](target)` outside code spans, in order, with its line.
fn links(prose: &str) -> Vec<Link> {
    let chars: Vec<char> = prose.chars().collect();
    let mut found = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        if c == '`' {
            let run = count_run(&chars, i, '`');
            if let Some(end) = closing_run(&chars, i + run, run) {
                line += chars[i..end].iter().filter(|&&c| c == '\n').count();
                i = end;
                continue;
            }
            i += run;
            continue;
        }
        if c == ']' && chars.get(i + 1) == Some(&'(') {
            let start = i + 2;
            let mut end = start;
            while end < chars.len() && !matches!(chars[end], ')' | ' ' | '\n') {
                end += 1;
            }
            found.push(Link {
                target: chars[start..end].iter().collect(),
                line,
            });
            i = end;
            continue;
        }
        i += 1;
    }
    found
}

fn count_run(chars: &[char], from: usize, c: char) -> usize {
    chars[from..].iter().take_while(|&&x| x == c).count()
}

/// Where the code span opened by `run` backticks ends: just after the next run of exactly
/// as many backticks.
fn closing_run(chars: &[char], from: usize, run: usize) -> Option<usize> {
    let mut i = from;
    while i < chars.len() {
        if chars[i] == '`' {
            let here = count_run(chars, i, '`');
            if here == run {
                return Some(i + here);
            }
            i += here;
        } else {
            i += 1;
        }
    }
    None
}

/// "# 1, ## 4, ### 20": how many headings at each level.
fn level_counts(headings: &[Heading]) -> String {
    let mut parts = Vec::new();
    for level in 1..=6 {
        let n = headings.iter().filter(|h| h.level == level).count();
        if n > 0 {
            parts.push(format!("{} {n}", "#".repeat(level)));
        }
    }
    parts.join(", ")
}

fn first_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().take(LINES_SHOWN + 1).collect();
    let mut shown = lines.join("\n      | ");
    if text.lines().count() > LINES_SHOWN + 1 {
        shown.push_str("\n      | ...");
    }
    format!("      | {shown}")
}

/// The line of two block texts that differs first, 1 being the opening fence.
fn first_difference(a: &str, b: &str) -> String {
    let mut a_lines = a.lines();
    let mut b_lines = b.lines();
    let mut n = 1;
    loop {
        match (a_lines.next(), b_lines.next()) {
            (Some(x), Some(y)) if x == y => n += 1,
            (Some(x), Some(y)) => return format!("line {n} of the block: {x:?} against {y:?}"),
            (Some(x), None) => return format!("line {n} of the block: {x:?} against nothing"),
            (None, Some(y)) => return format!("line {n} of the block: nothing against {y:?}"),
            // Same lines: they differ in a line ending or a final newline.
            (None, None) => return "line endings (CR/LF, or the last newline)".to_string(),
        }
    }
}

/// The target as the English file would write it: a translated file's French name becomes
/// its English name.
fn as_english(target: &str) -> String {
    let (path, anchor) = match target.find('#') {
        Some(at) => target.split_at(at),
        None => (target, ""),
    };
    for (english, french) in PAIRS {
        if path == french {
            return format!("{english}{anchor}");
        }
    }
    target.to_string()
}

fn path_of(target: &str) -> &str {
    target.split('#').next().unwrap_or(target)
}

/// Every way the French text `fr` drifted from the English `en`; empty when none did.
fn drift(en_name: &str, en_text: &str, fr_name: &str, fr_text: &str) -> Vec<String> {
    let en = scan(en_text);
    let fr = scan(fr_text);
    let mut problems = Vec::new();

    // Headings: the same sequence of levels.
    let en_levels: Vec<usize> = en.headings.iter().map(|h| h.level).collect();
    let fr_levels: Vec<usize> = fr.headings.iter().map(|h| h.level).collect();
    if en_levels != fr_levels {
        let at = en_levels
            .iter()
            .zip(&fr_levels)
            .take_while(|(a, b)| a == b)
            .count();
        let show = |doc: &Doc, name: &str| match doc.headings.get(at) {
            Some(h) => format!("{name} line {}: {}", h.line, h.text),
            None => format!("{name}: no heading left"),
        };
        problems.push(format!(
            "headings differ: {en_name} has {} ({}), {fr_name} has {} ({}); heading {} differs:\n    {}\n    {}",
            en.headings.len(),
            level_counts(&en.headings),
            fr.headings.len(),
            level_counts(&fr.headings),
            at + 1,
            show(&en, en_name),
            show(&fr, fr_name),
        ));
    }

    // Code blocks: byte for byte, in order.
    let mut shown = 0;
    for i in 0..en.blocks.len().max(fr.blocks.len()) {
        let (a, b) = (en.blocks.get(i), fr.blocks.get(i));
        let same = match (a, b) {
            (Some(a), Some(b)) => a.text == b.text,
            _ => false,
        };
        if same {
            continue;
        }
        if shown == MAX_BLOCKS_SHOWN {
            problems.push("    (more code blocks differ after these)".to_string());
            break;
        }
        shown += 1;
        let describe = |block: Option<&Block>, name: &str| match block {
            Some(b) => format!(
                "  {name} line {} (under {:?}):\n{}",
                b.line,
                b.under,
                first_lines(&b.text)
            ),
            None => format!("  {name}: no code block {}", i + 1),
        };
        let detail = match (a, b) {
            (Some(a), Some(b)) => format!(
                "\n  first difference: {}",
                first_difference(&a.text, &b.text)
            ),
            _ => String::new(),
        };
        problems.push(format!(
            "code block {} differs ({en_name} has {} blocks, {fr_name} has {}):\n{}\n{}{detail}",
            i + 1,
            en.blocks.len(),
            fr.blocks.len(),
            describe(a, en_name),
            describe(b, fr_name),
        ));
    }

    // Links: the same targets in order, twin links left out.
    for link in &fr.links {
        let path = path_of(&link.target);
        for (english, french) in PAIRS {
            if path == english && english != en_name {
                problems.push(format!(
                    "{fr_name} line {}: links to {}; a French file links to {french}",
                    link.line, link.target
                ));
            }
        }
    }
    let en_links: Vec<&Link> = en
        .links
        .iter()
        .filter(|l| path_of(&l.target) != fr_name)
        .collect();
    let fr_links: Vec<&Link> = fr
        .links
        .iter()
        .filter(|l| path_of(&l.target) != en_name)
        .collect();
    let en_targets: Vec<String> = en_links.iter().map(|l| l.target.clone()).collect();
    let fr_targets: Vec<String> = fr_links.iter().map(|l| as_english(&l.target)).collect();
    if en_targets != fr_targets {
        let at = en_targets
            .iter()
            .zip(&fr_targets)
            .take_while(|(a, b)| a == b)
            .count();
        let show = |list: &[&Link], name: &str| match list.get(at) {
            Some(l) => format!("{name} line {}: ({})", l.line, l.target),
            None => format!("{name}: no link left"),
        };
        problems.push(format!(
            "links differ: {en_name} has {}, {fr_name} has {} (twin links left out); link {} differs:\n    {}\n    {}",
            en_links.len(),
            fr_links.len(),
            at + 1,
            show(&en_links, en_name),
            show(&fr_links, fr_name),
        ));
    }

    // Each twin links to the other.
    if !en.links.iter().any(|l| path_of(&l.target) == fr_name) {
        problems.push(format!(
            "{en_name} has no link to its French twin {fr_name}"
        ));
    }
    if !fr.links.iter().any(|l| path_of(&l.target) == en_name) {
        problems.push(format!("{fr_name} has no link back to {en_name}"));
    }
    problems
}

fn read(name: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join(name);
    match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}

fn check_pair(en_name: &str, fr_name: &str) {
    let problems = drift(en_name, &read(en_name), fr_name, &read(fr_name));
    assert!(
        problems.is_empty(),
        "{fr_name} has drifted from {en_name}; update the translation:\n\n{}\n",
        problems.join("\n\n")
    );
}

#[test]
fn readme_fr_follows_readme() {
    let (en, fr) = PAIRS[0];
    check_pair(en, fr);
}

#[test]
fn exercises_fr_follows_exercises() {
    let (en, fr) = PAIRS[1];
    check_pair(en, fr);
}

// The scanner on small texts: what must be reported, and what must not.

const EN: &str = "\
*[fr](README.fr.md)*
# Title
Read [the protocol](PROTOCOL.md) and [`exercises.md`](exercises.md).
## Run
```
make test
# not a heading
```
## Measure
~~~
./target/release/loadgen churn --duration 5
~~~
";

#[test]
fn a_faithful_translation_passes() {
    let fr = "\
*[en](README.md)*
# Titre
Lisez [le protocole](PROTOCOL.md) (`a](b)` n'est pas un lien)
et [`exercises.fr.md`](exercises.fr.md).
## Lancer
```
make test
# not a heading
```
## Mesurer
~~~
./target/release/loadgen churn --duration 5
~~~
";
    let problems = drift("README.md", EN, "README.fr.md", fr);
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn a_changed_command_names_the_block_and_its_heading() {
    let fr = EN
        .replace("[fr](README.fr.md)", "[en](README.md)")
        .replace("exercises.md", "exercises.fr.md")
        .replace("# Title", "# Titre")
        .replace("## Measure", "## Mesurer")
        .replace("--duration 5", "--duration 10");
    let problems = drift("README.md", EN, "README.fr.md", &fr);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let message = &problems[0];
    for part in [
        "code block 2 differs",
        "under \"# Title > ## Measure (line 9)\"",
        "under \"# Titre > ## Mesurer (line 9)\"",
        "--duration 5",
        "--duration 10",
        "line 2 of the block",
    ] {
        assert!(message.contains(part), "{part:?} missing from:\n{message}");
    }
}

#[test]
fn a_missing_heading_and_a_changed_link_are_reported() {
    let fr = EN
        .replace("[fr](README.fr.md)", "[en](README.md)")
        .replace("exercises.md", "exercises.fr.md")
        .replace("## Run\n", "Run\n")
        .replace("(PROTOCOL.md)", "(grader/README.md)");
    let problems = drift("README.md", EN, "README.fr.md", &fr).join("\n");
    assert!(problems.contains("headings differ"), "{problems}");
    assert!(problems.contains("# 1, ## 2"), "{problems}");
    assert!(problems.contains("# 1, ## 1"), "{problems}");
    assert!(problems.contains("links differ"), "{problems}");
    assert!(problems.contains("(grader/README.md)"), "{problems}");
}

#[test]
fn a_french_file_links_to_french_twins_and_back() {
    let fr = EN.replace("[fr](README.fr.md)", "no link back");
    let problems = drift("README.md", EN, "README.fr.md", &fr).join("\n");
    assert!(
        problems.contains("a French file links to exercises.fr.md"),
        "{problems}"
    );
    assert!(problems.contains("no link back to README.md"), "{problems}");
}
