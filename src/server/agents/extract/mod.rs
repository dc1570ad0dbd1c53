//! Finding a field's value in an HTML page, by the field's rule: a CSS
//! selector (text or attribute), a JSON-LD path, a meta tag, a regular
//! expression, or the automatic rule.
//!
//! The automatic rule knows the common product attributes by name (title,
//! price, currency, availability / in stock, rating, sku, mpn, gtin,
//! brand, and their usual synonyms) and looks for them in order: the
//! page's main product in JSON-LD, then in microdata/RDFa, then Open Graph
//! and `product:` meta tags (`structured`), then what a person sees —
//! labelled values in the common languages, price elements near the main
//! heading, stock messages, the add-to-cart button (`visible`). Any other
//! field is looked up by its own name the same way. Every candidate is
//! shaped for its attribute (prices as canonical decimals in the page's
//! notation, currencies as ISO codes, availability as schema.org short
//! names); the first that survives wins, and [`Page::explain`] says which
//! source that was and which candidates lost.

pub mod llm;
pub mod reduce;
mod structured;
pub mod visible;

use std::cell::OnceCell;

use scraper::{ElementRef, Html, Selector};
use serde_json::{json, Map, Value};

use crate::model::{ExtractionRule, OutputField, ValueType};
use crate::server::values::price::{self, Notation};
use crate::server::values::{currency, schema_org};
use structured::{get, name_of, scalar, LdProduct, PageHints};
use visible::Layout;

pub struct Page {
    doc: Html,
    raw: String,
    json_ld: Vec<Value>,
    /// The address the page was fetched from, if known.
    url: Option<String>,
    layout: OnceCell<Layout>,
    price_texts: OnceCell<Vec<visible::Seen>>,
    money_texts: OnceCell<Vec<visible::Seen>>,
    locale: OnceCell<Option<String>>,
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

/// The product attributes the automatic rule knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    Title,
    Price,
    Currency,
    /// schema.org's short names: `InStock`, `OutOfStock`, …
    Availability,
    /// `yes` or `no`.
    InStock,
    Rating,
    Sku,
    Mpn,
    Gtin,
    Brand,
    /// Any other field: looked up by its own name.
    Other,
}

impl Attribute {
    /// The attribute a field's name asks for.
    pub fn of(field_name: &str) -> Attribute {
        match key(field_name).as_str() {
            "title" | "name" | "productname" | "product" | "producttitle" => Attribute::Title,
            "price" | "amount" | "cost" | "saleprice" | "currentprice" | "offerprice" => {
                Attribute::Price
            }
            "currency" | "pricecurrency" | "currencycode" => Attribute::Currency,
            "availability" | "stock" | "stockstatus" | "availabilitystatus" => {
                Attribute::Availability
            }
            "instock" | "available" | "isavailable" | "isinstock" => Attribute::InStock,
            "rating" | "stars" | "ratingvalue" | "averagerating" => Attribute::Rating,
            "sku" | "itemcode" | "productcode" | "articlenumber" | "itemnumber" | "productid" => {
                Attribute::Sku
            }
            "mpn" | "partnumber" | "manufacturerpartnumber" | "modelnumber" => Attribute::Mpn,
            "gtin" | "gtin8" | "gtin12" | "gtin13" | "gtin14" | "ean" | "upc" | "isbn"
            | "barcode" => Attribute::Gtin,
            "brand" | "manufacturer" | "make" | "brandname" => Attribute::Brand,
            _ => Attribute::Other,
        }
    }

    /// Labels a person reads next to the value, in the common languages
    /// (compared after [`key`]).
    fn labels(self) -> &'static [&'static str] {
        match self {
            Attribute::Title => &["title", "name", "product", "product name"],
            Attribute::Price => &[
                "price",
                "our price",
                "sale price",
                "preis",
                "prix",
                "precio",
                "prezzo",
                "preço",
                "цена",
                "cena",
                "prijs",
                "pris",
                "hinta",
                "fiyat",
                "价格",
                "價格",
                "售價",
                "가격",
            ],
            Attribute::Currency => &["currency", "währung", "devise", "moneda", "valuta"],
            Attribute::Availability | Attribute::InStock => &[
                "availability",
                "stock",
                "stock status",
                "verfügbarkeit",
                "lieferbarkeit",
                "disponibilité",
                "disponibilidad",
                "disponibilità",
                "disponibilidade",
                "наличие",
                "dostępność",
                "beschikbaarheid",
                "lagerstatus",
            ],
            Attribute::Rating => &["rating", "customer rating", "stars", "bewertung", "note"],
            Attribute::Sku => &[
                "sku",
                "item code",
                "product code",
                "item number",
                "item no",
                "item #",
                "article number",
                "art.-nr.",
                "art. nr.",
                "artikelnummer",
                "artikel-nr.",
                "artikelnr",
                "bestellnummer",
                "référence",
                "réf.",
                "ref.",
                "reference",
                "código",
                "cód.",
                "código del producto",
                "código do produto",
                "codice",
                "codice articolo",
                "артикул",
                "код товара",
                "код",
                "numer katalogowy",
                "kod produktu",
                "nr katalogowy",
                "šifra",
                "šifra proizvoda",
                "kód",
                "katalógové číslo",
                "cikkszám",
                "varenummer",
                "varenr.",
                "artikelnr.",
                "tuotenumero",
                "ürün kodu",
                "商品編號",
                "商品编号",
                "品番",
                "상품번호",
                "asin",
                "product id",
                "item id",
            ],
            Attribute::Mpn => &[
                "mpn",
                "manufacturer part number",
                "part number",
                "model number",
                "item model number",
                "herstellernummer",
                "herstellerartikelnummer",
                "référence fabricant",
                "modelo",
                "modello",
                "numéro de modèle",
            ],
            Attribute::Gtin => &[
                "gtin",
                "ean",
                "ean-13",
                "ean13",
                "upc",
                "isbn",
                "isbn-13",
                "barcode",
                "código de barras",
                "ean-code",
                "ean code",
            ],
            Attribute::Brand => &[
                "brand",
                "marke",
                "marque",
                "marca",
                "бренд",
                "производитель",
                "merk",
                "márka",
                "značka",
                "marka",
                "manufacturer",
                "hersteller",
                "fabricant",
                "fabricante",
                "produttore",
                "brand name",
            ],
            Attribute::Other => &[],
        }
    }
}

