//! Quoting for each language a spec value can land in. Everything from the
//! spec goes through one of these before it reaches a script, the Vagrantfile
//! or a PostgreSQL file, so a hostile value stays data.

/// POSIX shell: one single-quoted word; `'` becomes `'\''`.
pub fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Ruby double-quoted string literal with every special character escaped
/// (`#` too, against `#{}` interpolation). Not single quotes: Ruby's lexer
/// turns a CR LF inside a single-quoted literal into LF.
pub fn rb(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '#' => out.push_str("\\#"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// postgresql.conf / recovery.conf string value: `'` doubled, `\` doubled
/// (the configuration parser reads backslash escapes).
pub fn pgconf(s: &str) -> String {
    format!("'{}'", s.replace('\\', r"\\").replace('\'', "''"))
}

/// SQL string literal under standard_conforming_strings (the default since 9.1).
pub fn sql(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_escaped_for_each_language() {
        assert_eq!(sh("it's"), r"'it'\''s'");
        assert_eq!(rb(r##"a\'"#{x}"##), r##""a\\'\"\#{x}""##);
        assert_eq!(rb("a\r\nb"), r#""a\r\nb""#);
        assert_eq!(pgconf(r"a'b\c"), r"'a''b\\c'");
        assert_eq!(sql("o'neil"), "'o''neil'");
    }

    #[test]
    fn shell_quoting_survives_a_real_shell() {
        for value in ["plain", "it's", "$(touch /tmp/x)", "`id`", "a;b", "new\nline", "ünï", "\\'\"", ""] {
            let out = std::process::Command::new("sh").arg("-c").arg(format!("printf %s {}", sh(value))).output().unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), value);
        }
    }
}
