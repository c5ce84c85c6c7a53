//! Challenge pages and answers as complete HTTP responses.
//!
//! These are what a client sees: the browser page (proof-of-work in
//! JavaScript with a `<noscript>` CAPTCHA fallback), the machine-readable
//! API challenge, and the answers of the verify endpoints. Each is a
//! [`Page`] (status, content type, extra headers, body) that the filters
//! turn into a `Denial` carrying its own body ([`Page::into_denial`]); the
//! gateway's `respond::render` then sends it as it is, adding
//! `Content-Length`, `Cache-Control: no-store` and `X-Request-Id`.
//!
//! API challenge status: **403** with `X-Rampart-Challenge: pow`. Not 429,
//! because generic retry middleware retries 429 blindly (a loop that never
//! solves anything) and 429 means "slow down", not "prove work"; not 401,
//! which requires `WWW-Authenticate` and means credentials are missing.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::header::{LOCATION, SET_COOKIE};
use http::{HeaderName, HeaderValue, StatusCode};
use rampart_core::respond::escape_html;
use rampart_core::{Denial, Reason};

use crate::captcha::Captcha;
use crate::crypto::{hex, random_bytes};
use crate::pow::Puzzle;

/// Header naming the challenge type on API challenges.
pub const CHALLENGE_HEADER: &str = "x-rampart-challenge";
/// Header carrying the puzzle token (challenge) and echoed back (answer).
pub const PUZZLE_HEADER: &str = "x-rampart-puzzle";
pub const DIFFICULTY_HEADER: &str = "x-rampart-difficulty";
/// Header carrying the solution counter.
pub const SOLUTION_HEADER: &str = "x-rampart-solution";

/// A complete answer of this crate: what `respond::render` sends for the
/// denial built by [`Page::into_denial`].
#[derive(Debug, Clone)]
pub struct Page {
    pub status: StatusCode,
    pub content_type: HeaderValue,
    /// Extra headers (CSP, `Set-Cookie`, `Location`, challenge headers).
    /// `Content-Type`, `Content-Length` and `Cache-Control` are added by
    /// the renderer and must not be repeated here.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl Page {
    fn new(status: StatusCode, content_type: &'static str, body: Bytes) -> Self {
        Page {
            status,
            content_type: HeaderValue::from_static(content_type),
            headers: vec![(
                HeaderName::from_static("x-robots-tag"),
                HeaderValue::from_static("noindex"),
            )],
            body,
        }
    }

    fn html(status: StatusCode, body: String) -> Self {
        Page::new(status, "text/html; charset=utf-8", Bytes::from(body))
    }

    fn push(&mut self, name: HeaderName, value: HeaderValue) {
        self.headers.push((name, value));
    }

    /// The first value of header `name`, if any.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The denial that makes the gateway send this page: same status,
    /// headers and body. `reason` is the stable code for logs and metrics;
    /// `detail` only reaches logs (the page replaces the problem document).
    pub fn into_denial(self, reason: Reason, detail: &'static str) -> Denial {
        let mut denial = Denial::new(self.status, reason, detail);
        denial.headers = self.headers;
        denial.with_body(self.content_type, self.body)
    }
}

/// Where the pages send answers.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Proof-of-work verify path (POST with puzzle + solution headers).
    pub verify_path: String,
    /// CAPTCHA form POST path.
    pub captcha_path: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            verify_path: "/.rampart/challenge/verify".into(),
            captcha_path: "/.rampart/challenge/captcha".into(),
        }
    }
}

/// `path` if it is a same-origin relative path (`/x?y`), else `/`: the
/// return URL comes from the request and must not become an open redirect.
pub fn safe_return_path(path: &str) -> &str {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && path.len() <= 2048
        && path.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        path
    } else {
        "/"
    }
}

