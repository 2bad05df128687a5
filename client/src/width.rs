//! How many columns of a terminal a character takes: 0, 1 or 2. The line editor needs it to put
//! the cursor under the right character and to cut a long line to the width of the row.
//!
//! The ranges are a simplification of two files of the Unicode Character Database:
//! - wide (2 columns): the code points whose East_Asian_Width is W (wide) or F (fullwidth) in
//!   `EastAsianWidth.txt` (CJK, kana, Hangul, fullwidth forms, the emoji with W), merged into
//!   whole blocks where that keeps the table short;
//! - zero width: the combining marks of `UnicodeData.txt` (general category Mn) that people
//!   type most, which draw on the character before them, and the joiners and variation
//!   selectors that only change how their neighbours look.
//!
//! Checked against Unicode 14.0 (Python's `unicodedata.east_asian_width`): every assigned W or
//! F code point from U+0300 up is in `WIDE`, and the merged emoji blocks count as wide about
//! 240 symbols whose East_Asian_Width is N, such as U+1F321 THERMOMETER, which most terminals
//! draw one column wide. A terminal that disagrees about a character puts the cursor one
//! column off on that line, nothing worse; `wcwidth(3)` of the C library has the full table,
//! and follows the locale.

/// Zero-width ranges, inclusive, sorted.
const ZERO: &[(u32, u32)] = &[
    (0x0300, 0x036f), // combining diacritical marks
    (0x0483, 0x0489), // combining Cyrillic
    (0x0591, 0x05bd), // Hebrew points
    (0x064b, 0x065f), // Arabic vowel marks
    (0x1ab0, 0x1aff), // combining diacritical marks extended
    (0x1dc0, 0x1dff), // combining diacritical marks supplement
    (0x200c, 0x200d), // zero-width non-joiner, joiner (emoji sequences)
    (0x20d0, 0x20ff), // combining marks for symbols
    (0xfe00, 0xfe0f), // variation selectors
    (0xfe20, 0xfe2f), // combining half marks
];

