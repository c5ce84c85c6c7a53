//! Parser tests: directives, actions, includes, and error reporting (every
//! error must name the file and the line at fault).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::transform;

const ORIGIN: &str = "/virtual/test.conf";

fn parse(text: &str) -> Vec<Directive> {
    parse_str(text, ORIGIN).unwrap_or_else(|e| panic!("{e}"))
}

fn kinds(text: &str) -> Vec<DirectiveKind> {
    parse(text).into_iter().map(|d| d.kind).collect()
}

fn only(text: &str) -> DirectiveKind {
    let mut all = kinds(text);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn rule(text: &str) -> Rule {
    match only(text) {
        DirectiveKind::SecRule(rule) => *rule,
        other => panic!("not a SecRule: {other:?}"),
    }
}

fn actions(list: &str) -> Vec<Action> {
    match only(&format!("SecAction \"{list}\"")) {
        DirectiveKind::SecAction(actions) => actions,
        other => panic!("not a SecAction: {other:?}"),
    }
}

fn error(text: &str) -> ParseError {
    parse_str(text, ORIGIN).expect_err("expected a parse error")
}

fn template(text: &str) -> Template {
    Template::parse(text).unwrap()
}

#[test]
fn parses_a_complete_rule() {
    let r = rule(
        "SecRule REQUEST_HEADERS:User-Agent|ARGS|!ARGS:pw|&TX:x \"!@pm foo bar\" \\\n    \"id:1001,phase:request,deny,status:403,t:none,t:lowercase,msg:'Bad agent, really',logdata:'%{MATCHED_VAR}'\"",
    );
    assert_eq!(r.targets.len(), 4);
    assert!(r.targets[2].exclude && r.targets[3].count);
    assert_eq!(r.operator.kind, OperatorKind::Pm);
    assert!(r.operator.negated);
    assert_eq!(r.operator.argument.raw(), "foo bar");
    assert_eq!(r.id(), Some(1001));
    assert_eq!(
        r.actions[..4],
        [
            Action::Id(1001),
            Action::Phase(Phase::RequestBody),
            Action::Deny,
            Action::Status(403)
        ]
    );
    assert_eq!(
        r.actions[5],
        Action::Transform(transform::lookup("lowercase").unwrap())
    );
    assert_eq!(r.actions[6], Action::Msg(template("Bad agent, really")));
    assert_eq!(r.actions[7], Action::LogData(template("%{MATCHED_VAR}")));
    assert!(!r.is_chained());
}

#[test]
fn rule_without_actions_and_quoted_targets() {
    let r = rule("SecRule \"ARGS|ARGS_NAMES\" \"@unconditionalMatch\"");
    assert_eq!(r.targets.len(), 2);
    assert!(r.actions.is_empty());
    assert_eq!(r.operator.kind, OperatorKind::UnconditionalMatch);
}

#[test]
fn directive_names_are_case_insensitive() {
    let all = kinds(
        "secruleengine detectiononly\nSECMARKER end\nsecaction \"id:1,pass\"\nsecRule ARGS x\n",
    );
    assert_eq!(all[0], DirectiveKind::RuleEngine(EngineMode::DetectionOnly));
    assert_eq!(all[1], DirectiveKind::SecMarker("end".into()));
    assert!(matches!(all[2], DirectiveKind::SecAction(_)));
    assert!(matches!(all[3], DirectiveKind::SecRule(_)));
}

#[test]
fn configuration_directives() {
    let text = r#"
SecRuleEngine On
SecRequestBodyAccess On
SecResponseBodyAccess Off
SecResponseBodyMimeType text/plain text/html "text/xml application/json"
SecResponseBodyMimeTypesClear
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
SecRequestBodyInMemoryLimit 131072
SecRequestBodyLimitAction Reject
SecResponseBodyLimit 524288
SecResponseBodyLimitAction ProcessPartial
SecRequestBodyJsonDepthLimit 512
SecArgumentsLimit 1000
SecArgumentSeparator &
SecCookieFormat 0
SecUnicodeMapFile unicode.mapping 20127
SecComponentSignature "OWASP_CRS/4.0"
SecCollectionTimeout 600
SecTmpDir /tmp/
SecDataDir /var/lib/modsecurity
SecDebugLog /var/log/modsec_debug.log
SecDebugLogLevel 3
SecAuditEngine RelevantOnly
SecAuditLog /var/log/modsec_audit.log
SecAuditLogParts ABIJDEFHZ
SecAuditLogType Serial
SecAuditLogRelevantStatus "^(?:5|4(?!04))"
SecAuditLogDirMode 0750
SecAuditLogFileMode 0640
SecStatusEngine Off
SecPcreMatchLimit 100000
SecPcreMatchLimitRecursion 100000
SecHttpBlKey abcdefghijkl
SecWebAppId app1
SecServerSignature "Apache"
SecUploadDir /tmp/uploads
SecUploadKeepFiles RelevantOnly
SecUploadFileMode 0600
SecUploadFileLimit 10
SecXmlExternalEntity Off
"#;
    let expected = [
        DirectiveKind::RuleEngine(EngineMode::On),
        DirectiveKind::RequestBodyAccess(true),
        DirectiveKind::ResponseBodyAccess(false),
        DirectiveKind::ResponseBodyMimeType(
            ["text/plain", "text/html", "text/xml", "application/json"]
                .map(String::from)
                .to_vec(),
        ),
        DirectiveKind::ResponseBodyMimeTypesClear,
        DirectiveKind::RequestBodyLimit(13_107_200),
        DirectiveKind::RequestBodyNoFilesLimit(131_072),
        DirectiveKind::RequestBodyInMemoryLimit(131_072),
        DirectiveKind::RequestBodyLimitAction(BodyLimitAction::Reject),
        DirectiveKind::ResponseBodyLimit(524_288),
        DirectiveKind::ResponseBodyLimitAction(BodyLimitAction::ProcessPartial),
        DirectiveKind::RequestBodyJsonDepthLimit(512),
        DirectiveKind::ArgumentsLimit(1000),
        DirectiveKind::ArgumentSeparator('&'),
        DirectiveKind::CookieFormat(0),
        DirectiveKind::UnicodeMapFile {
            path: "unicode.mapping".into(),
            code_page: Some(20127),
        },
        DirectiveKind::ComponentSignature("OWASP_CRS/4.0".into()),
        DirectiveKind::CollectionTimeout(600),
        DirectiveKind::TmpDir("/tmp/".into()),
        DirectiveKind::DataDir("/var/lib/modsecurity".into()),
        DirectiveKind::DebugLog("/var/log/modsec_debug.log".into()),
        DirectiveKind::DebugLogLevel(3),
        DirectiveKind::AuditEngine(AuditEngineMode::RelevantOnly),
        DirectiveKind::AuditLog(AuditLogSetting::Path("/var/log/modsec_audit.log".into())),
        DirectiveKind::AuditLog(AuditLogSetting::Parts("ABIJDEFHZ".into())),
        DirectiveKind::AuditLog(AuditLogSetting::Type("Serial".into())),
        DirectiveKind::AuditLog(AuditLogSetting::RelevantStatus("^(?:5|4(?!04))".into())),
        DirectiveKind::AuditLog(AuditLogSetting::DirMode(0o750)),
        DirectiveKind::AuditLog(AuditLogSetting::FileMode(0o640)),
        DirectiveKind::StatusEngine(false),
        DirectiveKind::PcreMatchLimit(100_000),
        DirectiveKind::PcreMatchLimitRecursion(100_000),
        DirectiveKind::HttpBlKey("abcdefghijkl".into()),
        DirectiveKind::WebAppId("app1".into()),
        DirectiveKind::ServerSignature("Apache".into()),
        DirectiveKind::UploadDir("/tmp/uploads".into()),
        DirectiveKind::UploadKeepFiles(UploadKeepFiles::RelevantOnly),
        DirectiveKind::UploadFileMode(0o600),
        DirectiveKind::UploadFileLimit(10),
        DirectiveKind::XmlExternalEntity(false),
    ];
    assert_eq!(kinds(text), expected);
}

#[test]
fn rule_exclusion_directives() {
    let all = kinds(
        r#"SecRuleRemoveById 1 2-5 "6,7"
SecRuleRemoveByTag "attack-sqli"
SecRuleRemoveByMsg 'Bad thing'
SecRuleUpdateTargetById 942100 "!REQUEST_COOKIES:/^_ga(?:_\w+)?$/|!ARGS:foo"
SecRuleUpdateTargetByTag "attack-sqli" "!ARGS:foo" "ARGS"
SecRuleUpdateTargetByMsg "Bad" !ARGS_NAMES:json.profile
SecRuleUpdateActionById 949110 "t:none,redirect:'http://%{request_headers.host}/'"
SecRuleUpdateActionById 949110:2 "nolog"
"#,
    );
    let ids = |spec: &[(u64, u64)]| {
        RuleSelector::Ids(
            spec.iter()
                .map(|&(start, end)| IdRange { start, end })
                .collect(),
        )
    };
    assert_eq!(
        all[0],
        DirectiveKind::RuleRemove(ids(&[(1, 1), (2, 5), (6, 6), (7, 7)]))
    );
    assert_eq!(
        all[1],
        DirectiveKind::RuleRemove(RuleSelector::Tag("attack-sqli".into()))
    );
    assert_eq!(
        all[2],
        DirectiveKind::RuleRemove(RuleSelector::Msg("Bad thing".into()))
    );
    let DirectiveKind::RuleUpdateTarget {
        selector,
        targets,
        replacing,
    } = &all[3]
    else {
        panic!("{:?}", all[3]);
    };
    assert_eq!(*selector, ids(&[(942_100, 942_100)]));
    assert_eq!(
        targets[0].selector,
        Some(Selector::Regex(r"^_ga(?:_\w+)?$".into()))
    );
    assert!(targets.iter().all(|t| t.exclude));
    assert!(replacing.is_none());
    let DirectiveKind::RuleUpdateTarget { replacing, .. } = &all[4] else {
        panic!("{:?}", all[4]);
    };
    assert_eq!(replacing.as_ref().unwrap()[0].variable, Variable::Args);
    assert!(
        matches!(&all[5], DirectiveKind::RuleUpdateTarget { selector: RuleSelector::Msg(m), .. } if m == "Bad")
    );
    let DirectiveKind::RuleUpdateAction {
        id,
        chain_offset,
        actions,
    } = &all[6]
    else {
        panic!("{:?}", all[6]);
    };
    assert_eq!((*id, *chain_offset), (949_110, None));
    assert!(matches!(&actions[1], Action::Redirect(t) if t.macros().count() == 1));
    assert!(matches!(
        all[7],
        DirectiveKind::RuleUpdateAction {
            chain_offset: Some(2),
            ..
        }
    ));
}

#[test]
fn phases_and_severities() {
    let phases = actions("phase:1,phase:2,phase:3,phase:4,phase:5,phase:request,phase:RESPONSE,phase:logging,phase:'2'");
    let expected = [1, 2, 3, 4, 5, 2, 4, 5, 2];
    let got: Vec<u8> = phases
        .iter()
        .map(|a| match a {
            Action::Phase(p) => p.number(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, expected);
    let sev = actions("severity:'CRITICAL',severity:2,severity:warning,severity:0,severity:7");
    let got: Vec<Severity> = sev
        .iter()
        .map(|a| match a {
            Action::Severity(s) => *s,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            Severity::Critical,
            Severity::Critical,
            Severity::Warning,
            Severity::Emergency,
            Severity::Debug
        ]
    );
}

#[test]
fn every_kind_of_action() {
    let list = "id:'5',msg:'it\\'s, here',logdata:x,tag:'a/b',ver:'OWASP_CRS/4',rev:2,maturity:9,accuracy:8,\
        chain,skip:2,skipAfter:END-MARKER,capture,multiMatch,block,deny,drop,pass,allow,allow:phase,allow:REQUEST,\
        redirect:http://x/,status:503,pause:10,proxy:http://b/,log,nolog,auditlog,noauditlog,\
        sanitiseArg:pw,sanitiseMatched,sanitiseMatchedBytes,sanitiseMatchedBytes:1/2,\
        sanitiseRequestHeader:Authorization,sanitiseResponseHeader:Set-Cookie,\
        setenv:FOO=%{tx.x},setuid:%{ARGS.user},setsid:%{REQUEST_COOKIES.sid},setrsc:%{REQUEST_URI},\
        expirevar:ip.blocked=60,deprecatevar:ip.score=60/3600,initcol:ip=%{REMOTE_ADDR}_%{REQUEST_HEADERS.user-agent},\
        exec:/bin/true,append:'<b>',prepend:'<a>',xmlns:soap=http://schemas.xmlsoap.org/soap/envelope/";
    let all = actions(list);
    let expected_prefix = [
        Action::Id(5),
        Action::Msg(template("it's, here")),
        Action::LogData(template("x")),
        Action::Tag(template("a/b")),
        Action::Ver("OWASP_CRS/4".into()),
        Action::Rev("2".into()),
        Action::Maturity(9),
        Action::Accuracy(8),
        Action::Chain,
        Action::Skip(2),
        Action::SkipAfter("END-MARKER".into()),
        Action::Capture,
        Action::MultiMatch,
        Action::Block,
        Action::Deny,
        Action::Drop,
        Action::Pass,
        Action::Allow(AllowScope::All),
        Action::Allow(AllowScope::Phase),
        Action::Allow(AllowScope::Request),
        Action::Redirect(template("http://x/")),
        Action::Status(503),
        Action::Pause(10),
        Action::Proxy(template("http://b/")),
        Action::Log,
        Action::NoLog,
        Action::AuditLog,
        Action::NoAuditLog,
        Action::SanitiseArg("pw".into()),
        Action::SanitiseMatched,
        Action::SanitiseMatchedBytes(None),
        Action::SanitiseMatchedBytes(Some((1, 2))),
        Action::SanitiseRequestHeader("Authorization".into()),
        Action::SanitiseResponseHeader("Set-Cookie".into()),
    ];
    assert_eq!(all[..expected_prefix.len()], expected_prefix);
    let rest = &all[expected_prefix.len()..];
    assert!(
        matches!(&rest[0], Action::SetEnv { name, value } if name == "FOO" && !value.is_literal())
    );
    assert!(
        matches!(&rest[1], Action::SetUid(t) if t.macros().next().unwrap().variable == Variable::Args)
    );
    assert!(matches!(&rest[2], Action::SetSid(_)));
    assert!(matches!(&rest[3], Action::SetRsc(_)));
    assert!(
        matches!(&rest[4], Action::ExpireVar { var, seconds } if var.collection == Collection::Ip && seconds.raw() == "60")
    );
    assert!(matches!(&rest[5], Action::DeprecateVar { value, .. } if value.raw() == "60/3600"));
    assert!(
        matches!(&rest[6], Action::InitCol { collection: Collection::Ip, key } if key.macros().count() == 2)
    );
    assert_eq!(rest[7], Action::Exec("/bin/true".into()));
    assert_eq!(rest[8], Action::Append(template("<b>")));
    assert_eq!(rest[9], Action::Prepend(template("<a>")));
    assert!(
        matches!(&rest[10], Action::Xmlns { prefix, uri } if prefix == "soap" && uri.starts_with("http://schemas"))
    );
    assert_eq!(rest.len(), 11);
}

#[test]
fn setvar_forms() {
    let all = actions(
        "setvar:tx.a=1,setvar:'tx.b=+%{tx.c}',setvar:tx.d=-5,setvar:!tx.e,setvar:tx.f,setvar:'tx.g_%{tx.0}=%{MATCHED_VAR}',setvar:IP.h=",
    );
    let vars: Vec<&SetVar> = all
        .iter()
        .map(|a| match a {
            Action::SetVar(s) => s,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(vars[0].op, SetVarOp::Set(template("1")));
    assert_eq!(vars[1].op, SetVarOp::Add(template("%{tx.c}")));
    assert_eq!(vars[2].op, SetVarOp::Sub(template("5")));
    assert_eq!(vars[3].op, SetVarOp::Delete);
    assert_eq!(vars[3].var.key.raw(), "e");
    assert_eq!(vars[4].op, SetVarOp::SetToOne);
    assert_eq!(
        vars[5].var.key.macros().next().unwrap().key.as_deref(),
        Some("0")
    );
    assert_eq!(vars[6].var.collection, Collection::Ip);
    assert_eq!(vars[6].op, SetVarOp::Set(template("")));
}

#[test]
fn ctl_actions_in_rules() {
    let all = actions("ctl:ruleRemoveTargetById=942100;ARGS:password,ctl:ruleEngine=DetectionOnly,ctl:requestBodyProcessor=XML");
    assert!(matches!(&all[0], Action::Ctl(Ctl::RuleRemoveTarget { .. })));
    assert_eq!(
        all[1],
        Action::Ctl(Ctl::RuleEngine(EngineMode::DetectionOnly))
    );
    assert_eq!(
        all[2],
        Action::Ctl(Ctl::RequestBodyProcessor(BodyProcessor::Xml))
    );
}

#[test]
fn action_list_whitespace_and_trailing_comma() {
    let all = actions("id:1 ,  phase:2,\t pass , ");
    assert_eq!(
        all,
        [
            Action::Id(1),
            Action::Phase(Phase::RequestBody),
            Action::Pass
        ]
    );
    assert!(actions("").is_empty());
}

#[test]
fn default_action_and_marker() {
    let all =
        kinds("SecDefaultAction \"phase:2,log,auditlog,pass\"\nSecMarker \"END-REQUEST-942\"\n");
    assert_eq!(
        all[0],
        DirectiveKind::SecDefaultAction(vec![
            Action::Phase(Phase::RequestBody),
            Action::Log,
            Action::AuditLog,
            Action::Pass
        ])
    );
    assert_eq!(all[1], DirectiveKind::SecMarker("END-REQUEST-942".into()));
}

#[test]
fn locations_follow_comments_and_continuations() {
    let text = "# c1\n#SecRule ARGS \"x\" \\\n#   \"id:9\"\n\nSecMarker A\nSecAction \\\n  \"id:1,\\\n  pass\"\nSecMarker B";
    let all = parse(text);
    let lines: Vec<u32> = all.iter().map(|d| d.location.line).collect();
    assert_eq!(lines, [5, 6, 9]);
    assert_eq!(&*all[0].location.file, Path::new(ORIGIN));
}

// ---- errors: each names the file and the line ----

fn assert_error(text: &str, line: u32, kind: ErrorKind) {
    let err = error(text);
    assert_eq!(err.kind, kind, "{err}");
    assert_eq!(err.location.line, line, "{err}");
    assert_eq!(&*err.location.file, Path::new(ORIGIN));
    let shown = err.to_string();
    assert!(shown.starts_with(&format!("{ORIGIN}:{line}: ")), "{shown}");
}

#[test]
fn unknown_directive_is_an_error() {
    assert_error(
        "SecMarker A\n\nSecFrobnicate On\n",
        3,
        ErrorKind::UnknownDirective("SecFrobnicate".into()),
    );
    let err = error("SecRemoteRules key https://example.com/rules.conf");
    assert!(matches!(err.kind, ErrorKind::UnsupportedDirective(ref n, _) if n == "SecRemoteRules"));
}

#[test]
fn unknown_variable_is_an_error() {
    assert_error(
        "SecRule ARGS|REQUEST_HEADER:Host \"@rx x\" \"id:1\"",
        1,
        ErrorKind::UnknownVariable("REQUEST_HEADER".into()),
    );
    assert_error(
        "SecAction \\\n \"id:1,\\\n msg:'%{NOPE}'\"",
        3,
        ErrorKind::UnknownVariable("NOPE".into()),
    );
}

#[test]
fn unknown_action_is_reported_on_its_own_line() {
    assert_error(
        "SecRule ARGS \"@rx x\" \\\n    \"id:1,\\\n    phase:2,\\\n    frobnicate\"",
        4,
        ErrorKind::UnknownAction("frobnicate".into()),
    );
}

#[test]
fn unknown_transformation_is_an_error() {
    assert_error(
        "SecRule ARGS x \"id:1,\\\n t:none,t:alert\"",
        2,
        ErrorKind::UnknownTransformation("alert".into()),
    );
}

#[test]
fn unknown_operator_is_an_error() {
    assert_error(
        "\nSecRule ARGS \"@frobnicate x\" \"id:1\"",
        2,
        ErrorKind::UnknownOperator("frobnicate".into()),
    );
}

#[test]
fn unbalanced_quotes_are_errors() {
    assert_error(
        "SecMarker A\nSecRule ARGS \"@rx x\" \"id:1",
        2,
        ErrorKind::UnbalancedQuotes('"'),
    );
    assert_error(
        "SecAction \\\n  \"id:1,\\\n  msg:'oops\"",
        3,
        ErrorKind::UnbalancedQuotes('\''),
    );
    // A continued, never-closed quote is reported where it opened.
    assert_error(
        "SecRule ARGS \\\n \"@rx x \\\n y",
        2,
        ErrorKind::UnbalancedQuotes('"'),
    );
}

#[test]
fn invalid_values_are_errors() {
    let cases = [
        "SecRuleEngine Maybe",
        "SecRequestBodyLimit -1",
        "SecRequestBodyLimitAction Drop",
        "SecCookieFormat 2",
        "SecArgumentSeparator ab",
        "SecDebugLogLevel 10",
        "SecAuditLogParts XYZ",
        "SecUploadFileMode 999",
        "SecRuleRemoveById 5-1",
        "SecAction \"phase:6\"",
        "SecAction \"id:0\"",
        "SecAction \"id:abc\"",
        "SecAction \"severity:SEVERE\"",
        "SecAction \"status:42\"",
        "SecAction \"skip:0\"",
        "SecAction \"maturity:10\"",
        "SecAction \"deny:1\"",
        "SecAction \"msg\"",
        "SecAction \"msg:'a'b\"",
        "SecAction \"id:1,,pass\"",
        "SecAction \"setvar:nope.x=1\"",
        "SecAction \"setvar:tx=1\"",
        "SecAction \"initcol:tx=x\"",
        "SecAction \"allow:forever\"",
        "SecAction \"ctl:nope=1\"",
        "SecRule REMOTE_ADDR:x \"@rx y\"",
        "SecRule ARGS \"@detectSQLi x\"",
    ];
    for text in cases {
        let err = error(text);
        assert_eq!(err.location.line, 1, "{err}");
        assert!(
            !matches!(err.kind, ErrorKind::UnknownDirective(_)),
            "{text}: {err}"
        );
    }
}

#[test]
fn argument_counts_are_checked() {
    let err = error("SecRule ARGS");
    assert!(
        matches!(err.kind, ErrorKind::ArgumentCount { got: 1, .. }),
        "{err}"
    );
    assert!(error("SecMarker a b")
        .to_string()
        .contains("SecMarker expects one argument, got 2"));
    assert!(error("SecAction").to_string().contains("got 0"));
    assert!(error("SecResponseBodyMimeTypesClear x")
        .to_string()
        .contains("no arguments"));
}

// ---- Include ----

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("rampart-waf-parser-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn markers(directives: &[Directive]) -> Vec<String> {
    directives
        .iter()
        .filter_map(|d| match &d.kind {
            DirectiveKind::SecMarker(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn include_expands_globs_relative_to_the_including_file() {
    let dir = Scratch::new();
    let main = dir.write(
        "main.conf",
        "SecMarker main-start\nInclude conf.d/*.conf\ninclude \"leaf.conf\"\nSecMarker main-end\n",
    );
    dir.write("conf.d/20-b.conf", "SecMarker b\n");
    dir.write(
        "conf.d/10-a.conf",
        "SecMarker a\nInclude ../nested/inner.conf\n",
    );
    dir.write("conf.d/readme.txt", "not a config\n");
    dir.write("nested/inner.conf", "\n\nSecMarker inner\n");
    dir.write("leaf.conf", "SecMarker leaf\n");
    let all = parse_file(&main).unwrap();
    assert_eq!(
        markers(&all),
        ["main-start", "a", "inner", "b", "leaf", "main-end"]
    );
    let inner = &all[2];
    assert!(inner.location.file.ends_with("nested/inner.conf"));
    assert_eq!(inner.location.line, 3);
}

#[test]
fn missing_include_names_the_including_file_and_line() {
    let dir = Scratch::new();
    let main = dir.write("main.conf", "SecMarker a\n\nInclude missing.conf\n");
    let err = parse_file(&main).unwrap_err();
    assert_eq!(err.location.line, 3);
    assert_eq!(&*err.location.file, main.as_path());
    assert!(
        matches!(err.kind, ErrorKind::Io { ref path, .. } if path.ends_with("missing.conf")),
        "{err}"
    );
    assert!(err
        .to_string()
        .starts_with(&format!("{}:3: cannot read", main.display())));

    let main = dir.write("glob.conf", "Include nothing/*.conf\n");
    let err = parse_file(&main).unwrap_err();
    assert_eq!(err.kind, ErrorKind::IncludeNoMatch("nothing/*.conf".into()));
    assert_eq!(err.location.line, 1);
}

#[test]
fn include_cycles_are_detected() {
    let dir = Scratch::new();
    let a = dir.write("a.conf", "SecMarker a\nInclude b.conf\n");
    dir.write("b.conf", "SecMarker b\n\nInclude a.conf\n");
    let err = parse_file(&a).unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::IncludeCycle(ref chain) if chain.contains("a.conf") && chain.contains("b.conf")),
        "{err}"
    );
    assert!(err.location.file.ends_with("b.conf"));
    assert_eq!(err.location.line, 3);

    let selfish = dir.write("self.conf", "Include self.conf\n");
    assert!(matches!(
        parse_file(&selfish).unwrap_err().kind,
        ErrorKind::IncludeCycle(_)
    ));
}

#[test]
fn including_the_same_file_twice_is_not_a_cycle() {
    let dir = Scratch::new();
    let main = dir.write("main.conf", "Include x.conf\nInclude x.conf\n");
    dir.write("x.conf", "SecMarker x\n");
    assert_eq!(markers(&parse_file(&main).unwrap()), ["x", "x"]);
}

#[test]
fn errors_inside_included_files_point_into_them() {
    let dir = Scratch::new();
    let main = dir.write("main.conf", "Include bad.conf\n");
    dir.write(
        "bad.conf",
        "SecMarker ok\nSecRule ARGS \"@rx x\" \"id:1,bogus\"\n",
    );
    let err = parse_file(&main).unwrap_err();
    assert!(err.location.file.ends_with("bad.conf"));
    assert_eq!(err.location.line, 2);
    assert_eq!(err.kind, ErrorKind::UnknownAction("bogus".into()));
}

#[test]
fn missing_top_level_file_is_an_error() {
    let err = parse_file("/definitely/not/here.conf").unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Io { .. }));
    assert!(err.to_string().contains("/definitely/not/here.conf"));
}

#[test]
fn non_utf8_files_are_rejected_with_a_line() {
    let dir = Scratch::new();
    let path = dir.0.join("latin1.conf");
    fs::write(&path, b"SecMarker a\nSecMarker \xe9\n").unwrap();
    let err = parse_file(&path).unwrap_err();
    assert_eq!(err.location.line, 2);
}
