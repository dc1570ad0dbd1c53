//! What a person sees on the page, for when structured data is missing:
//! labelled values ("SKU: 123", `<th>Art.-Nr.</th><td>123</td>`, in the
//! common languages), price elements, stock messages and the add-to-cart
//! button. The main product's block is preferred over sidebars and
//! carousels: candidates after the page's main heading come first, nearest
//! first, and headers, footers and "related products" blocks are skipped.

use std::collections::HashMap;

use ego_tree::NodeId;
use scraper::{ElementRef, Html, Node};

use super::{key, normalize, sel};

/// Elements whose text is never shown as page content.
const HIDDEN: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "head", "iframe", "select", "option",
];

/// One run of visible text, in document order.
pub struct Run {
    pub text: String,
    /// Preorder position of the text node.
    pub order: usize,
}

/// The page's visible text and its main heading, built once per page.
pub struct Layout {
    pub runs: Vec<Run>,
    /// Preorder position of every element.
    order: HashMap<NodeId, usize>,
    /// Position and text of the first non-empty `h1`.
    pub heading: Option<(usize, String)>,
}

impl Layout {
    pub fn of(doc: &Html) -> Layout {
        let mut runs = Vec::new();
        let mut order = HashMap::new();
        let mut heading = None;
        let mut stack = vec![doc.tree.root()];
        let mut n = 0usize;
        while let Some(node) = stack.pop() {
            n += 1;
            match node.value() {
                Node::Element(e) => {
                    if HIDDEN.contains(&e.name()) {
                        continue;
                    }
                    order.insert(node.id(), n);
                    if heading.is_none() && e.name() == "h1" {
                        if let Some(el) = ElementRef::wrap(node) {
                            let t = super::text_of(el);
                            if !t.is_empty() {
                                heading = Some((n, t));
                            }
                        }
                    }
                }
                Node::Text(t) => {
                    let text = normalize(t);
                    if !text.is_empty() {
                        runs.push(Run { text, order: n });
                    }
                }
                _ => {}
            }
            // Children in reverse so that the first is visited first.
            let children: Vec<_> = node.children().collect();
            stack.extend(children.into_iter().rev());
        }
        Layout {
            runs,
            order,
            heading,
        }
    }

    /// Sort key: after the heading, nearest first; then before it.
    fn nearness(&self, order: usize) -> (u8, usize) {
        match self.heading {
            Some((h, _)) if order >= h => (0, order - h),
            Some((h, _)) => (1, h - order),
            None => (0, order),
        }
    }

    fn order_of(&self, e: ElementRef<'_>) -> Option<usize> {
        self.order.get(&e.id()).copied()
    }
}

/// A value found in visible text and what found it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub value: String,
    pub how: String,
}

fn strip_colon(s: &str) -> &str {
    s.trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, ':' | '：' | '-' | '–' | '\u{200e}' | '\u{200f}' | '#')
    })
}

/// Values labelled with one of `labels` (already reduced with [`key`]):
/// "Label: value" in one text, or a label text followed by the value's
/// text (table cells, definition lists, label/value spans). Nearest to the
/// main heading first.
pub fn labelled(layout: &Layout, labels: &[String], accept: &dyn Fn(&str) -> bool) -> Vec<Seen> {
    let mut found: Vec<(usize, Seen)> = Vec::new();
    // A label may carry the shop's name before it ("eBay item number").
    let is_label = |t: &str| {
        let k = key(t);
        !k.is_empty()
            && (labels.contains(&k)
                || labels.iter().any(|l| {
                    l.chars().count() >= 6
                        && k.ends_with(l.as_str())
                        && k.chars().count() - l.chars().count() <= 8
                }))
    };
    for (i, run) in layout.runs.iter().enumerate() {
        if run.text.chars().count() > 60 && !run.text.contains(':') {
            continue;
        }
        let mut push = |value: &str, label: &str| {
            let value = strip_colon(value);
            if !value.is_empty() && value.chars().count() <= 80 && accept(value) && !is_label(value)
            {
                found.push((
                    run.order,
                    Seen {
                        value: value.to_string(),
                        how: format!("label \"{}\"", strip_colon(label)),
                    },
                ));
            }
        };
        if let Some((label, value)) = run.text.split_once([':', '：']) {
            if label.chars().count() <= 40 && is_label(label) {
                if !strip_colon(value).is_empty() {
                    push(value, label);
                    continue;
                }
            } else {
                continue;
            }
        } else if run.text.chars().count() > 40 || !is_label(&run.text) {
            continue;
        }
        // The label stands alone: the value is the next text with letters
        // or digits in it.
        if let Some(next) = layout.runs[i + 1..]
            .iter()
            .take(3)
            .find(|r| !key(&r.text).is_empty())
        {
            push(&next.text, &run.text);
        }
    }
    found.sort_by_key(|(order, _)| layout.nearness(*order));
    found.into_iter().map(|(_, s)| s).collect()
}