/// The browser challenge page: solves `puzzle` with WebCrypto, posts the
/// solution to the verify path, then reloads `return_to`. Without
/// JavaScript the `<noscript>` part offers the image CAPTCHA and the text
/// question as plain form POSTs.
pub fn challenge_page(
    puzzle: &Puzzle,
    image: &Captcha,
    text: &Captcha,
    endpoints: &Endpoints,
    return_to: &str,
) -> Page {
    let return_to = safe_return_path(return_to);
    let nonce = hex(&random_bytes::<16>());
    let params = serde_json::json!({
        "token": puzzle.token,
        "difficulty": puzzle.difficulty,
        "verify": endpoints.verify_path,
        "returnTo": return_to,
    });
    let noscript = captcha_forms(image, text, endpoints, return_to);
    let params = script_safe_json(&params.to_string());
    let body = fill(
        PAGE_TEMPLATE,
        &[
            ("NONCE", &nonce),
            ("PARAMS", &params),
            ("NOSCRIPT", &noscript),
        ],
    );
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; \
         img-src data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
         frame-ancestors 'none'"
    );
    let mut page = Page::html(StatusCode::FORBIDDEN, body);
    if let Ok(v) = HeaderValue::from_str(&csp) {
        page.push(CSP, v);
    }
    page.headers.extend(challenge_headers(puzzle));
    page
}

/// The CAPTCHA-only page (served when a client failed a CAPTCHA, or to
/// clients known to lack JavaScript).
pub fn captcha_page(
    image: &Captcha,
    text: &Captcha,
    endpoints: &Endpoints,
    return_to: &str,
    message: Option<&str>,
) -> Page {
    let forms = captcha_forms(image, text, endpoints, safe_return_path(return_to));
    let msg = message
        .map(|m| format!("<p role=\"alert\">{}</p>", escape_html(m)))
        .unwrap_or_default();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>Checking your browser</title><style>{STYLE}</style></head><body><main>\
         <h1>Please confirm you are human</h1>{msg}{forms}</main></body></html>"
    );
    let mut page = Page::html(StatusCode::FORBIDDEN, body);
    page.push(
        CSP,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; \
             base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    page
}

fn captcha_forms(image: &Captcha, text: &Captcha, ep: &Endpoints, return_to: &str) -> String {
    let img = image
        .png
        .as_ref()
        .map(|p| STANDARD.encode(p))
        .unwrap_or_default();
    let question = text.question.as_deref().unwrap_or("");
    format!(
        "<form method=\"post\" action=\"{action}?t={itoken}\">\
         <p><img src=\"data:image/png;base64,{img}\" width=\"170\" height=\"60\" \
         alt=\"Distorted characters; if you cannot read them, answer the question below\"></p>\
         <input type=\"hidden\" name=\"return_to\" value=\"{ret}\">\
         <label for=\"ia\">Type the characters shown</label> \
         <input id=\"ia\" name=\"answer\" autocomplete=\"off\" autocapitalize=\"characters\" required> \
         <button type=\"submit\">Continue</button></form>\
         <form method=\"post\" action=\"{action}?t={ttoken}\">\
         <input type=\"hidden\" name=\"return_to\" value=\"{ret}\">\
         <label for=\"ta\">{q}</label> \
         <input id=\"ta\" name=\"answer\" inputmode=\"numeric\" autocomplete=\"off\" required> \
         <button type=\"submit\">Continue</button></form>",
        action = escape_html(&ep.captcha_path),
        itoken = escape_html(&image.token),
        ttoken = escape_html(&text.token),
        ret = escape_html(return_to),
        q = escape_html(question),
    )
}

