//! Tests of the bulk reader: arrays and NDJSON, entry errors named by
//! position, and the size and count limits refused as early as they can be.

use super::*;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct In {
    n: u32,
}

fn odd(x: In) -> Result<u32, ApiError> {
    if x.n % 2 == 1 {
        Ok(x.n)
    } else {
        Err(ApiError::invalid("invalid_value", "n", "n must be odd"))
    }
}

const LIMITS: Limits = Limits {
    bytes: 1 << 20,
    entries: 3,
    what: "numbers",
};

fn field(r: Result<Vec<u32>, ApiError>) -> (&'static str, Option<String>) {
    match r {
        Err(ApiError::Client { code, field, .. }) => (code, field),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_array_is_checked_entry_by_entry() {
    let parse = |s: &str| array(s.as_bytes(), Arc::default(), LIMITS, odd);
    assert_eq!(parse(r#"[{"n": 1}, {"n": 3}]"#).unwrap(), [1, 3]);
    assert_eq!(
        field(parse(r#"[{"n": 1}, {"n": 2}]"#)),
        ("invalid_value", Some("[1].n".into()))
    );
    assert_eq!(
        field(parse(r#"[{"n": 1}, {"m": 2}]"#)),
        ("unknown_field", Some("[1].m".into()))
    );
    assert_eq!(
        field(parse(r#"[{"n": 1}, 7]"#)),
        ("invalid_type", Some("[1]".into()))
    );
    assert_eq!(
        field(parse(r#"[{"n": "\u0000"}]"#)),
        ("invalid_characters", Some("[0].n".into()))
    );
    assert_eq!(field(parse(r#"[{"n": 1},"#)).0, "malformed_json");
    assert_eq!(field(parse(r#"[{"n": 1}] x"#)).0, "malformed_json");
    assert_eq!(field(parse(r#"{"n": 1}"#)).0, "invalid_type");
    assert_eq!(
        field(parse(r#"[{"n": 1}, {"n": 3, "n": 5}]"#)),
        ("duplicate_key", Some("[1].n".into()))
    );
    assert_eq!(
        field(parse(r#"[{"n": 1}, [3]]"#)),
        ("invalid_type", Some("[1]".into()))
    );
    assert_eq!(
        field(parse("[]")),
        ("invalid_batch", Some("numbers".into()))
    );
    // The fourth entry is refused; what follows it is never read, so
    // even a broken rest does not change the answer.
    assert_eq!(
        field(parse(r#"[{"n": 1}, {"n": 3}, {"n": 5}, {"n": 7}, {{{"#)),
        ("invalid_batch", Some("numbers".into()))
    );
}

#[test]
fn a_refusal_ends_the_read_while_the_client_still_sends() {
    let (tx, rx) = mpsc::channel(4);
    tx.try_send(Bytes::from_static(br#"[{"n": 1}, {"n": 2}, "#))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = BufReader::new(Chunks::new(rx, stop.clone()));
    // The body is not over (`tx` is open), yet the answer is.
    assert_eq!(
        field(array(reader, stop, LIMITS, odd)),
        ("invalid_value", Some("[1].n".into()))
    );
    drop(tx);
}

#[test]
fn ndjson_is_checked_line_by_line() {
    let parse = |s: &str| lines(s.as_bytes(), LIMITS, odd);
    assert_eq!(parse("{\"n\": 1}\n\n{\"n\": 3}\r\n").unwrap(), [1, 3]);
    assert_eq!(
        field(parse("{\"n\": 1}\n\n{\"n\": 2}")),
        ("invalid_value", Some("[1].n".into()))
    );
    assert_eq!(
        field(parse("{\"n\": 1}\n{\"n\": 1\n")),
        ("malformed_json", Some("line 2".into()))
    );
    assert_eq!(
        field(parse("{\"n\": 1}\n{\"n\": 1, \"n\": 3}\n")),
        ("duplicate_key", Some("line 2".into()))
    );
    assert_eq!(
        field(parse("{\"n\": 1}\n[3]\n")),
        ("invalid_type", Some("line 2".into()))
    );
    assert_eq!(
        field(parse("{\"n\": 1}\n{\"n\": 3}\n{\"n\": 5}\n{\"n\": 7}\n{{{")),
        ("invalid_batch", Some("numbers".into()))
    );
    let long = format!("{{\"n\": 1, \"pad\": \"{}\"}}\n", "x".repeat(MAX_LINE));
    assert_eq!(
        field(parse(&long)),
        ("payload_too_large", Some("line 1".into()))
    );
    assert_eq!(field(parse("\n\n")).0, "invalid_batch");
}