fn class_and_id(e: ElementRef<'_>) -> String {
    let v = e.value();
    format!(
        "{} {}",
        v.attr("class").unwrap_or(""),
        v.attr("id").unwrap_or("")
    )
    .to_lowercase()
}

/// Words in class names and ids of prices that are not what the buyer
/// pays now: crossed-out, "was", list and unit prices, instalments.
const NOT_CURRENT: &[&str] = &[
    "old",
    "was",
    "strike",
    "regular",
    "list",
    "before",
    "original",
    "compare",
    "crossed",
    "save",
    "saving",
    "discount",
    "instal",
    "month",
    "unit",
    "shipping",
    "delivery",
    "rrp",
    "uvp",
    "msrp",
    "excl",
    "prev",
    "lowest",
    "base",
    "label",
    "subscri",
    "hidden",
    "full-price",
    "fullprice",
    "barred",
];

/// Whether an element is hidden by its own markup (`hidden`, an inline
/// `display: none`, a class saying so).
fn hidden(e: ElementRef<'_>) -> bool {
    let v = e.value();
    v.attr("hidden").is_some()
        || v.attr("aria-hidden") == Some("true") && v.name() != "span"
        || v.attr("style").is_some_and(|s| {
            let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            s.to_ascii_lowercase().contains("display:none")
        })
        || v.attr("class").is_some_and(|c| {
            c.split_whitespace().any(|w| {
                let w = w.to_ascii_lowercase();
                w == "hide" || w == "d-none" || w.ends_with("-hidden") || w == "hidden"
            })
        })
}

/// Class names and ids of blocks about other products.
const OTHER_PRODUCTS: &[&str] = &[
    "related",
    "recommend",
    "similar",
    "carousel",
    "slider",
    "upsell",
    "up-sell",
    "crosssell",
    "cross-sell",
    "recent",
    "also",
    "sponsor",
    "bundle",
    "accessor",
    "suggest",
    "minicart",
    "mini-cart",
];

const PRICE_WORDS: &[&str] = &[
    "price", "preis", "prix", "precio", "prezzo", "preco", "preço", "cena", "cijena", "hinta",
    "fiyat", "pris", "prijs", "amount",
];

fn outside_main_content(e: ElementRef<'_>) -> bool {
    e.ancestors().filter_map(ElementRef::wrap).any(|a| {
        matches!(a.value().name(), "header" | "nav" | "footer" | "aside")
            || class_and_id(a)
                .split_whitespace()
                // "no-slider" says the block is not a carousel.
                .filter(|t| !t.starts_with("no-") && !t.starts_with("no_"))
                .any(|t| OTHER_PRODUCTS.iter().any(|w| t.contains(w)))
    })
}

fn not_current(e: ElementRef<'_>) -> bool {
    std::iter::once(e)
        .chain(e.ancestors().filter_map(ElementRef::wrap))
        .take(4)
        .any(|a| {
            matches!(a.value().name(), "del" | "s" | "strike") || hidden(a) || {
                let c = class_and_id(a);
                NOT_CURRENT.iter().any(|w| c.contains(w))
            }
        })
}

/// An element's text without the parts that are not the current price
/// (crossed-out or "was" prices inside a price block).
fn current_text(e: ElementRef<'_>) -> String {
    let mut out = String::new();
    let mut stack = vec![*e];
    while let Some(node) = stack.pop() {
        match node.value() {
            Node::Text(t) => {
                out.push_str(t);
                out.push(' ');
            }
            Node::Element(el) => {
                if node.id() != e.id() {
                    if HIDDEN.contains(&el.name()) {
                        continue;
                    }
                    if let Some(child) = ElementRef::wrap(node) {
                        if matches!(el.name(), "del" | "s" | "strike") || hidden(child) || {
                            let c = class_and_id(child);
                            NOT_CURRENT.iter().any(|w| c.contains(w))
                        } {
                            continue;
                        }
                    }
                }
                let children: Vec<_> = node.children().collect();
                stack.extend(children.into_iter().rev());
            }
            _ => {}
        }
    }
    normalize(&out)
}

/// Whether a price sits in a product card: a small block whose heading
/// links to another page (grids of related or recommended products).
fn in_product_card(e: ElementRef<'_>) -> bool {
    let Some(card_heading) = sel("h2 a[href], h3 a[href], h4 a[href], h5 a[href], a[href] h2, a[href] h3, a[href] h4, a[href] h5") else {
        return false;
    };
    e.ancestors()
        .filter_map(ElementRef::wrap)
        .take(4)
        .any(|a| a.select(&card_heading).next().is_some())
}

