//! Pulling the username and password out of a login request.
//!
//! The password goes straight into a buffer that is wiped on drop and is
//! never formatted: [`Credentials`] implements `Debug` by hand.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::HeaderMap;
use zeroize::Zeroizing;

/// Where a login request carries its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// JSON body fields; dotted paths reach nested objects (`user.email`).
    Json { username: String, password: String },
    /// `application/x-www-form-urlencoded` body fields.
    Form { username: String, password: String },
    /// `Authorization: Basic` header.
    BasicAuth,
}

impl CredentialSource {
    pub fn needs_body(&self) -> bool {
        !matches!(self, CredentialSource::BasicAuth)
    }
}

/// A submitted username and password.
pub struct Credentials {
    pub username: String,
    pub password: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username_len", &self.username.len())
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Credentials from a request body, if the fields are present.
pub fn from_body(source: &CredentialSource, body: &[u8]) -> Option<Credentials> {
    match source {
        CredentialSource::Json { username, password } => from_json(body, username, password),
        CredentialSource::Form { username, password } => from_form(body, username, password),
        CredentialSource::BasicAuth => None,
    }
}

fn from_json(body: &[u8], user_field: &str, pass_field: &str) -> Option<Credentials> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let username = json_path(&mut value, user_field)?.as_str()?.to_string();
    let password = match json_path(&mut value, pass_field)?.take() {
        serde_json::Value::String(s) => Zeroizing::new(s.into_bytes()),
        _ => return None,
    };
    Some(Credentials { username, password })
}

fn json_path<'v>(
    value: &'v mut serde_json::Value,
    path: &str,
) -> Option<&'v mut serde_json::Value> {
    path.split('.').try_fold(value, |v, key| v.get_mut(key))
}

fn from_form(body: &[u8], user_field: &str, pass_field: &str) -> Option<Credentials> {
    let mut username = None;
    let mut password = None;
    for pair in body.split(|&b| b == b'&') {
        let mut kv = pair.splitn(2, |&b| b == b'=');
        let key = percent_decode(kv.next()?);
        let raw = kv.next().unwrap_or(b"");
        if key.as_slice() == user_field.as_bytes() {
            username = String::from_utf8(percent_decode(raw).to_vec()).ok();
        } else if key.as_slice() == pass_field.as_bytes() {
            password = Some(percent_decode(raw));
        }
    }
    Some(Credentials {
        username: username?,
        password: password?,
    })
}

/// Form decoding (`+` is a space, `%XX` a byte); bad escapes stay literal.
fn percent_decode(input: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(input.len()));
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < input.len() => match (hex_val(input[i + 1]), hex_val(input[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h << 4) | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Credentials from `Authorization: Basic`.
pub fn from_basic_auth(headers: &HeaderMap) -> Option<Credentials> {
    let value = headers.get(http::header::AUTHORIZATION)?.as_bytes();
    let encoded = value
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case(b"basic "))
        .and_then(|_| value.get(6..))?;
    let decoded = Zeroizing::new(STANDARD.decode(encoded.trim_ascii()).ok()?);
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some(Credentials {
        username: String::from_utf8(decoded[..colon].to_vec()).ok()?,
        password: Zeroizing::new(decoded[colon + 1..].to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_including_nested() {
        let src = CredentialSource::Json {
            username: "user.email".into(),
            password: "password".into(),
        };
        let c = from_body(&src, br#"{"user":{"email":"a@b.c"},"password":"s3cret"}"#).unwrap();
        assert_eq!(c.username, "a@b.c");
        assert_eq!(c.password.as_slice(), b"s3cret");
        assert!(from_body(&src, br#"{"password":"x"}"#).is_none());
        assert!(from_body(&src, b"not json").is_none());
    }

    #[test]
    fn form_fields_are_decoded() {
        let src = CredentialSource::Form {
            username: "login".into(),
            password: "pw".into(),
        };
        let c = from_body(&src, b"login=alice%40example.com&pw=a+b%26c%zz").unwrap();
        assert_eq!(c.username, "alice@example.com");
        assert_eq!(c.password.as_slice(), b"a b&c%zz");
    }

    #[test]
    fn basic_auth_is_parsed() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Basic YWxpY2U6cDpzcw=="),
        );
        let c = from_basic_auth(&h).unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.password.as_slice(), b"p:ss");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials {
            username: "alice".into(),
            password: Zeroizing::new(b"hunter2".to_vec()),
        };
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && !d.contains("alice"));
    }
}
