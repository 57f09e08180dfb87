//! Generators of values, valid and hostile, for the server properties.

use super::*;

/// Characters that break naive SQL, logs, terminals or byte counting.
pub(super) fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        2 => prop::sample::select(vec![
            '\0', '\'', '"', '\\', '%', '_', ';', '\t', '\n', '\r', '\u{7f}', '\u{200f}', '\u{202e}',
            '\u{301}', '\u{feff}', '\u{3000}', 'ع', '中', '😀',
        ]),
    ]
}

/// A string of exactly `bytes` bytes: `fill` repeated, padded with `a`.
pub(super) fn sized(bytes: usize, fill: char) -> String {
    let mut s = String::with_capacity(bytes);
    while s.len() + fill.len_utf8() <= bytes {
        s.push(fill);
    }
    while s.len() < bytes {
        s.push('a');
    }
    s
}

/// Any text for a field limited to `max_bytes`, valid or not.
pub(super) fn text(max_bytes: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9 -]{1,12}",
        3 => vec(hostile_char(), 0..16).prop_map(String::from_iter),
        1 => bad_text(max_bytes),
    ]
}

/// Text a required field must refuse: blank, holding a NUL, or longer than
/// `max_bytes` (by a few bytes, in multi-byte characters too).
pub(super) fn bad_text(max_bytes: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[ \t\n\r\u{3000}]{1,4}",
        ("[a-z'%_;]{0,8}", "[a-z\"\\\\]{0,8}").prop_map(|(a, b)| format!("{a}\0{b}")),
        (max_bytes + 1..=max_bytes + 4, prop::sample::select(vec!['x', 'é', '中', '😀']))
            .prop_map(|(n, c)| sized(n, c)),
    ]
}

/// Text an optional field must refuse (empty is "not given" there).
pub(super) fn bad_optional_text(max_bytes: usize) -> impl Strategy<Value = String> {
    bad_text(max_bytes).prop_filter("empty text is valid here", |s| !s.is_empty())
}

/// Text an optional free-text field must refuse: a NUL or too long.
pub(super) fn bad_free_text(max_bytes: usize) -> impl Strategy<Value = String> {
    bad_text(max_bytes).prop_filter("blank text is valid here", |s| !s.trim().is_empty())
}

pub(super) fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0.0..10.0f64,
        1 => prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 0.0, 1e10]),
        1 => any::<f64>(),
    ]
}

pub(super) fn not_finite() -> impl Strategy<Value = f64> {
    prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -f64::NAN])
}

pub(super) fn enum_value(known: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = i32> {
    prop_oneof![4 => known, 1 => Just(0), 1 => any::<i32>()]
}

/// An enum value no server knows.
pub(super) fn unknown_enum(known_max: i32) -> impl Strategy<Value = i32> {
    prop_oneof![i32::MIN..0, known_max + 1..=i32::MAX]
}

pub(super) fn timestamp() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
    let t = |(seconds, nanos)| Some(prost_types::Timestamp { seconds, nanos });
    prop_oneof![
        4 => (T0 - 86_400..T0 + 86_400, 0..1_000_000_000i32).prop_map(t),
        1 => Just(None),
        1 => (any::<i64>(), any::<i32>()).prop_map(t),
        // Valid, at the edges of what Postgres, ClickHouse's UInt32
        // seconds and the protobuf range hold.
        1 => (
            prop::sample::select(vec![
                -62_135_596_800, -1, 0, 1, 4_294_967_295, 4_294_967_296, 253_402_300_799,
            ]),
            prop::sample::select(vec![0, 999_999_999]),
        )
            .prop_map(t),
    ]
}

/// An id of the world's rows (`known`), or any other number.
pub(super) fn id(known: Vec<i64>) -> impl Strategy<Value = i64> {
    prop_oneof![3 => prop::sample::select(known), 1 => Just(0i64), 1 => any::<i64>()]
}

pub(super) fn ids(known: Vec<i64>) -> impl Strategy<Value = Vec<i64>> {
    vec(id(known), 0..4)
}

pub(super) fn page_token() -> impl Strategy<Value = String> {
    // ListJobs tokens are `<created_at micros>:<job id>`, of any time:
    // one Postgres cannot hold must be INVALID_ARGUMENT too.
    let micros = prop_oneof![
        any::<i64>(),
        -62_135_596_800_000_000..=253_402_300_799_999_999i64,
        prop::sample::select(vec![-62_135_596_800_000_000, 0, 253_402_300_799_999_999]),
    ];
    prop_oneof![
        2 => Just(String::new()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => text(40),
        1 => micros.prop_map(|m| format!("{m}:5f0c3b9e-8a51-4c4e-9d7e-2f6a1b3c4d5e")),
    ]
}