/// Texts of price elements (class or id naming a price) in the main
/// content. An id is the page's own (a class is shared by every product
/// card on it), so elements named by an id come first; then nearest the
/// heading first.
pub fn price_texts(doc: &Html, layout: &Layout) -> Vec<Seen> {
    let Some(all) = sel("[class], [id]") else {
        return Vec::new();
    };
    // (named by an id: 0, else 1; nearness to the heading), the text.
    type Ranked = ((u8, (u8, usize)), Seen);
    let mut found: Vec<Ranked> = Vec::new();
    for e in doc.select(&all) {
        let c = class_and_id(e);
        if !PRICE_WORDS.iter().any(|w| c.contains(w)) {
            continue;
        }
        let Some(order) = layout.order_of(e) else {
            continue;
        };
        if not_current(e) || outside_main_content(e) || in_product_card(e) {
            continue;
        }
        let text = current_text(e);
        if text.is_empty() || text.chars().count() > 80 || !text.chars().any(|c| c.is_ascii_digit())
        {
            continue;
        }
        let tag = e.value().name();
        let id = e.value().attr("id").filter(|i| {
            let lower = i.to_lowercase();
            PRICE_WORDS.iter().any(|p| lower.contains(p))
                && !i.ends_with(|c: char| c.is_ascii_digit())
        });
        let how = match id {
            Some(i) => format!("{tag}#{i}"),
            None => e
                .value()
                .attr("class")
                .and_then(|c| {
                    c.split_whitespace()
                        .find(|w| PRICE_WORDS.iter().any(|p| w.to_lowercase().contains(p)))
                })
                .map(|c| format!("{tag}.{c}"))
                .unwrap_or_else(|| tag.to_string()),
        };
        let bucket = if id.is_some() { 0 } else { 1 };
        found.push((
            (bucket, layout.nearness(order)),
            Seen {
                value: text,
                how: format!("price element {how}"),
            },
        ));
    }
    found.sort_by_key(|(rank, _)| *rank);
    found.into_iter().map(|(_, s)| s).collect()
}

/// Short texts after the heading that hold a currency and a number
/// ("24,99 €"), nearest first.
pub fn money_texts(layout: &Layout, locale: Option<&str>) -> Vec<Seen> {
    let Some((h, _)) = layout.heading else {
        return Vec::new();
    };
    layout
        .runs
        .iter()
        .filter(|r| r.order > h)
        .take(400)
        .filter(|r| r.text.chars().count() <= 30 && r.text.chars().any(|c| c.is_ascii_digit()))
        .filter(|r| crate::server::values::currency::find(&r.text, locale).is_some())
        .map(|r| Seen {
            value: r.text.clone(),
            how: "money text after the heading".into(),
        })
        .collect()
}

/// Stock phrases in the common languages: out of stock first (so that
/// "not available" never reads as "available"), then pre-order, then in
/// stock.
const OUT_OF_STOCK: &[&str] = &[
    "out of stock",
    "out-of-stock",
    "outofstock",
    "sold out",
    "soldout",
    "currently unavailable",
    "unavailable",
    "not available",
    "no longer available",
    "discontinued",
    "ausverkauft",
    "nicht verfügbar",
    "nicht lieferbar",
    "nicht auf lager",
    "derzeit nicht",
    "épuisé",
    "rupture de stock",
    "indisponible",
    "agotado",
    "sin stock",
    "no disponible",
    "esaurito",
    "non disponibile",
    "esgotado",
    "indisponível",
    "нет в наличии",
    "отсутствует",
    "brak w magazynie",
    "niedostępny",
    "wyprzedany",
    "uitverkocht",
    "niet op voorraad",
    "slutsåld",
    "udsolgt",
    "utsolgt",
    "loppuunmyyty",
    "品切れ",
    "缺貨",
    "售完",
    "품절",
    "tükendi",
    "stokta yok",
    "nu este în stoc",
    "stoc epuizat",
    "nedostupné",
    "není skladem",
    "nincs raktáron",
    "ni na zalogi",
    "rasprodano",
    "nema na stanju",
];

const PRE_ORDER: &[&str] = &[
    "pre-order",
    "preorder",
    "vorbestell",
    "précommande",
    "preventa",
];

const IN_STOCK: &[&str] = &[
    "in stock",
    "instock",
    "available",
    "auf lager",
    "lieferbar",
    "verfügbar",
    "en stock",
    "disponible",
    "en existencia",
    "disponibile",
    "in magazzino",
    "em estoque",
    "disponível",
    "в наличии",
    "w magazynie",
    "dostępny",
    "op voorraad",
    "leverbaar",
    "på lager",
    "i lager",
    "varastossa",
    "在庫あり",
    "有現貨",
    "現貨",
    "재고 있음",
    "stokta",
    "în stoc",
    "skladem",
    "na zalogi",
    "raktáron",
    "na stanju",
    "na sklade",
];