/// A value the automatic rule considered, and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub value: String,
    pub source: String,
}

/// A field's value and why: the source that won and the candidates that
/// lost (with their values as found).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Extraction {
    pub value: Option<String>,
    pub source: Option<String>,
    pub passed_over: Vec<Candidate>,
}

/// A raw candidate: the text found, how to read a number in it, where.
struct Raw {
    value: String,
    notation: Notation,
    source: String,
}

fn raw(value: impl Into<String>, notation: Notation, source: impl Into<String>) -> Raw {
    Raw {
        value: value.into(),
        notation,
        source: source.into(),
    }
}

/// Most candidates an explanation lists as passed over.
const MAX_PASSED_OVER: usize = 5;

impl Page {
    pub fn parse(html: &str) -> Page {
        Page::parse_at(html, None)
    }

    /// Parses a page fetched from `url` (its address helps choose the main
    /// product and tells what `$` means on a `.ca` or `.cl` shop).
    pub fn parse_at(html: &str, url: Option<&str>) -> Page {
        let doc = Html::parse_document(html);
        let json_ld = structured::json_ld(&doc);
        Page {
            doc,
            raw: html.to_string(),
            json_ld,
            url: url.map(str::to_string),
            layout: OnceCell::new(),
            price_texts: OnceCell::new(),
            money_texts: OnceCell::new(),
            locale: OnceCell::new(),
        }
    }

    fn layout(&self) -> &Layout {
        self.layout.get_or_init(|| Layout::of(&self.doc))
    }

