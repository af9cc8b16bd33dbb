//! Commands a reader copies (`redlab --master ... clean --run x`): on a
//! terminal each goes on a line of its own, never wrapped and never split
//! over a table's rows, where a triple-click takes it whole. Markdown and
//! HTML keep them in place as code.

/// A backticked span longer than this is a command to copy, not a word in
/// a sentence (`redlab compare`, `redlab lab status` stay inline).
const INLINE_MAX: usize = 32;

/// The commands of `text` taken out: the text with each replaced by `with`
/// (or dropped where the text ends with it: the command follows at once),
/// and the commands in order.
pub fn take_out(text: &str, with: &str) -> (String, Vec<String>) {
    let mut prose = String::new();
    let mut commands = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('`') {
        let Some(len) = rest[open + 1..].find('`') else {
            break;
        };
        let span = &rest[open + 1..open + 1 + len];
        let after = &rest[open + len + 2..];
        if span.chars().count() <= INLINE_MAX {
            prose.push_str(&rest[..open + len + 2]);
        } else {
            prose.push_str(&rest[..open]);
            commands.push(span.to_string());
            if !after
                .trim_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
                .is_empty()
            {
                prose.push_str(with);
            }
        }
        rest = after;
    }
    if commands.is_empty() {
        return (text.to_string(), commands);
    }
    prose.push_str(rest);
    let prose = prose
        .trim_end()
        .trim_end_matches([';', ',', '.'])
        .to_string();
    (prose, commands)
}

/// A command's own line under a note or a table: indented, whole.
pub fn line(command: &str) -> String {
    format!("    {command}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_command_leaves_the_sentence_and_a_short_one_stays() {
        let (prose, cmds) = take_out(
            "up to 3 keys remain (stopped); remove them with `redlab --master redis://127.0.0.1:6379/0 clean --run abc`",
            "the command below",
        );
        assert_eq!(prose, "up to 3 keys remain (stopped); remove them with");
        assert_eq!(
            cmds,
            ["redlab --master redis://127.0.0.1:6379/0 clean --run abc"]
        );
        let (prose, cmds) = take_out(
            "a count check (`redlab compare` compares data)",
            "the command below",
        );
        assert_eq!(prose, "a count check (`redlab compare` compares data)");
        assert!(cmds.is_empty());
    }

    #[test]
    fn a_command_in_the_middle_is_named_where_it_was() {
        let (prose, cmds) = take_out(
            "run `redlab --master redis://127.0.0.1:6379/0 clean --run abc` to finish",
            "the command below",
        );
        assert_eq!(prose, "run the command below to finish");
        assert_eq!(cmds.len(), 1);
    }
}