/// Wide ranges, inclusive, sorted.
const WIDE: &[(u32, u32)] = &[
    (0x1100, 0x115f),   // Hangul Jamo initial consonants
    (0x231a, 0x231b),   // watch, hourglass
    (0x2329, 0x232a),   // angle brackets
    (0x23e9, 0x23ec),   // media buttons
    (0x23f0, 0x23f0),   // alarm clock
    (0x23f3, 0x23f3),   // hourglass
    (0x25fd, 0x25fe),   // small squares
    (0x2614, 0x2615),   // umbrella, hot beverage
    (0x2648, 0x2653),   // zodiac
    (0x267f, 0x267f),   // wheelchair
    (0x2693, 0x2693),   // anchor
    (0x26a1, 0x26a1),   // high voltage
    (0x26aa, 0x26ab),   // circles
    (0x26bd, 0x26be),   // soccer ball, baseball
    (0x26c4, 0x26c5),   // snowman, sun behind cloud
    (0x26ce, 0x26ce),   // Ophiuchus
    (0x26d4, 0x26d4),   // no entry
    (0x26ea, 0x26ea),   // church
    (0x26f2, 0x26f3),   // fountain, golf
    (0x26f5, 0x26f5),   // sailboat
    (0x26fa, 0x26fa),   // tent
    (0x26fd, 0x26fd),   // fuel pump
    (0x2705, 0x2705),   // check mark button
    (0x270a, 0x270b),   // raised fist, hand
    (0x2728, 0x2728),   // sparkles
    (0x274c, 0x274c),   // cross mark
    (0x274e, 0x274e),   // cross mark button
    (0x2753, 0x2755),   // question and exclamation marks
    (0x2757, 0x2757),   // exclamation mark
    (0x2795, 0x2797),   // plus, minus, divide
    (0x27b0, 0x27b0),   // curly loop
    (0x27bf, 0x27bf),   // double curly loop
    (0x2b1b, 0x2b1c),   // large squares
    (0x2b50, 0x2b50),   // star
    (0x2b55, 0x2b55),   // circle
    (0x2e80, 0x303e),   // CJK radicals, Kangxi, CJK symbols and punctuation
    (0x3041, 0x3247),   // Hiragana, Katakana, Bopomofo, Hangul compatibility, enclosed CJK
    (0x3250, 0x33ff),   // enclosed CJK (after the ambiguous circled numbers), CJK compatibility
    (0x3400, 0x4dbf),   // CJK unified ideographs extension A
    (0x4e00, 0x9fff),   // CJK unified ideographs
    (0xa000, 0xa4cf),   // Yi
    (0xa960, 0xa97f),   // Hangul Jamo extended A
    (0xac00, 0xd7a3),   // Hangul syllables
    (0xf900, 0xfaff),   // CJK compatibility ideographs
    (0xfe10, 0xfe19),   // vertical forms
    (0xfe30, 0xfe6f),   // CJK compatibility forms, small form variants
    (0xff00, 0xff60),   // fullwidth forms
    (0xffe0, 0xffe6),   // fullwidth signs
    (0x16fe0, 0x16fe4), // ideographic symbols
    (0x16ff0, 0x16ff1), // Vietnamese reading marks
    (0x17000, 0x18d08), // Tangut, Khitan
    (0x1aff0, 0x1b2ff), // kana extended B, supplement and extended A, Nushu
    (0x1f004, 0x1f004), // mahjong tile
    (0x1f0cf, 0x1f0cf), // joker
    (0x1f18e, 0x1f18e), // AB button
    (0x1f191, 0x1f19a), // squared words
    (0x1f200, 0x1f2ff), // enclosed ideographic supplement
    (0x1f300, 0x1f64f), // pictographs, emoticons
    (0x1f680, 0x1f6ff), // transport and map symbols
    (0x1f7e0, 0x1f7eb), // coloured circles and squares
    (0x1f7f0, 0x1f7f0), // heavy equals sign
    (0x1f90c, 0x1f9ff), // supplemental symbols and pictographs
    (0x1fa70, 0x1faff), // symbols and pictographs extended A
    (0x20000, 0x2fffd), // CJK unified ideographs extensions B to F
    (0x30000, 0x3fffd), // CJK unified ideographs extensions G, H
];

/// Columns taken by `c` on a terminal (control characters never reach here).
pub fn char_width(c: char) -> usize {
    let code = u32::from(c);
    if code < 0x300 {
        return 1;
    }
    if in_table(ZERO, code) {
        0
    } else if in_table(WIDE, code) {
        2
    } else {
        1
    }
}

fn in_table(table: &[(u32, u32)], code: u32) -> bool {
    // The ranges are sorted and do not overlap: find the last one that starts at or before
    // `code`, and see whether it reaches it.
    let after = table.partition_point(|&(first, _)| first <= code);
    after > 0 && code <= table[after - 1].1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn str_width(text: &str) -> usize {
        text.chars().map(char_width).sum()
    }

    #[test]
    fn ascii_and_latin_take_one_column() {
        assert_eq!(str_width("hello"), 5);
        assert_eq!(str_width("wörld"), 5);
        assert_eq!(char_width('€'), 1);
    }

    #[test]
    fn cjk_and_emoji_take_two() {
        assert_eq!(str_width("日本語"), 6);
        assert_eq!(char_width('한'), 2);
        assert_eq!(char_width('Ａ'), 2); // fullwidth A
        assert_eq!(char_width('😀'), 2);
        assert_eq!(char_width('🚀'), 2);
        assert_eq!(char_width('☕'), 2);
        assert_eq!(char_width('☃'), 1); // snowman without snow: East_Asian_Width N
    }

    #[test]
    fn combining_marks_take_none() {
        // "e" followed by a combining acute accent shows as one "é".
        assert_eq!(str_width("e\u{301}"), 1);
        assert_eq!(char_width('\u{fe0f}'), 0);
    }

    #[test]
    fn the_tables_are_sorted_and_disjoint() {
        for table in [ZERO, WIDE] {
            for pair in table.windows(2) {
                assert!(pair[0].0 <= pair[0].1 && pair[0].1 < pair[1].0, "{pair:x?}");
            }
        }
    }
}
