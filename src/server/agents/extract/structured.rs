//! Structured data on a page: JSON-LD, microdata, RDFa and meta tags.
//!
//! A page often describes more than one product (related products,
//! accessories, a breadcrumb of categories), so the page's main product is
//! chosen first: the one with a priced offer, whose address is the page's
//! own and whose name is the page's heading. Its offer is chosen the same
//! way (a priced one, not a crossed-out list price), and values are read
//! from that product and offer only.

use scraper::{ElementRef, Html};
use serde_json::Value;

use super::{normalize, sel, text_of};
use crate::server::values::schema_org;

/// schema.org types whose pages sell one thing.
const PRODUCT_TYPES: &[&str] = &[
    "product",
    "productgroup",
    "individualproduct",
    "productmodel",
    "someproducts",
    "vehicle",
    "car",
    "book",
];

/// Price specifications that are not what the buyer pays now.
const NOT_THE_PRICE: &[&str] = &["strikethrough", "listprice", "msrp", "srp", "invoice"];

fn type_names(node: &Value) -> Vec<String> {
    let short = |s: &str| {
        schema_org::strip_prefix(s)
            .rsplit('/')
            .next()
            .unwrap_or(s)
            .to_ascii_lowercase()
    };
    match node.get("@type") {
        Some(Value::String(s)) => vec![short(s)],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(short).collect(),
        _ => Vec::new(),
    }
}

fn is_product_like(node: &Value) -> bool {
    node.is_object()
        && (type_names(node)
            .iter()
            .any(|t| PRODUCT_TYPES.contains(&t.as_str()))
            || node.get("offers").is_some())
}

/// A scalar JSON value as text (`{"@value": …}` too).
pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(normalize(s)).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Object(map) => map.get("@value").and_then(scalar),
        Value::Array(items) => items.iter().find_map(scalar),
        _ => None,
    }
}

/// A key of an object, exactly or ignoring case.
pub fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let map = v.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The page's main JSON-LD product and where it was found.
pub struct LdProduct<'a> {
    pub node: &'a Value,
    pub offer: Option<&'a Value>,
    /// How a person finds it: `Product`, `@graph[2] Product`.
    pub label: String,
}

/// Hints about which product is the page's own.
pub struct PageHints {
    /// The page's address (canonical link or og:url), lower case.
    pub url: Option<String>,
    /// The page's main heading, normalized and lower case.
    pub heading: Option<String>,
}

fn same_page(a: &str, b: &str) -> bool {
    let strip = |s: &str| {
        let s = s.trim().to_ascii_lowercase();
        let s = s.split(['?', '#']).next().unwrap_or("").to_string();
        let s = s
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_start_matches("www.")
            .trim_end_matches('/')
            .to_string();
        s
    };
    let (a, b) = (strip(a), strip(b));
    !a.is_empty() && (a == b || a.ends_with(&b) || b.ends_with(&a))
}

/// Every product-like node in the page's JSON-LD, with a label: roots, the
/// members of `@graph` (already roots) and `mainEntity` of a web page.
fn ld_candidates(roots: &[Value]) -> Vec<(&Value, String)> {
    let mut out = Vec::new();
    for (i, root) in roots.iter().enumerate() {
        let name = type_names(root).first().cloned().unwrap_or_default();
        if is_product_like(root) {
            out.push((root, format!("#{} {}", i + 1, display_type(root))));
        }
        if let Some(main) = get(root, "mainEntity") {
            let items: Vec<&Value> = match main {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for m in items.into_iter().filter(|m| is_product_like(m)) {
                out.push((m, format!("#{} {name}.mainEntity", i + 1)));
            }
        }
    }
    out
}

fn display_type(node: &Value) -> String {
    match node.get("@type") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("/"),
        _ => "node".into(),
    }
}

