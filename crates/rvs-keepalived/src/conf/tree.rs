//! Statements and their blocks.
//!
//! A statement is the words of one line (a brace also ends it); a `{`
//! opens the block of the statement just before it, on the same line or
//! the next (`global_defs` then `{` on its own line is valid keepalived).

use super::lexer::{Tok, Token};
use super::{ConfError, Loc};

/// One statement: `keyword args... [{ block }]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stmt {
    /// The words; never empty.
    pub words: Vec<String>,
    /// Where the first word is.
    pub loc: Loc,
    /// The `{ ... }` block that follows, if any.
    pub block: Option<Vec<Stmt>>,
}

/// A block being read: its statements, and the `{` that opened it.
struct Frame {
    stmts: Vec<Stmt>,
    open: Option<(Loc, String)>,
}

/// Builds the statement tree; unbalanced braces are errors.
pub(crate) fn build(tokens: Vec<Token>) -> Result<Vec<Stmt>, ConfError> {
    let mut stack = vec![Frame {
        stmts: Vec::new(),
        open: None,
    }];
    let mut words: Vec<String> = Vec::new();
    let mut first: Option<Loc> = None;
    for Token { tok, loc } in tokens {
        match tok {
            Tok::Word(w) => {
                first.get_or_insert(loc);
                words.push(w);
            }
            Tok::Eol => flush(&mut stack, &mut words, &mut first),
            Tok::Open => {
                flush(&mut stack, &mut words, &mut first);
                open(&mut stack, loc)?;
            }
            Tok::Close => {
                flush(&mut stack, &mut words, &mut first);
                close(&mut stack, &loc)?;
            }
        }
    }
    flush(&mut stack, &mut words, &mut first);
    let mut root = stack.pop().ok_or_else(internal)?;
    if let Some((loc, kw)) = root.open.take() {
        return Err(ConfError::new(
            &loc,
            &kw,
            "block is never closed (missing '}')",
        ));
    }
    Ok(root.stmts)
}

fn internal() -> ConfError {
    let loc = Loc {
        file: "".into(),
        line: 0,
    };
    ConfError::new(&loc, "", "internal error: block stack empty")
}

fn top(stack: &mut [Frame]) -> &mut Frame {
    // The stack always holds the root frame.
    let n = stack.len();
    &mut stack[n - 1]
}

fn flush(stack: &mut [Frame], words: &mut Vec<String>, first: &mut Option<Loc>) {
    if let Some(loc) = first.take() {
        top(stack).stmts.push(Stmt {
            words: std::mem::take(words),
            loc,
            block: None,
        });
    }
}

fn open(stack: &mut Vec<Frame>, loc: Loc) -> Result<(), ConfError> {
    let owner = top(stack).stmts.last().filter(|s| s.block.is_none());
    let Some(owner) = owner else {
        return Err(ConfError::new(&loc, "{", "'{' without a keyword before it"));
    };
    let kw = owner.words[0].clone();
    stack.push(Frame {
        stmts: Vec::new(),
        open: Some((loc, kw)),
    });
    Ok(())
}

fn close(stack: &mut Vec<Frame>, loc: &Loc) -> Result<(), ConfError> {
    if stack.len() < 2 {
        return Err(ConfError::new(loc, "}", "'}' without an open block"));
    }
    let frame = stack.pop().ok_or_else(internal)?;
    if let Some(owner) = top(stack).stmts.last_mut() {
        owner.block = Some(frame.stmts);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::lexer::lex;
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<Vec<Stmt>, ConfError> {
        let mut w = Vec::new();
        build(lex(text, "t.conf".into(), Path::new("."), &mut w)?)
    }

    #[test]
    fn blocks_nest_and_open_on_the_next_line() {
        let s = parse("global_defs\n{\n router_id x\n}\nvip { 1.2.3.4 }\n").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].words, vec!["global_defs"]);
        let b = s[0].block.as_ref().unwrap();
        assert_eq!(b[0].words, vec!["router_id", "x"]);
        assert_eq!(b[0].loc.line, 3);
        assert_eq!(s[1].block.as_ref().unwrap()[0].words, vec!["1.2.3.4"]);
    }

    #[test]
    fn unbalanced_braces_name_file_line_and_keyword() {
        let e = parse("a {\n b\n}\n}\n").unwrap_err();
        assert_eq!((e.loc.line, e.keyword.as_str()), (4, "}"));
        let e = parse("x 1\nvrrp_instance V {\n state MASTER\n").unwrap_err();
        assert_eq!(&*e.loc.file, "t.conf");
        assert_eq!((e.loc.line, e.keyword.as_str()), (2, "vrrp_instance"));
        let e = parse("{\n}\n").unwrap_err();
        assert_eq!((e.loc.line, e.keyword.as_str()), (1, "{"));
    }
}
