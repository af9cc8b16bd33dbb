//! Text from outside (key names, server replies, the command line) made safe
//! for the human formats: a name of a megabyte is shortened with a visible
//! marker (JSON keeps it whole), and control characters (terminal escape
//! sequences, bidi overrides) are shown as escapes instead of acting on the
//! reader's terminal. Each format then escapes its own syntax (HTML and
//! markdown their markup, JUnit its XML).

/// A word (text between spaces) longer than this is shortened.
const LONG_WORD: usize = 200;
/// What is kept of a shortened word.
const KEEP_WORD: usize = 64;
/// A whole text (a cell, a reason) longer than this is shortened.
const LONG_TEXT: usize = 4000;

/// `s` cut to its first `keep` characters with `… (+N bytes)` saying how
/// much was left out; as it is when it has at most `keep` characters.
pub fn shorten(s: &str, keep: usize) -> String {
    match s.char_indices().nth(keep) {
        None => s.to_string(),
        Some((at, _)) => format!("{}… (+{} bytes)", &s[..at], s.len() - at),
    }
}

/// A text as the human formats show it: control characters escaped, every
/// overlong word shortened, the whole bounded.
pub fn for_humans(s: &str) -> String {
    let fits = s.len() <= LONG_WORD && !s.chars().any(needs_escape);
    if fits {
        return s.to_string();
    }
    let escaped = visible(s);
    let mut out = String::with_capacity(escaped.len().min(LONG_TEXT * 4));
    let mut word = String::new();
    for c in escaped.chars() {
        if c == ' ' {
            out.push_str(&shorten(&word, word_keep(&word)));
            word.clear();
            out.push(' ');
            if out.len() > LONG_TEXT * 4 {
                break;
            }
        } else {
            word.push(c);
        }
    }
    out.push_str(&shorten(&word, word_keep(&word)));
    let total = escaped.len();
    match out.char_indices().nth(LONG_TEXT) {
        Some((at, _)) => {
            let kept = &out[..at];
            format!("{kept}… (+{} bytes)", total.saturating_sub(kept.len()))
        }
        None => out,
    }
}

fn word_keep(word: &str) -> usize {
    if word.chars().count() > LONG_WORD {
        KEEP_WORD
    } else {
        LONG_WORD
    }
}

/// Characters that act on a terminal or reorder text rather than show.
fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Control characters as `\xNN` (or `\u{NNNN}`), the rest as it is.
pub fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !needs_escape(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_name_is_shortened_with_what_was_left_out() {
        let key = "k".repeat(1 << 20);
        let s = for_humans(&format!("value differs: {key} on replica1"));
        assert!(s.len() < 200, "{}", s.len());
        assert!(s.starts_with("value differs: kkkk"), "{s}");
        assert!(
            s.contains(&format!("… (+{} bytes)", (1 << 20) - KEEP_WORD)),
            "{s}"
        );
        assert!(s.ends_with(" on replica1"), "{s}");
    }

    #[test]
    fn control_characters_show_as_escapes() {
        assert_eq!(visible("a\u{1b}[31mb\u{7}"), "a\\x1b[31mb\\x07");
        assert_eq!(visible("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(for_humans("plain text"), "plain text");
        assert!(!for_humans("\u{1b}]0;title\u{7}").contains('\u{1b}'));
    }

    #[test]
    fn many_short_words_are_bounded_too() {
        let s = for_humans(&"ab ".repeat(100_000));
        assert!(s.chars().count() < LONG_TEXT + 40, "{}", s.len());
        assert!(s.contains("bytes)"));
    }
}
