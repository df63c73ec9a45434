//! The rules for Rust source files.
//!
//! Each file is first reduced to its code: comments and the contents of string and character
//! literals become spaces, with the line breaks kept, so that a pattern quoted in a string or
//! mentioned in a comment is not taken for code.

/// A rule broken on one line of a Rust file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The line, 1-based.
    pub(crate) line: usize,
    /// The name of the rule.
    pub(crate) rule: &'static str,
    /// What is wrong, and what to do instead.
    pub(crate) message: String,
}

/// How many lines above an `unsafe` block its `// SAFETY:` comment may start.
///
/// A comment block that runs further up is followed to its start.
const SAFETY_WINDOW: usize = 3;

/// The macros that must not be committed, with the rule each breaks.
const FORBIDDEN_MACROS: [(&str, &str); 3] = [
    ("todo", "no-todo"),
    ("unimplemented", "no-unimplemented"),
    ("dbg", "no-dbg"),
];

/// Returns every rule broken in the Rust file with text `text`.
pub(crate) fn check(text: &str) -> Vec<Problem> {
    let original: Vec<&str> = text.split('\n').collect();
    let code = code_lines(text);
    let mut problems = Vec::new();
    for (index, line) in code.iter().enumerate() {
        let mut problem = |rule, message: String| {
            problems.push(Problem {
                line: index + 1,
                rule,
                message,
            });
        };
        for what in unsafe_uses(line) {
            if !has_safety_comment(&original, index) {
                problem(
                    "safety-comment",
                    format!(
                        "{what} needs a `// SAFETY:` comment on one of the {SAFETY_WINDOW} lines above it"
                    ),
                );
            }
        }
        if has_ignore_attribute(line) {
            problem(
                "no-ignore",
                "`#[ignore]` is not allowed: assert today's behaviour and add a FIXME naming the issue"
                    .to_owned(),
            );
        }
        for (name, rule) in FORBIDDEN_MACROS {
            if calls_macro(line, name) {
                problem(rule, format!("`{name}!` must not be committed"));
            }
        }
    }
    problems
}

