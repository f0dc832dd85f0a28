//! The fixed parts of the synthetic world: products, partner countries and preference
//! agreements. Real HS6 codes and ISO codes, invented prices and rates.

/// A product: HS6 code, reference unit price (USD/kg) and MFN duty rate (%).
pub(crate) struct Product {
    pub(crate) hs6: &'static str,
    pub(crate) price_usd_per_kg: f64,
    pub(crate) mfn_pct: f64,
}

macro_rules! products {
    ($(($hs:literal, $p:literal, $r:literal)),* $(,)?) => { &[$(Product { hs6: $hs, price_usd_per_kg: $p, mfn_pct: $r }),*] };
}

/// Products, including chapters 01–09 whose codes start with a zero.
pub(crate) const PRODUCTS: &[Product] = products![
    ("010229", 3.5, 25.0),
    ("020130", 7.8, 25.0),
    ("030617", 9.5, 25.0),
    ("040210", 3.2, 35.0),
    ("060311", 6.0, 25.0),
    ("070190", 0.4, 25.0),
    ("080300", 0.7, 25.0),
    ("090111", 3.1, 10.0),
    ("090240", 4.2, 25.0),
    ("100630", 0.6, 35.0),
    ("110100", 0.5, 25.0),
    ("150710", 1.1, 10.0),
    ("170114", 0.5, 35.0),
    ("190590", 3.0, 25.0),
    ("220300", 1.2, 25.0),
    ("240220", 30.0, 35.0),
    ("252329", 0.08, 25.0),
    ("270900", 0.55, 0.0),
    ("271019", 0.9, 10.0),
    ("300490", 45.0, 0.0),
    ("310520", 0.45, 0.0),
    ("330499", 22.0, 25.0),
    ("340220", 1.8, 25.0),
    ("380891", 6.5, 0.0),
    ("390120", 1.4, 10.0),
    ("392310", 2.6, 25.0),
    ("401110", 4.1, 25.0),
    ("420221", 28.0, 35.0),
    ("440799", 0.9, 10.0),
    ("480256", 1.0, 10.0),
    ("520812", 6.0, 25.0),
    ("610910", 18.0, 35.0),
    ("620342", 21.0, 35.0),
    ("640399", 26.0, 35.0),
    ("690722", 0.6, 25.0),
    ("700991", 3.8, 25.0),
    ("721049", 0.8, 10.0),
    ("730890", 1.9, 25.0),
    ("760421", 3.4, 10.0),
    ("830140", 9.0, 25.0),
    ("841510", 11.0, 10.0),
    ("841830", 5.5, 25.0),
    ("847130", 160.0, 0.0),
    ("850440", 24.0, 10.0),
    ("851712", 420.0, 0.0),
    ("852872", 19.0, 25.0),
    ("854442", 7.5, 10.0),
    ("870323", 9.5, 25.0),
    ("871120", 6.8, 25.0),
    ("900490", 95.0, 25.0),
    ("940350", 3.1, 25.0),
    ("950300", 7.2, 25.0),
];

/// Goods that appear only with a fraud shift ([`crate::ShiftParams`]): the new entrants declare
/// them, no importer of the world before the shift does. Real HS6 codes (HS 2022), invented prices
/// and rates.
pub(crate) const SHIFT_PRODUCTS: &[Product] = products![
    ("850760", 95.0, 25.0),
    ("854143", 60.0, 25.0),
    ("871160", 14.0, 35.0),
    ("851713", 210.0, 25.0),
    ("330491", 30.0, 35.0),
    ("950450", 40.0, 35.0),
];

/// Product `i` of [`PRODUCTS`] followed by [`SHIFT_PRODUCTS`].
pub(crate) fn product(i: usize) -> &'static Product {
    PRODUCTS.get(i).unwrap_or_else(|| &SHIFT_PRODUCTS[(i - PRODUCTS.len()).min(SHIFT_PRODUCTS.len() - 1)])
}

/// The index (as [`product`] numbers them) of the product with code `hs6`.
pub(crate) fn product_index(hs6: &str) -> Option<usize> {
    PRODUCTS.iter().chain(SHIFT_PRODUCTS).position(|p| p.hs6 == hs6)
}

/// Partner countries with their weight in trade.
pub(crate) const PARTNERS: &[(&str, f64)] = &[
    ("CN", 30.0),
    ("IN", 12.0),
    ("AE", 8.0),
    ("JP", 5.0),
    ("US", 5.0),
    ("DE", 4.0),
    ("ZA", 4.0),
    ("SA", 3.0),
    ("GB", 3.0),
    ("IT", 2.0),
    ("FR", 2.0),
    ("NL", 2.0),
    ("TR", 2.0),
    ("MY", 2.0),
    ("ID", 2.0),
    ("TH", 2.0),
    ("KR", 2.0),
    ("EG", 2.0),
    ("UG", 2.0),
    ("TZ", 2.0),
    ("RW", 1.0),
    ("PK", 1.5),
    ("VN", 1.5),
    ("BR", 1.0),
    ("BE", 1.0),
    ("ES", 1.0),
];

/// Origins that qualify for a preference, the agreement and the preferential rate as a share of
/// the MFN rate.
pub(crate) const PREFERENCES: &[(&str, &str, f64)] = &[
    ("UG", "EAC", 0.0),
    ("TZ", "EAC", 0.0),
    ("RW", "EAC", 0.0),
    ("EG", "COMESA", 0.0),
    ("DE", "EPA", 0.5),
    ("FR", "EPA", 0.5),
    ("IT", "EPA", 0.5),
    ("NL", "EPA", 0.5),
    ("BE", "EPA", 0.5),
    ("ES", "EPA", 0.5),
    ("GB", "EPA", 0.5),
];

/// The preference of an origin, if any.
pub(crate) fn preference(origin: &str) -> Option<(&'static str, f64)> {
    PREFERENCES.iter().find(|(o, _, _)| *o == origin).map(|(_, a, share)| (*a, *share))
}

/// Partners that do not report export statistics: their gaps cannot be measured.
pub(crate) const NON_REPORTING: &[&str] = &["PK"];

/// Customs offices, declaration types and transport modes.
pub(crate) const OFFICES: &[&str] = &["MSA", "NBO", "JKIA", "MLB", "KSM"];
pub(crate) const TRANSPORT_MODES: &[&str] = &["1", "4", "3"];
pub(crate) const IMPORT_TYPES: &[&str] = &["IM4", "IM5", "IM7"];
pub(crate) const PAYMENT_TYPES: &[&str] = &["LC", "TT", "CAD", "OA"];
