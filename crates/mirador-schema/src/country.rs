//! ISO 3166 countries and the normalisation of country codes from any scheme to alpha-2.

use std::collections::HashMap;
use std::sync::OnceLock;

const COUNTRIES_CSV: &str = include_str!("../data/countries.csv");

/// Partner reported as "areas not elsewhere specified" or a confidential partner: unknown, never zero.
pub const AREAS_NES: &str = "XX";
/// The world aggregate (Comtrade partner 0). Never a real partner.
pub const WORLD: &str = "W0";

/// One ISO 3166 country.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Country {
    /// Alpha-2 code, the canonical form in Mirador.
    pub iso2: &'static str,
    /// Alpha-3 code.
    pub iso3: &'static str,
    /// Numeric code.
    pub numeric: u16,
    /// English short name.
    pub name: &'static str,
}

struct Table {
    all: Vec<Country>,
    by_code: HashMap<String, usize>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut all = Vec::new();
        for line in COUNTRIES_CSV.lines().skip(1) {
            // The file is ours and fixed at compile time; a name never contains a comma except
            // inside quotes, which we do not need: take the first three fields and the rest.
            let mut parts = line.splitn(4, ',');
            let (Some(iso2), Some(iso3), Some(numeric), Some(name)) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let Ok(numeric) = numeric.parse() else { continue };
            all.push(Country { iso2, iso3, numeric, name: name.trim_matches('"') });
        }
        let mut by_code = HashMap::new();
        for (i, c) in all.iter().enumerate() {
            by_code.insert(c.iso2.to_owned(), i);
            by_code.insert(c.iso3.to_owned(), i);
            by_code.insert(c.numeric.to_string(), i);
        }
        // Comtrade customs areas that differ from ISO numeric codes.
        for (comtrade, iso2) in COMTRADE_AREAS {
            if let Some(&i) = by_code.get(*iso2) {
                by_code.insert((*comtrade).to_string(), i);
            }
        }
        Table { all, by_code }
    })
}

/// Comtrade numeric customs areas whose code is not the ISO numeric code of the country.
const COMTRADE_AREAS: &[(&str, &str)] = &[
    ("251", "FR"), // France incl. Monaco and overseas departments
    ("381", "IT"), // Italy incl. San Marino
    ("579", "NO"), // Norway incl. Svalbard
    ("699", "IN"), // India
    ("757", "CH"), // Switzerland incl. Liechtenstein
    ("842", "US"), // USA incl. Puerto Rico and Virgin Islands
    ("490", "TW"), // "Other Asia, nes", in practice Taiwan
    ("58", "BE"),  // Belgium-Luxembourg (before 1999)
    ("280", "DE"), // Fed. Rep. of Germany (before 1991)
    ("711", "ZA"), // Southern African Customs Union
];

/// Codes that stand for "unknown partner": areas n.e.s., confidential, special categories.
const UNKNOWN_CODES: &[&str] = &[
    "XX", "ZZ", "NES", "X", "899", "839", "473", "527", "536", "568", "577", "636", "637", "697", "838", "879", "849", "_X", "EXX", "XXX",
];

/// The canonical form of a country code, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Normalised {
    /// A real country, as alpha-2.
    Country(&'static str),
    /// World aggregate ([`WORLD`]).
    World,
    /// Areas n.e.s. / confidential ([`AREAS_NES`]).
    Unknown,
}

impl Normalised {
    /// The code stored in canonical columns.
    pub fn code(&self) -> &'static str {
        match self {
            Normalised::Country(c) => c,
            Normalised::World => WORLD,
            Normalised::Unknown => AREAS_NES,
        }
    }
}

