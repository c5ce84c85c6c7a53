//! Token folding: libinjection's `libinjection_sqli_fold`, which reduces the
//! token stream of one parse to at most five tokens whose types form the
//! fingerprint.
//!
//! Tokens come from `libinjectionrs`'s tokenizer (public API, fed the
//! allocation-free keyword lookup from [`super::keywords`]). The folding rules
//! are libinjection's: two-token rules (merge adjacent strings, semicolons and
//! parentheses, drop unary operators and SQL types, build multi-word keywords
//! through the phrase table, retype `IN`/`LIKE`/`IF`/...), then three-token
//! rules (collapse `1+1`, `a.b`, `x,y`, ...), restarting from the left after
//! every fold. Two places differ from `libinjectionrs` 0.1.1's own folder and
//! follow C instead: a phrase-table hit of type bareword still merges (so
//! `LOCK IN SHARE MODE` and `IN BOOLEAN MODE` form), and the PHP back-tick
//! rule looks at the last token after the trailing comment is appended.

use super::keywords;
use libinjectionrs::sqli::{SqliFlags, SqliTokenizer, Token, TokenType};

/// Most tokens a fingerprint holds (`LIBINJECTION_SQLI_MAX_TOKENS`).
pub(crate) const MAX_TOKENS: usize = 5;

/// Token slots: the folder may read one token past the fingerprint to decide
/// the type of the fifth (C's `tokenvec[LIBINJECTION_SQLI_MAX_TOKENS + 3]`).
const SLOTS: usize = MAX_TOKENS + 3;

/// C's token value buffer is 32 bytes including the NUL; a merged phrase must
/// fit in it.
const TOKEN_VALUE_MAX: usize = 31;

/// The outcome of folding one parse.
pub(crate) struct Folded {
    /// Folded tokens; the first `len` are the fingerprint.
    pub(crate) tokens: [Token; SLOTS],
    /// Number of tokens in the fingerprint (0..=5).
    pub(crate) len: usize,
    /// Tokens the tokenizer produced before folding (C's `stats_tokens`),
    /// which the whitelist uses to tell folded input from literal input.
    pub(crate) stats_tokens: usize,
    /// The parse saw a `--` comment not followed by whitespace, or a `#`
    /// comment: C then re-parses the input as MySQL.
    pub(crate) reparse_as_mysql: bool,
}

/// What a folding rule asks the main loop to do next.
enum Step {
    /// A rule changed the tokens: restart the loop.
    Again,
    /// No rule folded: go on to the next stage.
    Proceed,
    /// `{` followed by an empty back-quoted word: stop with this many tokens,
    /// the last of which is now evil.
    StopEvil(usize),
}

/// The folding state: C's `tokenvec`, `pos` (where the next token goes) and
/// `left` (how many tokens are settled).
struct Folder<'a> {
    lexer: SqliTokenizer<'a>,
    vec: [Token; SLOTS],
    pos: usize,
    left: usize,
    more: bool,
    last_comment: Option<Token>,
    stats_tokens: usize,
}

/// Tokenizes `input` with `flags` and folds the tokens.
pub(crate) fn fold(input: &[u8], flags: SqliFlags) -> Folded {
    let lexer = SqliTokenizer::new(input, flags).with_lookup_fn(&keywords::word_token_type);
    let mut folder = Folder {
        lexer,
        vec: core::array::from_fn(|_| Token::new()),
        pos: 0,
        left: 0,
        more: true,
        last_comment: None,
        stats_tokens: 0,
    };
    let len = folder.run();
    let reparse_as_mysql =
        folder.lexer.stats_comment_ddx != 0 || folder.lexer.stats_comment_hash != 0;
    Folded {
        tokens: folder.vec,
        len,
        stats_tokens: folder.stats_tokens,
        reparse_as_mysql,
    }
}

fn ty(token: &Token) -> TokenType {
    token.token_type
}

fn value(token: &Token) -> &[u8] {
    &token.val[..token.len.min(token.val.len())]
}

/// `+`, `-`, `!`, `~`, `!!` and `NOT` (an operator token), as C's
/// `st_is_unary_op`.
fn is_unary_op(token: &Token) -> bool {
    ty(token) == TokenType::Operator && matches!(value(token), b"+" | b"-" | b"!" | b"~" | b"!!")
        || ty(token) == TokenType::Operator && value(token).eq_ignore_ascii_case(b"NOT")
}

