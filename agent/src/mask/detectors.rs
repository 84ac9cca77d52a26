//! Content detectors: hand-written scanners over bytes (ASCII shapes, so any UTF-8 text works
//! and every match starts and ends on a character boundary).
//!
//! Each detector validates what it finds (Luhn and issuer ranges for cards, SSA rules for
//! SSNs, country length and mod-97 for IBANs, a JSON header for JWTs) to keep false positives
//! rare: numbers of the right shape that fail validation are left alone.

use std::ops::Range;

use crate::policy::Detector;

/// Appends to `out` the byte ranges of `text` where `detector` finds something, in order and
/// not overlapping each other.
pub fn find(detector: Detector, text: &[u8], out: &mut Vec<Range<usize>>) {
    match detector {
        Detector::Card => find_cards(text, out),
        Detector::Email => find_emails(text, out),
        Detector::Ssn => find_ssns(text, out),
        Detector::Phone => find_phones(text, out),
        Detector::Iban => find_ibans(text, out),
        Detector::Jwt => find_jwts(text, out),
        Detector::ApiKey => find_api_keys(text, out),
    }
}

/// What a cheap pass over a text tells about which detectors may find something in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signals {
    len: usize,
    digits: usize,
    classes: u8,
}

const C_DIGIT: u8 = 1;
const C_AT: u8 = 2;
const C_UPPER: u8 = 4;
const C_DASH: u8 = 8;
const C_PLUS: u8 = 16;
const C_DOT: u8 = 32;
const C_PAREN: u8 = 64;
const C_UNDERSCORE: u8 = 128;

/// The class bits of each byte.
static CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            b'0'..=b'9' => C_DIGIT,
            b'A'..=b'Z' => C_UPPER,
            b'@' => C_AT,
            b'-' => C_DASH,
            b'+' => C_PLUS,
            b'.' => C_DOT,
            b'(' => C_PAREN,
            b'_' => C_UNDERSCORE,
            _ => 0,
        };
        b += 1;
    }
    table
};

impl Signals {
    /// One pass over `text`.
    pub fn of(text: &[u8]) -> Self {
        let mut digits = 0;
        let mut classes = 0;
        for &b in text {
            let c = CLASSES[usize::from(b)];
            classes |= c;
            digits += usize::from(c & C_DIGIT);
        }
        Self {
            len: text.len(),
            digits,
            classes,
        }
    }

    fn has(&self, class: u8) -> bool {
        self.classes & class != 0
    }

    /// Whether `detector` may find something in the text (if not, it certainly finds
    /// nothing).
    pub fn may_find(&self, detector: Detector) -> bool {
        match detector {
            Detector::Card => self.digits >= CARD_MIN_DIGITS,
            Detector::Email => self.has(C_AT) && self.has(C_DOT),
            Detector::Ssn => self.digits >= 9 && self.has(C_DASH),
            Detector::Phone => self.digits >= 8 && self.has(C_PLUS | C_DASH | C_DOT | C_PAREN),
            Detector::Iban => self.len >= 15 && self.digits >= 2 && self.has(C_UPPER),
            Detector::Jwt => self.len >= 16 && self.has(C_DOT),
            Detector::ApiKey => self.has(C_UPPER | C_UNDERSCORE | C_DASH),
        }
    }
}

/// The matches of `detector` in `text`, as strings (for tests and tools).
pub fn find_all(detector: Detector, text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    find(detector, text.as_bytes(), &mut out);
    out.into_iter().map(|r| &text[r]).collect()
}

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

fn at(text: &[u8], i: usize) -> u8 {
    text.get(i).copied().unwrap_or(0)
}

/// The byte before `i` (0 at the start).
fn before(text: &[u8], i: usize) -> u8 {
    i.checked_sub(1).map_or(0, |j| text[j])
}

// ---------------------------------------------------------------------------------------------
// Payment cards

/// Most digits a card number has.
const CARD_MAX_DIGITS: usize = 19;
const CARD_MIN_DIGITS: usize = 13;

