//! Finding a field's value in an HTML page, by the field's rule: a CSS
//! selector (text or attribute), a JSON-LD path, a meta tag, a regular
//! expression, or the automatic rule, which tries in order JSON-LD,
//! microdata, Open Graph / product meta tags, and labelled text ("Price:
//! 19.99", table header and cell, dt/dd), by the field's name and common
//! synonyms. Values come back normalized: entities decoded, whitespace
//! collapsed; a number field keeps its number; a stock field says yes/no.

use scraper::{ElementRef, Html, Selector};
use serde_json::Value;

use crate::model::{ExtractionRule, OutputField, ValueType};

pub struct Page {
    doc: Html,
    raw: String,
    json_ld: Vec<Value>,
}

/// Collapses runs of whitespace and trims.
pub fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn sel(css: &str) -> Option<Selector> {
    Selector::parse(css).ok()
}

fn text_of(e: ElementRef<'_>) -> String {
    normalize(&e.text().collect::<String>())
}

/// A field name reduced for matching: lower case, letters and digits only.
fn key(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// What a field is called in JSON-LD, microdata, meta tags and labels.
struct Synonyms {
    json_ld: &'static [&'static str],
    itemprop: &'static [&'static str],
    meta: &'static [&'static str],
    labels: &'static [&'static str],
}

fn synonyms(field_key: &str) -> Synonyms {
    match field_key {
        "title" | "name" | "productname" | "product" => Synonyms {
            json_ld: &["name"],
            itemprop: &["name"],
            meta: &["og:title", "twitter:title"],
            labels: &["title", "name", "product", "product name"],
        },
        "price" | "amount" | "cost" => Synonyms {
            json_ld: &["offers.price", "offers.lowPrice", "price"],
            itemprop: &["price"],
            meta: &["product:price:amount", "og:price:amount"],
            labels: &["price", "cost", "amount"],
        },
        "currency" | "pricecurrency" => Synonyms {
            json_ld: &["offers.priceCurrency", "priceCurrency"],
            itemprop: &["priceCurrency"],
            meta: &["product:price:currency", "og:price:currency"],
            labels: &["currency"],
        },
        "instock" | "stock" | "availability" | "available" => Synonyms {
            json_ld: &["offers.availability", "availability"],
            itemprop: &["availability"],
            meta: &["product:availability", "og:availability"],
            labels: &["stock", "availability", "in stock", "available"],
        },
        "rating" | "stars" | "ratingvalue" => Synonyms {
            json_ld: &["aggregateRating.ratingValue", "ratingValue"],
            itemprop: &["ratingValue"],
            meta: &[],
            labels: &["rating", "customer rating", "stars"],
        },
        "sku" | "itemcode" | "productcode" => Synonyms {
            json_ld: &["sku", "productID", "mpn"],
            itemprop: &["sku", "productID"],
            meta: &[],
            labels: &["sku", "item code", "product code"],
        },
        _ => Synonyms {
            json_ld: &[],
            itemprop: &[],
            meta: &[],
            labels: &[],
        },
    }
}

impl Page {
    pub fn parse(html: &str) -> Page {
        let doc = Html::parse_document(html);
        let mut json_ld = Vec::new();
        if let Some(s) = sel(r#"script[type="application/ld+json"]"#) {
            for script in doc.select(&s) {
                let text: String = script.text().collect();
                if let Ok(v) = serde_json::from_str::<Value>(text.trim()) {
                    flatten_ld(v, &mut json_ld);
                }
            }
        }
        Page {
            doc,
            raw: html.to_string(),
            json_ld,
        }
    }

    /// The field's value on this page, or `None` when the rule finds
    /// nothing.
    pub fn extract(&self, field: &OutputField) -> Option<String> {
        let found = match &field.rule {
            ExtractionRule::Css {
                selector,
                attribute,
            } => self.css(selector, attribute.as_deref()),
            ExtractionRule::JsonLd { path } => self.json_ld_path(path),
            ExtractionRule::Meta { name } => self.meta(name),
            ExtractionRule::Regex { pattern } => self.regex(pattern),
            ExtractionRule::Auto => self.auto(&field.name),
        }?;
        finish(&field.name, field.field_type, &found)
    }

