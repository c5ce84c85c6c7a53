//! `@detectXSS`: libinjection's HTML5-tokenizer based XSS test.

/// Returns whether `input` is an XSS vector by libinjection's definition: it
/// is tokenised as HTML5 starting in each of libinjection's five contexts
/// (text, unquoted / single- / double- / back-quoted attribute value), and is
/// XSS if any parse meets a blacklisted tag, event-handler or other dangerous
/// attribute, `javascript:`-style URL, `style` value, doctype or IE
/// conditional comment.
pub fn detect_xss(input: &[u8]) -> bool {
    libinjectionrs::XssDetector::new()
        .detect(input)
        .is_injection()
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

    #[test]
    fn empty_input_is_not_xss() {
        assert!(!detect_xss(b""));
    }
}