/// Runs of digits, optionally in groups separated by one space or one dash (the same
/// separator throughout); every group-aligned window of 13 to 19 digits is tried, leftmost
/// then longest first. A run of more than 19 digits without separators is an identifier, not
/// a card.
fn find_cards(text: &[u8], out: &mut Vec<Range<usize>>) {
    let mut groups: Vec<Range<usize>> = Vec::new();
    let mut i = 0;
    // `i` is always at the start of the text or just after a non-digit.
    while let Some(p) = text[i..].iter().position(u8::is_ascii_digit) {
        i += p;
        groups.clear();
        let mut separator = None;
        let mut j = i;
        loop {
            let start = j;
            while is_digit(at(text, j)) {
                j += 1;
            }
            groups.push(start..j);
            let sep = at(text, j);
            if (sep == b' ' || sep == b'-')
                && separator.is_none_or(|s| s == sep)
                && is_digit(at(text, j + 1))
            {
                separator = Some(sep);
                j += 1;
            } else {
                break;
            }
        }
        let run_end = j;
        let mut a = 0;
        while a < groups.len() {
            match card_window(text, &groups[a..]) {
                Some(b) => {
                    out.push(groups[a].start..groups[a + b].end);
                    a += b + 1;
                }
                None => a += 1,
            }
        }
        i = run_end;
    }
}

/// The longest window of `groups` starting at the first one that is a valid card number: the
/// index of its last group.
fn card_window(text: &[u8], groups: &[Range<usize>]) -> Option<usize> {
    let mut digits = [0u8; CARD_MAX_DIGITS];
    let mut n = 0;
    let mut ends = [0usize; CARD_MAX_DIGITS + 1];
    let mut candidates = 0;
    for (b, g) in groups.iter().enumerate() {
        if n + g.len() > CARD_MAX_DIGITS {
            break;
        }
        for &d in &text[g.clone()] {
            digits[n] = d - b'0';
            n += 1;
        }
        if n >= CARD_MIN_DIGITS {
            ends[candidates] = b;
            candidates += 1;
        }
    }
    // Longest first.
    (0..candidates).rev().map(|c| ends[c]).find(|&b| {
        let len: usize = groups[..=b].iter().map(|g| g.len()).sum();
        is_card_number(&digits[..len])
    })
}

/// Digit values (0-9): a known issuer prefix with one of its lengths, and Luhn-valid.
pub fn is_card_number(digits: &[u8]) -> bool {
    card_issuer_accepts(digits) && luhn_valid(digits)
}

/// Visa 4 (13, 16, 19 digits); Mastercard 51-55 and 2221-2720 (16); American Express 34, 37
/// (15); Discover 6011, 644-649, 65 (16-19); JCB 3528-3589 (16-19).
fn card_issuer_accepts(d: &[u8]) -> bool {
    let len = d.len();
    let prefix = |k: usize| {
        d[..k.min(len)]
            .iter()
            .fold(0u32, |acc, &x| acc * 10 + u32::from(x))
    };
    match d.first() {
        Some(4) => matches!(len, 13 | 16 | 19),
        Some(5) => (51..=55).contains(&prefix(2)) && len == 16,
        Some(2) => (2221..=2720).contains(&prefix(4)) && len == 16,
        Some(3) => {
            (matches!(prefix(2), 34 | 37) && len == 15)
                || ((3528..=3589).contains(&prefix(4)) && (16..=19).contains(&len))
        }
        Some(6) => {
            (prefix(4) == 6011 || prefix(2) == 65 || (644..=649).contains(&prefix(3)))
                && (16..=19).contains(&len)
        }
        _ => false,
    }
}

/// The Luhn check on digit values (0-9).
pub fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    !digits.is_empty() && sum.is_multiple_of(10)
}

// ---------------------------------------------------------------------------------------------
// E-mail addresses

fn is_local_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'.'
}

/// `local@domain.tld`: a local part of `A-Za-z0-9._%+-` not starting or ending with `.`, a
/// domain of at least two dot-separated labels (`A-Za-z0-9-`, not starting or ending with
/// `-`, at most 63 characters), the last one alphabetic and at least 2 letters long.
fn find_emails(text: &[u8], out: &mut Vec<Range<usize>>) {
    let mut from = 0;
    while let Some(pos) = text[from..].iter().position(|&b| b == b'@') {
        let at_sign = from + pos;
        from = at_sign + 1;
        let mut start = at_sign;
        while start > 0 && is_local_char(text[start - 1]) {
            start -= 1;
        }
        while start < at_sign && text[start] == b'.' {
            start += 1;
        }
        if start == at_sign || text[at_sign - 1] == b'.' {
            continue;
        }
        let Some(end) = email_domain_end(text, at_sign + 1) else {
            continue;
        };
        out.push(start..end);
        from = end;
    }
}