    pub fn css(&self, selector: &str, attribute: Option<&str>) -> Option<String> {
        let s = sel(selector)?;
        let e = self.doc.select(&s).next()?;
        match attribute {
            Some(a) => e.value().attr(a).map(normalize),
            None => Some(text_of(e)),
        }
    }

    pub fn json_ld_path(&self, path: &str) -> Option<String> {
        let parts: Vec<&str> = path.split('.').map(str::trim).collect();
        self.json_ld
            .iter()
            .find_map(|root| walk(root, &parts))
            .and_then(scalar)
    }

    pub fn meta(&self, name: &str) -> Option<String> {
        let s = sel("meta")?;
        self.doc
            .select(&s)
            .find(|m| {
                let v = m.value();
                v.attr("name")
                    .or(v.attr("property"))
                    .or(v.attr("itemprop"))
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .and_then(|m| m.value().attr("content"))
            .map(normalize)
    }

    pub fn regex(&self, pattern: &str) -> Option<String> {
        let re = regex::Regex::new(pattern).ok()?;
        let caps = re.captures(&self.raw)?;
        let m = caps.get(1).or(caps.get(0))?;
        Some(normalize(&decode_entities(m.as_str())))
    }

    fn auto(&self, field: &str) -> Option<String> {
        let k = key(field);
        let syn = synonyms(&k);
        // JSON-LD: the synonyms' paths, then any key named like the field.
        for path in syn.json_ld {
            if let Some(v) = self.json_ld_path(path) {
                return Some(v);
            }
        }
        if let Some(v) = self
            .json_ld
            .iter()
            .find_map(|r| find_key(r, &k))
            .and_then(scalar)
        {
            return Some(v);
        }
        // Microdata.
        let itemprops: Vec<&str> = syn.itemprop.iter().copied().chain([field]).collect();
        for prop in itemprops {
            if let Some(v) = self.itemprop(prop) {
                return Some(v);
            }
        }
        // Open Graph and product meta tags.
        let og = format!("og:{field}");
        let product = format!("product:{field}");
        for name in syn
            .meta
            .iter()
            .copied()
            .chain([og.as_str(), product.as_str()])
        {
            if let Some(v) = self.meta(name) {
                return Some(v);
            }
        }
        // Labelled text.
        let mut labels: Vec<String> = syn.labels.iter().map(|l| key(l)).collect();
        labels.push(k.clone());
        if let Some(v) = self.labelled(&labels) {
            return Some(v);
        }
        // A title is the page's main heading when nothing names it, or
        // else the document's title.
        if matches!(k.as_str(), "title" | "name" | "productname" | "product") {
            return ["h1", "h2", "title"].iter().find_map(|tag| {
                sel(tag)
                    .and_then(|s| self.doc.select(&s).next())
                    .map(text_of)
                    .filter(|t| !t.is_empty())
            });
        }
        None
    }

    fn itemprop(&self, prop: &str) -> Option<String> {
        let s = sel(&format!("[itemprop=\"{}\"]", prop.replace('"', "")))?;
        let e = self.doc.select(&s).next()?;
        let v = e.value();
        v.attr("content")
            .or(v.attr("href"))
            .map(normalize)
            .or_else(|| Some(text_of(e)))
            .filter(|t| !t.is_empty())
    }

    /// "Label: value" text, `th`/`td` rows and `dt`/`dd` pairs whose label
    /// is one of `labels` (already reduced with [`key`]).
    fn labelled(&self, labels: &[String]) -> Option<String> {
        let is_label = |t: &str| labels.iter().any(|l| *l == key(t));
        if let Some(rows) = sel("tr") {
            for row in self.doc.select(&rows) {
                let cells: Vec<ElementRef> = row
                    .children()
                    .filter_map(ElementRef::wrap)
                    .filter(|c| matches!(c.value().name(), "th" | "td"))
                    .collect();
                if cells.len() >= 2 && is_label(&text_of(cells[0])) {
                    return Some(text_of(cells[1]));
                }
            }
        }
        if let Some(dts) = sel("dt") {
            for dt in self.doc.select(&dts) {
                if is_label(&text_of(dt)) {
                    let dd = dt
                        .next_siblings()
                        .filter_map(ElementRef::wrap)
                        .find(|e| e.value().name() == "dd");
                    if let Some(dd) = dd {
                        return Some(text_of(dd));
                    }
                }
            }
        }
        let blocks = sel("p, li, div, span, td")?;
        for e in self.doc.select(&blocks) {
            let text = text_of(e);
            if let Some((label, value)) = text.split_once(':') {
                if label.len() <= 40 && is_label(label) && !value.trim().is_empty() {
                    return Some(value.trim().to_string());
                }
            }
        }
        None
    }
}

/// JSON-LD documents may be arrays or hold a `@graph`: every node becomes a
/// root to search.
fn flatten_ld(v: Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(items) => items.into_iter().for_each(|i| flatten_ld(i, out)),
        Value::Object(mut map) => {
            if let Some(graph) = map.remove("@graph") {
                flatten_ld(graph, out);
            }
            out.push(Value::Object(map));
        }
        _ => {}
    }
}

/// Follows a dotted path; through arrays it takes the first element that
/// has the rest of the path. Keys match exactly, then ignoring case.
fn walk<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(v);
    };
    match v {
        Value::Array(items) => items.iter().find_map(|i| walk(i, path)),
        Value::Object(map) => {
            let next = map.get(*first).or_else(|| {
                map.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(first))
                    .map(|(_, v)| v)
            })?;
            walk(next, rest)
        }
        _ => None,
    }
}

