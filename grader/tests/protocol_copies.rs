//! Every step carries its own `src/protocol.rs` (a student reads one folder), and the four
//! copies must stay the same, byte for byte: the steps differ in how they move bytes, not in
//! what the bytes mean. This test fails when one copy differs from step 1's, or is missing.

use std::fs;
use std::path::{Path, PathBuf};

/// The copy the others are compared with.
const REFERENCE: &str = "step1_naive";
/// Every step that must carry a copy.
const STEPS: [&str; 4] = ["step1_naive", "step2_threads", "step3_pool", "step4_poll"];
/// How to put the copies back in line, from the workspace root (as protocol.rs's header says).
const RESYNC: &str = "for s in step*/src; do cp step1_naive/src/protocol.rs $s/; done";

fn protocol_path(root: &Path, step: &str) -> PathBuf {
    root.join(step).join("src").join("protocol.rs")
}

/// The first line (1-based) where `a` and `b` differ, with both versions of it; a copy that
/// is a prefix of the other differs at the first line only one of them has.
fn first_difference(a: &str, b: &str) -> Option<(usize, String, String)> {
    let mut left = a.split_inclusive('\n');
    let mut right = b.split_inclusive('\n');
    let show = |line: Option<&str>| line.map_or("(end of file)".into(), |l| format!("{l:?}"));
    let mut number = 0;
    loop {
        number += 1;
        match (left.next(), right.next()) {
            (None, None) => return None,
            (x, y) if x == y => {}
            (x, y) => return Some((number, show(x), show(y))),
        }
    }
}

#[test]
fn every_step_has_the_same_protocol_rs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let reference_path = protocol_path(&root, REFERENCE);
    let reference = fs::read_to_string(&reference_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", reference_path.display()));
    let mut problems = Vec::new();
    for step in STEPS.iter().filter(|&&step| step != REFERENCE) {
        let path = format!("{step}/src/protocol.rs");
        let copy = match fs::read_to_string(protocol_path(&root, step)) {
            Ok(copy) => copy,
            Err(e) => {
                problems.push(format!("{path}: cannot read it ({e})"));
                continue;
            }
        };
        if let Some((line, theirs, ours)) = first_difference(&copy, &reference) {
            problems.push(format!(
                "{path} differs from {REFERENCE}/src/protocol.rs at line {line}:\n  \
                 {path}: {theirs}\n  {REFERENCE}/src/protocol.rs: {ours}"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the copies of protocol.rs are not the same:\n{}\nKeep the version you want in \
         {REFERENCE}/src/protocol.rs, then copy it over the others, from the workspace root:\n  {RESYNC}",
        problems.join("\n")
    );
}

#[test]
fn first_difference_names_the_line() {
    assert_eq!(first_difference("a\nb\n", "a\nb\n"), None);
    assert_eq!(
        first_difference("a\nb\nc\n", "a\nB\nc\n"),
        Some((2, "\"b\\n\"".into(), "\"B\\n\"".into()))
    );
    assert_eq!(
        first_difference("a\n", "a\nb\n"),
        Some((2, "(end of file)".into(), "\"b\\n\"".into()))
    );
    // A missing final LF is a difference too.
    assert_eq!(
        first_difference("a\nb", "a\nb\n"),
        Some((2, "\"b\"".into(), "\"b\\n\"".into()))
    );
}
