//! The page as a model reads it: the main content as Markdown-like text
//! (headings, paragraphs, lists, table rows, links' text), with what
//! main-content extraction would drop kept beside it — the title, the
//! description and product meta tags, and the JSON-LD blocks — and the
//! whole cut to a token budget with a marker saying so. Scripts, styles,
//! navigation, headers, footers, asides, forms and hidden elements go.

use ego_tree::NodeRef;
use scraper::{Html, Node, Selector};

/// Characters per token, for the budget (an English-text average; exact
/// counts come back from the provider).
pub const CHARS_PER_TOKEN: usize = 4;

/// The page reduced for a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Reduced {
    pub text: String,
    /// Estimated tokens of `text`.
    pub tokens: usize,
    /// Estimated tokens of the raw HTML, for the log.
    pub raw_tokens: usize,
    pub truncated: bool,
}

/// Elements whose content is never the page's subject.
const SKIP: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "canvas", "iframe", "nav", "header",
    "footer", "aside", "form", "button", "select", "option", "head", "link", "meta",
];
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "li",
    "tr",
    "dl",
    "dt",
    "dd",
    "table",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "figure",
    "figcaption",
    "br",
    "hr",
    "address",
    "details",
    "summary",
];

/// Reduces `html` to at most `token_budget` estimated tokens.
pub fn reduce(html: &str, token_budget: usize) -> Reduced {
    let doc = Html::parse_document(html);
    let mut head = String::new();
    let sel = |s: &str| Selector::parse(s).expect("static selector");
    if let Some(t) = doc.select(&sel("title")).next() {
        let title = squash(&t.text().collect::<String>());
        if !title.is_empty() {
            head.push_str(&format!("Title: {title}\n"));
        }
    }
    for m in doc.select(&sel("meta[content]")) {
        let key = m
            .value()
            .attr("property")
            .or_else(|| m.value().attr("name"))
            .unwrap_or("");
        let keep = key == "description"
            || key.starts_with("og:")
            || key.starts_with("product:")
            || matches!(
                key,
                "price" | "priceCurrency" | "availability" | "sku" | "gtin13" | "mpn" | "brand"
            );
        let content = squash(m.value().attr("content").unwrap_or(""));
        if keep && !content.is_empty() {
            head.push_str(&format!("Meta {key}: {content}\n"));
        }
    }
    // Microdata values held in attributes (`<meta itemprop=price content=…>`,
    // `<link itemprop=availability href=…>`, `<span itemprop=sku
    // content=…>`): nothing visible says them.
    let mut seen = std::collections::BTreeSet::new();
    for el in doc.select(&sel("[itemprop][content], link[itemprop][href]")) {
        let key = el.value().attr("itemprop").unwrap_or("");
        let value = el
            .value()
            .attr("content")
            .or_else(|| el.value().attr("href"))
            .map(squash)
            .unwrap_or_default();
        if key.is_empty() || value.is_empty() || value.len() > 300 || seen.len() >= 40 {
            continue;
        }
        if seen.insert((key.to_string(), value.clone())) {
            head.push_str(&format!("Microdata {key}: {value}\n"));
        }
    }
    for s in doc.select(&sel("script[type='application/ld+json']")) {
        let raw = s.text().collect::<String>();
        let compact = serde_json::from_str::<serde_json::Value>(raw.trim())
            .map(|v| v.to_string())
            .unwrap_or_else(|_| squash(&raw));
        if !compact.is_empty() {
            head.push_str(&format!("JSON-LD: {compact}\n"));
        }
    }
    let root = doc
        .select(&sel("main, [role=main], article"))
        .next()
        .or_else(|| doc.select(&sel("body")).next());
    let mut body = String::new();
    if let Some(root) = root {
        walk(*root, &mut body);
    }
    let body = tidy(&body);
    let mut text = if head.is_empty() {
        body
    } else {
        format!("{head}\n{body}")
    };
    let limit = token_budget.saturating_mul(CHARS_PER_TOKEN);
    let mut truncated = false;
    if text.len() > limit {
        let mut cut = limit;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let rest = text.len() - cut;
        text.truncate(cut);
        text.push_str(&format!("\n[… page truncated: {rest} more characters]"));
        truncated = true;
    }
    Reduced {
        tokens: text.len().div_ceil(CHARS_PER_TOKEN),
        raw_tokens: html.len().div_ceil(CHARS_PER_TOKEN),
        text,
        truncated,
    }
}

