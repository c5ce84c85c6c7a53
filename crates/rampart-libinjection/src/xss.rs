//! `@detectXSS`: libinjection's HTML5-tokenizer based XSS test.

/// Returns whether `input` is an XSS vector by libinjection's definition: it
/// is tokenised as HTML5 starting in each of libinjection's five contexts
/// (text, unquoted / single- / double- / back-quoted attribute value), and is
/// XSS if any parse meets a blacklisted tag, event-handler or other dangerous
/// attribute, `javascript:`-style URL, `style` value, doctype or IE
/// conditional comment.
pub fn detect_xss(input: &[u8]) -> bool {
    if cannot_be_xss(input) {
        return false;
    }
    libinjectionrs::XssDetector::new()
        .detect(input)
        .is_injection()
}

/// True when `input` has neither `<` nor `=`, which every XSS verdict
/// needs. The detector flags a parse only on a doctype, a tag name, a
/// comment (all begin at a `<` in the text state; no other state leads
/// to them), or an attribute value that follows a dangerous attribute
/// name. Attribute values after a name come only through `=` (the
/// before-attribute-value state); the values the quoted contexts start
/// in follow no name, and the detector ignores them. Most values a WAF
/// sees are plain words, numbers and paths: this one scan spares them
/// the five HTML5 parses.
fn cannot_be_xss(input: &[u8]) -> bool {
    !input.iter().any(|&b| b == b'<' || b == b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_tag_is_xss() {
        assert!(detect_xss(b"<script>alert(1)</script>"));
    }

    #[test]
    fn img_onerror_handler_is_xss() {
        assert!(detect_xss(b"<img src=x onerror=alert(1)>"));
    }

    #[test]
    fn attribute_breakout_into_event_handler_is_xss() {
        assert!(detect_xss(b"\" onmouseover=\"alert(1)"));
    }

    #[test]
    fn plain_words_are_not_xss() {
        assert!(!detect_xss(b"hello world"));
    }

    #[test]
    fn name_with_apostrophe_is_not_xss() {
        assert!(!detect_xss(b"O'Reilly"));
    }

    #[test]
    fn email_address_is_not_xss() {
        assert!(!detect_xss(b"jane.doe@example.com"));
    }

    #[test]
    fn json_snippet_is_not_xss() {
        assert!(!detect_xss(br#"{"name":"Jane","age":42}"#));
    }

    /// The shortcut agrees with the full detector on inputs without `<`
    /// and `=` built from everything else the tokenizer reacts to: quotes,
    /// `>`, `/`, `!`, `?`, `%`, whitespace, NUL, and dangerous names.
    #[test]
    fn inputs_without_lt_or_eq_are_never_xss_for_the_full_detector() {
        let pieces: [&[u8]; 24] = [
            b"\"",
            b"'",
            b"`",
            b">",
            b"/",
            b"!",
            b"?",
            b"%",
            b" ",
            b"\t",
            b"\n",
            b"\x0b",
            b"\x0c",
            b"\r",
            b"\0",
            b"-",
            b"onerror",
            b"style",
            b"href",
            b"javascript:",
            b"DOCTYPE",
            b"[if",
            b"xml",
            b"\xff",
        ];
        // Every sequence of up to four pieces (24^4 = 331,776 inputs).
        let mut checked = 0;
        let mut input = Vec::new();
        for n in 0..24usize.pow(4) {
            input.clear();
            let mut rest = n;
            for _ in 0..4 {
                input.extend_from_slice(pieces[rest % 24]);
                rest /= 24;
            }
            assert!(cannot_be_xss(&input));
            let full = libinjectionrs::XssDetector::new()
                .detect(&input)
                .is_injection();
            assert!(!full, "{:?}", String::from_utf8_lossy(&input));
            checked += 1;
        }
        assert_eq!(checked, 331_776);
        // And the shortcut leaves alone what it must not decide.
        assert!(!cannot_be_xss(b"x onerror=alert(1)"));
        assert!(!cannot_be_xss(b"<script>"));
    }

    #[test]
    fn empty_input_is_not_xss() {
        assert!(!detect_xss(b""));
    }
}