/// The price of an offer or price specification, and the path it sits at.
pub fn offer_price(offer: &Value) -> Option<(String, &'static str)> {
    if let Some(p) = get(offer, "price").and_then(scalar).filter(|p| nonzero(p)) {
        return Some((p, "price"));
    }
    if let Some(spec) = get(offer, "priceSpecification") {
        let specs: Vec<&Value> = match spec {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let current = specs.iter().find(|s| {
            let kind = get(s, "priceType")
                .and_then(scalar)
                .unwrap_or_default()
                .to_ascii_lowercase();
            !NOT_THE_PRICE.iter().any(|n| kind.contains(n))
                && get(s, "price")
                    .and_then(scalar)
                    .is_some_and(|p| nonzero(&p))
        });
        if let Some(p) = current.and_then(|s| get(s, "price")).and_then(scalar) {
            return Some((p, "priceSpecification.price"));
        }
    }
    get(offer, "lowPrice")
        .and_then(scalar)
        .filter(|p| nonzero(p))
        .map(|p| (p, "lowPrice"))
}

fn nonzero(p: &str) -> bool {
    p.chars().any(|c| ('1'..='9').contains(&c))
}

/// The offer a buyer gets: the first priced one (inside an aggregate
/// offer when it lists them), or the first.
fn main_offer(product: &Value) -> Option<&Value> {
    fn pick(v: &Value) -> Option<&Value> {
        match v {
            Value::Array(items) => items
                .iter()
                .find(|o| offer_price(o).is_some())
                .or_else(|| items.first()),
            Value::Object(_) => {
                if offer_price(v).is_some() {
                    Some(v)
                } else {
                    get(v, "offers").and_then(pick).or(Some(v))
                }
            }
            _ => None,
        }
    }
    if let Some(o) = get(product, "offers").and_then(pick) {
        return Some(o);
    }
    // A product group sells through its variants.
    match get(product, "hasVariant")? {
        Value::Array(vs) => vs.iter().find_map(|v| get(v, "offers").and_then(pick)),
        v => get(v, "offers").and_then(pick),
    }
}

/// Every offer of a product: its offers, those inside an aggregate
/// offer, and its variants' offers.
pub fn all_offers(product: &Value) -> Vec<&Value> {
    fn collect<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
            Value::Object(_) => {
                out.push(v);
                if let Some(inner) = get(v, "offers") {
                    collect(inner, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(o) = get(product, "offers") {
        collect(o, &mut out);
    }
    if let Some(variants) = get(product, "hasVariant") {
        let variants: Vec<&Value> = match variants {
            Value::Array(a) => a.iter().collect(),
            v => vec![v],
        };
        for v in variants {
            if let Some(o) = get(v, "offers") {
                collect(o, &mut out);
            }
        }
    }
    out
}

/// The page's main JSON-LD product.
pub fn main_ld_product<'a>(roots: &'a [Value], hints: &PageHints) -> Option<LdProduct<'a>> {
    let candidates = ld_candidates(roots);
    let mut best: Option<(i32, usize)> = None;
    for (i, (node, _)) in candidates.iter().enumerate() {
        let mut score = 0;
        if main_offer(node).and_then(offer_price).is_some() {
            score += 4;
        }
        let url = get(node, "url")
            .and_then(scalar)
            .or_else(|| get(node, "@id").and_then(scalar));
        if let (Some(u), Some(page)) = (url, hints.url.as_deref()) {
            if same_page(&u, page) {
                score += 3;
            }
        }
        if let (Some(name), Some(h)) = (get(node, "name").and_then(scalar), &hints.heading) {
            let n = name.to_lowercase();
            if &n == h {
                score += 2;
            } else if h.contains(&n) || n.contains(h.as_str()) {
                score += 1;
            }
        }
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, i));
        }
    }
    let (_, i) = best?;
    let (node, label) = &candidates[i];
    Some(LdProduct {
        node,
        offer: main_offer(node),
        label: label.clone(),
    })
}

/// The microdata or RDFa scope of the page's main product: the first
/// product scope not inside another one.
pub fn main_scope(doc: &Html) -> Option<ElementRef<'_>> {
    let s = sel("[itemscope][itemtype], [typeof]")?;
    doc.select(&s).find(|e| {
        is_product_scope(*e)
            && !e
                .ancestors()
                .filter_map(ElementRef::wrap)
                .any(is_product_scope)
    })
}

fn is_product_scope(e: ElementRef<'_>) -> bool {
    let v = e.value();
    let types = v.attr("itemtype").or(v.attr("typeof")).unwrap_or("");
    types.split_whitespace().any(|t| {
        let short = t
            .rsplit(['/', ':', '#'])
            .next()
            .unwrap_or(t)
            .to_ascii_lowercase();
        PRODUCT_TYPES.contains(&short.as_str())
    })
}

fn names_property(e: ElementRef<'_>, prop: &str) -> bool {
    let v = e.value();
    let matches = |list: &str| {
        list.split_whitespace().any(|p| {
            let short = schema_org::strip_prefix(p);
            short.eq_ignore_ascii_case(prop)
        })
    };
    v.attr("itemprop").is_some_and(matches)
        || v.attr("property")
            .is_some_and(|p| !p.contains("og:") && !p.starts_with("product:") && matches(p))
}