/// The end of a valid domain starting at `start`, if there is one: the longest run of valid
/// labels (at least two) ending with a valid top-level label.
fn email_domain_end(text: &[u8], start: usize) -> Option<usize> {
    let mut end = start;
    while end < text.len() && is_domain_char(text[end]) {
        end += 1;
    }
    let label_ok = |l: &[u8]| (1..=63).contains(&l.len()) && l[0] != b'-' && l[l.len() - 1] != b'-';
    let tld_ok = |l: &[u8]| l.len() >= 2 && l.iter().all(u8::is_ascii_alphabetic);
    let mut best = None;
    let mut labels = 0;
    let mut label_start = start;
    // Cut at an empty label (`..` or a trailing dot) or an invalid one.
    for label in text[start..end].split(|&b| b == b'.') {
        if !label_ok(label) {
            break;
        }
        labels += 1;
        let label_end = label_start + label.len();
        if labels >= 2 && tld_ok(label) {
            best = Some(label_end);
        }
        label_start = label_end + 1;
    }
    best
}

// ---------------------------------------------------------------------------------------------
// US social security numbers

/// `AAA-GG-SSSS` (dashes required), not inside a longer number, with the SSA rules: area not
/// 000, 666 or 900-999; group not 00; serial not 0000.
fn find_ssns(text: &[u8], out: &mut Vec<Range<usize>>) {
    // Candidates start 3 bytes before a dash.
    let mut from = 3;
    while let Some(p) = text
        .get(from..)
        .and_then(|t| t.iter().position(|&b| b == b'-'))
    {
        let dash = from + p;
        let i = dash - 3;
        from = dash + 1;
        let Some(s) = text.get(i..i + 11) else {
            break;
        };
        let shape = s[6] == b'-'
            && s[..3].iter().all(u8::is_ascii_digit)
            && s[4..6].iter().all(u8::is_ascii_digit)
            && s[7..].iter().all(u8::is_ascii_digit);
        if shape
            && !(is_digit(before(text, i)) || continues_number(text, i + 11, b'-'))
            && ssn_valid(s)
        {
            out.push(i..i + 11);
            from = i + 11 + 3;
        }
    }
}

/// Whether a number goes on at `i`: a digit, or `separator` and a digit.
fn continues_number(text: &[u8], i: usize, separator: u8) -> bool {
    is_digit(at(text, i)) || (at(text, i) == separator && is_digit(at(text, i + 1)))
}

/// The SSA validity rules on `AAA-GG-SSSS`.
fn ssn_valid(s: &[u8]) -> bool {
    let area = &s[..3];
    area != b"000" && area != b"666" && area[0] != b'9' && &s[4..6] != b"00" && &s[7..] != b"0000"
}

// ---------------------------------------------------------------------------------------------
// Phone numbers

/// E.164 (`+`, then 8 to 15 digits, the first not 0, in groups separated by one space, dash
/// or dot, the area code possibly in parentheses), and the North American forms
/// `(NXX) NXX-XXXX`, `(NXX)NXX-XXXX`, `NXX-NXX-XXXX` and `NXX.NXX.XXXX` (N: 2-9).
fn find_phones(text: &[u8], out: &mut Vec<Range<usize>>) {
    let mut i = 0;
    while let Some(p) = text[i..]
        .iter()
        .position(|&b| b == b'+' || b == b'(' || is_digit(b))
    {
        i += p;
        let b = text[i];
        let prev = before(text, i);
        let found = if b == b'+' && !prev.is_ascii_alphanumeric() && prev != b'+' {
            e164_end(text, i)
        } else if (b == b'(' || is_digit(b)) && !is_digit(prev) && prev != b'+' {
            nanp_end(text, i)
        } else {
            None
        };
        match found {
            Some(end) => {
                out.push(i..end);
                i = end;
            }
            // No phone number starts inside a run of digits.
            None if is_digit(b) => {
                while is_digit(at(text, i)) {
                    i += 1;
                }
            }
            None => i += 1,
        }
    }
}

