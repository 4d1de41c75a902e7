//! The filter grammar: RFC examples, precedence, case, whitespace, the
//! canonical printed form, and every refusal with its offset.

use serde_json::Number;

use super::{parse, RFC_FILTERS};
use crate::scim::{AttrPath, CompValue, CompareOp, Filter, FilterError, MAX_DEPTH, MAX_FILTER_LEN};

fn attr(name: &str) -> AttrPath {
    AttrPath::new(name)
}

fn sub(name: &str, sub: &str) -> AttrPath {
    AttrPath {
        uri: None,
        name: name.into(),
        sub: Some(sub.into()),
    }
}

fn eq(path: AttrPath, value: &str) -> Filter {
    Filter::Compare(path, CompareOp::Eq, CompValue::String(value.into()))
}

fn pr(name: &str) -> Filter {
    Filter::Present(attr(name))
}

fn err(text: &str) -> FilterError {
    match Filter::parse(text) {
        Ok(f) => panic!("{text:?} parsed as {f:?}"),
        Err(e) => e,
    }
}

#[test]
fn every_rfc_example_parses_and_prints_back() {
    for text in RFC_FILTERS {
        let filter = parse(text);
        let printed = filter.to_string();
        assert_eq!(Filter::parse(&printed), Ok(filter), "{text} printed as {printed}");
    }
    // The examples are canonical already, except for redundant parentheses.
    assert_eq!(parse(RFC_FILTERS[12]).to_string(), RFC_FILTERS[12]);
    assert_eq!(
        parse(RFC_FILTERS[14]).to_string(),
        r#"userType eq "Employee" and emails.type eq "work""#
    );
}

#[test]
fn rfc_examples_have_the_expected_shape() {
    assert_eq!(parse(RFC_FILTERS[0]), eq(attr("userName"), "bjensen"));
    assert_eq!(
        parse(RFC_FILTERS[1]),
        Filter::Compare(
            sub("name", "familyName"),
            CompareOp::Co,
            CompValue::String("O'Malley".into())
        )
    );
    let urn = AttrPath {
        uri: Some("urn:ietf:params:scim:schemas:core:2.0:User".into()),
        name: "userName".into(),
        sub: None,
    };
    assert_eq!(
        parse(RFC_FILTERS[3]),
        Filter::Compare(urn, CompareOp::Sw, CompValue::String("J".into()))
    );
    assert_eq!(parse(RFC_FILTERS[4]), pr("title"));
    let work = Filter::ValuePath(
        attr("emails"),
        Box::new(Filter::And(vec![
            eq(attr("type"), "work"),
            Filter::Compare(attr("value"), CompareOp::Co, CompValue::String("@example.com".into())),
        ])),
    );
    assert_eq!(
        parse(RFC_FILTERS[15]),
        Filter::And(vec![eq(attr("userType"), "Employee"), work.clone()])
    );
    match parse(RFC_FILTERS[13]) {
        Filter::And(items) => assert!(matches!(&items[1], Filter::Not(inner) if matches!(**inner, Filter::Or(_)))),
        other => panic!("{other:?}"),
    }
    match parse(RFC_FILTERS[16]) {
        Filter::Or(items) => assert_eq!(items[0], work),
        other => panic!("{other:?}"),
    }
}

#[test]
fn and_binds_tighter_than_or() {
    let (a, b, c) = (pr("a"), pr("b"), pr("c"));
    assert_eq!(
        parse("a pr or b pr and c pr"),
        Filter::Or(vec![a.clone(), Filter::And(vec![b.clone(), c.clone()])])
    );
    assert_eq!(
        parse("a pr and b pr or c pr"),
        Filter::Or(vec![Filter::And(vec![a.clone(), b.clone()]), c.clone()])
    );
    let grouped = parse("(a pr or b pr) and c pr");
    assert_eq!(
        grouped,
        Filter::And(vec![Filter::Or(vec![a.clone(), b.clone()]), c.clone()])
    );
    assert_eq!(grouped.to_string(), "(a pr or b pr) and c pr");
    assert_eq!(
        parse("not (a pr) and b pr"),
        Filter::And(vec![Filter::Not(Box::new(a.clone())), b.clone()])
    );
    // Chains flatten, whatever the grouping.
    assert_eq!(
        parse("a pr and (b pr and c pr)"),
        Filter::And(vec![a.clone(), b.clone(), c.clone()])
    );
    assert_eq!(parse("((a pr) or ((b pr or c pr)))"), Filter::Or(vec![a, b, c]));
}

