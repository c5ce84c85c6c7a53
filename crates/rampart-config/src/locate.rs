//! Maps between key paths (`routes[2].upstream`) and source lines, so every
//! error can name both, whichever of the two the error came with.

use toml_edit::{Document, Item, Table, Value};

/// A parsed view of the config source that answers "which line?" questions.
pub struct SourceMap<'a> {
    src: &'a str,
    doc: Option<Document<&'a str>>,
}

enum Seg<'p> {
    Key(&'p str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(end) = rest.find(']') {
            if let Ok(i) = rest[1..end].parse() {
                out.push(Seg::Index(i));
            }
            rest = &rest[end + 1..];
        }
    }
    out
}

impl<'a> SourceMap<'a> {
    pub fn new(src: &'a str) -> Self {
        SourceMap {
            src,
            doc: Document::parse(src).ok(),
        }
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.src.len());
        self.src.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The line where the deepest existing part of `path` is written.
    pub fn line_of_path(&self, path: &str) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let mut span = None;
        let mut node = Node::Table(doc.as_table());
        for seg in segments(path) {
            let Some((next, s)) = step(node, &seg) else {
                break;
            };
            span = s.or(span);
            node = next;
        }
        span.map(|o| self.line_of(o))
    }

    /// The key path of the deepest key or value whose span contains `offset`.
    pub fn path_at(&self, offset: usize) -> String {
        let Some(doc) = self.doc.as_ref() else {
            return String::new();
        };
        let mut path = String::new();
        walk_table(doc.as_table(), offset, &mut path);
        path
    }
}

fn contains(span: Option<std::ops::Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset <= s.end)
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

fn walk_table(t: &Table, offset: usize, path: &mut String) {
    for (k, item) in t.iter() {
        let key_span = t.key(k).and_then(|k| k.span());
        if contains(key_span, offset) {
            push_key(path, k);
            return;
        }
        if item_contains(item, offset) {
            push_key(path, k);
            walk_item(item, offset, path);
            return;
        }
    }
}

fn item_contains(item: &Item, offset: usize) -> bool {
    match item {
        Item::Table(t) => table_contains(t, offset),
        Item::ArrayOfTables(a) => a.iter().any(|t| table_contains(t, offset)),
        Item::Value(v) => contains(v.span(), offset),
        Item::None => false,
    }
}

fn table_contains(t: &Table, offset: usize) -> bool {
    contains(t.span(), offset)
        || t.iter().any(|(k, i)| {
            contains(t.key(k).and_then(|k| k.span()), offset) || item_contains(i, offset)
        })
}

fn walk_item(item: &Item, offset: usize, path: &mut String) {
    match item {
        Item::Table(t) => walk_table(t, offset, path),
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                if table_contains(t, offset) {
                    path.push_str(&format!("[{i}]"));
                    walk_table(t, offset, path);
                    return;
                }
            }
        }
        Item::Value(v) => walk_value(v, offset, path),
        Item::None => {}
    }
}

fn walk_value(v: &Value, offset: usize, path: &mut String) {
    match v {
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                if contains(v.span(), offset) {
                    path.push_str(&format!("[{i}]"));
                    walk_value(v, offset, path);
                    return;
                }
            }
        }
        Value::InlineTable(t) => {
            for (k, v) in t.iter() {
                let key_span = t.key(k).and_then(|k| k.span());
                if contains(key_span, offset) || contains(v.span(), offset) {
                    push_key(path, k);
                    walk_value(v, offset, path);
                    return;
                }
            }
        }
        _ => {}
    }
}

/// A position in the document while following a key path.
#[derive(Clone, Copy)]
enum Node<'d> {
    Table(&'d Table),
    Tables(&'d toml_edit::ArrayOfTables),
    Value(&'d Value),
}

fn node_of(item: &Item) -> Option<Node<'_>> {
    match item {
        Item::Table(t) => Some(Node::Table(t)),
        Item::ArrayOfTables(a) => Some(Node::Tables(a)),
        Item::Value(v) => Some(Node::Value(v)),
        Item::None => None,
    }
}

/// Follows one path segment; returns the next node and where it starts.
fn step<'d>(node: Node<'d>, seg: &Seg<'_>) -> Option<(Node<'d>, Option<usize>)> {
    let start = |s: Option<std::ops::Range<usize>>| s.map(|r| r.start);
    match (node, seg) {
        (Node::Table(t), Seg::Key(k)) => {
            let item = t.get(k)?;
            let key_span = t.key(k).and_then(|k| k.span());
            Some((node_of(item)?, start(key_span.or(item.span()))))
        }
        (Node::Tables(a), Seg::Index(i)) => {
            let t = a.get(*i)?;
            let first_key = t.iter().find_map(|(k, _)| t.key(k).and_then(|k| k.span()));
            Some((Node::Table(t), start(t.span().or(first_key))))
        }
        (Node::Value(Value::InlineTable(t)), Seg::Key(k)) => {
            let v = t.get(k)?;
            let key_span = t.key(k).and_then(|k| k.span());
            Some((Node::Value(v), start(key_span.or(v.span()))))
        }
        (Node::Value(Value::Array(a)), Seg::Index(i)) => {
            let v = a.get(*i)?;
            Some((Node::Value(v), start(v.span())))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "[server]\nworkers = 2\n\n[[routes]]\nname = \"a\"\nupstream = \"x\"\n\n[[routes]]\nname = \"b\"\nupstream = \"y\"\npath = { prefix = \"/api\" }\n\n[upstreams.y]\nservers = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n";

    #[test]
    fn path_to_line() {
        let m = SourceMap::new(SRC);
        assert_eq!(m.line_of_path("server.workers"), Some(2));
        assert_eq!(m.line_of_path("routes[1].upstream"), Some(10));
        assert_eq!(m.line_of_path("routes[1].path.prefix"), Some(11));
        assert_eq!(m.line_of_path("upstreams.y.servers[1]"), Some(14));
        // A missing leaf falls back to its deepest existing parent.
        assert_eq!(m.line_of_path("routes[0].nothing"), Some(4));
    }

    #[test]
    fn line_to_path() {
        let m = SourceMap::new(SRC);
        let off = SRC.find("upstream = \"y\"").unwrap();
        assert_eq!(m.path_at(off), "routes[1].upstream");
        let off = SRC.find("\"127.0.0.1:2\"").unwrap();
        assert_eq!(m.path_at(off), "upstreams.y.servers[1]");
    }
}
