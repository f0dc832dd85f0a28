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
    /// A lost leading zero would give a code whose HS6 is not known in the configured vintages:
    /// the digits are wrong, not merely short (`8471300` is `847130` with a digit lost, not
    /// `084713…`).
    #[error(
        "HS code `{raw}` has {len} digits; with a leading zero restored it would be `{repaired}`, whose HS6 is not a known HS {vintages} code"
    )]
    UnknownRepair {
        /// The raw code.
        raw: String,
        /// Its digit count after stripping.
        len: usize,
        /// The code a repair would give.
        repaired: String,
        /// The vintages consulted, e.g. `2017/2022`.
        vintages: String,
    },
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
/// theirs when a reader infers numbers), and checks the length against `allowed`. The repair is
/// blind: [`normalise_known`] repairs only into known codes.
pub fn normalise(raw: &str, allowed: &[usize]) -> Result<HsCode, HsError> {
    normalise_with(raw, allowed, |_| Ok(()))
}

/// [`normalise`], restoring a lost leading zero only when the repaired code's HS6 (or, for a
/// 2- or 4-digit code, its heading or chapter) is a known code of one of `vintages` ([`Vintage`]);
/// otherwise the code is refused ([`HsError::UnknownRepair`]). With no vintage, nothing is
/// repaired. Codes of the right length are not looked up.
pub fn normalise_known(raw: &str, allowed: &[usize], vintages: &[Vintage]) -> Result<HsCode, HsError> {
    normalise_with(raw, allowed, |repaired| {
        if is_known(repaired, vintages) {
            Ok(())
        } else {
            let names: Vec<&str> = vintages.iter().map(|v| v.name()).collect();
            Err(HsError::UnknownRepair {
                raw: raw.to_owned(),
                len: repaired.len() - 1,
                repaired: repaired.to_owned(),
                vintages: if names.is_empty() { "(no vintage configured)".to_owned() } else { names.join("/") },
            })
        }
    })
}

fn normalise_with(raw: &str, allowed: &[usize], check_repair: impl Fn(&str) -> Result<(), HsError>) -> Result<HsCode, HsError> {
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
        check_repair(&digits)?;
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

/// An HS nomenclature edition whose six-digit codes Mirador knows ([`KNOWN_CSV`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Vintage {
    /// HS 2017 (Comtrade `H5`).
    #[serde(rename = "2017")]
    Hs2017,
    /// HS 2022 (Comtrade `H6`).
    #[serde(rename = "2022")]
    Hs2022,
}

impl Vintage {
    /// Every known vintage.
    pub const ALL: [Vintage; 2] = [Vintage::Hs2017, Vintage::Hs2022];

    /// `2017`, `2022`.
    pub fn name(self) -> &'static str {
        match self {
            Vintage::Hs2017 => "2017",
            Vintage::Hs2022 => "2022",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Vintage::Hs2017 => 1,
            Vintage::Hs2022 => 2,
        }
    }
}

/// The known six-digit codes, one a line: `hs6,vintages` (`010121,2017 2022`). Generated from the
/// HS 2017 product list and the HS 2022→2017 and 2017→2012 concordances ([`generate_known`]; see
/// `data/README.md` for sources and licences).
pub const KNOWN_CSV: &str = include_str!("../data/hs6_known.csv");

/// Code (2, 4 or 6 digits) → bit set of the vintages that know it (a chapter or heading is known
/// when one of its HS6 codes is).
fn known() -> &'static std::collections::HashMap<&'static str, u8> {
    static KNOWN: std::sync::OnceLock<std::collections::HashMap<&'static str, u8>> = std::sync::OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut map = std::collections::HashMap::new();
        for line in KNOWN_CSV.lines().skip(1) {
            let Some((code, vintages)) = line.split_once(',') else { continue };
            let bits = Vintage::ALL.iter().filter(|v| vintages.split(' ').any(|n| n == v.name())).fold(0u8, |b, v| b | v.bit());
            for len in [2, 4, 6] {
                if let Some(prefix) = code.get(..len) {
                    *map.entry(prefix).or_insert(0) |= bits;
                }
            }
        }
        map
    })
}

/// Whether `code`'s first six digits (the whole code when shorter: a chapter or heading) are a
/// known code of one of `vintages`.
pub fn is_known(code: &str, vintages: &[Vintage]) -> bool {
    let key = code.get(..6).unwrap_or(code);
    let bits = vintages.iter().fold(0u8, |b, v| b | v.bit());
    known().get(key).is_some_and(|k| k & bits != 0)
}