/// The schema.org availability a stock message means.
pub fn classify_stock(text: &str) -> Option<&'static str> {
    let t = text.to_lowercase();
    if OUT_OF_STOCK.iter().any(|p| t.contains(p)) {
        return Some("OutOfStock");
    }
    if PRE_ORDER.iter().any(|p| t.contains(p)) {
        return Some("PreOrder");
    }
    if IN_STOCK.iter().any(|p| t.contains(p)) {
        return Some("InStock");
    }
    None
}

const STOCK_WORDS: &[&str] = &[
    "availab",
    "stock",
    "lager",
    "dispon",
    "verfueg",
    "verfüg",
    "nalich",
    "inventory",
];

/// Stock messages in elements named for availability, nearest the
/// heading first.
pub fn stock_messages(doc: &Html, layout: &Layout) -> Vec<Seen> {
    let Some(all) = sel("[class], [id]") else {
        return Vec::new();
    };
    let mut found: Vec<(usize, Seen)> = Vec::new();
    for e in doc.select(&all) {
        let c = class_and_id(e);
        if !STOCK_WORDS.iter().any(|w| c.contains(w))
            || ["stockist", "image", "img", "photo", "video", "media"]
                .iter()
                .any(|w| c.contains(w))
        {
            continue;
        }
        let Some(order) = layout.order_of(e) else {
            continue;
        };
        if outside_main_content(e) {
            continue;
        }
        let text = super::text_of(e);
        if text.is_empty() || text.chars().count() > 80 {
            continue;
        }
        if let Some(state) = classify_stock(&text) {
            found.push((
                order,
                Seen {
                    value: state.to_string(),
                    how: format!(
                        "stock message \"{}\"",
                        text.chars().take(60).collect::<String>()
                    ),
                },
            ));
        }
    }
    found.sort_by_key(|(order, _)| layout.nearness(*order));
    found.into_iter().map(|(_, s)| s).collect()
}

/// Add-to-cart wording in the common languages, and in class names.
const ADD_TO_CART: &[&str] = &[
    "add to cart",
    "add to bag",
    "add to basket",
    "add to trolley",
    "addtocart",
    "add-to-cart",
    "add_to_cart",
    "addtobag",
    "add-to-bag",
    "addtobasket",
    "add-to-basket",
    "buy now",
    "buy-now",
    "buynow",
    "in den warenkorb",
    "in den einkaufswagen",
    "ajouter au panier",
    "añadir al carrito",
    "agregar al carrito",
    "añadir a la cesta",
    "aggiungi al carrello",
    "adicionar ao carrinho",
    "в корзину",
    "do koszyka",
    "in winkelwagen",
    "lägg i varukorgen",
    "læg i kurv",
    "legg i handlekurven",
    "lisää ostoskoriin",
    "sepete ekle",
    "加入購物車",
    "加入购物车",
    "カートに入れる",
    "장바구니",
    "do košíku",
    "do košíka",
    "kosárba",
    "u košaricu",
    "v košarico",
    "în coș",
    "в кошик",
    "הוסף לסל",
    "أضف إلى",
];

/// The page's add-to-cart control, if it has one, and whether it is
/// disabled (a shop's way of saying "not now").
pub fn add_to_cart(doc: &Html, layout: &Layout) -> Option<(bool, String)> {
    let s = sel("button, input, a, [role=button]")?;
    let mut found: Vec<(usize, bool, String)> = Vec::new();
    for e in doc.select(&s) {
        let v = e.value();
        if v.name() == "input" && !matches!(v.attr("type"), Some("submit" | "button" | "image")) {
            continue;
        }
        let own = [
            v.attr("value"),
            v.attr("aria-label"),
            v.attr("title"),
            v.attr("name"),
            v.attr("class"),
            v.attr("id"),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
        let mut phrase = ADD_TO_CART.iter().find(|p| own.contains(*p));
        if phrase.is_none() && matches!(v.name(), "button" | "a") {
            let text = super::text_of(e).to_lowercase();
            if text.chars().count() <= 60 {
                phrase = ADD_TO_CART.iter().find(|p| text.contains(*p));
            }
        }
        let Some(phrase) = phrase else {
            continue;
        };
        let Some(order) = layout.order_of(e) else {
            continue;
        };
        if outside_main_content(e) {
            continue;
        }
        let disabled = v.attr("disabled").is_some()
            || v.attr("aria-disabled") == Some("true")
            || v.attr("class")
                .is_some_and(|c| c.to_lowercase().contains("disabled"));
        found.push((
            order,
            disabled,
            format!("add-to-cart control (\"{phrase}\")"),
        ));
    }
    found.sort_by_key(|(order, _, _)| layout.nearness(*order));
    found.into_iter().next().map(|(_, d, how)| (d, how))
}
