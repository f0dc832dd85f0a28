//! Harmonized System codes: normalisation of what spreadsheets and number parsers do to them.

/// Outcome of normalising a raw HS code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsCode {
    /// Digits only, leading zero restored where it was lost.
    pub code: String,
    /// Whether a leading zero had to be restored.
    pub repaired: bool,
}

/// Why a raw HS code was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HsError {
    /// Empty after stripping.
    #[error("HS code is empty")]
    Empty,
    /// Contains something other than digits, dots and spaces.
    #[error("HS code `{0}` contains characters other than digits")]
    NotDigits(String),
    /// Wrong number of digits even after repair.
    #[error("HS code `{raw}` has {len} digits; expected one of {allowed:?}")]
    Length {
        /// The raw code.
        raw: String,
        /// Its digit count after stripping.
        len: usize,
        /// The allowed lengths.
        allowed: Vec<usize>,
    },
}

/// Normalises a raw HS code: strips spaces and dots (and a trailing `.0` from float-typed
/// sources such as Comtrade CSVs), restores one leading zero for odd lengths (chapters 01–09 lose
/// theirs when a reader infers numbers), and checks the length against `allowed`.
pub fn normalise(raw: &str, allowed: &[usize]) -> Result<HsCode, HsError> {
    let trimmed = raw.trim();
    let trimmed = trimmed.strip_suffix(".0").unwrap_or(trimmed);
    let mut digits = String::with_capacity(trimmed.len() + 1);
    for c in trimmed.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '.' | ' ' | '\u{a0}' => {}
            _ => return Err(HsError::NotDigits(raw.to_owned())),
        }
    }
    if digits.is_empty() {
        return Err(HsError::Empty);
    }
    let mut repaired = false;
    if digits.len() % 2 == 1 && allowed.contains(&(digits.len() + 1)) {
        digits.insert(0, '0');
        repaired = true;
    }
    if !allowed.contains(&digits.len()) {
        return Err(HsError::Length { raw: raw.to_owned(), len: digits.len(), allowed: allowed.to_vec() });
    }
    Ok(HsCode { code: digits, repaired })
}

/// The HS chapter (first two digits) of a normalised code.
pub fn chapter(code: &str) -> &str {
    code.get(..2).unwrap_or(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restores_lost_leading_zero() {
        let hs = normalise("10121", &[6, 8, 10]).unwrap();
        assert_eq!(hs.code, "010121");
        assert!(hs.repaired);
    }

    #[test]
    fn strips_float_suffix_and_dots() {
        assert_eq!(normalise("440799.0", &[6]).unwrap().code, "440799");
        assert_eq!(normalise("8517.12", &[6]).unwrap().code, "851712");
    }

    #[test]
    fn rejects_bad_lengths_and_letters() {
        assert!(matches!(normalise("1234", &[6, 8, 10]), Err(HsError::Length { len: 4, .. })));
        assert!(matches!(normalise("85A712", &[6]), Err(HsError::NotDigits(_))));
        assert_eq!(normalise("  ", &[6]), Err(HsError::Empty));
    }

    #[test]
    fn chapter_is_first_two_digits() {
        assert_eq!(chapter("851712"), "85");
    }
}
