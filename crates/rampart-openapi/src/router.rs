//! Path-template router: a segment trie compiled once at load.
//!
//! Literal segments win over templated ones (`/users/me` before
//! `/users/{id}`), as the OpenAPI specification requires. A templated segment
//! may carry a literal prefix and suffix (`/files/{name}.json`). Matching is
//! a walk over the trie with backtracking only between a literal and a
//! templated branch, so its cost is bounded by the spec's shape, never by a
//! regular expression run on the request.

use std::collections::HashMap;

/// One templated segment: `prefix{name}suffix`.
#[derive(Debug)]
struct ParamSegment {
    prefix: String,
    name: String,
    suffix: String,
    node: Node,
}

#[derive(Debug, Default)]
struct Node {
    literals: HashMap<String, Node>,
    params: Vec<ParamSegment>,
    /// The path item that ends here.
    leaf: Option<usize>,
}

/// A compiled set of path templates.
#[derive(Debug, Default)]
pub struct Router {
    root: Node,
}

/// A successful match: the path item index and the raw (still
/// percent-encoded) path parameter values.
#[derive(Debug, PartialEq, Eq)]
pub struct RouteMatch<'p> {
    pub item: usize,
    pub params: Vec<(&'p str, &'p str)>,
}

/// Why a template could not be added.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteError {
    /// Two templates that match the same paths (`/a/{x}` and `/a/{y}`).
    Duplicate,
    /// A segment with more than one `{param}` or unbalanced braces.
    BadSegment,
}

impl Router {
    /// Adds `template` (e.g. `/users/{id}`) for path item `item`.
    pub fn insert(&mut self, template: &str, item: usize) -> Result<(), RouteError> {
        let mut node = &mut self.root;
        for segment in split(template) {
            node = match parse_segment(segment)? {
                None => node.literals.entry(segment.to_string()).or_default(),
                Some((prefix, name, suffix)) => param_child(node, prefix, name, suffix),
            };
        }
        if node.leaf.is_some() {
            return Err(RouteError::Duplicate);
        }
        node.leaf = Some(item);
        Ok(())
    }

    /// Finds the path item for a request path (without query string).
    pub fn find<'a>(&'a self, path: &'a str) -> Option<RouteMatch<'a>> {
        let segments: Vec<&str> = split(path).collect();
        let mut params = Vec::new();
        let item = walk(&self.root, &segments, &mut params)?;
        Some(RouteMatch { item, params })
    }
}

fn param_child<'n>(node: &'n mut Node, prefix: &str, name: &str, suffix: &str) -> &'n mut Node {
    let pos = node
        .params
        .iter()
        .position(|p| p.prefix == prefix && p.suffix == suffix);
    let pos = pos.unwrap_or_else(|| {
        node.params.push(ParamSegment {
            prefix: prefix.to_string(),
            name: name.to_string(),
            suffix: suffix.to_string(),
            node: Node::default(),
        });
        // Most specific first: longer literal parts are tried before bare `{x}`.
        node.params
            .sort_by_key(|p| std::cmp::Reverse(p.prefix.len() + p.suffix.len()));
        node.params
            .iter()
            .position(|p| p.prefix == prefix && p.suffix == suffix)
            .unwrap_or(0)
    });
    &mut node.params[pos].node
}

fn walk<'p>(
    node: &'p Node,
    segments: &[&'p str],
    params: &mut Vec<(&'p str, &'p str)>,
) -> Option<usize> {
    let Some((first, rest)) = segments.split_first() else {
        return node.leaf;
    };
    if let Some(child) = node.literals.get(*first) {
        if let Some(found) = walk(child, rest, params) {
            return Some(found);
        }
    }
    for p in &node.params {
        let Some(value) = first
            .strip_prefix(p.prefix.as_str())
            .and_then(|v| v.strip_suffix(p.suffix.as_str()))
        else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        params.push((p.name.as_str(), value));
        if let Some(found) = walk(&p.node, rest, params) {
            return Some(found);
        }
        params.pop();
    }
    None
}

impl<'p> RouteMatch<'p> {
    /// The raw value of the path parameter `name`.
    pub fn param(&self, name: &str) -> Option<&'p str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// Splits a path into segments. Empty segments are kept, so `/pets/` is not
/// `/pets`: a positive-security model matches what the document declares.
fn split(path: &str) -> impl Iterator<Item = &str> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let empty = trimmed.is_empty();
    trimmed.split('/').filter(move |_| !empty)
}

type Parsed<'s> = Option<(&'s str, &'s str, &'s str)>;

fn parse_segment(segment: &str) -> Result<Parsed<'_>, RouteError> {
    let Some(open) = segment.find('{') else {
        return if segment.contains('}') {
            Err(RouteError::BadSegment)
        } else {
            Ok(None)
        };
    };
    let close = segment[open..]
        .find('}')
        .map(|i| i + open)
        .ok_or(RouteError::BadSegment)?;
    let (prefix, name, suffix) = (
        &segment[..open],
        &segment[open + 1..close],
        &segment[close + 1..],
    );
    if name.is_empty() || suffix.contains(['{', '}']) || prefix.contains('}') {
        return Err(RouteError::BadSegment);
    }
    Ok(Some((prefix, name, suffix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(templates: &[&str]) -> Router {
        let mut r = Router::default();
        for (i, t) in templates.iter().enumerate() {
            r.insert(t, i).unwrap();
        }
        r
    }

    #[test]
    fn literal_beats_template() {
        let r = router(&["/users/{id}", "/users/me"]);
        assert_eq!(r.find("/users/me").unwrap().item, 1);
        let m = r.find("/users/42").unwrap();
        assert_eq!((m.item, m.param("id")), (0, Some("42")));
    }

    #[test]
    fn backtracks_from_literal_to_template() {
        let r = router(&["/a/b/c", "/a/{x}/d"]);
        let m = r.find("/a/b/d").unwrap();
        assert_eq!((m.item, m.param("x")), (1, Some("b")));
    }

    #[test]
    fn prefix_and_suffix_segments() {
        let r = router(&["/files/{name}.json", "/files/{any}"]);
        let m = r.find("/files/report.json").unwrap();
        assert_eq!((m.item, m.param("name")), (0, Some("report")));
        assert_eq!(r.find("/files/report.xml").unwrap().item, 1);
    }

    #[test]
    fn no_match_and_root() {
        let r = router(&["/", "/pets"]);
        assert_eq!(r.find("/").unwrap().item, 0);
        assert!(r.find("/pets/1").is_none());
        assert!(r.find("/dogs").is_none());
    }

    #[test]
    fn empty_param_values_do_not_match() {
        let r = router(&["/pets/{id}"]);
        assert!(r.find("/pets/").is_none());
    }

    #[test]
    fn duplicates_and_bad_segments_are_refused() {
        let mut r = router(&["/a/{x}"]);
        assert_eq!(r.insert("/a/{y}", 9), Err(RouteError::Duplicate));
        assert_eq!(r.insert("/b/{x", 9), Err(RouteError::BadSegment));
        assert_eq!(r.insert("/b/{x}{y}", 9), Err(RouteError::BadSegment));
    }
}
