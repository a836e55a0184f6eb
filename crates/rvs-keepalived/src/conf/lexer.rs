//! Words and braces out of keepalived.conf lines, with `include` expanded.
//!
//! keepalived's rules (lib/parser.c, as documented in keepalived.conf(5)):
//! `!` or `#` outside double quotes starts a comment, wherever it is in the
//! line; `\!` and `\#` stand for the characters themselves; a `\` ending a
//! line joins the next one; `"..."` is one word without its quotes; `{` and
//! `}` outside quotes are tokens of their own even when glued to a word
//! (keepalived splits the line there). A line `include PATTERN` is replaced
//! by the files the pattern matches (glob, with csh-style `{a,b}`), in name
//! order, relative to the directory of the file that includes them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ConfError, Diagnostic, Loc};

/// Deeper includes than this are taken for an include loop.
const MAX_INCLUDE_DEPTH: usize = 16;

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A word (quotes removed).
    Word(String),
    /// `{`.
    Open,
    /// `}`.
    Close,
    /// End of a (logical) line: statements end here.
    Eol,
}

/// A token and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// The token.
    pub tok: Tok,
    /// File and line.
    pub loc: Loc,
}

/// Tokens of `text` (the file `file`, whose includes resolve from `dir`).
pub(crate) fn lex(
    text: &str,
    file: Arc<str>,
    dir: &Path,
    warnings: &mut Vec<Diagnostic>,
) -> Result<Vec<Token>, ConfError> {
    let mut out = Vec::new();
    lex_into(text, &file, dir, 0, &mut out, warnings)?;
    Ok(out)
}

fn lex_into(
    text: &str,
    file: &Arc<str>,
    dir: &Path,
    depth: usize,
    out: &mut Vec<Token>,
    warnings: &mut Vec<Diagnostic>,
) -> Result<(), ConfError> {
    let mut lines = text.lines().enumerate();
    while let Some((i, raw)) = lines.next() {
        let loc = Loc {
            file: file.clone(),
            line: line_no(i),
        };
        let (mut line, mut cont) = decomment(raw, &loc)?;
        while cont {
            let Some((_, next)) = lines.next() else { break };
            let (more, c) = decomment(next, &loc)?;
            line.push(' ');
            line.push_str(&more);
            cont = c;
        }
        if line.is_empty() {
            continue;
        }
        if let Some(pattern) = include_pattern(&line) {
            include(&pattern, &loc, dir, depth, out, warnings)?;
            continue;
        }
        split_words(&line, &loc, out);
        out.push(Token { tok: Tok::Eol, loc });
    }
    Ok(())
}

fn line_no(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// The line without its comment and surrounding blanks, and whether it
/// ends with a continuation `\`.
fn decomment(raw: &str, loc: &Loc) -> Result<(String, bool), ConfError> {
    let mut out = String::with_capacity(raw.len());
    let mut quote = false;
    let mut chars = raw.chars().peekable();
    let mut cont = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quote = !quote;
                out.push(c);
            }
            '\\' if !quote => match chars.peek() {
                Some('#') | Some('!') => out.push(chars.next().unwrap_or('#')),
                None => cont = true,
                Some(_) => out.push(c),
            },
            '#' | '!' if !quote => break,
            _ => out.push(c),
        }
    }
    if quote {
        let word = out.split_whitespace().next().unwrap_or("").to_string();
        return Err(ConfError::new(loc, &word, "missing closing '\"'"));
    }
    Ok((out.trim().to_string(), cont))
}

/// `include PATTERN` -> PATTERN (without surrounding quotes).
fn include_pattern(line: &str) -> Option<String> {
    let rest = line.strip_prefix("include")?;
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let p = rest.trim();
    let p = p
        .strip_prefix('"')
        .and_then(|p| p.strip_suffix('"'))
        .unwrap_or(p);
    Some(p.to_string())
}

/// Pushes the words and braces of a decommented line.
fn split_words(line: &str, loc: &Loc, out: &mut Vec<Token>) {
    let mut word = String::new();
    let mut in_quote = false;
    let push_word = |w: &mut String, out: &mut Vec<Token>| {
        if !w.is_empty() {
            out.push(Token {
                tok: Tok::Word(std::mem::take(w)),
                loc: loc.clone(),
            });
        }
    };
    for c in line.chars() {
        if in_quote {
            if c == '"' {
                in_quote = false;
                // A quoted word, even empty, is a word.
                out.push(Token {
                    tok: Tok::Word(std::mem::take(&mut word)),
                    loc: loc.clone(),
                });
            } else {
                word.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                push_word(&mut word, out);
                in_quote = true;
            }
            '{' | '}' => {
                push_word(&mut word, out);
                let tok = if c == '{' { Tok::Open } else { Tok::Close };
                out.push(Token {
                    tok,
                    loc: loc.clone(),
                });
            }
            c if c.is_whitespace() => push_word(&mut word, out),
            c => word.push(c),
        }
    }
    push_word(&mut word, out);
}