/// Any key, at any depth, that reduces to `k`.
fn find_key<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    match v {
        Value::Object(map) => map
            .iter()
            .find(|(name, val)| key(name) == k && scalar(val).is_some())
            .map(|(_, val)| val)
            .or_else(|| map.values().find_map(|val| find_key(val, k))),
        Value::Array(items) => items.iter().find_map(|i| find_key(i, k)),
        _ => None,
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(normalize(s)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Object(map) => map.get("@value").and_then(scalar),
        _ => None,
    }
}

fn decode_entities(s: &str) -> String {
    let frag = Html::parse_fragment(s);
    frag.root_element().text().collect()
}

/// Shapes a found value for its field: numbers without their currency or
/// words, stock as yes/no, everything else as text.
fn finish(field: &str, field_type: ValueType, raw: &str) -> Option<String> {
    let v = normalize(raw);
    if v.is_empty() {
        return None;
    }
    let k = key(field);
    if matches!(k.as_str(), "instock" | "available" | "isavailable") {
        let lower = v.to_lowercase();
        let no = [
            "outofstock",
            "out of stock",
            "sold out",
            "soldout",
            "unavailable",
            "discontinued",
        ];
        let yes = [
            "instock",
            "in stock",
            "available",
            "limitedavailability",
            "preorder",
        ];
        if no.iter().any(|n| lower.contains(n)) || lower == "no" || lower == "false" {
            return Some("no".into());
        }
        if yes.iter().any(|y| lower.contains(y)) || lower == "yes" || lower == "true" {
            return Some("yes".into());
        }
    }
    if field_type == ValueType::Number {
        let re = regex::Regex::new(r"-?\d[\d,.\u{a0} ]*\d|-?\d").ok()?;
        return re
            .find(&v)
            .map(|m| m.as_str().trim().to_string())
            .or(Some(v));
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Comparator, ComparatorOptions};
    use crate::server::demo::{product, Markup, Product};

    fn field(name: &str, field_type: ValueType, rule: ExtractionRule) -> OutputField {
        OutputField {
            name: name.into(),
            field_type,
            comparator: Comparator::Exact,
            comparator_options: ComparatorOptions::default(),
            rule,
            source: "manual".into(),
        }
    }

    fn auto(page: &Page, name: &str, t: ValueType) -> Option<String> {
        page.extract(&field(name, t, ExtractionRule::Auto))
    }

    fn page_of(p: &Product) -> Page {
        Page::parse(&crate::server::demo::pages_html(p))
    }

    #[test]
    fn the_automatic_rule_reads_every_markup_style_of_the_demo_shop() {
        let mut styles = std::collections::HashSet::new();
        for n in 1..=40 {
            let p = product(n);
            styles.insert(p.markup as u8);
            let page = page_of(&p);
            let ctx = format!("product {n} ({:?})", p.markup);
            assert_eq!(
                auto(&page, "title", ValueType::Text).as_deref(),
                Some(p.title.as_str()),
                "{ctx}"
            );
            assert_eq!(
                auto(&page, "price", ValueType::Number),
                Some(p.price()),
                "{ctx}"
            );
            assert_eq!(
                auto(&page, "currency", ValueType::Text).as_deref(),
                Some(p.currency),
                "{ctx}"
            );
            let stock = if p.stock.in_stock() { "yes" } else { "no" };
            assert_eq!(
                auto(&page, "in_stock", ValueType::Text).as_deref(),
                Some(stock),
                "{ctx}"
            );
            assert_eq!(
                auto(&page, "rating", ValueType::Number),
                Some(p.rating()),
                "{ctx}"
            );
            assert_eq!(auto(&page, "sku", ValueType::Text), Some(p.sku()), "{ctx}");
        }
        assert_eq!(styles.len(), 4);
    }

    #[test]
    fn explicit_rules() {
        let micro = (1..)
            .map(product)
            .find(|p| p.markup == Markup::Microdata)
            .unwrap();
        let page = page_of(&micro);
        let css = field(
            "price",
            ValueType::Number,
            ExtractionRule::Css {
                selector: ".price".into(),
                attribute: Some("content".into()),
            },
        );
        assert_eq!(page.extract(&css), Some(micro.price()));
        let text = field(
            "price",
            ValueType::Text,
            ExtractionRule::Css {
                selector: "span.price".into(),
                attribute: None,
            },
        );
        assert!(page.extract(&text).unwrap().ends_with(&micro.price()));

        let ld = (1..)
            .map(product)
            .find(|p| p.markup == Markup::JsonLd)
            .unwrap();
        let page = page_of(&ld);
        let path = field(
            "rating",
            ValueType::Number,
            ExtractionRule::JsonLd {
                path: "aggregateRating.ratingValue".into(),
            },
        );
        assert_eq!(page.extract(&path), Some(ld.rating()));
        let missing = field(
            "x",
            ValueType::Text,
            ExtractionRule::JsonLd {
                path: "offers.nothing".into(),
            },
        );
        assert_eq!(page.extract(&missing), None);

        let labelled = (1..)
            .map(product)
            .find(|p| p.markup == Markup::LabelledText)
            .unwrap();
        let page = page_of(&labelled);
        let meta = field(
            "title",
            ValueType::Text,
            ExtractionRule::Meta {
                name: "og:title".into(),
            },
        );
        assert_eq!(page.extract(&meta), Some(labelled.title.clone()));
        let re = field(
            "price",
            ValueType::Number,
            ExtractionRule::Regex {
                pattern: r"Price: \D*([0-9.]+)".into(),
            },
        );
        assert_eq!(page.extract(&re), Some(labelled.price()));
    }

    #[test]
    fn values_are_normalized() {
        let page = Page::parse("<html><body><p class=t>  Oak &amp;\n  Shade </p><dl><dt>Weight</dt><dd> 2 kg </dd></dl></body></html>");
        let t = field(
            "t",
            ValueType::Text,
            ExtractionRule::Css {
                selector: ".t".into(),
                attribute: None,
            },
        );
        assert_eq!(page.extract(&t).as_deref(), Some("Oak & Shade"));
        assert_eq!(
            auto(&page, "weight", ValueType::Text).as_deref(),
            Some("2 kg")
        );
        assert_eq!(auto(&page, "colour", ValueType::Text), None);
    }
}
