//! The plan's rules for single values: names, delays, setting names,
//! addresses' MACs, the synchronous_standby_names syntax of each major.
//! Leaf functions, no plan types.

use crate::facts::Facts;
use crate::spec::ProviderOptions;

pub fn ssl_mode(ssl: bool) -> &'static str {
    if ssl {
        "require"
    } else {
        "disable"
    }
}

/// Unique within a cluster, whose addresses are; clusters never share a network.
pub(super) fn mac_for(address: &str) -> String {
    let o: Vec<u8> = address.split('.').filter_map(|p| p.parse().ok()).collect();
    format!("52:54:00:{:02x}:{:02x}:{:02x}", o[1], o[2], o[3])
}

pub fn is_hostname(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 40
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && !s.ends_with('-')
}

pub(super) fn is_setting_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// `5min`, `30s`, `1h`, `250ms`, `2d`, or a bare number of milliseconds.
pub(super) fn is_delay(s: &str) -> bool {
    let digits = s.chars().take_while(|c| c.is_ascii_digit()).count();
    digits > 0 && ["", "ms", "s", "min", "h", "d"].contains(&&s[digits..])
}

pub(super) fn has_provider_options(o: &ProviderOptions) -> bool {
    o.driver.is_some() || o.cpu_mode.is_some() || o.cpu_model.is_some() || o.kernel.is_some() || o.initrd.is_some() || o.cmd_line.is_some()
}

/// `N (...)` needs 9.6, `FIRST`/`ANY` need 10
/// (https://www.postgresql.org/docs/current/runtime-config-replication.html#GUC-SYNCHRONOUS-STANDBY-NAMES).
pub(super) fn check_sync_syntax(names: &str, facts: &Facts) -> Result<(), String> {
    let upper = names.trim_start().to_ascii_uppercase();
    let keyword = upper.starts_with("FIRST ") || upper.starts_with("ANY ");
    let counted = upper.chars().next().is_some_and(|c| c.is_ascii_digit()) && upper.contains('(');
    if names.contains(['\n', '\r', '\0']) {
        return Err("must be a single line".into());
    }
    if keyword && facts.sync_syntax != "first_any" {
        return Err(format!("FIRST/ANY syntax needs PostgreSQL 10 or later; this cluster is {}", facts.major));
    }
    if counted && facts.sync_syntax == "plain" {
        return Err(format!("the `N (a, b)` syntax needs PostgreSQL 9.6 or later; this cluster is {}", facts.major));
    }
    Ok(())
}