/// The machine-readable challenge for API clients: 403, the puzzle in
/// headers and a JSON body. The client solves it (see [`crate::pow::solve`])
/// and retries the same request with `X-Rampart-Puzzle` and
/// `X-Rampart-Solution`.
pub fn api_challenge(puzzle: &Puzzle, endpoints: &Endpoints) -> Page {
    let body = serde_json::json!({
        "type": "urn:rampart:challenge:pow",
        "title": "Proof of work required",
        "status": 403,
        "challenge": "pow",
        "puzzle": puzzle.token,
        "difficulty": puzzle.difficulty,
        "expires_at": puzzle.expires_at,
        "algorithm": "sha256-leading-zero-bits",
        "input": "<puzzle>:<decimal counter>",
        "retry_with_headers": [PUZZLE_HEADER, SOLUTION_HEADER],
        "verify": endpoints.verify_path,
    });
    let mut page = Page::new(
        StatusCode::FORBIDDEN,
        "application/json",
        Bytes::from(body.to_string()),
    );
    page.headers.extend(challenge_headers(puzzle));
    page
}

/// `X-Rampart-Challenge`, `X-Rampart-Puzzle` and `X-Rampart-Difficulty`.
pub fn challenge_headers(puzzle: &Puzzle) -> Vec<(http::HeaderName, HeaderValue)> {
    let mut out = vec![(
        http::HeaderName::from_static(CHALLENGE_HEADER),
        HeaderValue::from_static("pow"),
    )];
    if let Ok(v) = HeaderValue::from_str(&puzzle.token) {
        out.push((http::HeaderName::from_static(PUZZLE_HEADER), v));
    }
    out.push((
        http::HeaderName::from_static(DIFFICULTY_HEADER),
        HeaderValue::from(puzzle.difficulty as u16),
    ));
    out
}

/// Answer of the PoW verify endpoint: 200 with the clearance as cookie and
/// in the body (SDKs may send it back as `X-Rampart-Clearance`). `grant`
/// holds the `Set-Cookie` and `X-Rampart-Clearance` header pairs.
pub fn verified(grant: Vec<(HeaderName, HeaderValue)>, clearance: &str, expires_at: u64) -> Page {
    let body = serde_json::json!({"clearance": clearance, "expires_at": expires_at});
    let mut page = Page::new(
        StatusCode::OK,
        "application/json",
        Bytes::from(body.to_string()),
    );
    page.headers.extend(grant);
    page
}

/// Answer of a passed CAPTCHA form: 303 back to the page with the cookie.
pub fn captcha_passed(set_cookie: HeaderValue, return_to: &str) -> Page {
    let mut page = Page::new(StatusCode::SEE_OTHER, "text/plain", Bytes::new());
    page.push(SET_COOKIE, set_cookie);
    if let Ok(v) = HeaderValue::from_str(safe_return_path(return_to)) {
        page.push(LOCATION, v);
    }
    page
}

const CSP: HeaderName = HeaderName::from_static("content-security-policy");

