//! serde's messages in the API's words. serde and serde_json describe a
//! value of the wrong type in Rust's terms (`expected u32`, `expected
//! struct Subscribe with 7 elements`, `invalid length 2`, `sequence`,
//! `unit variant`), and a query parameter that is not a number in the
//! standard library's (`invalid digit found in string`). None of that
//! means anything to a client: [`reword`] says what was expected and what
//! came in JSON's terms, and never echoes a string the client sent (its
//! value may be long, and the client has it).

/// `msg`, a serde or serde_json message about a value, in the API's words.
/// A message it does not know is kept as it is.
pub fn reword(msg: &str) -> String {
    if let Some(rest) = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "))
    {
        // The value may be a string holding anything, `, expected ` too;
        // what was expected comes last and never does.
        if let Some((got, wanted)) = rest.rsplit_once(", expected ") {
            return format!("expected {}, got {}", expected(wanted), given(got));
        }
    }
    if let Some(rest) = msg.strip_prefix("invalid length ") {
        if let Some((n, wanted)) = rest.split_once(", expected ") {
            return format!("expected {}, got {n} values", expected(wanted));
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        return match rest.rsplit_once(", there are no variants") {
            Some((name, _)) => format!("unknown value {name}"),
            None => format!("unknown value {rest}"),
        };
    }
    let plain = match msg {
        "invalid digit found in string" => "expected a whole number",
        "number too large to fit in target type" => "the number is too large",
        "number too small to fit in target type" => "the number is too small",
        "cannot parse integer from empty string" => "expected a whole number, got nothing",
        "invalid float literal" => "expected a number",
        "provided string was not `true` or `false`" => "expected true or false",
        _ => return msg.to_owned(),
    };
    plain.to_owned()
}

/// What serde's `expected …` names, in JSON's terms.
fn expected(wanted: &str) -> String {
    macro_rules! whole {
        ($($t:ident)*) => {
            match wanted {
                $(stringify!($t) => {
                    return format!("a whole number from {} to {}", $t::MIN, $t::MAX)
                })*
                _ => {}
            }
        };
    }
    whole!(u8 u16 u32 u64 usize i8 i16 i32 i64 isize);
    let plain = match wanted {
        "a string" | "a borrowed string" | "a character" | "string or map" | "unit variant" => {
            "a string"
        }
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a sequence" => "an array",
        "unit" => "null",
        "a map" | "map with a single key" => "a JSON object",
        w if w.starts_with("struct ") || w.starts_with("a map ") => "a JSON object",
        w if w.starts_with("enum ") => "a string",
        w if w.starts_with("tuple of ") || w.starts_with("a tuple ") => "an array",
        w if w.starts_with("an array of length ") => "an array",
        w => return w.to_owned(),
    };
    plain.to_owned()
}

/// The value serde_json names (`integer \`7\``, `string "x"`, `sequence`),
/// in JSON's terms; a string's content is not repeated.
fn given(got: &str) -> String {
    let quoted = |prefix: &str| {
        got.strip_prefix(prefix)
            .and_then(|v| v.strip_prefix('`'))
            .and_then(|v| v.strip_suffix('`'))
            .map(str::to_owned)
    };
    if let Some(v) = quoted("integer ")
        .or_else(|| quoted("floating point "))
        .or_else(|| quoted("boolean "))
    {
        return v;
    }
    let plain = match got {
        "null" | "unit value" | "Option value" => "null",
        "sequence" => "an array",
        "map" => "an object",
        g if g.starts_with("string ") || g.starts_with("character ") => "a string",
        g => return g.to_owned(),
    };
    plain.to_owned()
}

#[cfg(test)]
mod tests {
    use super::reword;

    #[test]
    fn serde_s_terms_become_json_s() {
        for (serde, ours) in [
            (
                "invalid type: string \"7, expected u32\", expected u32",
                "expected a whole number from 0 to 4294967295, got a string",
            ),
            (
                "invalid value: integer `-1`, expected u32",
                "expected a whole number from 0 to 4294967295, got -1",
            ),
            (
                "invalid type: floating point `1.5`, expected u32",
                "expected a whole number from 0 to 4294967295, got 1.5",
            ),
            (
                "invalid type: null, expected a string",
                "expected a string, got null",
            ),
            (
                "invalid type: sequence, expected a string",
                "expected a string, got an array",
            ),
            (
                "invalid type: map, expected a sequence",
                "expected an array, got an object",
            ),
            (
                "invalid type: boolean `true`, expected struct Subscribe",
                "expected a JSON object, got true",
            ),
            (
                "invalid length 2, expected struct Subscribe with 7 elements",
                "expected a JSON object, got 2 values",
            ),
            (
                "invalid type: integer `3`, expected string or map",
                "expected a string, got 3",
            ),
            (
                "unknown variant `sent`, expected one of `failed`, `expired`",
                "unknown value `sent`, expected one of `failed`, `expired`",
            ),
            (
                "invalid type: map, expected a JSON array of participants",
                "expected a JSON array of participants, got an object",
            ),
            ("invalid digit found in string", "expected a whole number"),
            ("missing field `event`", "missing field `event`"),
        ] {
            assert_eq!(reword(serde), ours, "{serde}");
        }
    }
}