/// Normalises an ISO alpha-2, alpha-3, ISO numeric or Comtrade numeric code (`"276"`,
/// `"276.0"`, `"DEU"`, `"de"`) to the canonical form. `None` when the code is not known.
pub fn normalise(raw: &str) -> Option<Normalised> {
    let s = raw.trim();
    let s = s.strip_suffix(".0").unwrap_or(s);
    if s.is_empty() {
        return None;
    }
    // Codes are short: uppercase them on the stack (this runs for every declaration).
    let mut buf = [0u8; 16];
    let owned;
    let upper: &str = if s.len() <= buf.len() {
        let b = &mut buf[..s.len()];
        b.copy_from_slice(s.as_bytes());
        b.make_ascii_uppercase();
        // Uppercasing ASCII bytes leaves the others as they were, so the bytes stay UTF-8.
        std::str::from_utf8(b).unwrap_or(s)
    } else {
        owned = s.to_ascii_uppercase();
        &owned
    };
    if upper == "0" || upper == "WLD" || upper == WORLD {
        return Some(Normalised::World);
    }
    if UNKNOWN_CODES.contains(&upper) {
        return Some(Normalised::Unknown);
    }
    let key = if upper.bytes().all(|b| b.is_ascii_digit()) { upper.trim_start_matches('0') } else { upper };
    let t = table();
    t.by_code.get(key).map(|&i| Normalised::Country(t.all[i].iso2))
}

/// Looks up a country by its alpha-2 code.
pub fn by_iso2(iso2: &str) -> Option<&'static Country> {
    let t = table();
    t.by_code.get(iso2).map(|&i| &t.all[i]).filter(|c| c.iso2 == iso2)
}

/// Every ISO 3166 country, sorted by alpha-2.
pub fn all() -> &'static [Country] {
    &table().all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_maps_to_alpha2() {
        assert_eq!(normalise("DE"), Some(Normalised::Country("DE")));
        assert_eq!(normalise("deu"), Some(Normalised::Country("DE")));
        assert_eq!(normalise("276"), Some(Normalised::Country("DE")));
        assert_eq!(normalise("276.0"), Some(Normalised::Country("DE")));
        assert_eq!(normalise("004"), Some(Normalised::Country("AF")));
    }

    #[test]
    fn comtrade_areas_are_not_iso_numeric() {
        assert_eq!(normalise("251"), Some(Normalised::Country("FR")));
        assert_eq!(normalise("842"), Some(Normalised::Country("US")));
    }

    #[test]
    fn sentinels_are_explicit() {
        assert_eq!(normalise("0"), Some(Normalised::World));
        assert_eq!(normalise("WLD"), Some(Normalised::World));
        assert_eq!(normalise("899"), Some(Normalised::Unknown));
        assert_eq!(normalise("Q9"), None);
        assert_eq!(normalise(""), None);
    }

    /// The lookup as it was before the stack buffer: an owned uppercase copy of every code.
    fn normalise_owned(raw: &str) -> Option<Normalised> {
        let s = raw.trim();
        let s = s.strip_suffix(".0").unwrap_or(s);
        if s.is_empty() {
            return None;
        }
        let upper = s.to_ascii_uppercase();
        if upper == "0" || upper == "WLD" || upper == WORLD {
            return Some(Normalised::World);
        }
        if UNKNOWN_CODES.contains(&upper.as_str()) {
            return Some(Normalised::Unknown);
        }
        let key = if upper.bytes().all(|b| b.is_ascii_digit()) { upper.trim_start_matches('0').to_owned() } else { upper };
        let t = table();
        t.by_code.get(&key).map(|&i| Normalised::Country(t.all[i].iso2))
    }

    #[test]
    fn stack_uppercasing_agrees_with_an_owned_copy() {
        let mut inputs: Vec<String> = Vec::new();
        for c in all() {
            for code in [c.iso2.to_owned(), c.iso3.to_owned(), c.numeric.to_string()] {
                inputs.push(code.to_lowercase());
                inputs.push(format!(" {code}.0 "));
                inputs.push(format!("00{code}"));
                inputs.push(format!("{code}x"));
                inputs.push(code);
            }
        }
        for odd in ["", " ", "0", "000", "wld", "w0", "899", "ü", "dé", "ÄÖ", "0000000000000000276", "deu-deu-deu-deu-deu", "ßßßßßßßßß"]
        {
            inputs.push(odd.to_owned());
        }
        for raw in &inputs {
            assert_eq!(normalise(raw), normalise_owned(raw), "{raw:?}");
        }
    }

    #[test]
    fn table_is_complete() {
        assert!(all().len() >= 249);
        assert_eq!(by_iso2("KR").map(|c| c.iso3), Some("KOR"));
    }
}