/// Returns `text` split into lines, with comments and the contents of literals blanked out.
///
/// Quotes are kept, so `#[ignore = "why"]` still reads as an attribute.
fn code_lines(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let at = |index: usize| chars.get(index).copied();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while let Some(c) = at(i) {
        if c == '/' && at(i + 1) == Some('/') {
            while let Some(c) = at(i).filter(|&c| c != '\n') {
                blank(&mut out, c);
                i += 1;
            }
        } else if c == '/' && at(i + 1) == Some('*') {
            // Block comments nest.
            let mut depth = 0_usize;
            while let Some(c) = at(i) {
                if c == '/' && at(i + 1) == Some('*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c == '*' && at(i + 1) == Some('/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c);
                    i += 1;
                }
            }
        } else if c == '"' {
            out.push('"');
            i += 1;
            while let Some(c) = at(i) {
                i += 1;
                if c == '"' {
                    out.push('"');
                    break;
                }
                blank(&mut out, c);
                if c == '\\'
                    && let Some(escaped) = at(i)
                {
                    blank(&mut out, escaped);
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_hashes(&chars, i) {
            // `r#"..."#`: no escapes; it ends at a quote followed by as many hashes.
            out.push('r');
            out.extend(std::iter::repeat_n('#', hashes));
            out.push('"');
            i += hashes + 2;
            while let Some(c) = at(i) {
                if c == '"' && (1..=hashes).all(|k| at(i + k) == Some('#')) {
                    out.push('"');
                    out.extend(std::iter::repeat_n('#', hashes));
                    i += hashes + 1;
                    break;
                }
                blank(&mut out, c);
                i += 1;
            }
        } else if c == '\'' && at(i + 1) == Some('\\') {
            // An escaped character literal such as '\'' or '\u{1F980}'.
            out.push('\'');
            out.push_str("  ");
            i += 3;
            while let Some(c) = at(i) {
                i += 1;
                if c == '\'' {
                    out.push('\'');
                    break;
                }
                blank(&mut out, c);
            }
        } else if c == '\'' && at(i + 2) == Some('\'') && at(i + 1) != Some('\n') {
            // A plain character literal such as '"'; otherwise `'` starts a lifetime or label.
            out.push_str("' '");
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out.split('\n').map(str::to_owned).collect()
}

/// If a raw string literal (`r"`, `r#"`, `br"`, `cr"`, ...) has its `r` at `i`, returns its
/// number of hashes.
fn raw_string_hashes(chars: &[char], i: usize) -> Option<usize> {
    let is_ident = |index: Option<usize>| {
        index
            .and_then(|index| chars.get(index))
            .is_some_and(|&c| c.is_alphanumeric() || c == '_')
    };
    if chars.get(i) != Some(&'r') {
        return None;
    }
    let before = i.checked_sub(1);
    let prefixed = before.is_some_and(|b| matches!(chars[b], 'b' | 'c'));
    let starts_token = if prefixed {
        !is_ident(i.checked_sub(2))
    } else {
        !is_ident(before)
    };
    if !starts_token {
        return None;
    }
    let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
    (chars.get(i + 1 + hashes) == Some(&'"')).then_some(hashes)
}

/// Reports whether `c` can be part of an identifier.
fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Returns the byte offsets where the word `word` starts in `line`, skipping longer identifiers.
fn word_offsets<'a>(line: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    line.match_indices(word)
        .map(|(offset, _)| offset)
        .filter(move |&offset| {
            let before = line[..offset].chars().next_back();
            let after = line[offset + word.len()..].chars().next();
            !before.is_some_and(is_ident_char) && !after.is_some_and(is_ident_char)
        })
}

/// Returns a description of each `unsafe` block and `unsafe impl` that starts on the code `line`.
fn unsafe_uses(line: &str) -> Vec<&'static str> {
    word_offsets(line, "unsafe")
        .filter_map(|offset| {
            let rest = line[offset + "unsafe".len()..].trim_start();
            if rest.starts_with('{') {
                Some("`unsafe` block")
            } else if rest.starts_with("impl") && !rest[4..].starts_with(is_ident_char) {
                Some("`unsafe impl`")
            } else {
                None
            }
        })
        .collect()
}

/// Reports whether a `// SAFETY:` comment precedes line `index` of `lines`.
///
/// It may start on any of the [`SAFETY_WINDOW`] lines above, or further up if every line between
/// it and the `unsafe` is a comment, so a long justification is not penalised.
fn has_safety_comment(lines: &[&str], index: usize) -> bool {
    let mut only_comments = true;
    for (distance, line) in lines[..index].iter().rev().enumerate() {
        if line.contains("// SAFETY:") {
            return true;
        }
        only_comments &= line.trim_start().starts_with("//");
        if distance + 1 >= SAFETY_WINDOW && !only_comments {
            return false;
        }
    }
    false
}

/// Reports whether the code `line` has an `#[ignore]` attribute, plain or under `cfg_attr`.
fn has_ignore_attribute(line: &str) -> bool {
    let plain = line.match_indices("#[ignore").any(|(offset, pattern)| {
        line[offset + pattern.len()..]
            .trim_start()
            .starts_with([']', '=', '('])
    });
    let conditional = line
        .find("cfg_attr(")
        .is_some_and(|offset| word_offsets(&line[offset..], "ignore").next().is_some());
    plain || conditional
}

/// Reports whether the code `line` invokes the macro `name`.
fn calls_macro(line: &str, name: &str) -> bool {
    line.match_indices(name).any(|(offset, _)| {
        let before = line[..offset].chars().next_back();
        let rest = &line[offset + name.len()..];
        !before.is_some_and(is_ident_char)
            && rest
                .strip_prefix('!')
                .is_some_and(|rest| rest.trim_start().starts_with(['(', '[', '{']))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns the `(line, rule)` pairs that `check` reports for `text`.
    fn rules(text: &str) -> Vec<(usize, &'static str)> {
        check(text)
            .into_iter()
            .map(|problem| (problem.line, problem.rule))
            .collect()
    }

    /// Comments and literals are blanked, line breaks and code are kept.
    #[test]
    fn code_lines_blank_comments_and_literals() {
        let text = "a /* x /* y */ z */ b // c\n\"s\\\"t\" r#\"u\"v\"# '\"' '\\'' 'a: 'x'\nend";
        assert_eq!(
            code_lines(text),
            [
                "a                   b     ",
                "\"    \" r#\"   \"# ' ' '  ' 'a: ' '",
                "end"
            ]
        );
    }

    /// `unsafe` blocks and impls need a nearby SAFETY comment; other uses of the word do not.
    #[test]
    fn unsafe_needs_a_safety_comment() {
        let text = "\
// SAFETY: the pointer is valid.
let a = unsafe { f() };
let b = 1;
let c = 2;
let d = 3;
let e = unsafe { f() };
unsafe fn g() {}
#![deny(unsafe_code)]
// \"unsafe { in a comment }\"
let s = \"unsafe { in a string }\";
// SAFETY: a justification
// that runs over
// many lines
// before the code.
unsafe impl Send for X {}
unsafe impl Sync for X {}
";
        assert_eq!(rules(text), [(6, "safety-comment"), (16, "safety-comment")]);
    }

    /// `#[ignore]` in every form is reported, `ignore` as a word elsewhere is not.
    #[test]
    fn ignore_is_reported() {
        let text = "#[ignore]\n#[ignore = \"slow\"]\n#[cfg_attr(miri, ignore)]\nlet ignore = 1;\n";
        assert_eq!(
            rules(text),
            [(1, "no-ignore"), (2, "no-ignore"), (3, "no-ignore")]
        );
    }

    /// The forbidden macros are reported when called, not when merely named.
    #[test]
    fn forbidden_macros_are_reported() {
        let text =
            "todo!()\nstd::dbg!(x);\nunimplemented!{}\nmy_todo!()\n// todo!()\nlet todo = 1;\n";
        assert_eq!(
            rules(text),
            [(1, "no-todo"), (2, "no-dbg"), (3, "no-unimplemented")]
        );
    }
}