#[test]
fn not_and_nested_parentheses() {
    let f = parse(r#"not (not (userName eq "x")) and ((((title pr))))"#);
    let inner = Filter::Not(Box::new(Filter::Not(Box::new(eq(attr("userName"), "x")))));
    assert_eq!(f, Filter::And(vec![inner, pr("title")]));
    assert_eq!(f.to_string(), r#"not (not (userName eq "x")) and title pr"#);
    assert_eq!(parse("not(a pr)"), Filter::Not(Box::new(pr("a"))));
    assert_eq!(
        parse(r#"emails[not (type eq "work")]"#).to_string(),
        r#"emails[not (type eq "work")]"#
    );
}

#[test]
fn keywords_are_case_insensitive_names_keep_their_case() {
    let f = parse(r#"USERNAME EQ "x" AND Title PR OR NOT (active Eq TRUE) or x eq Null or y Ne FALSE"#);
    assert_eq!(
        f.to_string(),
        r#"USERNAME eq "x" and Title pr or not (active eq true) or x eq null or y ne false"#
    );
    for op in ["eq", "NE", "Co", "sW", "EW", "gt", "GE", "lT", "le"] {
        let f = parse(&format!(r#"a {op} "1""#));
        assert!(
            matches!(f, Filter::Compare(_, got, _) if got.keyword() == op.to_ascii_lowercase()),
            "{op}"
        );
    }
}

#[test]
fn whitespace_is_lenient_around_tokens() {
    let canonical = r#"userName eq "x" and emails[type eq "work"]"#;
    for text in [
        "  userName   eq \t\"x\"\n and\r\n emails[ type eq \"work\" ]  ",
        "userName eq \"x\" and emails[type eq \"work\"]",
        "( userName eq \"x\" ) and (emails[type eq \"work\"])",
    ] {
        assert_eq!(parse(text).to_string(), canonical, "{text:?}");
    }
}

#[test]
fn values_numbers_strings_and_literals() {
    let value = |text: &str| match parse(&format!("a eq {text}")) {
        Filter::Compare(_, _, v) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(value("true"), CompValue::Bool(true));
    assert_eq!(value("FALSE"), CompValue::Bool(false));
    assert_eq!(value("null"), CompValue::Null);
    assert_eq!(
        value("\"true\""),
        CompValue::String("true".into()),
        "a quoted true is a string"
    );
    assert_eq!(value("42"), CompValue::Number(Number::from(42)));
    assert_eq!(value("-0"), value("-0"));
    assert!(matches!(value("-1.5e3"), CompValue::Number(n) if n.as_f64() == Some(-1500.0)));
    // Floats are rounded correctly and print back to the same value (the
    // fuzz smoke found serde_json's parse turning -1.5e38 into
    // -1.4999999999999999e38).
    for text in [
        "-1.5e38",
        "1.5e38",
        "0.1",
        "2.2250738585072014e-308",
        "123456789.123456789",
    ] {
        let expected = text.parse::<f64>().expect("a float");
        assert!(
            matches!(value(text), CompValue::Number(n) if n.as_f64() == Some(expected)),
            "{text}"
        );
        let printed = parse(&format!("a eq {text}")).to_string();
        assert_eq!(
            parse(&printed),
            parse(&format!("a eq {text}")),
            "{text} printed as {printed}"
        );
    }
    assert_eq!(value("18446744073709551615"), CompValue::Number(Number::from(u64::MAX)));
    assert_eq!(
        value(r#""a\"b\\c\/\u00e9\ud83d\ude00\n\t""#),
        CompValue::String("a\"b\\c/é😀\n\t".into())
    );
    assert_eq!(value(r#""日本語 ok""#), CompValue::String("日本語 ok".into()));
    // Printing escapes what must be escaped, and parses back.
    let f = parse(r#"a eq "quote\" back\\ nl\n bell\u0007""#);
    assert_eq!(f.to_string(), r#"a eq "quote\" back\\ nl\n bell\u0007""#);
}

#[test]
fn attribute_paths() {
    let f = parse(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#);
    let path = AttrPath {
        uri: Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".into()),
        name: "manager".into(),
        sub: Some("value".into()),
    };
    assert_eq!(f, eq(path, "x"));
    assert_eq!(parse(r#"members.$ref eq "x""#), eq(sub("members", "$ref"), "x"));
    assert_eq!(parse("x-y_z9 pr"), pr("x-y_z9"));
    // `not` and `or` are only keywords where the grammar expects them.
    assert_eq!(parse(r#"not eq "x""#), eq(attr("not"), "x"));
    assert_eq!(
        parse("nothing pr or order pr"),
        Filter::Or(vec![pr("nothing"), pr("order")])
    );
}

#[test]
fn entra_value_path_with_sub_attribute_is_read_as_one_value_filter() {
    let f = parse(r#"emails[type eq "work"].value eq "user@contoso.com""#);
    assert_eq!(
        f.to_string(),
        r#"emails[type eq "work" and value eq "user@contoso.com"]"#
    );
    let f = parse(r#"emails[type eq "work" or type eq "home"].value pr"#);
    assert_eq!(
        f.to_string(),
        r#"emails[(type eq "work" or type eq "home") and value pr]"#
    );
    assert_eq!(Filter::parse(&f.to_string()), Ok(f));
}

#[test]
fn refusals_say_what_and_where() {
    assert_eq!(err(""), FilterError::Empty);
    assert_eq!(err(" \t\n"), FilterError::Empty);
    assert_eq!(
        err(r#"userName eq "bjensen"#),
        FilterError::UnterminatedString { at: 12 }
    );
    assert_eq!(
        err(r#"userName regex "x""#),
        FilterError::UnknownOperator {
            at: 9,
            op: "`regex`".into()
        }
    );
    assert_eq!(
        err("userName eq"),
        FilterError::Expected {
            at: 11,
            expected: "a space, then a comparison value",
            found: "end of input".into()
        }
    );
    assert!(matches!(err("userName eq "), FilterError::Expected { at: 12, found, .. } if found == "end of input"));
    assert!(matches!(err("userName == \"x\""), FilterError::Expected { at: 9, found, .. } if found == "`==`"));
    assert!(matches!(err("userName eq jyoung"), FilterError::Expected { at: 12, found, .. } if found == "`jyoung`"));
    assert_eq!(
        err(r#"userName eq "x" garbage"#),
        FilterError::TrailingInput {
            at: 16,
            found: "`garbage`".into()
        }
    );
    assert!(matches!(
        err(r#"userName eq "x")"#),
        FilterError::TrailingInput { at: 15, .. }
    ));
    assert_eq!(err(r#"title pr "x""#), FilterError::PresentWithValue { at: 9 });
    assert_eq!(err("title pr true"), FilterError::PresentWithValue { at: 9 });
    assert!(matches!(
        err("not title pr"),
        FilterError::Expected {
            at: 4,
            expected: "`(` after `not`",
            ..
        }
    ));
    assert!(
        matches!(err(r#"userName eq "a" and"#), FilterError::Expected { at: 19, found, .. } if found == "end of input")
    );
    assert!(matches!(
        err("(a pr"),
        FilterError::Expected {
            at: 5,
            expected: "`)`",
            ..
        }
    ));
    assert!(matches!(
        err(r#"emails[type eq "work""#),
        FilterError::Expected {
            at: 21,
            expected: "`]`",
            ..
        }
    ));
    assert!(matches!(err("()"), FilterError::Expected { at: 1, .. }));
    assert_eq!(err("emails[type[value eq 1]]"), FilterError::NestedValuePath { at: 11 });
    assert!(matches!(err("a.b.c eq 1"), FilterError::InvalidAttrPath { at: 0, .. }));
    assert!(matches!(
        err("emails[urn:x:type eq 1]"),
        FilterError::InvalidAttrPath { at: 7, .. }
    ));
    assert!(matches!(
        err("emails[type.x eq 1]"),
        FilterError::InvalidAttrPath { at: 7, .. }
    ));
    assert!(matches!(
        err("name.givenName[x eq 1]"),
        FilterError::InvalidAttrPath { at: 0, .. }
    ));
    assert!(matches!(err("1abc pr"), FilterError::InvalidAttrPath { at: 0, .. }));
    assert!(matches!(err(":abc pr"), FilterError::InvalidAttrPath { at: 0, .. }));
    assert!(matches!(
        err("a pr and(b pr)or c pr"),
        FilterError::TrailingInput { at: 14, .. }
    ));
}

#[test]
fn refused_strings_and_numbers() {
    assert!(matches!(err(r#"x eq "\q""#), FilterError::InvalidString { at: 6, .. }));
    assert!(matches!(
        err(r#"x eq "\u12""#),
        FilterError::InvalidString { at: 6, .. }
    ));
    assert!(matches!(
        err(r#"x eq "\ud800""#),
        FilterError::InvalidString { at: 6, .. }
    ));
    assert!(matches!(
        err(r#"x eq "\ud800\u0041""#),
        FilterError::InvalidString { at: 6, .. }
    ));
    assert!(matches!(
        err(r#"x eq "\udc00""#),
        FilterError::InvalidString { at: 6, .. }
    ));
    assert!(matches!(err("x eq \"a\tb\""), FilterError::InvalidString { at: 7, .. }));
    assert_eq!(err(r#"x eq "\"#), FilterError::UnterminatedString { at: 5 });
    for bad in ["01", "1.", "-", "1e", "1e+", "-x", "1.5.5", "1e400", "12abc"] {
        assert_eq!(
            err(&format!("x eq {bad}")),
            FilterError::InvalidNumber { at: 5 },
            "{bad}"
        );
    }
    assert!(matches!(err("x eq .5"), FilterError::Expected { at: 5, .. }));
    assert!(matches!(err("x eq +5"), FilterError::Expected { at: 5, .. }));
    assert!(matches!(err(r#"x eq "a"b"#), FilterError::Expected { at: 8, .. }));
}

#[test]
fn nesting_is_bounded() {
    let nested = |n: usize| format!("{}a pr{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(parse(&nested(MAX_DEPTH)), pr("a"));
    assert_eq!(
        err(&nested(MAX_DEPTH + 1)),
        FilterError::TooDeep {
            at: MAX_DEPTH,
            max: MAX_DEPTH
        }
    );
    let nots = |n: usize| format!("{}a pr{}", "not (".repeat(n), ")".repeat(n));
    assert!(Filter::parse(&nots(MAX_DEPTH)).is_ok());
    assert!(matches!(err(&nots(MAX_DEPTH + 1)), FilterError::TooDeep { .. }));
    // A bracket counts as a level too.
    let in_brackets = format!("{}x[{}a pr{}]{}", "(".repeat(31), "(", ")", ")".repeat(31));
    assert!(matches!(err(&in_brackets), FilterError::TooDeep { .. }));
    // Entra's `x[a or b].sub op v` prints as `x[(a or b) and sub op v]`, one
    // level deeper than written: refused where that would pass the limit.
    let entra = |n: usize| format!("{}x[a pr or b pr].v pr{}", "(".repeat(n), ")".repeat(n));
    let ok = parse(&entra(MAX_DEPTH - 2));
    assert_eq!(Filter::parse(&ok.to_string()), Ok(ok));
    assert!(matches!(err(&entra(MAX_DEPTH - 1)), FilterError::TooDeep { .. }));
    assert!(Filter::parse(&format!("{}x[a pr].v pr{}", "(".repeat(31), ")".repeat(31))).is_ok());
    // Far past the limit is refused just the same, without exhausting the stack.
    assert!(matches!(err(&"(".repeat(MAX_FILTER_LEN)), FilterError::TooDeep { .. }));
    // Long flat chains are not nesting: they stay one level deep.
    let chain = vec!["a pr"; 400].join(" and ");
    assert!(matches!(parse(&chain), Filter::And(items) if items.len() == 400));
}

#[test]
fn length_is_bounded() {
    let at_limit = format!("x eq \"{}\"", "y".repeat(MAX_FILTER_LEN - 7));
    assert_eq!(at_limit.len(), MAX_FILTER_LEN);
    assert!(Filter::parse(&at_limit).is_ok());
    let over = format!("x eq \"{}\"", "y".repeat(MAX_FILTER_LEN - 6));
    assert_eq!(
        err(&over),
        FilterError::TooLong {
            len: MAX_FILTER_LEN + 1,
            max: MAX_FILTER_LEN
        }
    );
}

#[test]
fn error_messages_are_fit_for_a_scim_detail() {
    let e = err(r#"userName regex "x""#);
    assert_eq!(e.scim_type(), "invalidFilter");
    assert_eq!(e.position(), Some(9));
    assert_eq!(
        e.to_string(),
        "the operator `regex` at offset 9 is not supported; use eq, ne, co, sw, ew, gt, ge, lt, le or pr"
    );
    // Quoted input is shortened and escaped: safe to log and to return.
    let e = err(&format!("userName eq \"x\" \u{1b}[31m{}", "z".repeat(100)));
    let message = e.to_string();
    assert!(!message.contains('\u{1b}') && message.len() < 120, "{message}");
}
