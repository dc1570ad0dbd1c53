//! The yardstick the automatic rule is measured against on the
//! product-pages dataset: structured data only, values as they are
//! written (the way a structured-data library hands them over), no choice
//! between products or offers and no shaping.

use std::collections::BTreeMap;

use scraper::{Html, Selector};
use serde_json::Value;

use super::dataset::Prediction;

fn ld_scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(a) => a.first().and_then(ld_scalar),
        Value::Object(o) => o.get("name").and_then(ld_scalar),
        _ => None,
    }
}

fn is_product(v: &Value) -> bool {
    match v.get("@type") {
        Some(Value::String(t)) => t.ends_with("Product"),
        Some(Value::Array(ts)) => ts
            .iter()
            .any(|t| t.as_str().is_some_and(|t| t.ends_with("Product"))),
        _ => false,
    }
}

fn first_product(v: &Value) -> Option<&Value> {
    match v {
        Value::Array(items) => items.iter().find_map(first_product),
        Value::Object(o) => {
            if is_product(v) {
                return Some(v);
            }
            o.get("@graph").and_then(first_product)
        }
        _ => None,
    }
}

/// The baseline: structured data only, values as they are written (the
/// way a structured-data library hands them over), no choice between
/// products or offers and no shaping.
pub fn structured_only(html: &str) -> Prediction {
    let doc = Html::parse_document(html);
    let mut values = BTreeMap::new();
    let ld = Selector::parse(r#"script[type="application/ld+json"]"#).expect("selector");
    let product = doc
        .select(&ld)
        .filter_map(|s| serde_json::from_str::<Value>(s.text().collect::<String>().trim()).ok())
        .find_map(|v| first_product(&v).cloned());
    if let Some(p) = product {
        let offer = match p.get("offers") {
            Some(Value::Array(a)) => a.first().cloned(),
            Some(o) => Some(o.clone()),
            None => None,
        };
        let from_offer = |k: &str| offer.as_ref().and_then(|o| o.get(k)).and_then(ld_scalar);
        let from_product = |k: &str| p.get(k).and_then(ld_scalar);
        let pairs = [
            (
                "price",
                from_offer("price").or_else(|| from_offer("lowPrice")),
            ),
            ("currency", from_offer("priceCurrency")),
            ("availability", from_offer("availability")),
            ("sku", from_product("sku")),
            ("mpn", from_product("mpn")),
            (
                "gtin",
                ["gtin13", "gtin12", "gtin14", "gtin8", "gtin"]
                    .iter()
                    .find_map(|k| from_product(k)),
            ),
            ("brand", from_product("brand")),
        ];
        for (k, v) in pairs {
            if let Some(v) = v {
                values.insert(k.to_string(), v);
            }
        }
    } else {
        let props = [
            ("price", "price"),
            ("currency", "priceCurrency"),
            ("availability", "availability"),
            ("sku", "sku"),
            ("mpn", "mpn"),
            ("gtin", "gtin13"),
            ("brand", "brand"),
        ];
        for (k, prop) in props {
            let Ok(s) = Selector::parse(&format!("[itemprop=\"{prop}\"]")) else {
                continue;
            };
            if let Some(e) = doc.select(&s).next() {
                let v = e
                    .value()
                    .attr("content")
                    .or(e.value().attr("href"))
                    .map(str::to_string)
                    .unwrap_or_else(|| e.text().collect::<String>());
                let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
                if !v.is_empty() {
                    values.insert(k.to_string(), v);
                }
            }
        }
    }
    Prediction {
        values,
        locale: None,
    }
}
