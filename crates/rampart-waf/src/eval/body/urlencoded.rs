//! `application/x-www-form-urlencoded` (and query strings): `a=1&b=2`,
//! names and values URL-decoded (`+` is a space), a bare `a` is `a=""`.

use crate::eval::data::Coll;
use crate::transform::url_decode;

/// Upper bound on pairs read from one string; the arguments limit proper is
/// applied by the caller, this only stops pathological splitting work.
const MAX_PAIRS: usize = 100_000;

pub(crate) fn parse_into(input: &[u8], separator: u8, out: &mut Coll) {
    for pair in input.split(|b| *b == separator).take(MAX_PAIRS) {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &b""[..]),
        };
        let name = url_decode(name);
        out.push(String::from_utf8_lossy(&name), url_decode(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs() {
        let mut c = Coll::default();
        parse_into(b"a=1&b=x+y%21&c&&=z", b'&', &mut c);
        let got: Vec<(&str, &[u8])> = c.entries.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(
            got,
            [("a", &b"1"[..]), ("b", b"x y!"), ("c", b""), ("", b"z")]
        );
    }
}