/// Builds [`KNOWN_CSV`] from the reference files (`../shared/datasets/hs-reference`): the HS 2017
/// product list (`code,description,bec`), the HS 2022→2017 concordance (`hs6_2022,hs6_2017`) and
/// the HS 2017→2012 one (`hs6_2017,hs6_2012`), whose leading zeros may be lost. The 2017 codes are
/// the product list's and both concordances' 2017 sides; the 2022 codes the concordance's 2022
/// side.
pub fn generate_known(hs2017_products: &str, concord_2022_2017: &str, concord_2017_2012: &str) -> Result<String, String> {
    let mut codes: std::collections::BTreeMap<String, u8> = std::collections::BTreeMap::new();
    let mut add = |text: &str, name: &str, column: usize, vintage: Vintage| -> Result<(), String> {
        let text = text.trim_start_matches('\u{feff}');
        for (i, line) in text.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let field = line.split(',').nth(column).unwrap_or("").trim().trim_matches('"');
            if field.is_empty() || field.len() > 6 || !field.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{name} line {}: `{field}` is not a six-digit HS code", i + 1));
            }
            *codes.entry(format!("{field:0>6}")).or_insert(0) |= vintage.bit();
        }
        Ok(())
    };
    add(hs2017_products, "hs2017_product_codes.csv", 0, Vintage::Hs2017)?;
    add(concord_2022_2017, "concord_hs6_2022_to_2017.csv", 0, Vintage::Hs2022)?;
    add(concord_2022_2017, "concord_hs6_2022_to_2017.csv", 1, Vintage::Hs2017)?;
    add(concord_2017_2012, "concord_hs6_2017_to_2012.csv", 0, Vintage::Hs2017)?;
    let mut out = String::from("hs6,vintages\n");
    for (code, bits) in codes {
        let names: Vec<&str> = Vintage::ALL.iter().filter(|v| bits & v.bit() != 0).map(|v| v.name()).collect();
        out.push_str(&format!("{code},{}\n", names.join(" ")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repairs_only_into_known_codes() {
        let both = &Vintage::ALL[..];
        // 847130 (portable computers) lost a digit, not a leading zero: 084713 does not exist.
        let e = normalise_known("8471300", &[6, 8, 10], both).unwrap_err();
        assert!(matches!(e, HsError::UnknownRepair { len: 7, .. }), "{e:?}");
        assert!(e.to_string().contains("08471300"), "{e}");
        // 010121 (pure-bred horses) lost its leading zero: restored at every length.
        for (raw, code) in [("10121", "010121"), ("1012100", "01012100"), ("101210000", "0101210000"), ("101", "0101"), ("1", "01")] {
            let hs = normalise_known(raw, &[2, 4, 6, 8, 10], both).unwrap();
            assert_eq!((hs.code.as_str(), hs.repaired), (code, true), "{raw}");
        }
        // Unknown chapter 00 / heading 0999 / HS6 099999: refused whatever the length.
        for raw in ["0", "999", "99999", "9999900", "999990000"] {
            assert!(matches!(normalise_known(raw, &[2, 4, 6, 8, 10], both), Err(HsError::UnknownRepair { .. })), "{raw}");
        }
        // Codes of the right length are not looked up; with no vintage nothing is repaired.
        assert_eq!(normalise_known("08030000", &[8], both).unwrap().code, "08030000");
        assert!(matches!(normalise_known("10121", &[6], &[]), Err(HsError::UnknownRepair { .. })));
    }

    #[test]
    fn vintages_differ_where_the_nomenclature_changed() {
        // 8517.62 exists in both; 8517.13 (smartphones) and 0308.22 are new in 2022; 8517.12 was
        // deleted in 2022.
        assert!(is_known("851762", &[Vintage::Hs2017]) && is_known("851762", &[Vintage::Hs2022]));
        assert!(!is_known("851713", &[Vintage::Hs2017]) && is_known("851713", &[Vintage::Hs2022]));
        assert!(is_known("851712", &[Vintage::Hs2017]) && !is_known("851712", &[Vintage::Hs2022]));
        assert!(is_known("85", &[Vintage::Hs2022]) && is_known("8517", &[Vintage::Hs2017]));
        assert!(!is_known("77", &Vintage::ALL), "chapter 77 is reserved");
    }

    /// The embedded list is what the generator makes of the reference files, when they are
    /// present (they are public test data, not needed to build or run Mirador).
    #[test]
    fn the_embedded_known_codes_are_generated_from_the_reference_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/hs-reference");
        let read = |name: &str| std::fs::read_to_string(dir.join(name));
        let (Ok(products), Ok(c22), Ok(c12)) =
            (read("hs2017_product_codes.csv"), read("concord_hs6_2022_to_2017.csv"), read("concord_hs6_2017_to_2012.csv"))
        else {
            eprintln!("skipped: {} not found", dir.display());
            return;
        };
        let generated = generate_known(&products, &c22, &c12).unwrap();
        if std::env::var_os("MIRADOR_WRITE_HS_REFERENCE").is_some() {
            std::fs::write(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/hs6_known.csv"), &generated).unwrap();
        }
        assert!(
            generated == KNOWN_CSV,
            "data/hs6_known.csv is stale: regenerate with MIRADOR_WRITE_HS_REFERENCE=1 cargo test -p mirador-schema --release known_codes"
        );
        let count = |v: &str| KNOWN_CSV.lines().filter(|l| l.split(',').nth(1).is_some_and(|x| x.contains(v))).count();
        assert!((5_300..5_500).contains(&count("2017")) && (5_500..5_700).contains(&count("2022")), "{} {}", count("2017"), count("2022"));
    }

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