fn walk(node: NodeRef<'_, Node>, out: &mut String) {
    match node.value() {
        Node::Text(t) => {
            let t = squash(t);
            if !t.is_empty() {
                if !out.ends_with([' ', '\n', '(']) && !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&t);
            }
        }
        Node::Element(e) => {
            let name = e.name();
            if SKIP.contains(&name)
                || e.attr("hidden").is_some()
                || e.attr("aria-hidden") == Some("true")
                || e.attr("style").is_some_and(|s| {
                    let s = s.replace(' ', "").to_ascii_lowercase();
                    s.contains("display:none") || s.contains("visibility:hidden")
                })
            {
                return;
            }
            let block = BLOCKS.contains(&name);
            if block && !out.ends_with('\n') && !out.is_empty() {
                out.push('\n');
            }
            match name {
                "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                    let level = name[1..].parse::<usize>().unwrap_or(1);
                    out.push_str(&"#".repeat(level));
                    out.push(' ');
                }
                "li" => out.push_str("- "),
                "td" | "th" if !out.ends_with('\n') => out.push_str(" |"),
                "img" => {
                    if let Some(alt) = e.attr("alt").map(squash).filter(|a| !a.is_empty()) {
                        out.push_str(&format!(" [image: {alt}]"));
                    }
                }
                _ => {}
            }
            for child in node.children() {
                walk(child, out);
            }
            if block && !out.ends_with('\n') {
                out.push('\n');
            }
        }
        _ => {
            for child in node.children() {
                walk(child, out);
            }
        }
    }
}

/// Collapses whitespace runs to one space.
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Drops empty lines beyond one and trailing spaces.
fn tidy(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank = false;
    for line in s.lines() {
        let line = line.trim();
        if line.is_empty() || line == "-" || line == "|" {
            blank = true;
            continue;
        }
        if blank && !out.is_empty() {
            out.push('\n');
        }
        blank = false;
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<html><head><title>Blue Kettle | Shop</title>
        <meta property="og:title" content="Blue Kettle">
        <meta name="viewport" content="width=device-width">
        <script type="application/ld+json">{ "@type": "Product", "name": "Blue Kettle" }</script>
        <style>.x{}</style></head>
        <body><header><nav>Home Shop Cart</nav></header>
        <main><h1>Blue Kettle</h1><p>Price: <b>24,99 €</b></p>
        <ul><li>1.7 litres</li><li>Steel</li></ul>
        <table><tr><th>SKU</th><td>BK-17</td></tr></table>
        <div hidden>secret</div><div style="display: none">gone</div>
        <script>var tracking = 1;</script></main>
        <footer>© Shop</footer></body></html>"#;

    #[test]
    fn keeps_the_subject_and_structured_data_and_drops_the_chrome() {
        let r = reduce(PAGE, 6000);
        let t = &r.text;
        assert!(t.contains("Title: Blue Kettle | Shop"), "{t}");
        assert!(t.contains("Meta og:title: Blue Kettle"), "{t}");
        assert!(!t.contains("viewport"), "{t}");
        assert!(
            t.contains(r#"JSON-LD: {"@type":"Product","name":"Blue Kettle"}"#),
            "{t}"
        );
        assert!(t.contains("# Blue Kettle"), "{t}");
        assert!(t.contains("Price: 24,99 €"), "{t}");
        assert!(t.contains("- 1.7 litres"), "{t}");
        assert!(t.contains("SKU | BK-17"), "{t}");
        for gone in [
            "Home Shop Cart",
            "secret",
            "gone",
            "tracking",
            "© Shop",
            ".x{}",
        ] {
            assert!(!t.contains(gone), "{gone} in {t}");
        }
        assert!(!r.truncated);
        assert!(r.tokens < r.raw_tokens);
    }

    #[test]
    fn a_long_page_is_cut_to_the_budget_with_a_marker() {
        let long = format!("<main><p>{}</p></main>", "word ".repeat(10_000));
        let r = reduce(&long, 500);
        assert!(r.truncated);
        assert!(r.text.len() <= 500 * CHARS_PER_TOKEN + 60);
        assert!(
            r.text.contains("[… page truncated:"),
            "{}",
            &r.text[r.text.len() - 80..]
        );
    }
}
