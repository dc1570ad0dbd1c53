//! Value vocabularies shared by extraction and evaluation: currencies
//! (ISO 4217 codes, their symbols and names), prices as people write them
//! in different locales, and schema.org's enumeration values. The
//! extractor uses them to return one canonical form; the comparators use
//! them so that `€` and `EUR`, or `http://schema.org/InStock` and
//! `InStock`, are judged equal.

pub mod currency;
pub mod price;
pub mod schema_org;