fn e164_end(text: &[u8], plus: usize) -> Option<usize> {
    let mut j = plus + 1;
    if !matches!(at(text, j), b'1'..=b'9') {
        return None;
    }
    let mut digits = 0;
    let mut last_digit_end = j;
    let mut open_paren = false;
    loop {
        let b = at(text, j);
        if is_digit(b) {
            digits += 1;
            j += 1;
            last_digit_end = j;
        } else if (matches!(b, b' ' | b'-' | b'.') && is_digit(at(text, j + 1)))
            || (b == b' ' && at(text, j + 1) == b'(' && !open_paren)
        {
            j += 1;
        } else if b == b'(' && !open_paren && is_digit(at(text, j + 1)) {
            open_paren = true;
            j += 1;
        } else if b == b')' && open_paren {
            open_paren = false;
            j += 1;
            if at(text, j) == b' ' && is_digit(at(text, j + 1)) {
                j += 1;
            }
        } else {
            break;
        }
        if digits > 15 {
            return None;
        }
    }
    if is_digit(at(text, last_digit_end)) || !(8..=15).contains(&digits) {
        return None;
    }
    Some(last_digit_end)
}

fn nanp_end(text: &[u8], start: usize) -> Option<usize> {
    let digits = |from: usize, n: usize| (from..from + n).all(|k| is_digit(at(text, k)));
    let n_digit = |k: usize| matches!(at(text, k), b'2'..=b'9');
    let (exchange, sep) = if text[start] == b'(' {
        if !(digits(start + 1, 3) && n_digit(start + 1) && at(text, start + 4) == b')') {
            return None;
        }
        let exchange = if at(text, start + 5) == b' ' {
            start + 6
        } else {
            start + 5
        };
        (exchange, b'-')
    } else {
        let sep = at(text, start + 3);
        if !(digits(start, 3) && n_digit(start) && (sep == b'-' || sep == b'.')) {
            return None;
        }
        (start + 4, sep)
    };
    let ok = digits(exchange, 3)
        && n_digit(exchange)
        && at(text, exchange + 3) == sep
        && digits(exchange + 4, 4);
    let end = exchange + 8;
    let bounded = !continues_number(text, end, sep);
    (ok && bounded).then_some(end)
}

// ---------------------------------------------------------------------------------------------
// IBANs

/// IBAN lengths per country (SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HN", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

fn iban_length(country: &[u8]) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(c, _)| &c[..] == country)
        .map(|&(_, len)| len)
}

fn is_iban_char(b: u8) -> bool {
    b.is_ascii_uppercase() || is_digit(b)
}

/// A country code, 2 check digits and the country's number of upper-case letters and digits
/// in all, either contiguous or in groups of 4 separated by one space; mod-97 == 1.
fn find_ibans(text: &[u8], out: &mut Vec<Range<usize>>) {
    let mut i = 0;
    let mut chars = [0u8; 34];
    while let Some(p) = text[i..].iter().position(u8::is_ascii_uppercase) {
        i += p;
        if i + 15 > text.len() {
            break;
        }
        let starts = text[i + 1].is_ascii_uppercase()
            && is_digit(text[i + 2])
            && is_digit(text[i + 3])
            && !before(text, i).is_ascii_alphanumeric();
        let Some(len) = starts.then(|| iban_length(&text[i..i + 2])).flatten() else {
            i += 1;
            continue;
        };
        let mut n = 0;
        let mut j = i;
        while n < len {
            let b = at(text, j);
            if is_iban_char(b) {
                chars[n] = b;
                n += 1;
                j += 1;
            } else if b == b' ' && n.is_multiple_of(4) && is_iban_char(at(text, j + 1)) {
                j += 1;
            } else {
                break;
            }
        }
        if n == len && !at(text, j).is_ascii_alphanumeric() && iban_checksum_ok(&chars[..n]) {
            out.push(i..j);
            i = j;
        } else {
            i += 1;
        }
    }
}

/// The ISO 13616 check: the first 4 characters moved to the end, letters as 10-35, mod 97.
pub fn iban_checksum_ok(iban: &[u8]) -> bool {
    if iban.len() < 5 {
        return false;
    }
    let mut rem = 0u32;
    for &b in iban[4..].iter().chain(&iban[..4]) {
        rem = match b {
            b'0'..=b'9' => (rem * 10 + u32::from(b - b'0')) % 97,
            b'A'..=b'Z' => (rem * 100 + u32::from(b - b'A') + 10) % 97,
            _ => return false,
        };
    }
    rem == 1
}

