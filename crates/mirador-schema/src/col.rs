//! Canonical column names. Every crate refers to columns through these consts, never literals.

// --- declarations -------------------------------------------------------------------------
/// Declaration id (text, as issued by the customs system).
pub const DECLARATION_ID: &str = "declaration_id";
/// Goods item number within the declaration (1 when the source has one item per declaration).
pub const ITEM_NO: &str = "item_no";
/// Acceptance date of the declaration.
pub const DATE: &str = "date";
/// Period the row belongs to, `YYYY-MM` for monthly data or `YYYY` for annual data.
pub const PERIOD: &str = "period";
/// Customs office.
pub const OFFICE_ID: &str = "office_id";
/// Processing type (e.g. KCS `B`).
pub const PROCESS_TYPE: &str = "process_type";
/// Import type code.
pub const IMPORT_TYPE: &str = "import_type";
/// Import use code.
pub const IMPORT_USE: &str = "import_use";
/// Payment type code.
pub const PAYMENT_TYPE: &str = "payment_type";
/// Mode of transport code.
pub const TRANSPORT_MODE: &str = "transport_mode";
/// Declarant (customs broker) id.
pub const DECLARANT_ID: &str = "declarant_id";
/// Importer id: the auditee of a post-clearance audit.
pub const IMPORTER_ID: &str = "importer_id";
/// Foreign seller id.
pub const SELLER_ID: &str = "seller_id";
/// Courier id (often empty).
pub const COURIER_ID: &str = "courier_id";
/// National tariff code as declared (6, 8 or 10 digits, text, leading zeros kept).
pub const HS_CODE: &str = "hs_code";
/// First six digits of the tariff code: the internationally harmonised level.
pub const HS6: &str = "hs6";
/// First four digits (HS heading).
pub const HS4: &str = "hs4";
/// First two digits (HS chapter).
pub const HS2: &str = "hs2";
/// Country of departure (ISO 3166 alpha-2).
pub const DEPARTURE_COUNTRY: &str = "departure_country";
/// Country of origin (ISO 3166 alpha-2).
pub const ORIGIN_COUNTRY: &str = "origin_country";
/// Duty rate applied, percent.
pub const TAX_RATE_PCT: &str = "tax_rate_pct";
/// Tax type code (MFN, preference agreement, …).
pub const TAX_TYPE: &str = "tax_type";
/// Country-of-origin indicator (how origin was established).
pub const ORIGIN_INDICATOR: &str = "origin_indicator";
/// Net mass in kilograms.
pub const NET_MASS_KG: &str = "net_mass_kg";
/// Supplementary quantity (WCO unit in [`QUANTITY_UNIT`]), optional.
pub const QUANTITY: &str = "quantity";
/// WCO supplementary unit code of [`QUANTITY`].
pub const QUANTITY_UNIT: &str = "quantity_unit";
/// Declared customs value in the invoice currency.
pub const ITEM_PRICE: &str = "item_price";
/// ISO 4217 currency of [`ITEM_PRICE`].
pub const CURRENCY: &str = "currency";
/// Customs value converted to USD with the period's published rate.
pub const VALUE_USD: &str = "value_usd";
/// Duty assessed in USD (value × rate).
pub const DUTY_USD: &str = "duty_usd";
/// Unit price, USD per kg; null when mass or value is zero.
pub const UNIT_PRICE_USD_KG: &str = "unit_price_usd_per_kg";
/// Inspection outcome: 1 fraud, 0 clean, null not inspected.
pub const FRAUD: &str = "fraud";
/// Critical fraud class (0/1/2), null when not inspected.
pub const CRITICAL_FRAUD: &str = "critical_fraud";
/// Day an inspection or post-clearance audit outcome was recorded (inspection outcomes feed).
pub const DECIDED_ON: &str = "decided_on";
/// Source file a row came from (lineage).
pub const SOURCE_FILE: &str = "source_file";
/// 1-based line (data rows counted from the header as line 1) a row came from.
pub const SOURCE_LINE: &str = "source_line";

// --- mirror flows -------------------------------------------------------------------------
/// Reporting country (ISO alpha-2, or a sentinel such as `XX` for areas n.e.s.).
pub const REPORTER: &str = "reporter";
/// Partner country (ISO alpha-2, or a sentinel).
pub const PARTNER: &str = "partner";
/// Trade flow: `import`, `export`, `re-import`, `re-export`.
pub const FLOW: &str = "flow";
/// Trade value in USD as reported (imports CIF, exports FOB).
pub const TRADE_VALUE_USD: &str = "trade_value_usd";
/// Net weight in kg as reported.
pub const NET_WEIGHT_KG: &str = "net_weight_kg";
/// HS vintage (`H0`…`H6`) of the code, when known.
pub const HS_VINTAGE: &str = "hs_vintage";
/// Whether the reporter estimated the quantity.
pub const QUANTITY_ESTIMATED: &str = "quantity_estimated";

// --- tariffs ------------------------------------------------------------------------------
/// HS prefix a tariff line applies to (2–10 digits).
pub const HS_PREFIX: &str = "hs_prefix";
/// Origin a preferential rate applies to; null for the MFN rate.
pub const PREFERENCE_ORIGIN: &str = "preference_origin";
/// Preference agreement name.
pub const AGREEMENT: &str = "agreement";
/// Duty rate, percent.
pub const RATE_PCT: &str = "rate_pct";

// --- fx -----------------------------------------------------------------------------------
/// US dollars per one unit of [`CURRENCY`] in [`PERIOD`].
pub const USD_PER_UNIT: &str = "usd_per_unit";

// --- quarantine ---------------------------------------------------------------------------
/// Input dataset a quarantined row belonged to.
pub const DATASET: &str = "dataset";
/// Machine-readable reason code (e.g. `hs_code_length`).
pub const REASON_CODE: &str = "reason_code";
/// Human-readable reason.
pub const REASON: &str = "reason";
/// Column the reason refers to.
pub const COLUMN: &str = "column";
/// The original row, as JSON of source column → raw text.
pub const RAW_ROW: &str = "raw_row";

// --- release times (optional declaration columns, WCO Time Release Study) -----------------
/// Selectivity lane the declaration was routed to (e.g. `green`, `yellow`, `red`); optional.
pub const LANE: &str = "lane";
/// When the goods arrived at the office, seconds since 1970-01-01 00:00 (office local time);
/// optional.
pub const ARRIVED_AT: &str = "arrived_at";
/// When the declaration was lodged, seconds since 1970-01-01 00:00; optional.
pub const LODGED_AT: &str = "lodged_at";
/// When the duties were paid, seconds since 1970-01-01 00:00; optional (null when nothing was
/// due or payment is deferred past release).
pub const PAID_AT: &str = "paid_at";
/// When the goods were released, seconds since 1970-01-01 00:00; optional.
pub const RELEASED_AT: &str = "released_at";
