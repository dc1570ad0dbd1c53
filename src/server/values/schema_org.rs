//! schema.org enumeration values (`ItemAvailability`, `OfferItemCondition`)
//! in their short names, whichever form a page writes them in:
//! `http://schema.org/InStock`, `https://schema.org/InStock`,
//! `schema:InStock`, `InStock`, `in stock`, `in_stock`.

/// Every `ItemAvailability` member, as schema.org spells it.
pub const AVAILABILITY: &[&str] = &[
    "InStock",
    "OutOfStock",
    "PreOrder",
    "PreSale",
    "BackOrder",
    "Discontinued",
    "InStoreOnly",
    "OnlineOnly",
    "LimitedAvailability",
    "SoldOut",
    "MadeToOrder",
    "Reserved",
];

/// Every `OfferItemCondition` member.
pub const CONDITION: &[&str] = &[
    "NewCondition",
    "UsedCondition",
    "RefurbishedCondition",
    "DamagedCondition",
];

/// The part after a schema.org prefix (`http(s)://(www.)schema.org/`,
/// `schema:`), or the value itself.
pub fn strip_prefix(value: &str) -> &str {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    for prefix in [
        "https://schema.org/",
        "http://schema.org/",
        "https://www.schema.org/",
        "http://www.schema.org/",
        "schema:",
    ] {
        if lower.starts_with(prefix) {
            return v[prefix.len()..].trim_end_matches('/');
        }
    }
    v
}

fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The enumeration member `value` names, by its short name, when it names
/// one of `members` (ignoring case, spaces and punctuation).
pub fn member(value: &str, members: &[&'static str]) -> Option<&'static str> {
    let k = squash(strip_prefix(value));
    if k.is_empty() {
        return None;
    }
    members.iter().copied().find(|m| squash(m) == k)
}

/// A value in its short enumeration name when it is a schema.org
/// availability or condition (in any of its forms); other values as given.
pub fn canonical(value: &str) -> String {
    member(value, AVAILABILITY)
        .or_else(|| member(value, CONDITION))
        .map(str::to_string)
        .unwrap_or_else(|| value.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_member_has_its_short_name() {
        for v in [
            "http://schema.org/InStock",
            "https://schema.org/InStock",
            "https://www.schema.org/InStock/",
            "schema:InStock",
            "instock",
            "In stock",
            "in_stock",
        ] {
            assert_eq!(member(v, AVAILABILITY), Some("InStock"), "{v}");
        }
        assert_eq!(canonical("http://schema.org/NewCondition"), "NewCondition");
        assert_eq!(canonical("Sold out"), "SoldOut");
        assert_eq!(canonical(" Limited "), "Limited");
        assert_eq!(member("", AVAILABILITY), None);
        assert_eq!(member("http://schema.org/", AVAILABILITY), None);
    }
}