// ---------------------------------------------------------------------------------------------
// JSON Web Tokens

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// `header.payload.signature` (or the five segments of an encrypted token), base64url
/// segments (the signature may be empty), the header
/// decoding to a JSON object with an `alg` member. Headers start with `{`, so with `ey` or `ew`.
fn find_jwts(text: &[u8], out: &mut Vec<Range<usize>>) {
    let mut i = 0;
    while let Some(p) = text[i..].iter().position(|&b| b == b'e') {
        i += p;
        let candidate = matches!(at(text, i + 1), b'y' | b'w')
            && !is_base64url(before(text, i))
            && before(text, i) != b'.';
        if !candidate {
            i += 1;
            continue;
        }
        let segment = |from: usize| {
            let mut k = from;
            while k < text.len() && is_base64url(text[k]) {
                k += 1;
            }
            k
        };
        let h_end = segment(i);
        let p_end = if at(text, h_end) == b'.' {
            segment(h_end + 1)
        } else {
            h_end
        };
        let ok = h_end - i >= 10 && p_end > h_end + 1 && at(text, p_end) == b'.';
        if !ok {
            i = h_end.max(i + 1);
            continue;
        }
        // JWE tokens have five segments.
        let mut end = segment(p_end + 1);
        while at(text, end) == b'.' {
            end = segment(end + 1);
        }
        if jwt_header_ok(&text[i..h_end]) {
            out.push(i..end);
            i = end;
        } else {
            i = h_end;
        }
    }
}

fn jwt_header_ok(segment: &[u8]) -> bool {
    base64url_decode(segment)
        .and_then(|json| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&json).ok()
        })
        .is_some_and(|header| header.contains_key("alg"))
}

/// Decodes unpadded base64url; `None` if it is not.
pub fn base64url_decode(s: &[u8]) -> Option<Vec<u8>> {
    fn value(b: u8) -> Option<u32> {
        Some(u32::from(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        }))
    }
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for &b in chunk {
            acc = (acc << 6) | value(b)?;
        }
        acc <<= 6 * (4 - chunk.len() as u32);
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// API keys and private keys

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// AWS access key ids (`AKIA`/`ASIA` and 16 of `A-Z0-9`), GitHub tokens (`ghp_`, `gho_`,
/// `ghs_`, `ghu_`, `ghr_` and at least 36 alphanumerics; `github_pat_` and at least 22 of
/// `A-Za-z0-9_`), Slack tokens (`xoxb-`, `xoxa-`, `xoxp-`, `xoxr-`, `xoxs-` and at least 10 of
/// `A-Za-z0-9-`), Stripe live keys (`sk_live_`, `rk_live_` and at least 16 alphanumerics), and
/// PEM private keys (`-----BEGIN ... PRIVATE KEY-----` to the matching END line, or to the end
/// of the text when it is cut).
fn find_api_keys(text: &[u8], out: &mut Vec<Range<usize>>) {
    let mut i = 0;
    while let Some(p) = text[i..]
        .iter()
        .position(|&b| matches!(b, b'-' | b'A' | b'g' | b'x' | b's' | b'r'))
    {
        i += p;
        // The first two bytes of every shape, checked before anything else.
        let found = match (text[i], at(text, i + 1)) {
            (b'-', b'-') => private_key_end(text, i),
            (b'A', b'K' | b'S') | (b'g', b'h' | b'i') | (b'x', b'o') | (b's' | b'r', b'k')
                if !is_token_char(before(text, i)) =>
            {
                token_end(text, i)
            }
            _ => None,
        };
        match found {
            Some(end) => {
                out.push(i..end);
                i = end;
            }
            None => i += 1,
        }
    }
}

fn token_end(text: &[u8], i: usize) -> Option<usize> {
    let rest = &text[i..];
    let run = |from: usize, ok: fn(u8) -> bool| {
        let mut k = from;
        while k < rest.len() && ok(rest[k]) {
            k += 1;
        }
        k
    };
    let upper_digit = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    let end = if rest.starts_with(b"AKIA") || rest.starts_with(b"ASIA") {
        let end = run(4, upper_digit);
        (end == 20).then_some(end)
    } else if rest.starts_with(b"github_pat_") {
        let end = run(11, |b| b.is_ascii_alphanumeric() || b == b'_');
        (end - 11 >= 22).then_some(end)
    } else if rest.len() > 4
        && rest.starts_with(b"gh")
        && matches!(rest[2], b'p' | b'o' | b's' | b'u' | b'r')
        && rest[3] == b'_'
    {
        let end = run(4, alnum);
        (end - 4 >= 36).then_some(end)
    } else if rest.len() > 5
        && rest.starts_with(b"xox")
        && matches!(rest[3], b'b' | b'a' | b'p' | b'r' | b's')
        && rest[4] == b'-'
    {
        let end = run(5, |b| b.is_ascii_alphanumeric() || b == b'-');
        (end - 5 >= 10).then_some(end)
    } else if rest.starts_with(b"sk_live_") || rest.starts_with(b"rk_live_") {
        let end = run(8, alnum);
        (end - 8 >= 16).then_some(end)
    } else {
        None
    }?;
    (!is_token_char(at(rest, end))).then_some(i + end)
}