/// A one-character `* / - + %` operator.
fn is_arithmetic_op(token: &Token) -> bool {
    ty(token) == TokenType::Operator && matches!(value(token), b"*" | b"/" | b"-" | b"+" | b"%")
}

fn value_is(token: &Token, upper: &[u8]) -> bool {
    value(token).eq_ignore_ascii_case(upper)
}

/// Words that are column names unless followed by `(`: T-SQL and MySQL
/// functions that take no arguments or act as variables.
const FUNCTION_IF_CALLED: [&[u8]; 11] = [
    b"USER_ID",
    b"USER_NAME",
    b"DATABASE",
    b"PASSWORD",
    b"USER",
    b"CURRENT_USER",
    b"CURRENT_DATE",
    b"CURRENT_TIME",
    b"CURRENT_TIMESTAMP",
    b"LOCALTIME",
    b"LOCALTIMESTAMP",
];

/// Token types that may start a multi-word keyword.
fn can_start_phrase(t: TokenType) -> bool {
    use TokenType::*;
    matches!(
        t,
        Keyword | Bareword | Operator | Union | Function | Expression | Tsql | SqlType
    )
}

/// Token types that may continue a multi-word keyword.
fn can_continue_phrase(t: TokenType) -> bool {
    can_start_phrase(t) || t == TokenType::LogicOperator
}

