//! The keepalived.conf language, in stock keepalived's syntax and in the
//! DPVS dialect of the DPVS tutorial (`dpdk_interface`, `local_address_group`,
//! `laddr_group_name`, `lb_kind FNAT|SNAT`, `deny_address_group`, ...).
//!
//! Reading a file goes through three stages:
//! 1. `lexer`: keepalived's line rules. `!` and `#` start a comment
//!    anywhere outside double quotes (`\#`, `\!` escape them), a trailing `\`
//!    continues the line, `"..."` is one word, `{` and `}` are tokens even
//!    when glued to a word, and `include GLOB` is expanded in place,
//!    relative to the including file's directory.
//! 2. `tree`: statements (the words of a line) with their `{ ... }` blocks;
//!    unbalanced braces are an error here.
//! 3. The section parsers build the typed [`Config`]. Unknown keywords are
//!    warnings naming file, line and keyword, and their block is skipped;
//!    whatever makes the file unusable is a [`ConfError`] naming file, line
//!    and keyword.
//!
//! [`wanted_services`] turns the virtual servers into what rvsd's control
//! API takes (services, real servers, local addresses).

mod lexer;
mod lvs_types;
mod parse;
mod parse_check;
mod parse_lvs;
mod parse_vrrp;
mod tree;
mod types;
mod values;
mod wanted;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

pub use lvs_types::*;
pub use types::*;
pub use wanted::{wanted_services, WantedService};

/// Where a statement is: file and line (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Loc {
    /// The file, as it was named (the main file as given, included files
    /// as resolved from the include pattern).
    pub file: Arc<str>,
    /// Line number, 1-based; 0 when the file itself could not be read.
    pub line: u32,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A warning or an error about the configuration: where, which keyword, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// File and line.
    pub loc: Loc,
    /// The keyword the statement starts with (e.g. `virtual_router_id`).
    pub keyword: String,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.keyword.is_empty() {
            write!(f, "{}: {}", self.loc, self.message)
        } else {
            write!(f, "{}: {}: {}", self.loc, self.keyword, self.message)
        }
    }
}

/// An error that makes the configuration unusable (keepalived's `-t` exits
/// 2 on it): unbalanced braces, a missing required value, a bad address, a
/// value out of range, an undefined group, a missing include file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfError(pub Diagnostic);

impl ConfError {
    /// An error at `loc` about `keyword`.
    pub fn new(loc: &Loc, keyword: &str, message: impl Into<String>) -> ConfError {
        ConfError(Diagnostic {
            loc: loc.clone(),
            keyword: keyword.to_string(),
            message: message.into(),
        })
    }
}

impl ConfError {
    /// The same error under `keyword`: entries of a value block (an address
    /// in `virtual_ipaddress`) are named after the block's keyword.
    pub(crate) fn under(mut self, keyword: &str) -> ConfError {
        self.0.keyword = keyword.to_string();
        self
    }
}

impl std::ops::Deref for ConfError {
    type Target = Diagnostic;
    fn deref(&self) -> &Diagnostic {
        &self.0
    }
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ConfError {}

/// A configuration that parsed, with the warnings met on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Unknown or unsupported keywords (skipped) and other oddities.
    pub warnings: Vec<Diagnostic>,
}

/// Reads and parses the file at `path` (and what it includes).
pub fn load(path: impl AsRef<Path>) -> Result<Loaded, ConfError> {
    let path = path.as_ref();
    let file: Arc<str> = Arc::from(path.display().to_string());
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfError::new(
            &Loc {
                file: file.clone(),
                line: 0,
            },
            "",
            format!("cannot read: {e}"),
        )
    })?;
    parse_named(&text, file, path.parent())
}

/// Parses `text` as if it were the file `name`: diagnostics name it, and
/// relative includes are resolved from its directory.
pub fn parse_str(text: &str, name: &str) -> Result<Loaded, ConfError> {
    parse_named(text, Arc::from(name), Path::new(name).parent())
}

fn parse_named(text: &str, file: Arc<str>, dir: Option<&Path>) -> Result<Loaded, ConfError> {
    let dir = match dir {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let mut warnings = Vec::new();
    let tokens = lexer::lex(text, file, &dir, &mut warnings)?;
    let stmts = tree::build(tokens)?;
    let config = parse::config(&stmts, &mut warnings)?;
    Ok(Loaded { config, warnings })
}