/// Replaces `{NAME}` placeholders in one pass: substituted text is never
/// scanned again, so a value containing `{PARAMS}` stays literal.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 8192);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after.bytes().take_while(|b| b.is_ascii_uppercase()).count();
        let value = values.iter().find(|(n, _)| *n == &after[..name_len]);
        match value {
            Some((_, v)) if after[name_len..].starts_with('}') => {
                out.push_str(v);
                rest = &after[name_len + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// JSON made safe inside `<script>`: no `<`, `>` or `&` that could close
/// the element or start a comment.
fn script_safe_json(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36em;margin:3em auto;\
padding:0 1em;color:#222}progress{width:100%;height:1.2em}form{margin:1.5em 0}\
input{font-size:1.1em;padding:.2em}button{font-size:1.1em}img{border:1px solid #ccc}";

/// The proof-of-work solver core as a string literal (for `concat!`):
/// SHA-256 in plain JavaScript over a reused buffer. The blocks of `token:`
/// are hashed once (midstate); each try (`tryc(counter)`, true when the
/// hash meets `d.difficulty`) hashes only the last block(s), leaving the
/// hash in `H`. Plain JS because awaiting `crypto.subtle.digest` per try
/// costs a promise round trip each (about 40× slower in Chromium).
macro_rules! solver_js {
    () => {
        concat!(
        "var K=new Int32Array([0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,",
        "0x923f82a4,0xab1c5ed5,0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,",
        "0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,",
        "0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,",
        "0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,",
        "0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,",
        "0xf40e3585,0x106aa070,0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,",
        "0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,",
        "0xbef9a3f7,0xc67178f2]);",
        "var W=new Int32Array(64);",
        "function blk(H,m,o){var i,x,y;for(i=0;i<16;i++){x=o+4*i;",
        "W[i]=(m[x]<<24)|(m[x+1]<<16)|(m[x+2]<<8)|m[x+3];}",
        "for(i=16;i<64;i++){x=W[i-15];y=W[i-2];",
        "W[i]=(((x>>>7)|(x<<25))^((x>>>18)|(x<<14))^(x>>>3))+",
        "(((y>>>17)|(y<<15))^((y>>>19)|(y<<13))^(y>>>10))+W[i-7]+W[i-16]|0;}",
        "var a=H[0],b=H[1],c=H[2],e=H[3],f=H[4],g=H[5],h=H[6],k=H[7],t,u;",
        "for(i=0;i<64;i++){t=k+(((f>>>6)|(f<<26))^((f>>>11)|(f<<21))^((f>>>25)|(f<<7)))+",
        "((f&g)^(~f&h))+K[i]+W[i]|0;",
        "u=(((a>>>2)|(a<<30))^((a>>>13)|(a<<19))^((a>>>22)|(a<<10)))+((a&b)^(a&c)^(b&c))|0;",
        "k=h;h=g;g=f;f=e+t|0;e=c;c=b;b=a;a=t+u|0;}",
        "H[0]=H[0]+a|0;H[1]=H[1]+b|0;H[2]=H[2]+c|0;H[3]=H[3]+e|0;",
        "H[4]=H[4]+f|0;H[5]=H[5]+g|0;H[6]=H[6]+h|0;H[7]=H[7]+k|0;}",
        "var p=d.token+':',L=p.length,nb=L>>6,t0=L-64*nb,i;",
        "var mid=new Int32Array([0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,",
        "0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19]);",
        "var pre=new Uint8Array(64*nb+64);for(i=0;i<L;i++){pre[i]=p.charCodeAt(i)&255;}",
        "for(i=0;i<nb;i++){blk(mid,pre,64*i);}",
        "var buf=new Uint8Array(128),H=new Int32Array(8),diff=d.difficulty;",
        "for(i=0;i<t0;i++){buf[i]=pre[64*nb+i];}",
        "function tryc(c){var s=''+c,n=t0+s.length,j,end,bits;",
        "for(j=0;j<s.length;j++){buf[t0+j]=s.charCodeAt(j);}",
        "buf[n]=128;end=n+9<=64?64:128;for(j=n+1;j<end-4;j++){buf[j]=0;}",
        "bits=(L+s.length)*8;buf[end-4]=bits>>>24;buf[end-3]=(bits>>>16)&255;",
        "buf[end-2]=(bits>>>8)&255;buf[end-1]=bits&255;",
        "H.set(mid);blk(H,buf,0);if(end===128){blk(H,buf,64);}",
        "return diff>=32?H[0]===0:Math.clz32(H[0])>=diff;}",
        )
    };
}

/// The solver core of the challenge page (`solver_js!`); exposed so
/// tests can check it against a reference SHA-256 in a real browser.
/// Expects `var d = {token, difficulty}` before it.
#[doc(hidden)]
pub const POW_SOLVER_JS: &str = solver_js!();

const PAGE_TEMPLATE: &str = concat!(
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
    "<meta name=\"viewport\" content=\"width=device-width\">",
    "<title>Checking your browser</title><style>",
    "body{font-family:system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em;color:#222}",
    "progress{width:100%;height:1.2em}form{margin:1.5em 0}input{font-size:1.1em;padding:.2em}",
    "button{font-size:1.1em}img{border:1px solid #ccc}",
    "</style></head><body><main><h1>Checking your browser</h1>",
    "<div id=\"js\" hidden><p id=\"st\" role=\"status\" aria-live=\"polite\">Working…</p>",
    "<progress id=\"bar\" max=\"100\" value=\"0\"></progress></div>",
    "<noscript><p>JavaScript is off. Please answer one of these instead.</p>{NOSCRIPT}</noscript>",
    "<script type=\"application/json\" id=\"rp\">{PARAMS}</script>",
    "<script nonce=\"{NONCE}\">",
    "(async function(){",
    "var d=JSON.parse(document.getElementById('rp').textContent);",
    "var st=document.getElementById('st'),bar=document.getElementById('bar');",
    "document.getElementById('js').hidden=false;",
    solver_js!(),
    "var expect=Math.pow(2,diff),found=-1,c=0,chunk=50000;",
    "while(found<0){var stop=c+chunk;for(;c<stop;c++){if(tryc(c)){found=c;break;}}",
    "if(found<0){var pct=Math.min(99,Math.round(100*(1-Math.exp(-c/expect))));",
    "bar.value=pct;st.textContent='Working… '+pct+'%';",
    "await new Promise(function(r){setTimeout(r,0);});}}",
    "bar.value=100;st.textContent='Verifying…';",
    "try{var r=await fetch(d.verify,{method:'POST',credentials:'same-origin',",
    "headers:{'X-Rampart-Puzzle':d.token,'X-Rampart-Solution':String(found)}});",
    "if(r.ok){st.textContent='Done, loading the page…';location.replace(d.returnTo);}",
    "else{st.textContent='Verification failed ('+r.status+'). Reload the page to try again.';}",
    "}catch(e){st.textContent='Network error. Reload the page to try again.';}",
    "})();</script></main></body></html>"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn puzzle() -> Puzzle {
        Puzzle {
            token: "pow.k1.AAAA.BBBB".into(),
            difficulty: 16,
            expires_at: 99,
        }
    }

    #[test]
    fn open_redirects_are_refused() {
        assert_eq!(safe_return_path("/a?b=c"), "/a?b=c");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "",
            "/a b",
        ] {
            assert_eq!(safe_return_path(bad), "/", "{bad}");
        }
    }

    #[test]
    fn api_challenge_has_headers_and_json() {
        let r = api_challenge(&puzzle(), &Endpoints::default());
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.content_type, "application/json");
        assert_eq!(r.header(CHALLENGE_HEADER).unwrap(), "pow");
        assert_eq!(r.header(PUZZLE_HEADER).unwrap(), "pow.k1.AAAA.BBBB");
        assert_eq!(r.header(DIFFICULTY_HEADER).unwrap(), "16");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["puzzle"], "pow.k1.AAAA.BBBB");
        assert_eq!(v["difficulty"], 16);
    }

    #[test]
    fn a_page_becomes_a_denial_rendered_as_it_is() {
        let cookie = HeaderValue::from_static("__rampart_clearance=t; Path=/");
        let d = captcha_passed(cookie, "/cart").into_denial("bot_challenge_passed", "ok");
        assert_eq!(d.reason, "bot_challenge_passed");
        let r = rampart_core::respond::render_as(&d, "rid", false);
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()["location"], "/cart");
        assert_eq!(r.headers()["set-cookie"], "__rampart_clearance=t; Path=/");
        assert_eq!(r.headers()["content-type"], "text/plain");
        assert_eq!(r.headers()["x-robots-tag"], "noindex");
        for once in ["content-type", "content-length", "cache-control"] {
            assert_eq!(r.headers().get_all(once).iter().count(), 1, "{once}");
        }
        assert!(r.body().is_empty());
    }

    #[test]
    fn placeholders_in_values_are_not_expanded() {
        let out = fill("a{X}b{Y}c{Z}", &[("X", "{Y}"), ("Y", "1")]);
        assert_eq!(out, "a{Y}b1c{Z}");
    }

    #[test]
    fn script_json_cannot_break_out() {
        let s = script_safe_json(r#"{"returnTo":"/</script><script>alert(1)"}"#);
        assert!(!s.contains('<') && !s.contains('>'));
    }
}