fn private_key_end(text: &[u8], i: usize) -> Option<usize> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const KEY_END: &[u8] = b"PRIVATE KEY-----";
    let rest = &text[i..];
    if !rest.starts_with(BEGIN) {
        return None;
    }
    // The label: up to 40 of `A-Z` and spaces, ending with `PRIVATE KEY-----`.
    let label_len = rest[BEGIN.len()..]
        .iter()
        .take(40 + KEY_END.len())
        .position(|&b| !(b.is_ascii_uppercase() || b == b' '))?;
    let label = &rest[BEGIN.len()..BEGIN.len() + label_len];
    if !label.ends_with(b"PRIVATE KEY")
        || rest.get(BEGIN.len() + label_len..BEGIN.len() + label_len + 5) != Some(b"-----")
    {
        return None;
    }
    let header_end = BEGIN.len() + label_len + 5;
    let end = rest[header_end..]
        .windows(b"-----END ".len())
        .position(|w| w == b"-----END ")
        .and_then(|p| {
            let from = header_end + p;
            rest[from..]
                .windows(KEY_END.len())
                .position(|w| w == KEY_END)
                .map(|q| from + q + KEY_END.len())
        })
        .unwrap_or(rest.len());
    Some(i + end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(d: Detector, text: &str) -> Vec<&str> {
        find_all(d, text)
    }

    fn none(d: Detector, text: &str) {
        assert_eq!(found(d, text), Vec::<&str>::new(), "{d} in {text:?}");
    }

    #[test]
    fn luhn_accepts_valid_numbers_only() {
        let digits = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<_>>();
        assert!(luhn_valid(&digits("4111111111111111")));
        assert!(luhn_valid(&digits("79927398713")));
        assert!(!luhn_valid(&digits("4111111111111112")));
        assert!(!luhn_valid(&[]));
    }

    #[test]
    fn cards_of_every_issuer_are_found() {
        for card in [
            "4111111111111111",    // Visa 16
            "4222222222222",       // Visa 13
            "5555555555554444",    // Mastercard
            "2223003122003222",    // Mastercard 2-series
            "378282246310005",     // Amex
            "6011111111111117",    // Discover
            "6445644564456445",    // Discover 644-649
            "3530111333300000",    // JCB
            "4111 1111 1111 1111", // grouped with spaces
            "4111-1111-1111-1111", // grouped with dashes
            "3782 822463 10005",   // Amex grouping
        ] {
            assert_eq!(found(Detector::Card, card), [card], "{card}");
        }
    }

    #[test]
    fn cards_are_found_inside_text_with_their_group_boundaries() {
        let text = "paid with 4111 1111 1111 1111, ref 12";
        assert_eq!(found(Detector::Card, text), ["4111 1111 1111 1111"]);
        // A trailing group that is not part of the card: the window that validates is kept.
        let text = "card 4111 1111 1111 1111 2 items";
        assert_eq!(found(Detector::Card, text), ["4111 1111 1111 1111"]);
        let text = "x:5555555555554444;y:378282246310005";
        assert_eq!(
            found(Detector::Card, text),
            ["5555555555554444", "378282246310005"]
        );
    }

    #[test]
    fn card_near_misses_are_not_masked() {
        none(Detector::Card, "4111111111111112"); // not Luhn-valid
        none(Detector::Card, "1234567812345670"); // Luhn-valid, no issuer starts with 1
        none(Detector::Card, "9111111111111113"); // Luhn-valid, unknown prefix
        none(Detector::Card, "37828224631000"); // Amex prefix, 14 digits
        none(Detector::Card, "411111111111"); // too short
        none(Detector::Card, "41111111111111111111111"); // a longer identifier
        none(Detector::Card, "4111-1111 1111-1111"); // mixed separators
        none(Detector::Card, "4111  1111  1111  1111"); // double spaces
        none(Detector::Card, "order 20240115 qty 3");
    }

    #[test]
    fn emails_are_found() {
        assert_eq!(
            found(
                Detector::Email,
                "Key (email)=(bob.smith+tag@mail.example.com) already exists."
            ),
            ["bob.smith+tag@mail.example.com"]
        );
        assert_eq!(found(Detector::Email, "a@b.co"), ["a@b.co"]);
        assert_eq!(
            found(Detector::Email, "write to x_y@corp-mail.io."),
            ["x_y@corp-mail.io"]
        );
        assert_eq!(
            found(Detector::Email, "a@b.com,c@d.org"),
            ["a@b.com", "c@d.org"]
        );
    }

    #[test]
    fn email_near_misses_are_not_masked() {
        none(Detector::Email, "user@localhost");
        none(Detector::Email, "ping @channel now");
        none(Detector::Email, "foo@bar.c");
        none(Detector::Email, "foo.@bar.com");
        none(Detector::Email, "first@-bad.com");
        none(Detector::Email, "x@y.123");
        none(Detector::Email, "price@3.50");
        none(Detector::Email, "@example.com");
    }

    #[test]
    fn ssns_are_found_when_valid() {
        assert_eq!(found(Detector::Ssn, "SSN 123-45-6789."), ["123-45-6789"]);
        assert_eq!(found(Detector::Ssn, "078-05-1120"), ["078-05-1120"]);
    }

    #[test]
    fn ssn_near_misses_are_not_masked() {
        none(Detector::Ssn, "000-12-3456"); // area 000
        none(Detector::Ssn, "666-12-3456"); // area 666
        none(Detector::Ssn, "912-12-3456"); // area 9xx
        none(Detector::Ssn, "123-00-4567"); // group 00
        none(Detector::Ssn, "123-45-0000"); // serial 0000
        none(Detector::Ssn, "123456789"); // undashed
        none(Detector::Ssn, "1123-45-6789"); // inside a longer number
        none(Detector::Ssn, "123-45-67890");
        none(Detector::Ssn, "123-45-6789-1");
        none(Detector::Ssn, "2024-01-15");
    }

    #[test]
    fn phones_are_found() {
        for phone in [
            "+14155552671",
            "+1 415 555 2671",
            "+44 20 7946 0958",
            "+1 (415) 555-2671",
            "(415) 555-2671",
            "(415)555-2671",
            "415-555-2671",
            "415.555.2671",
        ] {
            assert_eq!(found(Detector::Phone, phone), [phone], "{phone}");
        }
        assert_eq!(
            found(Detector::Phone, "call +33 1 23 45 67 89 now"),
            ["+33 1 23 45 67 89"]
        );
    }

    #[test]
    fn phone_near_misses_are_not_masked() {
        none(Detector::Phone, "+1234567"); // 7 digits
        none(Detector::Phone, "+0123456789"); // starts with 0
        none(Detector::Phone, "+1234567890123456"); // 16 digits
        none(Detector::Phone, "123-456-7890"); // area code starts with 1
        none(Detector::Phone, "415-155-2671"); // exchange starts with 1
        none(Detector::Phone, "555-1234"); // no area code
        none(Detector::Phone, "2024-01-15");
        none(Detector::Phone, "415-555-26710");
        none(Detector::Phone, "a+14155552671"); // `+` inside a word
    }

    #[test]
    fn ibans_are_found_with_a_valid_checksum() {
        for iban in [
            "DE89370400440532013000",
            "DE89 3704 0044 0532 0130 00",
            "GB82WEST12345698765432",
            "GB82 WEST 1234 5698 7654 32",
            "NO9386011117947",
            "FR1420041010050500013M02606",
        ] {
            assert_eq!(found(Detector::Iban, iban), [iban], "{iban}");
        }
        assert_eq!(
            found(Detector::Iban, "IBAN: DE89 3704 0044 0532 0130 00 EUR"),
            ["DE89 3704 0044 0532 0130 00"]
        );
    }

    #[test]
    fn iban_near_misses_are_not_masked() {
        none(Detector::Iban, "DE89370400440532013001"); // bad checksum
        none(Detector::Iban, "DE8937040044053201300"); // too short for DE
        none(Detector::Iban, "DE893704004405320130000"); // too long for DE
        none(Detector::Iban, "ZZ89370400440532013000"); // unknown country
        none(Detector::Iban, "de89370400440532013000"); // lower case
        none(Detector::Iban, "DE89 3704 0044 0532 0130 0"); // a character missing
        none(Detector::Iban, "DE89  3704 0044 0532 0130 00"); // double space
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
                       eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.\
                       SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    #[test]
    fn jwts_are_found() {
        assert_eq!(found(Detector::Jwt, JWT), [JWT]);
        let text = format!("Authorization: Bearer {JWT}; next");
        assert_eq!(found(Detector::Jwt, &text), [JWT]);
        // An unsigned token (alg none) has an empty signature.
        let unsigned = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
        assert_eq!(found(Detector::Jwt, unsigned), [unsigned]);
    }

    #[test]
    fn jwt_near_misses_are_not_masked() {
        // `{"notjson` is not JSON.
        none(Detector::Jwt, "eyJub3Rqc29u.eyJzdWIiOiJ4In0.abc");
        // `{"typ":"JWT"}`: JSON, but no alg.
        none(Detector::Jwt, "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.abc");
        // Only two segments.
        none(Detector::Jwt, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0");
        none(Detector::Jwt, "eyes.on.the.road");
    }

    #[test]
    fn base64url_decoding() {
        assert_eq!(base64url_decode(b"eyJhIjoxfQ").unwrap(), b"{\"a\":1}");
        assert_eq!(base64url_decode(b"").unwrap(), b"");
        assert!(base64url_decode(b"a").is_none());
        assert!(base64url_decode(b"ab+c").is_none());
    }

    #[test]
    fn api_keys_are_found() {
        for key in [
            "AKIAIOSFODNN7EXAMPLE",
            "ASIAIOSFODNN7EXAMPLE",
            "ghp_1234567890abcdefghijABCDEFGHIJ123456",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            "xoxb-123456789012-abcdefghij",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "rk_live_abcdefghijklmnop1234",
        ] {
            assert_eq!(found(Detector::ApiKey, key), [key], "{key}");
        }
        let text = "token=ghp_1234567890abcdefghijABCDEFGHIJ123456&x=1";
        assert_eq!(
            found(Detector::ApiKey, text),
            ["ghp_1234567890abcdefghijABCDEFGHIJ123456"]
        );
    }

    #[test]
    fn private_keys_are_found_to_their_end_line_or_the_end_of_the_text() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----";
        let text = format!("key: {pem}\ntrailer");
        assert_eq!(found(Detector::ApiKey, &text), [pem]);
        let cut = "-----BEGIN PRIVATE KEY-----\nMIIEv";
        assert_eq!(found(Detector::ApiKey, &format!("x {cut}")), [cut]);
        none(
            Detector::ApiKey,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        );
        none(Detector::ApiKey, "-----BEGIN PUBLIC KEY-----");
    }

    #[test]
    fn api_key_near_misses_are_not_masked() {
        none(Detector::ApiKey, "AKIAIOSFODNN7EXAMPL"); // 15 after AKIA
        none(Detector::ApiKey, "AKIAIOSFODNN7EXAMPLE1"); // 17
        none(Detector::ApiKey, "XAKIAIOSFODNN7EXAMPLE"); // inside a word
        none(Detector::ApiKey, "ghp_short");
        none(Detector::ApiKey, "sk_test_4eC39HqLyjWDarjtT1zdp7dc");
        none(Detector::ApiKey, "xoxz-123456789012");
    }

    #[test]
    fn signals_never_skip_a_detector_that_finds_something() {
        let texts = [
            "4111111111111111",
            "a@b.co",
            "123-45-6789",
            "+14155552671",
            "(415) 555-2671",
            "415.555.2671",
            "DE89370400440532013000",
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_1234567890abcdefghijabcdefghij123456",
            "xoxb-123456789012-abcdefghij",
            "-----BEGIN PRIVATE KEY-----",
        ];
        for text in texts {
            let signals = Signals::of(text.as_bytes());
            for d in Detector::ALL {
                if !find_all(d, text).is_empty() {
                    assert!(signals.may_find(d), "{d} skipped on {text}");
                }
            }
        }
        let plain = Signals::of(b"Alice Martin");
        assert!(!plain.may_find(Detector::Card) && !plain.may_find(Detector::Email));
    }

    #[test]
    fn detectors_never_split_utf8_characters() {
        let text = "é4111111111111111é bob@exämple.com ünïcode";
        let mut out = Vec::new();
        for d in Detector::ALL {
            find(d, text.as_bytes(), &mut out);
        }
        for r in out {
            assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
        }
    }
}