impl Folder<'_> {
    /// Next token from the tokenizer; records the end of input in `more`.
    fn pull(&mut self) -> Option<Token> {
        let token = self.lexer.next_token();
        match token {
            Some(_) => self.stats_tokens += 1,
            None => self.more = false,
        }
        token
    }

    fn t(&self, i: usize) -> TokenType {
        ty(&self.vec[i])
    }

    /// Reads tokens until `want` are unsettled (or input ends). Comments are
    /// not kept in the stream; the latest one is remembered so it can be put
    /// back at the end if nothing followed it.
    fn fill(&mut self, want: usize) {
        while self.more && self.pos <= MAX_TOKENS && self.pos - self.left < want {
            if let Some(token) = self.pull() {
                if ty(&token) == TokenType::Comment {
                    self.last_comment = Some(token);
                } else {
                    self.last_comment = None;
                    self.vec[self.pos] = token;
                    self.pos += 1;
                }
            }
        }
    }

    /// Skips leading comments, `(`, SQL types and unary operators; returns
    /// false when nothing else is in the input.
    fn skip_leading_noise(&mut self) -> bool {
        while let Some(token) = self.pull() {
            let noise = matches!(
                ty(&token),
                TokenType::Comment | TokenType::LeftParenthesis | TokenType::SqlType
            ) || is_unary_op(&token);
            self.vec[0] = token;
            if !noise {
                return true;
            }
        }
        false
    }

    /// Folds the whole input; returns the fingerprint length.
    fn run(&mut self) -> usize {
        if !self.skip_leading_noise() {
            return 0;
        }
        self.pos = 1;
        loop {
            if self.pos >= MAX_TOKENS {
                self.restart_after_arithmetic_prefix();
            }
            if !self.more || self.left >= MAX_TOKENS {
                self.left = self.pos;
                break;
            }
            self.fill(2);
            if self.pos - self.left < 2 {
                self.left = self.pos;
                continue;
            }
            match self.fold_two() {
                Step::Again => continue,
                Step::StopEvil(len) => return len,
                Step::Proceed => {}
            }
            self.fill(3);
            if self.pos - self.left < 3 {
                self.left = self.pos;
                continue;
            }
            match self.fold_three() {
                Step::Again => continue,
                Step::StopEvil(len) => return len,
                Step::Proceed => self.left += 1,
            }
        }
        self.finish()
    }

    /// Puts back a trailing comment, caps the length and applies the PHP
    /// back-tick rule.
    fn finish(&mut self) -> usize {
        let mut len = self.left;
        if len < MAX_TOKENS {
            if let Some(comment) = self.last_comment.take() {
                self.vec[len] = comment;
                len += 1;
            }
        }
        len = len.min(MAX_TOKENS);
        // An unclosed, empty back-quote at the end is how PHP-style injections
        // comment out the rest of a query: treat it as a comment.
        if len > 2 {
            let last = &mut self.vec[len - 1];
            if ty(last) == TokenType::Bareword
                && last.str_open == b'`'
                && last.len == 0
                && last.str_close == 0
            {
                last.token_type = TokenType::Comment;
            }
        }
        len
    }

    /// With five tokens in hand, a few shapes (`1,(2)`, `a+(b)`, `1),(2`,
    /// `a)+(b`) are argument lists of harmless arithmetic: keep only the first
    /// token (and the sixth, if read) and go on folding.
    fn restart_after_arithmetic_prefix(&mut self) {
        use TokenType::*;
        let t: [TokenType; MAX_TOKENS] = core::array::from_fn(|i| self.t(i));
        let list_shape = matches!(
            t,
            [
                Number,
                Operator | Comma,
                LeftParenthesis,
                Number,
                RightParenthesis
            ] | [
                Bareword,
                Operator,
                LeftParenthesis,
                Bareword | Number,
                RightParenthesis
            ] | [Number, RightParenthesis, Comma, LeftParenthesis, Number]
                | [
                    Bareword,
                    RightParenthesis,
                    Operator,
                    LeftParenthesis,
                    Bareword
                ]
        );
        if !list_shape {
            return;
        }
        if self.pos > MAX_TOKENS {
            self.vec[1] = self.vec[MAX_TOKENS].clone();
            self.pos = 2;
        } else {
            self.pos = 1;
        }
        self.left = 0;
    }

    /// Drops the token at `left + 1` and backs `left` up one so the merged
    /// token can fold with its left neighbour.
    fn drop_second_and_back_up(&mut self) -> Step {
        self.pos -= 1;
        self.left = self.left.saturating_sub(1);
        Step::Again
    }

    /// Drops `n` tokens from the end and restarts from the first token.
    fn drop_and_restart(&mut self, n: usize) -> Step {
        self.pos -= n;
        self.left = 0;
        Step::Again
    }

    /// Two-token rules, in libinjection's order; the first whose condition
    /// holds decides.
    fn fold_two(&mut self) -> Step {
        use TokenType::*;
        let l = self.left;
        let (a, b) = (self.t(l), self.t(l + 1));
        if (a == String && b == String) || (a == Semicolon && b == Semicolon) {
            // `'a' 'b'` is valid SQL; `;;` is one separator.
            self.pos -= 1;
            return Step::Again;
        }
        if matches!(a, Operator | LogicOperator) && (is_unary_op(&self.vec[l + 1]) || b == SqlType)
        {
            return self.drop_and_restart(1);
        }
        if a == LeftParenthesis && is_unary_op(&self.vec[l + 1]) {
            return self.drop_second_and_back_up();
        }
        if self.merge_phrase() {
            return self.drop_second_and_back_up();
        }
        if a == Semicolon && b == Function && value(&self.vec[l + 1]).len() >= 2 {
            let v = value(&self.vec[l + 1]);
            if v[..2].eq_ignore_ascii_case(b"IF") {
                // T-SQL `; IF 1=1 ...`: a statement, not the IF() function.
                self.vec[l + 1].token_type = Tsql;
                return Step::Again;
            }
        }
        self.fold_two_retype(a, b)
    }

    /// Two-token rules that retype a word by what follows it, or drop types,
    /// back-slashes, repeated parentheses and braces.
    fn fold_two_retype(&mut self, a: TokenType, b: TokenType) -> Step {
        use TokenType::*;
        let l = self.left;
        let first = &self.vec[l];
        if matches!(a, Bareword | Variable)
            && b == LeftParenthesis
            && FUNCTION_IF_CALLED.iter().any(|w| value_is(first, w))
        {
            self.vec[l].token_type = Function;
            return Step::Again;
        }
        if a == Keyword && (value_is(first, b"IN") || value_is(first, b"NOT IN")) {
            // `x IN (...)` is a comparison; a bare `IN` may begin a phrase
            // such as `IN BOOLEAN MODE`, which the phrase table builds next.
            self.vec[l].token_type = if b == LeftParenthesis {
                Operator
            } else {
                Bareword
            };
            return Step::Again;
        }
        if a == Operator && (value_is(first, b"LIKE") || value_is(first, b"NOT LIKE")) {
            if b == LeftParenthesis {
                self.vec[l].token_type = Function; // `SELECT LIKE(...)`
            }
            return Step::Proceed;
        }
        if a == SqlType
            && matches!(
                b,
                Bareword | Number | SqlType | LeftParenthesis | Function | Variable | String
            )
        {
            self.vec[l] = self.vec[l + 1].clone();
            return self.drop_and_restart(1);
        }
        if a == Collate && b == Bareword {
            // Collation names are too many to list: one with `_` is a type.
            if value(&self.vec[l + 1]).contains(&b'_') {
                self.vec[l + 1].token_type = SqlType;
                self.left = 0;
            }
            return Step::Proceed;
        }
        self.fold_two_punctuation(a, b)
    }

    /// Two-token rules about back-slashes, parentheses and braces.
    fn fold_two_punctuation(&mut self, a: TokenType, b: TokenType) -> Step {
        use TokenType::*;
        let l = self.left;
        if a == Backslash {
            if is_arithmetic_op(&self.vec[l + 1]) {
                // T-SQL reads `\%1` as `0 % 1`.
                self.vec[l].token_type = Number;
                self.left = 0;
                return Step::Again;
            }
            // ... and `\1` as `1`.
            self.vec[l] = self.vec[l + 1].clone();
            return self.drop_and_restart(1);
        }
        if (a == LeftParenthesis && b == LeftParenthesis)
            || (a == RightParenthesis && b == RightParenthesis)
        {
            return self.drop_and_restart(1);
        }
        if a == LeftBrace && b == Bareword {
            if self.vec[l + 1].len == 0 {
                // MySQL's `{ ``.``.id }` cannot be folded in three tokens;
                // libinjection blacklists `{` + empty back-quote outright.
                self.vec[l + 1].token_type = Evil;
                return Step::StopEvil(l + 2);
            }
            // ODBC `{fn expr}`: strip the `{ fn` part.
            return self.drop_and_restart(2);
        }
        if b == RightBrace {
            return self.drop_and_restart(1);
        }
        Step::Proceed
    }

    /// Merges `vec[left]` and `vec[left + 1]` into one keyword when the phrase
    /// `"<a> <b>"` is in the keyword table, whatever its type: intermediate
    /// entries such as `LOCK IN` are barewords on the way to longer phrases.
    fn merge_phrase(&mut self) -> bool {
        let l = self.left;
        let (a, b) = (&self.vec[l], &self.vec[l + 1]);
        if !can_start_phrase(ty(a)) || !can_continue_phrase(ty(b)) {
            return false;
        }
        let (va, vb) = (value(a), value(b));
        let merged_len = va.len() + 1 + vb.len();
        if merged_len > TOKEN_VALUE_MAX {
            return false;
        }
        let mut phrase = [0u8; TOKEN_VALUE_MAX];
        phrase[..va.len()].copy_from_slice(va);
        phrase[va.len()] = b' ';
        phrase[va.len() + 1..merged_len].copy_from_slice(vb);
        let Some(kind) = keywords::lookup(&phrase[..merged_len]) else {
            return false;
        };
        let start = a.pos;
        self.vec[l].assign(kind, start, merged_len, &phrase[..merged_len]);
        true
    }

    /// Three-token rules, in libinjection's order.
    fn fold_three(&mut self) -> Step {
        use TokenType::*;
        let l = self.left;
        let (a, b, c) = (self.t(l), self.t(l + 1), self.t(l + 2));
        let collapses = (a == Number && b == Operator && c == Number)
            || (a == Operator && b != LeftParenthesis && c == Operator)
            || (a == LogicOperator && c == LogicOperator)
            || (a == Variable && b == Operator && matches!(c, Variable | Number | Bareword))
            || (matches!(a, Bareword | Number) && b == Operator && matches!(c, Number | Bareword))
            || (matches!(a, Bareword | Number | Variable | String)
                && b == Operator
                && value(&self.vec[l + 1]) == b"::"
                && c == SqlType)
            || (matches!(a, Bareword | Number | String | Variable)
                && b == Comma
                && matches!(c, Number | Bareword | String | Variable));
        if collapses {
            // `1+1`, `a||b`, `x::int`, `a,b`: keep the first token.
            return self.drop_and_restart(2);
        }
        self.fold_three_unary(a, c)
    }

    /// Three-token rules that drop a unary operator or a qualifying dot.
    fn fold_three_unary(&mut self, a: TokenType, c: TokenType) -> Step {
        use TokenType::*;
        let l = self.left;
        let unary = is_unary_op(&self.vec[l + 1]);
        let drop_middle =
            (unary && matches!(a, Expression | Group | Comma) && c == LeftParenthesis)
                || (unary
                    && matches!(a, Keyword | Expression | Group)
                    && matches!(c, Number | Bareword | Variable | String | Function));
        if drop_middle {
            // `SELECT + (`, `SELECT - 1`: the sign does not matter.
            self.vec[l + 1] = self.vec[l + 2].clone();
            return self.drop_and_restart(1);
        }
        if unary && a == Comma && matches!(c, Number | Bareword | Variable | String) {
            // `, -1` becomes `,1`, then backs up so `1,-1` can fold to `1`.
            self.vec[l + 1] = self.vec[l + 2].clone();
            return self.drop_and_restart(3);
        }
        if unary && a == Comma && c == Function {
            // `1,-sin(1)` becomes `1,sin(1)`.
            self.vec[l + 1] = self.vec[l + 2].clone();
            return self.drop_and_restart(1);
        }
        self.fold_three_dot(a, c)
    }

    /// Three-token rules about `.` and zero-argument functions.
    fn fold_three_dot(&mut self, a: TokenType, c: TokenType) -> Step {
        use TokenType::*;
        let l = self.left;
        let b = self.t(l + 1);
        if a == Bareword && b == Dot && c == Bareword {
            // `database.table`: keep one name.
            return self.drop_and_restart(2);
        }
        if a == Expression && b == Dot && c == Bareword {
            // `SELECT . \`foo\`` is `SELECT \`foo\``.
            self.vec[l + 1] = self.vec[l + 2].clone();
            return self.drop_and_restart(1);
        }
        if a == Function && b == LeftParenthesis && c != RightParenthesis {
            // USER() takes no arguments, so `user(foo)` is not the function.
            if value_is(&self.vec[l], b"USER") {
                self.vec[l].token_type = Bareword;
            }
        }
        Step::Proceed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ansi() -> SqliFlags {
        SqliFlags::FLAG_QUOTE_NONE | SqliFlags::FLAG_SQL_ANSI
    }

    /// The folded fingerprint of `input` parsed as-is, as ANSI SQL.
    fn shape(input: &[u8]) -> String {
        let folded = fold(input, ansi());
        folded.tokens[..folded.len]
            .iter()
            .map(|t| t.token_type.to_char())
            .collect()
    }

    #[test]
    fn three_word_phrase_folds_into_one_keyword_with_the_original_text() {
        let folded = fold(b"x lock  In share MODE", ansi());
        assert_eq!(folded.len, 2);
        assert_eq!(folded.tokens[1].token_type, TokenType::Keyword);
        assert_eq!(value(&folded.tokens[1]), b"lock In share MODE");
    }

    #[test]
    fn two_word_prefix_of_a_phrase_is_a_bareword() {
        // `LOCK IN` is a bareword entry: merged, but still a bareword.
        let folded = fold(b"lock in", ansi());
        assert_eq!(folded.len, 1);
        assert_eq!(folded.tokens[0].token_type, TokenType::Bareword);
        assert_eq!(value(&folded.tokens[0]), b"lock in");
    }

    #[test]
    fn phrase_longer_than_a_token_value_is_not_merged() {
        let long_word = [b'a'; 28];
        let mut input = long_word.to_vec();
        input.extend_from_slice(b" union");
        assert_eq!(shape(&input), "nU");
    }

    #[test]
    fn in_before_parenthesis_is_an_operator_otherwise_a_bareword() {
        assert_eq!(shape(b"x in (select"), "no(E");
        assert_eq!(shape(b"x in y"), "nnn");
    }

    #[test]
    fn arithmetic_and_lists_collapse_to_their_first_token() {
        assert_eq!(shape(b"1+2+3"), "1");
        assert_eq!(shape(b"a,b,c"), "n");
        assert_eq!(shape(b"db.tbl"), "n");
        // Five tokens shaped like an argument list restart from the first.
        assert_eq!(shape(b"1 in (2)"), "1");
    }

    #[test]
    fn leading_noise_is_skipped_and_only_noise_gives_nothing() {
        assert_eq!(shape(b"(( -1"), "1");
        assert_eq!(shape(b"/* c */ (("), "");
    }

    #[test]
    fn trailing_comment_is_put_back_and_counts_as_a_token() {
        let folded = fold(b"1 -- c", ansi());
        assert_eq!(folded.len, 2);
        assert_eq!(folded.tokens[1].token_type, TokenType::Comment);
        assert_eq!(folded.stats_tokens, 2);
    }

    #[test]
    fn brace_before_empty_backquote_is_evil() {
        assert_eq!(shape(b"select { ``.``.id }"), "E{X");
    }

    #[test]
    fn hash_comment_asks_for_a_mysql_reparse() {
        assert!(fold(b"1 #", ansi()).reparse_as_mysql);
        assert!(!fold(b"1 /* x */", ansi()).reparse_as_mysql);
    }

    #[test]
    fn fingerprint_stops_at_five_tokens() {
        assert_eq!(shape(b"1 union select a from b where c"), "1UEnk");
    }
}
