"""JSON spellings that make serde_json and url take their rarer paths, shared by the seed
generators beside this file. Each entry is JSON text, ready to be put into a document as is."""

# Numbers by the paths they take: integers at and past the u64/i64 limits, the fast float path,
# halfway and near-halfway mantissas (exact parsing falls back to big-number arithmetic), long
# mantissas, subnormals, exponents at and past the limits, and values that print in exponent form.
NUMBERS = [
    "0", "-0", "1", "-1", "0.0", "-0.0", "1.0", "1e0", "1E+0", "1e-0", "1.5", "0.1", "1e-7", "1e21",
    "1e22", "1e23", "0.30000000000000004", "123456789e-5", "7.2057594037927933e16",
    "123456789012345678", "18446744073709551615", "18446744073709551616", "-9223372036854775808",
    "-9223372036854775809", "9007199254740993", "9007199254740992.5", "4503599627370496.5",
    "1.00000000000000011102230246251565404236316680908203125",
    "1.00000000000000011102230246251565404236316680908203124",
    "1.00000000000000011102230246251565404236316680908203126",
    "1.7976931348623157e308", "8.98846567431158e307", "2.2250738585072011e-308",
    "2.2250738585072014e-308", "4.9e-324", "5e-324", "2.4703282292062327e-324",
    "2.4703282292062328e-324", "-1e-320", "1e-400", "0e999999", "0." + "0" * 40 + "1",
    "1" * 400, "1" + "0" * 400 + "e-400", "9" * 30 + "e-30", "3." + "14159265358979" * 20,
]
# Numbers serde_json refuses: past f64's range.
TOO_BIG = ["1e309", "1.7976931348623159e308", "-1" + "0" * 400]

# Strings by the paths they take: every escape, surrogate pairs, raw multi-byte UTF-8 and control
# characters that must be escaped again on the way out.
STRINGS = [
    '"\\b\\f\\n\\r\\t\\"\\\\\\/"', '"\\u0000\\u001f\\u007f\\u00e9\\u20ac"', '"\\ud83d\\ude00"',
    '"\\uD83D\\uDE00 mixed case"', '"é€😀 raw"', '"\u007f\u0085\u2028\u2029"', '"' + "x" * 300 + '"',
]
# Strings serde_json refuses whole: lone or reversed surrogates.
BAD_STRINGS = ['"\\ud800 alone"', '"\\udc00\\ud800"']

# Hosts that take the url crate's IDNA paths: punycode (valid and not), mixed scripts,
# bidirectional text, joiners, full-width dots, case mapping, and IP literals.
HOSTS = [
    "xn--nxasmq6b.example", "xn--bcher-kva.example", "bücher.example", "ＥＸＡＭＰＬＥ．com",
    "例え.テスト", "مثال.إختبار", "a\u200db.example", "xn--a.example", "xn--zz.example",
    "ß.example", "İ.example", "ⅷ.example", "xn--80ak6aa92e.com", "1.2.3.4", "[::ffff:1.2.3.4]",
]
