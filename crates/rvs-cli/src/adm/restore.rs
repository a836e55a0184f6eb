//! `-R` input: the lines `-S` writes, read back into requests.

use rvs_api::Request;

use super::parse::parse_args;
use super::AdmCommand;
use crate::client::CliError;

/// Splits one line of rules into words, honouring single and double quotes
/// (ipvsadm's restore reader does the same), so a quoted match survives.
pub fn split_line(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".to_string());
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Parses `-R` input: one command per line in `-S` format (blank lines and
/// `#` comments skipped, a leading `ipvsadm`/`rvsadm` word tolerated). Every
/// line is checked before anything is sent, so a typo on line 10 does not
/// leave a half-restored table.
pub fn parse_restore(text: &str) -> Result<Vec<Request>, CliError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut words =
            split_line(trimmed).map_err(|e| CliError::usage(format!("line {lineno}: {e}")))?;
        if matches!(
            words.first().map(String::as_str),
            Some("ipvsadm" | "rvsadm")
        ) {
            words.remove(0);
        }
        match parse_args(&words) {
            Ok(AdmCommand::Apply(req)) => out.push(req),
            Ok(AdmCommand::ApplyAll(reqs)) => out.extend(reqs),
            Ok(_) => {
                return Err(CliError::usage(format!(
                    "line {lineno}: only commands that change the table can be restored: {trimmed}"
                )))
            }
            Err(e) => return Err(CliError::usage(format!("line {lineno}: {}", e.message))),
        }
    }
    Ok(out)
}