    /// The page's address: as fetched, else its canonical link or og:url.
    fn address(&self) -> Option<String> {
        self.url.clone().or_else(|| {
            sel(r#"link[rel="canonical"]"#)
                .and_then(|s| self.doc.select(&s).next())
                .and_then(|l| l.value().attr("href").map(str::to_string))
                .or_else(|| self.meta("og:url"))
        })
    }

    /// The page's locale for reading currencies: the document's language
    /// when it names a region (`en-CA`), else the address's country domain.
    pub fn locale(&self) -> Option<String> {
        self.locale.get_or_init(|| self.read_locale()).clone()
    }

    fn read_locale(&self) -> Option<String> {
        let lang = sel("html")
            .and_then(|s| self.doc.select(&s).next())
            .and_then(|h| h.value().attr("lang").map(str::to_string));
        if let Some(l) = lang.as_deref().filter(|l| currency::region(l).is_some()) {
            return Some(l.to_string());
        }
        // The fetched address, else the one the page names as its own
        // (a page served from a mirror or a test server).
        let canonical = sel(r#"link[rel="canonical"]"#)
            .and_then(|s| self.doc.select(&s).next())
            .and_then(|l| l.value().attr("href").map(str::to_string))
            .or_else(|| self.meta("og:url"));
        [self.url.clone(), canonical]
            .into_iter()
            .flatten()
            .filter_map(|u| url::Url::parse(&u).ok())
            .filter_map(|u| u.host_str().map(str::to_string))
            .find(|host| currency::region(host).is_some())
    }

    /// The field's value on this page, or `None` when the rule finds
    /// nothing.
    pub fn extract(&self, field: &OutputField) -> Option<String> {
        self.explain(field).value
    }

    /// The field's value with the source that gave it and the candidates
    /// that lost.
    pub fn explain(&self, field: &OutputField) -> Extraction {
        let attribute = Attribute::of(&field.name);
        let candidates = match &field.rule {
            ExtractionRule::Css {
                selector,
                attribute: attr,
            } => self
                .css(selector, attr.as_deref())
                .map(|v| {
                    let source = match attr {
                        Some(a) => format!("CSS {selector} @{a}"),
                        None => format!("CSS {selector}"),
                    };
                    vec![raw(v, Notation::Display, source)]
                })
                .unwrap_or_default(),
            ExtractionRule::JsonLd { path } => self
                .json_ld_path(path)
                .map(|v| vec![raw(v, Notation::Structured, format!("JSON-LD {path}"))])
                .unwrap_or_default(),
            ExtractionRule::Meta { name } => self
                .meta(name)
                .map(|v| vec![raw(v, Notation::Structured, format!("meta {name}"))])
                .unwrap_or_default(),
            ExtractionRule::Regex { pattern } => self
                .regex(pattern)
                .map(|v| vec![raw(v, Notation::Display, format!("regex /{pattern}/"))])
                .unwrap_or_default(),
            ExtractionRule::Article => self
                .main_text()
                .map(|v| vec![raw(v, Notation::Display, "main text (reader view)")])
                .unwrap_or_default(),
            ExtractionRule::Auto => self.auto(&field.name, attribute),
        };
        // Only the automatic rule shapes values for their attribute; an
        // explicit rule's value is the user's choice, shaped by type alone,
        // except that a stock field still says yes/no (or the schema.org
        // name) when the text it found is a stock message.
        let auto = matches!(field.rule, ExtractionRule::Auto);
        let shape_as = if auto { attribute } else { Attribute::Other };
        let stock = matches!(attribute, Attribute::InStock | Attribute::Availability);
        let locale = self.locale();
        let mut out = Extraction::default();
        for c in candidates {
            let shaped = if !auto && stock {
                finish(attribute, field.field_type, &c, locale.as_deref())
                    .or_else(|| finish(shape_as, field.field_type, &c, locale.as_deref()))
            } else {
                finish(shape_as, field.field_type, &c, locale.as_deref())
            };
            match (&out.value, shaped) {
                (None, Some(v)) => {
                    out.value = Some(v);
                    out.source = Some(c.source);
                }
                (Some(won), shaped) => {
                    let same = shaped.as_deref() == Some(won.as_str());
                    let listed = out.passed_over.iter().any(|p| p.value == c.value);
                    if !same && !listed && out.passed_over.len() < MAX_PASSED_OVER {
                        out.passed_over.push(Candidate {
                            value: c.value,
                            source: c.source,
                        });
                    }
                }
                (None, None) => {
                    if out.passed_over.len() < MAX_PASSED_OVER {
                        out.passed_over.push(Candidate {
                            value: c.value,
                            source: format!("{} (not a {})", c.source, describe(shape_as)),
                        });
                    }
                }
            }
        }
        out
    }

    pub fn css(&self, selector: &str, attribute: Option<&str>) -> Option<String> {
        let s = sel(selector)?;
        let e = self.doc.select(&s).next()?;
        match attribute {
            Some(a) => e.value().attr(a).map(normalize),
            None => Some(text_of(e)),
        }
    }

    /// The page's main text: the block a reader view would show (the
    /// article body, a product's description), without navigation, asides,
    /// comments and boilerplate. dom_smoothie follows readability.js, the
    /// algorithm behind Firefox's reader view; it parses the page again
    /// into its own tree, which only this rule pays for. Relative to the
    /// rest of the page it is judged by text density, so a page with no
    /// block of prose gives its longest run of text rather than nothing.
    pub fn main_text(&self) -> Option<String> {
        let config = dom_smoothie::Config {
            text_mode: dom_smoothie::TextMode::Formatted,
            ..Default::default()
        };
        let mut reader =
            dom_smoothie::Readability::new(self.raw.as_str(), self.url.as_deref(), Some(config))
                .ok()?;
        let article = reader.parse().ok()?;
        Some(normalize(&article.text_content)).filter(|t| !t.is_empty())
    }

    pub fn json_ld_path(&self, path: &str) -> Option<String> {
        let parts: Vec<&str> = path.split('.').map(str::trim).collect();
        self.json_ld
            .iter()
            .find_map(|root| structured::walk(root, &parts))
            .and_then(scalar)
    }

    pub fn meta(&self, name: &str) -> Option<String> {
        structured::meta(&self.doc, name)
    }

    pub fn regex(&self, pattern: &str) -> Option<String> {
        let re = regex::Regex::new(pattern).ok()?;
        let caps = re.captures(&self.raw)?;
        let m = caps.get(1).or(caps.get(0))?;
        Some(normalize(&decode_entities(m.as_str())))
    }

    fn hints(&self) -> PageHints {
        PageHints {
            url: self.address().map(|u| u.to_lowercase()),
            heading: self
                .layout()
                .heading
                .as_ref()
                .map(|(_, h)| h.to_lowercase())
                .or_else(|| self.meta("og:title").map(|t| t.to_lowercase())),
        }
    }

    /// Every candidate for a field, best source first.
    fn auto(&self, field: &str, attribute: Attribute) -> Vec<Raw> {
        let mut out = Vec::new();
        let product = structured::main_ld_product(&self.json_ld, &self.hints());
        let scope = structured::main_scope(&self.doc);
        self.json_ld_candidates(product.as_ref(), field, attribute, &mut out);
        self.microdata_candidates(scope, field, attribute, &mut out);
        self.meta_candidates(field, attribute, &mut out);
        self.visible_candidates(field, attribute, &mut out);
        match attribute {
            Attribute::Availability | Attribute::InStock => {
                // Stock data is often stale or about one variant; a shop
                // that shows an enabled add-to-cart button is selling it.
                let first = out.first().and_then(|c| availability(&c.value));
                if first.is_some_and(|s| !buyable(s)) {
                    if let Some(i) = out
                        .iter()
                        .position(|c| c.value == "InStock" && c.source.starts_with("add-to-cart"))
                    {
                        let mut c = out.remove(i);
                        c.source.push_str(", which outranks the out-of-stock data");
                        out.insert(0, c);
                    }
                }
                // A page that offers the product for a price and says
                // nothing about stock is selling it.
                let priced = product
                    .as_ref()
                    .is_some_and(|p| p.offer.and_then(structured::offer_price).is_some())
                    || !structured::properties(&self.doc, scope, "price").is_empty()
                    || !self.price_texts().is_empty()
                    || !self.money_texts().is_empty();
                if priced {
                    out.push(raw(
                        "InStock",
                        Notation::Display,
                        "offered for a price, with no stock message",
                    ));
                }
            }
            Attribute::Price => {
                // Structured data can disagree with itself (a hidden list
                // price, a starting bid): the price a person sees wins.
                let seen: Vec<String> = out
                    .iter()
                    .filter(|c| c.source.starts_with("price element"))
                    .take(3)
                    .filter_map(|c| price::amount(&c.value, Notation::Display))
                    .collect();
                let structured: Vec<usize> = out
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| {
                        !(c.source.starts_with("price element")
                            || c.source.starts_with("money text"))
                    })
                    .map(|(i, _)| i)
                    .collect();
                let shown = |i: &usize| {
                    price::amount(&out[*i].value, out[*i].notation)
                        .is_some_and(|a| same_amount(&a, &seen))
                };
                if let Some(first) = structured.first() {
                    if !shown(first) {
                        if let Some(i) = structured.iter().find(|i| shown(i)).copied() {
                            let mut c = out.remove(i);
                            c.source.push_str(", which the page also shows");
                            out.insert(0, c);
                        }
                    }
                }
            }
            Attribute::Sku => {
                // The product's own identifier is usually in its address.
                let ids = self.address_ids();
                if let Some(i) = out.iter().position(|c| {
                    let k = squash_id(&c.value);
                    !k.is_empty()
                        && ids
                            .iter()
                            .any(|id| squash_id(id) == k || strip_letter_prefix(id) == k)
                }) {
                    let mut c = out.remove(i);
                    c.source.push_str(", also in the page's address");
                    out.insert(0, c);
                }
                if let Some(id) = ids.into_iter().find(|id| looks_like_address_id(id)) {
                    out.push(raw(
                        id,
                        Notation::Display,
                        "identifier in the page's address",
                    ));
                }
            }
            _ => {}
        }
        out
    }

    /// Short currency-and-number texts after the heading, once per page.
    fn money_texts(&self) -> &[visible::Seen] {
        self.money_texts
            .get_or_init(|| visible::money_texts(self.layout(), self.locale().as_deref()))
    }

    fn price_texts(&self) -> &[visible::Seen] {
        self.price_texts
            .get_or_init(|| visible::price_texts(&self.doc, self.layout()))
    }

    /// Identifier-like parts of the page's address, best first: the values
    /// of id-like query parameters, then the tokens of the path from its
    /// last segment back.
    fn address_ids(&self) -> Vec<String> {
        let Some(url) = self.address().and_then(|u| url::Url::parse(&u).ok()) else {
            return Vec::new();
        };
        let mut ids = Vec::new();
        for (k, v) in url.query_pairs() {
            let k = key(&k);
            if ID_PARAMETERS.contains(&k.as_str())
                && v.chars().any(|c| c.is_ascii_digit())
                && v.len() <= 40
            {
                ids.push(v.into_owned());
            }
        }
        let segments: Vec<String> = url
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        for segment in segments.iter().rev() {
            let stem = segment
                .rsplit_once('.')
                .filter(|(_, ext)| {
                    matches!(
                        ext.to_ascii_lowercase().as_str(),
                        "html" | "htm" | "php" | "aspx" | "asp" | "jsp"
                    )
                })
                .map_or(segment.as_str(), |(stem, _)| stem);
            ids.push(stem.to_string());
            let mut tokens: Vec<&str> = stem
                .split(['-', '_', ',', '.'])
                .filter(|t| !t.is_empty())
                .collect();
            tokens.reverse();
            ids.extend(tokens.into_iter().map(str::to_string));
        }
        ids
    }

    fn json_ld_candidates(
        &self,
        p: Option<&LdProduct<'_>>,
        field: &str,
        a: Attribute,
        out: &mut Vec<Raw>,
    ) {
        let Some(p) = p else {
            // No product: any node's key named like the field.
            if a == Attribute::Other {
                let k = key(field);
                if let Some(v) = self
                    .json_ld
                    .iter()
                    .find_map(|r| structured::find_key(r, &k))
                    .and_then(scalar)
                {
                    out.push(raw(v, Notation::Structured, format!("JSON-LD key {field}")));
                }
            }
            return;
        };
        let at = |path: &str| format!("JSON-LD {}.{path}", p.label);
        let from_product = |name: &str, out: &mut Vec<Raw>| {
            if let Some(v) = get(p.node, name).and_then(scalar) {
                out.push(raw(v, Notation::Structured, at(name)));
            }
        };
        let from_offer = |name: &str, out: &mut Vec<Raw>| {
            if let Some(v) = p.offer.and_then(|o| get(o, name)).and_then(scalar) {
                out.push(raw(v, Notation::Structured, at(&format!("offers.{name}"))));
            }
        };
        match a {
            Attribute::Title => from_product("name", out),
            Attribute::Price => {
                if let Some((v, path)) = p.offer.and_then(structured::offer_price) {
                    out.push(raw(v, Notation::Structured, at(&format!("offers.{path}"))));
                }
                if let Some((v, path)) = structured::offer_price(p.node) {
                    out.push(raw(v, Notation::Structured, at(path)));
                }
            }
            Attribute::Currency => {
                from_offer("priceCurrency", out);
                if let Some(v) = p
                    .offer
                    .and_then(|o| structured::walk(o, &["priceSpecification", "priceCurrency"]))
                    .and_then(scalar)
                {
                    out.push(raw(
                        v,
                        Notation::Structured,
                        at("offers.priceSpecification.priceCurrency"),
                    ));
                }
                from_product("priceCurrency", out);
            }
            Attribute::Availability | Attribute::InStock => {
                // A product with several offers (sizes, colours, sellers)
                // can be bought when any of them can.
                let offers = structured::all_offers(p.node);
                let states: Vec<(usize, &'static str)> = offers
                    .iter()
                    .enumerate()
                    .filter_map(|(i, o)| {
                        get(o, "availability")
                            .and_then(scalar)
                            .and_then(|v| availability(&v))
                            .map(|s| (i, s))
                    })
                    .collect();
                if let Some((i, s)) = states.iter().find(|(_, s)| buyable(s)) {
                    let of = if states.len() > 1 {
                        format!(" (offer {} of {})", i + 1, offers.len())
                    } else {
                        String::new()
                    };
                    out.push(raw(
                        *s,
                        Notation::Structured,
                        format!("{}{of}", at("offers.availability")),
                    ));
                }
                from_offer("availability", out);
                from_product("availability", out);
            }
            Attribute::Rating => {
                if let Some(v) =
                    structured::walk(p.node, &["aggregateRating", "ratingValue"]).and_then(scalar)
                {
                    out.push(raw(
                        v,
                        Notation::Structured,
                        at("aggregateRating.ratingValue"),
                    ));
                }
            }
            Attribute::Sku => {
                from_product("sku", out);
                from_offer("sku", out);
                from_product("productID", out);
            }
            Attribute::Mpn => {
                from_product("mpn", out);
                from_offer("mpn", out);
            }
            Attribute::Gtin => {
                for name in ["gtin13", "gtin12", "gtin14", "gtin8", "gtin", "isbn"] {
                    from_product(name, out);
                    from_offer(name, out);
                }
            }
            Attribute::Brand => {
                for name in ["brand", "manufacturer"] {
                    if let Some(v) = get(p.node, name).and_then(name_of) {
                        out.push(raw(v, Notation::Structured, at(name)));
                    }
                }
            }
            Attribute::Other => {
                let k = key(field);
                let found = structured::find_key(p.node, &k).or_else(|| {
                    self.json_ld
                        .iter()
                        .find_map(|r| structured::find_key(r, &k))
                });
                if let Some(v) = found.and_then(scalar) {
                    out.push(raw(v, Notation::Structured, format!("JSON-LD key {field}")));
                }
            }
        }
    }

    fn microdata_candidates(
        &self,
        scope: Option<ElementRef<'_>>,
        field: &str,
        a: Attribute,
        out: &mut Vec<Raw>,
    ) {
        let props: Vec<&str> = match a {
            Attribute::Title => vec!["name"],
            Attribute::Price => vec!["price", "lowPrice"],
            Attribute::Currency => vec!["priceCurrency"],
            Attribute::Availability | Attribute::InStock => vec!["availability"],
            Attribute::Rating => vec!["ratingValue"],
            Attribute::Sku => vec!["sku", "productID"],
            Attribute::Mpn => vec!["mpn"],
            Attribute::Gtin => vec!["gtin13", "gtin12", "gtin14", "gtin8", "gtin", "isbn"],
            Attribute::Brand => vec!["brand", "manufacturer"],
            Attribute::Other => vec![field],
        };
        let kind = if scope.is_some() {
            "microdata"
        } else {
            "microdata (no product scope)"
        };
        for prop in props {
            for e in structured::properties(&self.doc, scope, prop) {
                // A brand may be a nested item with a name of its own.
                let value = if e.value().attr("itemscope").is_some() {
                    structured::properties(&self.doc, Some(e), "name")
                        .first()
                        .and_then(|n| structured::property_value(*n))
                        .or_else(|| structured::property_value(e))
                } else {
                    structured::property_value(e)
                };
                let Some((v, from_attribute)) = value else {
                    continue;
                };
                let notation = if from_attribute {
                    Notation::Structured
                } else {
                    Notation::Display
                };
                out.push(raw(v, notation, format!("{kind} {prop}")));
            }
            if a == Attribute::Currency {
                // Currency symbols next to a microdata price.
                for e in structured::properties(&self.doc, scope, "price") {
                    let t = text_of(e);
                    if let Some((symbol, code)) = currency::find(&t, self.locale().as_deref()) {
                        out.push(raw(
                            code.unwrap_or(symbol),
                            Notation::Display,
                            format!("{kind} price text \"{t}\""),
                        ));
                    }
                }
            }
        }
    }

    fn meta_candidates(&self, field: &str, a: Attribute, out: &mut Vec<Raw>) {
        let names: Vec<String> = match a {
            Attribute::Title => vec!["og:title".into(), "twitter:title".into()],
            Attribute::Price => vec![
                "product:price:amount".into(),
                "og:price:amount".into(),
                "product:sale_price:amount".into(),
                "og:price".into(),
                "product:price".into(),
            ],
            Attribute::Currency => {
                vec!["product:price:currency".into(), "og:price:currency".into()]
            }
            Attribute::Availability | Attribute::InStock => {
                vec!["product:availability".into(), "og:availability".into()]
            }
            Attribute::Rating => vec![],
            Attribute::Sku => vec!["product:retailer_item_id".into(), "product:sku".into()],
            Attribute::Mpn => vec!["product:mfr_part_no".into()],
            Attribute::Gtin => vec![
                "product:ean".into(),
                "product:upc".into(),
                "product:isbn".into(),
                "product:gtin".into(),
            ],
            Attribute::Brand => vec!["product:brand".into(), "og:brand".into()],
            Attribute::Other => vec![format!("og:{field}"), format!("product:{field}")],
        };
        for name in names {
            if let Some(v) = self.meta(&name) {
                out.push(raw(v, Notation::Structured, format!("meta {name}")));
            }
        }
        // A shop's description often opens with the price ("29,99 € | …").
        if matches!(a, Attribute::Price | Attribute::Currency) {
            if let Some((name, money)) = self.description_money() {
                let v = match a {
                    Attribute::Currency => money.currency.or(money.symbol),
                    _ => Some(money.amount),
                };
                if let Some(v) = v {
                    out.push(raw(v, Notation::Display, format!("price in meta {name}")));
                }
            }
        }
    }

    /// A price written in the page's description meta tag, with its
    /// currency (a number alone is not taken for a price).
    fn description_money(&self) -> Option<(&'static str, price::Price)> {
        let locale = self.locale();
        ["og:description", "description", "twitter:description"]
            .into_iter()
            .find_map(|name| {
                let text = self.meta(name)?;
                let money = price::parse(&text, locale.as_deref())?;
                money.symbol.is_some().then_some((name, money))
            })
    }

    fn visible_candidates(&self, field: &str, a: Attribute, out: &mut Vec<Raw>) {
        let layout = self.layout();
        let locale = self.locale();
        match a {
            Attribute::Price => {
                for s in self
                    .price_texts()
                    .iter()
                    .cloned()
                    .chain(self.money_texts().iter().cloned())
                {
                    out.push(raw(s.value, Notation::Display, s.how));
                }
            }
            Attribute::Currency => {
                for s in self
                    .price_texts()
                    .iter()
                    .cloned()
                    .chain(self.money_texts().iter().cloned())
                {
                    if let Some((symbol, code)) = currency::find(&s.value, locale.as_deref()) {
                        out.push(raw(
                            code.unwrap_or(symbol),
                            Notation::Display,
                            format!("{} \"{}\"", s.how, s.value),
                        ));
                    }
                }
            }
            Attribute::Availability | Attribute::InStock => {
                for s in visible::stock_messages(&self.doc, layout) {
                    out.push(raw(s.value, Notation::Display, s.how));
                }
                if let Some((disabled, how)) = visible::add_to_cart(&self.doc, layout) {
                    let (v, how) = if disabled {
                        ("OutOfStock", format!("disabled {how}"))
                    } else {
                        ("InStock", how)
                    };
                    out.push(raw(v, Notation::Display, how));
                }
            }
            Attribute::Sku => {
                if let Some(s) =
                    sel("[data-sku], input[name=sku], input[name=ASIN], input[name=asin]")
                {
                    for e in self.doc.select(&s) {
                        let v = e.value();
                        if let Some(value) = v.attr("data-sku").or(v.attr("value")) {
                            out.push(raw(
                                value,
                                Notation::Display,
                                format!("{} attribute", v.name()),
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
        let mut labels: Vec<String> = a.labels().iter().map(|l| key(l)).collect();
        if a == Attribute::Other || labels.is_empty() {
            labels.push(key(field));
        }
        let accept: &dyn Fn(&str) -> bool = match a {
            Attribute::Sku | Attribute::Mpn => &|v: &str| looks_like_code(v),
            Attribute::Gtin => &|v: &str| gtin(v).is_some(),
            _ => &|_: &str| true,
        };
        for s in visible::labelled(layout, &labels, accept) {
            let notation = Notation::Display;
            out.push(raw(s.value, notation, s.how));
        }
        if a == Attribute::Title {
            for tag in ["h1", "h2", "title"] {
                if let Some(t) = sel(tag)
                    .and_then(|s| self.doc.select(&s).next())
                    .map(text_of)
                    .filter(|t| !t.is_empty())
                {
                    out.push(raw(t, Notation::Display, format!("<{tag}>")));
                }
            }
        }
    }
}

/// Query parameters that name a product (compared after [`key`]).
const ID_PARAMETERS: &[&str] = &[
    "sku",
    "pid",
    "productid",
    "itemid",
    "id",
    "prodid",
    "articleid",
    "article",
    "productcode",
    "itemcode",
    "code",
];

/// An identifier as people write one: one token, a digit or an upper-case
/// letter in it, not too long.
fn looks_like_code(v: &str) -> bool {
    let v = v.trim();
    let n = v.chars().count();
    (2..=48).contains(&n)
        && !v.contains(char::is_whitespace)
        && v.chars().any(|c| c.is_ascii_digit() || c.is_uppercase())
}

/// An address part that is an identifier on its own: five or more
/// digits, or eight to fourteen capitals and digits with two digits or
/// more (`B07FW264WL`, `M14876706`).
fn looks_like_address_id(v: &str) -> bool {
    let digits = v.chars().filter(char::is_ascii_digit).count();
    let all_digits = digits == v.len();
    let caps_and_digits = v
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    (all_digits && (5..=20).contains(&digits))
        || (caps_and_digits && (8..=14).contains(&v.len()) && digits >= 2 && digits < v.len())
}

/// An identifier without its separators, lower case, for comparing
/// `002.937.72` with `00293772`.
fn squash_id(v: &str) -> String {
    v.chars()
        .filter(char::is_ascii_alphanumeric)
        .flat_map(|c| c.to_lowercase())
        .collect()
}

/// `p4781720` → `4781720`: an address token's letter prefix dropped.
fn strip_letter_prefix(v: &str) -> String {
    let t = v.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    if t.len() >= 5 && t.chars().all(|c| c.is_ascii_digit()) {
        t.to_string()
    } else {
        String::new()
    }
}

/// Whether `amount` (canonical) is one of `seen` as a number.
fn same_amount(amount: &str, seen: &[String]) -> bool {
    let Ok(a) = amount.parse::<f64>() else {
        return false;
    };
    seen.iter()
        .filter_map(|s| s.parse::<f64>().ok())
        .any(|b| (a - b).abs() < 1e-9)
}

/// Whether an availability lets a buyer order now or soon.
fn buyable(state: &str) -> bool {
    !matches!(state, "OutOfStock" | "SoldOut" | "Discontinued")
}

/// A GTIN (EAN/UPC/ISBN): 8, 12, 13 or 14 digits once spaces and dashes
/// are dropped.
fn gtin(v: &str) -> Option<String> {
    let v = v.trim();
    let v = v
        .strip_prefix("isbn:")
        .or_else(|| v.strip_prefix("ISBN:"))
        .unwrap_or(v);
    if v.chars()
        .any(|c| !(c.is_ascii_digit() || matches!(c, ' ' | '-')))
    {
        return None;
    }
    let digits: String = v.chars().filter(char::is_ascii_digit).collect();
    matches!(digits.len(), 8 | 12 | 13 | 14).then_some(digits)
}

fn describe(a: Attribute) -> &'static str {
    match a {
        Attribute::Price => "price",
        Attribute::Currency => "currency",
        Attribute::Availability | Attribute::InStock => "stock state",
        Attribute::Sku | Attribute::Mpn => "code",
        Attribute::Gtin => "GTIN",
        _ => "value",
    }
}

fn decode_entities(s: &str) -> String {
    let frag = Html::parse_fragment(s);
    frag.root_element().text().collect()
}

/// The availability a stock value means: a schema.org member in any of
/// its forms, or a stock message.
fn availability(v: &str) -> Option<&'static str> {
    schema_org::member(v, schema_org::AVAILABILITY).or_else(|| {
        let lower = v.to_lowercase();
        match lower.as_str() {
            "yes" | "true" | "1" | "in" | "instock" => Some("InStock"),
            "no" | "false" | "0" | "oos" | "out" => Some("OutOfStock"),
            _ => visible::classify_stock(v),
        }
    })
}

/// Shapes a candidate for its field: prices and numbers as canonical
/// decimals, currencies as ISO codes (or the symbol when the locale can't
/// say which), availability as schema.org short names (or yes/no),
/// identifiers checked. `None` rejects the candidate.
fn finish(a: Attribute, field_type: ValueType, c: &Raw, locale: Option<&str>) -> Option<String> {
    let v = normalize(&c.value);
    if v.is_empty() {
        return None;
    }
    match a {
        Attribute::Availability => return availability(&v).map(str::to_string),
        Attribute::InStock => {
            return availability(&v).map(|s| {
                let no = ["OutOfStock", "SoldOut", "Discontinued"].contains(&s);
                if no { "no" } else { "yes" }.to_string()
            })
        }
        Attribute::Price => return price::amount(&v, c.notation),
        Attribute::Currency => {
            return currency::code(&v, locale).or_else(|| {
                let (symbol, code) = currency::find(&v, locale)?;
                Some(code.unwrap_or(symbol))
            })
        }
        Attribute::Sku | Attribute::Mpn => {
            let v = v
                .strip_prefix("sku:")
                .or_else(|| v.strip_prefix("SKU:"))
                .map(str::trim)
                .unwrap_or(&v)
                .trim_matches(|c: char| !c.is_alphanumeric());
            return looks_like_code(v).then(|| v.to_string());
        }
        Attribute::Gtin => return gtin(&v),
        Attribute::Brand => return (v.chars().count() <= 80).then_some(v),
        _ => {}
    }
    if field_type == ValueType::Number {
        return price::amount(&v, c.notation);
    }
    Some(v)
}

/// Every field's value (null when its rule finds nothing), with why: the
/// source that won and the candidates that lost.
pub struct Extracted {
    pub values: Map<String, Value>,
    /// Per field: `{source, passed_over: [{value, source}]}`.
    pub sources: Map<String, Value>,
    /// One log line per field.
    pub lines: Vec<(&'static str, String)>,
}

/// The rules extractor: reads every field of `fields` from the page by its
/// rule. Every source (fetched, rendered or stored page) ends here.
pub fn extract_all(html: &str, url: &str, fields: &[OutputField]) -> Extracted {
    let page = Page::parse_at(html, Some(url));
    let mut out = Extracted {
        values: Map::new(),
        sources: Map::new(),
        lines: Vec::new(),
    };
    for f in fields {
        let e = page.explain(f);
        let lost = e
            .passed_over
            .iter()
            .map(|c| format!("{:?} from {}", c.value, c.source))
            .collect::<Vec<_>>()
            .join("; ");
        let line = match (&e.value, &e.source) {
            (Some(v), Some(source)) if lost.is_empty() => {
                ("info", format!("{}: {v:?} from {source}", f.name))
            }
            (Some(v), Some(source)) => (
                "info",
                format!("{}: {v:?} from {source}; passed over {lost}", f.name),
            ),
            _ if lost.is_empty() => ("warn", format!("{}: no value found", f.name)),
            _ => (
                "warn",
                format!("{}: no value found; rejected {lost}", f.name),
            ),
        };
        out.lines.push(line);
        out.sources.insert(
            f.name.clone(),
            json!({
                "source": e.source,
                "passed_over": e.passed_over.iter()
                    .map(|c| json!({"value": c.value, "source": c.source}))
                    .collect::<Vec<_>>(),
            }),
        );
        out.values.insert(
            f.name.clone(),
            e.value.map(Value::String).unwrap_or(Value::Null),
        );
    }
    out
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
            description: String::new(),
            empty_means: Default::default(),
            multi_value_separator: None,
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

    fn explain(page: &Page, name: &str, t: ValueType) -> Extraction {
        page.explain(&field(name, t, ExtractionRule::Auto))
    }

    #[test]
    fn the_main_product_and_its_current_offer_win() {
        let html = r#"<html><head>
            <link rel="canonical" href="https://shop.example.de/p/lamp-4711">
            <script type="application/ld+json">{"@context":"https://schema.org","@graph":[
              {"@type":"Product","name":"Other lamp","url":"https://shop.example.de/p/other-9","sku":"OTHER-9",
               "offers":{"@type":"Offer","price":"9.99","priceCurrency":"EUR"}},
              {"@type":"Product","name":"Oak lamp","url":"https://shop.example.de/p/lamp-4711","sku":"4711",
               "brand":{"@type":"Brand","name":"Lumen"},"gtin13":"4006381333931",
               "offers":[{"@type":"Offer","availability":"http://schema.org/OutOfStock","priceCurrency":"EUR",
                          "priceSpecification":[{"priceType":"https://schema.org/StrikethroughPrice","price":"39,99"},
                                                {"price":"24,99","priceCurrency":"EUR"}]},
                         {"@type":"Offer","availability":"https://schema.org/InStock","price":"24.99"}]}]}
            </script></head><body><h1>Oak lamp</h1></body></html>"#;
        let page = Page::parse(html);
        let price = explain(&page, "price", ValueType::Number);
        assert_eq!(price.value.as_deref(), Some("24.99"), "{price:?}");
        assert!(price.source.unwrap().contains("priceSpecification"));
        assert_eq!(
            auto(&page, "currency", ValueType::Text).as_deref(),
            Some("EUR")
        );
        assert_eq!(auto(&page, "sku", ValueType::Text).as_deref(), Some("4711"));
        assert_eq!(
            auto(&page, "brand", ValueType::Text).as_deref(),
            Some("Lumen")
        );
        assert_eq!(
            auto(&page, "gtin", ValueType::Text).as_deref(),
            Some("4006381333931")
        );
        // One offer (a size) is sold out, another is not: it can be bought.
        let stock = explain(&page, "availability", ValueType::Text);
        assert_eq!(stock.value.as_deref(), Some("InStock"), "{stock:?}");
        assert!(stock.source.unwrap().contains("offer 2 of 2"));
        assert_eq!(
            auto(&page, "in_stock", ValueType::Text).as_deref(),
            Some("yes")
        );
    }

    #[test]
    fn microdata_of_the_main_product_not_of_related_ones() {
        let html = r#"<html lang="fr-FR"><body>
          <div itemscope itemtype="https://schema.org/Product">
            <h1 itemprop="name">Montre</h1>
            <span itemprop="sku">MW-100</span>
            <div itemprop="offers" itemscope itemtype="https://schema.org/Offer">
              <span itemprop="price">1 299,00 €</span>
              <link itemprop="availability" href="http://schema.org/PreOrder">
            </div>
            <div itemprop="isRelatedTo" itemscope itemtype="https://schema.org/Product">
              <span itemprop="sku">OTHER</span><span itemprop="price">5,00 €</span>
            </div>
          </div></body></html>"#;
        let page = Page::parse(html);
        assert_eq!(
            auto(&page, "price", ValueType::Number).as_deref(),
            Some("1299.00")
        );
        assert_eq!(
            auto(&page, "currency", ValueType::Text).as_deref(),
            Some("EUR")
        );
        assert_eq!(
            auto(&page, "sku", ValueType::Text).as_deref(),
            Some("MW-100")
        );
        assert_eq!(
            auto(&page, "availability", ValueType::Text).as_deref(),
            Some("PreOrder")
        );
    }

    #[test]
    fn visible_text_when_there_is_no_structured_data() {
        let html = r#"<html lang="de-DE"><body>
          <header><span class="price">1,00 €</span></header>
          <h1>Hochdruckreiniger K3</h1>
          <div class="product-price"><del class="price-old">149,99 €</del> <span class="price">119,01 €</span></div>
          <table><tr><th>Art.-Nr.</th><td>2800395267</td></tr><tr><th>Marke</th><td>Kärcher</td></tr></table>
          <button class="btn" type="submit">In den Warenkorb</button>
          <div class="related-products"><span class="price">9,99 €</span></div>
        </body></html>"#;
        let page = Page::parse_at(html, Some("https://shop.example.de/p/k3"));
        let price = explain(&page, "price", ValueType::Number);
        assert_eq!(price.value.as_deref(), Some("119.01"), "{price:?}");
        assert_eq!(
            auto(&page, "currency", ValueType::Text).as_deref(),
            Some("EUR")
        );
        let sku = explain(&page, "sku", ValueType::Text);
        assert_eq!(sku.value.as_deref(), Some("2800395267"));
        assert_eq!(sku.source.as_deref(), Some("label \"Art.-Nr.\""));
        assert_eq!(
            auto(&page, "brand", ValueType::Text).as_deref(),
            Some("Kärcher")
        );
        let stock = explain(&page, "availability", ValueType::Text);
        assert_eq!(stock.value.as_deref(), Some("InStock"));
        assert!(stock.source.unwrap().starts_with("add-to-cart"));
    }

    #[test]
    fn a_disabled_cart_button_or_a_stock_message_says_out_of_stock() {
        let html = r#"<html><body><h1>Sofa</h1><span class="price">£515</span>
          <p class="stock-status">Currently unavailable</p>
          <button disabled>Add to basket</button></body></html>"#;
        let page = Page::parse(html);
        assert_eq!(
            auto(&page, "availability", ValueType::Text).as_deref(),
            Some("OutOfStock")
        );
        assert_eq!(
            auto(&page, "in_stock", ValueType::Text).as_deref(),
            Some("no")
        );
        let html = r#"<html><body><h1>Sofa</h1><span class="price">£515</span></body></html>"#;
        let page = Page::parse(html);
        let stock = explain(&page, "availability", ValueType::Text);
        assert_eq!(stock.value.as_deref(), Some("InStock"));
        assert_eq!(
            stock.source.as_deref(),
            Some("offered for a price, with no stock message")
        );
    }

    #[test]
    fn the_address_names_the_product() {
        let html = r#"<html><head><script type="application/ld+json">
            {"@type":"Product","sku":"238368885","productID":"4781720","offers":{"price":"49.00"}}
            </script></head><body><h1>Speaker</h1></body></html>"#;
        let page = Page::parse_at(html, Some("https://shop.example.com/speaker/p4781720"));
        let sku = explain(&page, "sku", ValueType::Text);
        assert_eq!(sku.value.as_deref(), Some("4781720"), "{sku:?}");
        assert!(sku.source.unwrap().ends_with("also in the page's address"));
        assert_eq!(sku.passed_over[0].value, "238368885");
        let bare = Page::parse_at(
            "<html><body><h1>Ad</h1><p>A washing machine.</p></body></html>",
            Some("https://city.example.org/app/d/washer/7235216655.html"),
        );
        assert_eq!(
            auto(&bare, "sku", ValueType::Text).as_deref(),
            Some("7235216655")
        );
    }

    #[test]
    fn dollars_are_read_by_the_pages_locale() {
        let html = r#"<html lang="en-CA"><body><h1>Doorbell</h1><span class="price">$229.99</span></body></html>"#;
        let page = Page::parse(html);
        assert_eq!(
            auto(&page, "price", ValueType::Number).as_deref(),
            Some("229.99")
        );
        assert_eq!(
            auto(&page, "currency", ValueType::Text).as_deref(),
            Some("CAD")
        );
        let html = r#"<html lang="en"><body><h1>Doorbell</h1><span class="price">$229.99</span></body></html>"#;
        let page = Page::parse(html);
        assert_eq!(
            auto(&page, "currency", ValueType::Text).as_deref(),
            Some("$"),
            "without a region the symbol stays as written"
        );
    }

    /// A news page: the story between a menu, a sidebar of links, reader
    /// comments and a footer.
    const ARTICLE: &str = r#"<html><head><title>Harbour bridge reopens | Daily Tide</title></head><body>
        <header><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a> <a href="/weather">Weather</a></nav></header>
        <aside class="sidebar"><h3>Most read</h3><ul><li><a href="/a">Ten things to do this weekend</a></li><li><a href="/b">Local team wins the cup</a></li></ul></aside>
        <article><h1>Harbour bridge reopens after two years of repairs</h1>
        <p>The harbour bridge reopened to traffic on Monday morning, two years after engineers closed it when cracks were found in two of its steel cables.</p>
        <p>The repairs replaced all twelve cables and resurfaced the deck, and cost the city forty million euros, slightly less than the budget approved in the spring of last year.</p>
        <p>Commuters who had taken the ferry or driven around the bay said the reopening would save them close to an hour every day, and the first buses crossed at six o'clock.</p>
        </article>
        <section class="comments"><h3>Comments</h3><p>Finally!</p></section>
        <footer><p>Copyright Daily Tide. All rights reserved.</p><a href="/privacy">Privacy</a></footer>
        </body></html>"#;

    #[test]
    fn the_article_rule_reads_the_main_text_only() {
        let page = Page::parse_at(ARTICLE, Some("https://tide.example/bridge"));
        let body = page
            .extract(&field("body", ValueType::Text, ExtractionRule::Article))
            .expect("a main text");
        // The story with its headline (reader view drops a heading only
        // when it repeats the page's title).
        assert!(
            body.starts_with(
                "Harbour bridge reopens after two years of repairs The harbour bridge"
            ),
            "{body}"
        );
        assert!(
            body.ends_with("the first buses crossed at six o'clock."),
            "{body}"
        );
        assert!(body.contains("forty million euros"), "{body}");
        for boilerplate in ["Most read", "Sport", "Finally!", "Copyright", "Privacy"] {
            assert!(!body.contains(boilerplate), "{boilerplate:?} in {body}");
        }
        assert!(
            !body.contains('\n'),
            "whitespace is collapsed like every rule's value"
        );
        let explained = page.explain(&field("body", ValueType::Text, ExtractionRule::Article));
        assert_eq!(explained.source.as_deref(), Some("main text (reader view)"));
    }

    #[test]
    fn the_article_rule_finds_nothing_on_an_empty_page() {
        let page = Page::parse("<html><body></body></html>");
        assert_eq!(
            page.extract(&field("body", ValueType::Text, ExtractionRule::Article)),
            None
        );
    }
}
