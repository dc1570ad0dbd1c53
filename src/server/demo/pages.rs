//! The demo shop's data (derived from the product number alone) and its
//! HTML in four markup styles.

/// splitmix64: a fixed, well-mixed function of the product number, so every
/// run and every machine sees the same shop.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const ADJECTIVES: [&str; 12] = [
    "Oak", "Walnut", "Brass", "Linen", "Velvet", "Marble", "Copper", "Ceramic", "Rattan", "Steel",
    "Wool", "Glass",
];
const NOUNS: [&str; 10] = [
    "Lamp", "Chair", "Desk", "Rug", "Shelf", "Stool", "Mirror", "Vase", "Clock", "Bench",
];
const SUFFIXES: [&str; 6] = ["", " Deluxe", " Mini", " & Shade", " Pro", " Classic"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    JsonLd,
    Microdata,
    Table,
    LabelledText,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stock {
    InStock(u32),
    OutOfStock,
}

impl Stock {
    pub fn in_stock(self) -> bool {
        matches!(self, Stock::InStock(_))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub n: u32,
    pub title: String,
    pub price_cents: u64,
    pub currency: &'static str,
    pub stock: Stock,
    /// Tenths of a star, 10–50.
    pub rating_tenths: u32,
    pub markup: Markup,
}

impl Product {
    pub fn sku(&self) -> String {
        format!("DEMO-{:05}", self.n)
    }
    pub fn price(&self) -> String {
        format!("{}.{:02}", self.price_cents / 100, self.price_cents % 100)
    }
    pub fn rating(&self) -> String {
        format!("{}.{}", self.rating_tenths / 10, self.rating_tenths % 10)
    }
    fn symbol(&self) -> &'static str {
        match self.currency {
            "EUR" => "€",
            "GBP" => "£",
            _ => "$",
        }
    }
}

pub fn product(n: u32) -> Product {
    let h = mix(n as u64);
    let title = format!(
        "{} {}{}",
        ADJECTIVES[(h % 12) as usize],
        NOUNS[((h >> 8) % 10) as usize],
        SUFFIXES[((h >> 16) % 6) as usize]
    );
    let price_cents = 499 + (h >> 24) % 50_000;
    let currency = ["USD", "USD", "EUR", "GBP"][((h >> 40) % 4) as usize];
    let stock = if (h >> 44).is_multiple_of(5) {
        Stock::OutOfStock
    } else {
        Stock::InStock(1 + ((h >> 48) % 200) as u32)
    };
    let rating_tenths = 10 + ((h >> 56) % 41) as u32;
    let markup = match n % 4 {
        0 => Markup::JsonLd,
        1 => Markup::Microdata,
        2 => Markup::Table,
        _ => Markup::LabelledText,
    };
    Product {
        n,
        title,
        price_cents,
        currency,
        stock,
        rating_tenths,
        markup,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn frame(title: &str, head: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · Demo Shop</title>{head}\
         <style>body{{font-family:sans-serif;max-width:40rem;margin:2rem auto}}</style></head>\
         <body><header><a href=\"/demo/\">Demo Shop</a></header><main>{body}</main>\
         <footer><p>Free shipping over $50. Prices include VAT.</p></footer></body></html>",
        esc(title)
    )
}

/// What a product page shows inside `<main>`, for the script-rendered page.
pub fn product_main(p: &Product) -> String {
    let page = product_page(p);
    let start = page.find("<main>").map_or(0, |i| i + "<main>".len());
    let end = page.find("</main>").unwrap_or(page.len());
    page[start..end].to_string()
}

/// Product `n` as a script-rendered page: the HTML holds a placeholder,
/// and a script fetches the product (`/demo/api/products/{n}`) 300 ms
/// after load and writes it into the page. An http fetch sees only
/// "Loading…"; a browser sees the product.
pub fn rendered_page(n: u32) -> String {
    frame(
        "Loading",
        &format!(
            "<script>setTimeout(function () {{\
               fetch('/demo/api/products/{n}').then(function (r) {{ return r.json(); }})\
                 .then(function (p) {{ document.title = p.title + ' · Demo Shop';\
                   document.querySelector('main').innerHTML = p.html; }});\
             }}, 300);</script>"
        ),
        "<p class=\"loading\">Loading…</p>",
    )
}

/// Product `n` with its details behind a button: the page shows the
/// title and "Show price"; a click fetches the product and writes it in.
/// An http fetch and a browser without the click step see no price.
pub fn reveal_page(p: &Product) -> String {
    let n = p.n;
    frame(
        &p.title,
        &format!(
            "<script>document.addEventListener('DOMContentLoaded', function () {{\
               document.getElementById('show-price').addEventListener('click', function () {{\
                 fetch('/demo/api/products/{n}').then(function (r) {{ return r.json(); }})\
                   .then(function (p) {{ document.querySelector('main').innerHTML = p.html; }});\
               }});\
             }});</script>"
        ),
        &format!(
            "<h1>{}</h1><button type=\"button\" id=\"show-price\">Show price</button>",
            esc(&p.title)
        ),
    )
}

pub fn product_page(p: &Product) -> String {
    let title = esc(&p.title);
    let availability = if p.stock.in_stock() {
        "https://schema.org/InStock"
    } else {
        "https://schema.org/OutOfStock"
    };
    let stock_text = match p.stock {
        Stock::InStock(k) => format!("In stock ({k} left)"),
        Stock::OutOfStock => "Out of stock".to_string(),
    };
    match p.markup {
        Markup::JsonLd => {
            let ld = serde_json::json!({
                "@context": "https://schema.org",
                "@type": "Product",
                "name": p.title,
                "sku": p.sku(),
                "offers": {
                    "@type": "Offer",
                    "price": p.price(),
                    "priceCurrency": p.currency,
                    "availability": availability,
                },
                "aggregateRating": {"@type": "AggregateRating", "ratingValue": p.rating(), "reviewCount": 12},
            });
            frame(
                &p.title,
                &format!("<script type=\"application/ld+json\">{ld}</script>"),
                &format!(
                    "<h1>{title}</h1><div class=\"price-box\"><span class=\"amount\">{}{}</span></div>\
                     <p class=\"stock\">{stock_text}</p>",
                    p.symbol(),
                    p.price()
                ),
            )
        }
        Markup::Microdata => frame(
            &p.title,
            "",
            &format!(
                "<div itemscope itemtype=\"https://schema.org/Product\">\
                 <h1 itemprop=\"name\">{title}</h1>\
                 <span itemprop=\"sku\">{}</span>\
                 <div itemprop=\"offers\" itemscope itemtype=\"https://schema.org/Offer\">\
                 <meta itemprop=\"priceCurrency\" content=\"{}\">\
                 <span class=\"price\" itemprop=\"price\" content=\"{}\">{}{}</span>\
                 <link itemprop=\"availability\" href=\"{availability}\"><span>{stock_text}</span></div>\
                 <div itemprop=\"aggregateRating\" itemscope itemtype=\"https://schema.org/AggregateRating\">\
                 Rated <span itemprop=\"ratingValue\">{}</span> out of 5</div></div>",
                p.sku(),
                p.currency,
                p.price(),
                p.symbol(),
                p.price(),
                p.rating()
            ),
        ),
        Markup::Table => frame(
            &p.title,
            &format!("<meta property=\"og:title\" content=\"{title}\">"),
            &format!(
                "<h1 class=\"product-title\">{title}</h1><table class=\"specs\">\
                 <tr><th>SKU</th><td>{}</td></tr>\
                 <tr><th>Price</th><td>{} {}</td></tr>\
                 <tr><th>Currency</th><td>{}</td></tr>\
                 <tr><th>Availability</th><td>{stock_text}</td></tr>\
                 <tr><th>Rating</th><td>{} / 5</td></tr></table>",
                p.sku(),
                p.price(),
                p.currency,
                p.currency,
                p.rating()
            ),
        ),
        Markup::LabelledText => frame(
            &p.title,
            &format!(
                "<meta property=\"og:title\" content=\"{title}\">\
                 <meta property=\"product:price:amount\" content=\"{}\">\
                 <meta property=\"product:price:currency\" content=\"{}\">",
                p.price(),
                p.currency
            ),
            &format!(
                "<article><h2>{title}</h2>\
                 <p>Item code: {}</p>\
                 <p>Price: {}{} ({})</p>\
                 <p>Stock: {stock_text}</p>\
                 <p>Customer rating: {} stars</p></article>",
                p.sku(),
                p.symbol(),
                p.price(),
                p.currency,
                p.rating()
            ),
        ),
    }
}

pub fn index_page() -> String {
    let mut links = String::new();
    for n in 1..=50 {
        let p = product(n);
        links.push_str(&format!(
            "<li><a href=\"/demo/products/{n}\">{}</a></li>",
            esc(&p.title)
        ));
    }
    frame(
        "Demo Shop",
        "",
        &format!(
            "<h1>Demo Shop</h1><p>{} products in four markup styles. Every 100 products: \
             #13 is missing (404), #29 fails (500), #41 is rate-limited (429), #57 fails once (503), #71 is slow.</p>\
             <p>Some pages only a browser reads: <a href=\"/demo/rendered/45\">written by script</a> after a delay, \
             or <a href=\"/demo/reveal/48\">behind a \u{201c}Show price\u{201d} button</a>; the batch serves every 50th product (#45, #48) that way.</p>\
             <p><a href=\"/demo/sites.csv\">A batch of 200 products with expected values</a> (every 17th price deliberately wrong).</p>\
             <ul>{links}</ul>",
            super::PRODUCTS
        ),
    )
}

pub fn not_found_page() -> String {
    frame("Not found", "", "<h1>Not found</h1><p>No such product.</p>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_are_deterministic_and_varied() {
        assert_eq!(product(42), product(42));
        let styles: std::collections::HashSet<_> =
            (1..=8).map(|n| product(n).markup as u8).collect();
        assert_eq!(styles.len(), 4);
        let currencies: std::collections::HashSet<_> =
            (1..=200).map(|n| product(n).currency).collect();
        assert!(currencies.len() >= 3);
        assert!((1..=200).any(|n| !product(n).stock.in_stock()));
        assert!((1..=200).all(|n| (10..=50).contains(&product(n).rating_tenths)));
    }

    #[test]
    fn titles_with_ampersands_are_escaped() {
        let n = (1..500)
            .find(|n| product(*n).title.contains('&'))
            .expect("some title has &");
        let html = product_page(&product(n));
        assert!(html.contains("&amp; Shade"));
        assert!(!html.contains("& Shade<"));
    }
}