/// A property's value as microdata defines it: `content`, an address for
/// links and media, `value`/`datetime`, else the text. Also says whether
/// it came from an attribute (a machine value) or from text.
pub fn property_value(e: ElementRef<'_>) -> Option<(String, bool)> {
    let v = e.value();
    let attr = v
        .attr("content")
        .or_else(|| match v.name() {
            "a" | "link" | "area" => v.attr("href"),
            "img" | "audio" | "video" | "source" | "embed" | "iframe" => v.attr("src"),
            "data" | "meter" | "input" => v.attr("value"),
            "time" => v.attr("datetime"),
            _ => None,
        })
        .map(normalize)
        .filter(|s| !s.is_empty());
    match attr {
        Some(a) => Some((a, true)),
        None => Some((text_of(e), false)).filter(|(t, _)| !t.is_empty()),
    }
}

/// The elements carrying microdata/RDFa property `prop` that belong to
/// `scope` (not to another product inside it), or anywhere on the page
/// when there is no product scope.
pub fn properties<'a>(
    doc: &'a Html,
    scope: Option<ElementRef<'a>>,
    prop: &str,
) -> Vec<ElementRef<'a>> {
    let Some(s) = sel("[itemprop], [property]") else {
        return Vec::new();
    };
    match scope {
        Some(scope) => scope
            .select(&s)
            .filter(|e| names_property(*e, prop))
            .filter(|e| {
                !e.ancestors()
                    .filter_map(ElementRef::wrap)
                    .take_while(|a| a.id() != scope.id())
                    .any(is_product_scope)
            })
            .collect(),
        None => doc
            .select(&s)
            .filter(|e| names_property(*e, prop))
            .collect(),
    }
}

/// `<meta name|property|itemprop=name content=…>`.
pub fn meta(doc: &Html, name: &str) -> Option<String> {
    let s = sel("meta")?;
    doc.select(&s)
        .find(|m| {
            let v = m.value();
            v.attr("name")
                .or(v.attr("property"))
                .or(v.attr("itemprop"))
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .and_then(|m| m.value().attr("content"))
        .map(normalize)
        .filter(|s| !s.is_empty())
}

/// JSON-LD documents may be arrays or hold a `@graph`: every node becomes a
/// root to search.
pub fn flatten_ld(v: Value, out: &mut Vec<Value>) {
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

/// The JSON-LD blocks of a page, parsed leniently: some shops leave
/// control characters or a trailing semicolon in them.
pub fn json_ld(doc: &Html) -> Vec<Value> {
    let mut roots = Vec::new();
    let Some(s) = sel(r#"script[type="application/ld+json"]"#) else {
        return roots;
    };
    for script in doc.select(&s) {
        let text: String = script.text().collect();
        let trimmed = text
            .trim()
            .trim_start_matches("<!--")
            .trim_end_matches("-->")
            .trim()
            .trim_end_matches(';');
        let parsed = serde_json::from_str::<Value>(trimmed).or_else(|_| {
            let cleaned: String = trimmed
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            serde_json::from_str::<Value>(&cleaned)
        });
        if let Ok(v) = parsed {
            flatten_ld(v, &mut roots);
        }
    }
    roots
}

/// Follows a dotted path; through arrays it takes the first element that
/// has the rest of the path. Keys match exactly, then ignoring case.
pub fn walk<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(v);
    };
    match v {
        Value::Array(items) => items.iter().find_map(|i| walk(i, path)),
        Value::Object(_) => walk(get(v, first)?, rest),
        _ => None,
    }
}

/// Any key, at any depth, that reduces to `k` (see `key`).
pub fn find_key<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    match v {
        Value::Object(map) => map
            .iter()
            .find(|(name, val)| super::key(name) == k && scalar(val).is_some())
            .map(|(_, val)| val)
            .or_else(|| map.values().find_map(|val| find_key(val, k))),
        Value::Array(items) => items.iter().find_map(|i| find_key(i, k)),
        _ => None,
    }
}

/// A brand or manufacturer: a name, a `{name}` object, or a list of them.
pub fn name_of(v: &Value) -> Option<String> {
    match v {
        Value::Array(items) => items.iter().find_map(name_of),
        Value::Object(_) => get(v, "name").and_then(scalar),
        other => scalar(other),
    }
}