/// Expands one `include` line in place.
fn include(
    pattern: &str,
    loc: &Loc,
    dir: &Path,
    depth: usize,
    out: &mut Vec<Token>,
    warnings: &mut Vec<Diagnostic>,
) -> Result<(), ConfError> {
    if pattern.is_empty() {
        return Err(ConfError::new(loc, "include", "missing file name"));
    }
    if depth >= MAX_INCLUDE_DEPTH {
        return Err(ConfError::new(
            loc,
            "include",
            format!("includes nested deeper than {MAX_INCLUDE_DEPTH} (an include loop?)"),
        ));
    }
    let files = matching_files(pattern, loc, dir)?;
    if files.is_empty() {
        warnings.push(Diagnostic {
            loc: loc.clone(),
            keyword: "include".into(),
            message: format!("no file matches '{pattern}'"),
        });
    }
    for path in files {
        let name: Arc<str> = Arc::from(path.display().to_string());
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ConfError::new(loc, "include", format!("cannot read '{name}': {e}")))?;
        let sub_dir = path.parent().unwrap_or(dir).to_path_buf();
        lex_into(&text, &name, &sub_dir, depth + 1, out, warnings)?;
    }
    Ok(())
}

/// The files `pattern` names, in order. A plain name that does not exist is
/// an error; a wildcard pattern may match nothing (keepalived's default).
fn matching_files(pattern: &str, loc: &Loc, dir: &Path) -> Result<Vec<PathBuf>, ConfError> {
    let mut files = Vec::new();
    for alt in expand_braces(pattern) {
        let full = if Path::new(&alt).is_absolute() {
            PathBuf::from(&alt)
        } else {
            dir.join(&alt)
        };
        if !alt.contains(['*', '?', '[']) {
            if !full.is_file() {
                return Err(ConfError::new(
                    loc,
                    "include",
                    format!("no such file '{}'", full.display()),
                ));
            }
            files.push(full);
            continue;
        }
        // The including file's directory is literal, only `alt` is a pattern.
        let pat = if Path::new(&alt).is_absolute() {
            alt.clone()
        } else {
            let base = glob::Pattern::escape(&dir.to_string_lossy());
            format!("{base}/{alt}")
        };
        let paths = glob::glob(&pat)
            .map_err(|e| ConfError::new(loc, "include", format!("bad pattern '{pattern}': {e}")))?;
        let mut found: Vec<PathBuf> = paths.flatten().filter(|p| p.is_file()).collect();
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// csh-style brace expansion: `a{b,c}d` -> `abd`, `acd` (nested allowed).
fn expand_braces(s: &str) -> Vec<String> {
    let Some(open) = s.find('{') else {
        return vec![s.to_string()];
    };
    let mut depth = 0;
    let mut parts = Vec::new();
    let mut start = open + 1;
    for (i, c) in s[open..].char_indices() {
        let i = open + i;
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    parts.push(&s[start..i]);
                    let (head, tail) = (&s[..open], &s[i + 1..]);
                    return parts
                        .iter()
                        .flat_map(|p| expand_braces(&format!("{head}{p}{tail}")))
                        .collect();
                }
            }
            ',' if depth == 1 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    vec![s.to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Tok> {
        let loc = Loc {
            file: Arc::from("t"),
            line: 1,
        };
        let mut out = Vec::new();
        let (l, _) = decomment(line, &loc).unwrap();
        split_words(&l, &loc, &mut out);
        out.into_iter().map(|t| t.tok).collect()
    }

    fn w(s: &str) -> Tok {
        Tok::Word(s.to_string())
    }

    #[test]
    fn comments_quotes_and_glued_braces() {
        assert_eq!(
            words("priority 100 # master's"),
            vec![w("priority"), w("100")]
        );
        assert_eq!(words("auth_pass ****"), vec![w("auth_pass"), w("****")]);
        assert_eq!(words("a!b c"), vec![w("a")]);
        assert_eq!(words(r"pass a\#b"), vec![w("pass"), w("a#b")]);
        assert_eq!(
            words(r#"notify "/bin/x a # b" root"#),
            vec![w("notify"), w("/bin/x a # b"), w("root")]
        );
        assert_eq!(
            words("x{1.2.3.4}"),
            vec![w("x"), Tok::Open, w("1.2.3.4"), Tok::Close]
        );
    }

    #[test]
    fn braces_expand_like_csh() {
        assert_eq!(expand_braces("a{b,c}d"), vec!["abd", "acd"]);
        assert_eq!(expand_braces("{x/{,y},z}"), vec!["x/", "x/y", "z"]);
        assert_eq!(expand_braces("plain"), vec!["plain"]);
    }
}
