//! Number formatting as Prometheus' Go libraries write it, so our scrapes read
//! like the Pushgateway's and the Go gateway's: Go's
//! `strconv.FormatFloat(v, 'g', -1, 64)` (shortest digits; exponent form when
//! the exponent is below -4 or at least 6; `+Inf`, `-Inf`, `NaN`).

use std::io::Write as _;

/// Appends `v` formatted as Go's `FormatFloat(v, 'g', -1, 64)`.
#[inline]
pub fn write_go(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    // Fast path: integers below 1e6 print as themselves (exponent < 6).
    if v.fract() == 0.0 && v.abs() < 1e6 && !(v == 0.0 && v.is_sign_negative()) {
        let mut buf = itoa_buf(v as i64);
        out.extend_from_slice(buf.as_bytes_mut());
        return;
    }
    // Shortest round-tripping digits, as Go's -1 precision, from ryu:
    // `{:e}` dominated rendering non-integer values (bench/README.md).
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(v).as_bytes();
    let (neg, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let e_at = text
        .iter()
        .position(|&c| c == b'e' || c == b'E')
        .unwrap_or(text.len());
    let e: i32 = std::str::from_utf8(&text[(e_at + 1).min(text.len())..])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mantissa = &text[..e_at];
    let point = mantissa
        .iter()
        .position(|&c| c == b'.')
        .unwrap_or(mantissa.len());
    let mut digit_buf = [0u8; 32];
    let mut n = 0;
    for &c in mantissa.iter().filter(|c| **c != b'.') {
        if n < digit_buf.len() {
            digit_buf[n] = c;
            n += 1;
        }
    }
    let leading = digit_buf[..n].iter().take_while(|&&c| c == b'0').count();
    let mut end = n;
    while end > leading && digit_buf[end - 1] == b'0' {
        end -= 1;
    }
    let digits = &digit_buf[leading..end];
    if digits.is_empty() {
        out.extend_from_slice(if neg { b"-0" } else { b"0" });
        return;
    }
    let exp = point as i32 + e - leading as i32 - 1;
    if neg {
        out.push(b'-');
    }
    if !(-4..6).contains(&exp) {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let a = exp.unsigned_abs();
        if a < 10 {
            out.push(b'0');
        }
        let _ = write!(out, "{a}");
    } else if exp < 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
        out.extend_from_slice(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.extend_from_slice(digits);
            out.extend(std::iter::repeat_n(b'0', int_len - digits.len()));
        } else {
            out.extend_from_slice(&digits[..int_len]);
            out.push(b'.');
            out.extend_from_slice(&digits[int_len..]);
        }
    }
}

/// Appends `v` as client_golang's OpenMetrics encoder does: Go's format, with
/// `.0` after integers (`1.0`, not `1`).
#[inline]
pub fn write_openmetrics(out: &mut Vec<u8>, v: f64) {
    let start = out.len();
    write_go(out, v);
    if v.is_finite() && !out[start..].iter().any(|c| matches!(c, b'.' | b'e')) {
        out.extend_from_slice(b".0");
    }
}

/// `v` formatted as Go's `FormatFloat(v, 'g', -1, 64)`, as a `String`.
pub fn go(v: f64) -> String {
    let mut out = Vec::new();
    write_go(&mut out, v);
    String::from_utf8(out).unwrap_or_default()
}

struct ItoaBuf {
    buf: [u8; 24],
    start: usize,
}

impl ItoaBuf {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(mut n: i64) -> ItoaBuf {
    let mut b = ItoaBuf {
        buf: [0; 24],
        start: 24,
    };
    let neg = n < 0;
    if n == 0 {
        b.start -= 1;
        b.buf[b.start] = b'0';
    }
    while n != 0 {
        b.start -= 1;
        b.buf[b.start] = b'0' + (n % 10).unsigned_abs() as u8;
        n /= 10;
    }
    if neg {
        b.start -= 1;
        b.buf[b.start] = b'-';
    }
    b
}

#[cfg(test)]
mod tests {
    use super::go;

    #[test]
    fn matches_go_formatting() {
        let cases = [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-3.0, "-3"),
            (2054.0, "2054"),
            (24.5, "24.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (123456.0, "123456"),
            (999999.0, "999999"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (1.5e9, "1.5e+09"),
            (1.7e308, "1.7e+308"),
            (5e-324, "5e-324"),
            (123456.5, "123456.5"),
            (0.30000000000000004, "0.30000000000000004"),
            (-1.25e-7, "-1.25e-07"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(go(v), want, "{v:e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn round_trips(v in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
            let text = go(v);
            proptest::prop_assert_eq!(text.parse::<f64>().unwrap(), v, "{}", text);
            let exp = text.split_once('e').map(|(_, e)| e);
            if let Some(e) = exp {
                // Go writes the exponent with a sign and at least two digits.
                proptest::prop_assert!(e.starts_with(['+', '-']) && e.len() >= 3, "{}", text);
            }
        }
    }

    #[test]
    fn openmetrics_adds_point_zero() {
        let om = |v| {
            let mut o = Vec::new();
            super::write_openmetrics(&mut o, v);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(om(1.0), "1.0");
        assert_eq!(om(2.5), "2.5");
        assert_eq!(om(1e6), "1e+06");
        assert_eq!(om(f64::INFINITY), "+Inf");
    }
}
