//! Python's view of SQLite values, as the reference evaluators (all Python) see them through
//! `sqlite3`: `1 == 1.0`, `None == None`, text and bytes never equal, and `str(v)` spelled
//! as Python spells it. The parity profiles compare with these semantics.

use crate::sql::Value;

/// A hashable key with Python's equality: an integral float is the same key as the integer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PyKey<'a> {
    None,
    Int(i64),
    /// A non-integral (or out of i64 range) float, by its bits (`-0.0` is `Int(0)`).
    Float(u64),
    Str(&'a str),
    Bytes(&'a [u8]),
}

impl<'a> PyKey<'a> {
    pub fn of(v: &'a Value) -> PyKey<'a> {
        match v {
            Value::Null => PyKey::None,
            Value::Integer(i) => PyKey::Int(*i),
            Value::Real(f) => match integral(*f) {
                Some(i) => PyKey::Int(i),
                None => PyKey::Float(f.to_bits()),
            },
            Value::Text(s) => PyKey::Str(s),
            Value::Blob(b) => PyKey::Bytes(b),
        }
    }
}

/// The integer a float equals exactly, if any (Python compares int and float exactly).
fn integral(f: f64) -> Option<i64> {
    if f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        Some(f as i64)
    } else {
        None
    }
}

/// Python's `==` on two values from `sqlite3`.
pub fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Real(x), Value::Real(y)) => x == y,
        _ => PyKey::of(a) == PyKey::of(b),
    }
}

/// A row as a hashable key.
pub fn row_key(row: &[Value]) -> Vec<PyKey<'_>> {
    row.iter().map(PyKey::of).collect()
}

/// `str(v)` in Python.
pub fn python_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => python_float_repr(*f),
        Value::Text(s) => s.clone(),
        Value::Blob(b) => {
            let mut s = String::from("b'");
            for &byte in b.iter() {
                match byte {
                    b'\\' => s.push_str("\\\\"),
                    b'\'' => s.push_str("\\'"),
                    b'\t' => s.push_str("\\t"),
                    b'\n' => s.push_str("\\n"),
                    b'\r' => s.push_str("\\r"),
                    0x20..=0x7e => s.push(byte as char),
                    _ => s.push_str(&format!("\\x{byte:02x}")),
                }
            }
            s.push('\'');
            s
        }
    }
}

/// `str(type(v))` in Python.
pub fn python_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<class 'NoneType'>",
        Value::Integer(_) => "<class 'int'>",
        Value::Real(_) => "<class 'float'>",
        Value::Text(_) => "<class 'str'>",
        Value::Blob(_) => "<class 'bytes'>",
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when the
/// decimal exponent is in [-4, 16), else scientific with a signed two-digit exponent.
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e-5".
    let sci = format!("{:e}", f);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let m = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{esign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python() {
        let cases = [
            (40.0, "40.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (-2.5, "-2.5"),
            (3.3333333333333335, "3.3333333333333335"),
            (1.5e300, "1.5e+300"),
            (-0.0, "-0.0"),
        ];
        for (f, want) in cases {
            assert_eq!(python_float_repr(f), want, "{f:e}");
        }
    }

    #[test]
    fn integral_floats_equal_integers_as_in_python() {
        assert!(py_eq(&Value::Integer(40), &Value::Real(40.0)));
        assert!(py_eq(&Value::Null, &Value::Null));
        assert!(!py_eq(&Value::Integer(1), &Value::Text("1".into())));
        assert!(!py_eq(&Value::Real(0.5), &Value::Integer(0)));
        assert_eq!(PyKey::of(&Value::Real(-0.0)), PyKey::of(&Value::Integer(0)));
        // 2^63 as a float is no i64.
        assert!(!py_eq(&Value::Real(9.3e18), &Value::Integer(i64::MAX)));
    }

    #[test]
    fn bytes_repr() {
        assert_eq!(
            python_repr(&Value::Blob(vec![b'a', 0, b'\''])),
            "b'a\\x00\\''"
        );
    }
}
