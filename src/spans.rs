//! Where each field of a YAML document sits, so that errors found after parsing
//! (by the planner, long after serde has thrown the positions away) can still
//! point at a file, line and column.

use std::collections::BTreeMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A position in the source: 1-based line and column, 0-based byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
}

/// Field path (`topology.followers[1].address`) -> position of that key or item.
#[derive(Debug, Default, Clone)]
pub struct SpanIndex {
    spans: BTreeMap<String, Pos>,
    /// Plain (unquoted) scalar values exactly as written, by path.
    raw: BTreeMap<String, String>,
}

impl SpanIndex {
    /// Builds the index; a document that does not parse gives an empty index
    /// (serde reports the syntax error with its own position).
    pub fn build(text: &str) -> SpanIndex {
        let mut walker = Walker {
            text,
            line_starts: line_starts(text),
            stack: Vec::new(),
            index: SpanIndex::default(),
        };
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut walker, false);
        walker.index
    }

    /// The text of a plain scalar as the user wrote it, before YAML typed it
    /// (`9.10` stays `9.10`, not the float 9.1).
    pub fn raw(&self, path: &str) -> Option<&str> {
        self.raw.get(path).map(String::as_str)
    }

    /// The position of `path`, or of its nearest recorded ancestor.
    pub fn find(&self, path: &str) -> Option<Pos> {
        let mut p = path.to_string();
        loop {
            if let Some(pos) = self.spans.get(&p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p.truncate(cut);
        }
    }
}

enum Frame {
    Map { key: Option<String> },
    Seq { index: usize },
}

struct Walker<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
    stack: Vec<(String, Frame)>,
    index: SpanIndex,
}

impl Walker<'_> {
    fn pos(&self, m: Marker) -> Pos {
        let line = m.line().max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        // The marker's column counts characters; turn it into a byte offset.
        let offset = self.text[start..]
            .char_indices()
            .nth(m.col())
            .map(|(b, _)| start + b)
            .unwrap_or(self.text.len());
        Pos { line, column: m.col() + 1, offset }
    }

    /// Path of the value about to be read in the innermost container.
    fn child_path(&self) -> Option<String> {
        let (base, frame) = self.stack.last()?;
        Some(match frame {
            Frame::Map { key: Some(k) } if base.is_empty() => k.clone(),
            Frame::Map { key: Some(k) } => format!("{base}.{k}"),
            Frame::Map { key: None } => return None,
            Frame::Seq { index } => format!("{base}[{index}]"),
        })
    }

    fn value_done(&mut self) {
        match self.stack.last_mut() {
            Some((_, Frame::Map { key })) => *key = None,
            Some((_, Frame::Seq { index })) => *index += 1,
            None => {}
        }
    }

    fn record(&mut self, path: String, m: Marker) {
        let pos = self.pos(m);
        self.index.spans.entry(path).or_insert(pos);
    }

    fn start_container(&mut self, frame: Frame, m: Marker) {
        let path = self.child_path().unwrap_or_default();
        if matches!(self.stack.last(), Some((_, Frame::Seq { .. }))) {
            self.record(path.clone(), m);
        }
        self.stack.push((path, frame));
    }
}

impl MarkedEventReceiver for Walker<'_> {
    fn on_event(&mut self, ev: Event, m: Marker) {
        match ev {
            Event::Scalar(value, style, ..) => {
                if let Some((_, Frame::Map { key: key @ None })) = self.stack.last_mut() {
                    *key = Some(value);
                    let path = self.child_path().unwrap_or_default();
                    self.record(path, m);
                    // A block mapping's start event comes at its first `:`;
                    // the mapping really starts at its first key.
                    let pos = self.pos(m);
                    let base = self.stack.last().map(|(b, _)| b.clone()).unwrap_or_default();
                    if let Some(p) = self.index.spans.get_mut(&base) {
                        if pos.offset < p.offset {
                            *p = pos;
                        }
                    }
                    return;
                }
                if let Some(path) = self.child_path() {
                    if style == yaml_rust2::scanner::TScalarStyle::Plain {
                        self.index.raw.insert(path.clone(), value);
                    }
                    self.record(path, m);
                }
                self.value_done();
            }
            Event::Alias(_) => self.value_done(),
            Event::MappingStart(..) => self.start_container(Frame::Map { key: None }, m),
            Event::SequenceStart(..) => self.start_container(Frame::Seq { index: 0 }, m),
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_done();
            }
            _ => {}
        }
    }
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// Byte offset of a 1-based line and column (serde_yaml reports those).
pub fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let starts = line_starts(text);
    let start = starts.get(line.saturating_sub(1)).copied().unwrap_or(text.len());
    text[start..]
        .char_indices()
        .nth(column.saturating_sub(1))
        .map(|(b, _)| start + b)
        .unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_keys_and_sequence_items_have_positions() {
        let text = "name: a\ntopology:\n  followers:\n    - name: f1\n    - name: f2\n      upstream: f1\n";
        let idx = SpanIndex::build(text);
        assert_eq!(idx.find("name").unwrap().line, 1);
        assert_eq!(idx.find("topology.followers").unwrap().line, 3);
        let f2 = idx.find("topology.followers[1]").unwrap();
        assert_eq!((f2.line, f2.column), (5, 7));
        let up = idx.find("topology.followers[1].upstream").unwrap();
        assert_eq!((up.line, up.column), (6, 7));
        assert_eq!(&text[up.offset..up.offset + 8], "upstream");
    }

    #[test]
    fn plain_scalars_keep_their_text() {
        let idx = SpanIndex::build("version: 9.10\npostgresql_conf:\n  a: 0x1F\n  b: '1.10'\n");
        assert_eq!(idx.raw("version"), Some("9.10"));
        assert_eq!(idx.raw("postgresql_conf.a"), Some("0x1F"));
        assert_eq!(idx.raw("postgresql_conf.b"), None, "quoted values are strings already");
    }

    #[test]
    fn unknown_paths_fall_back_to_the_nearest_ancestor() {
        let idx = SpanIndex::build("topology:\n  followers: 2\n");
        assert_eq!(idx.find("topology.followers[3].name").unwrap().line, 2);
        assert!(idx.find("network").is_none());
    }
}
