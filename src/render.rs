//! Markdown to sanitized HTML, and slugs. Rendering happens once, when a post is saved.

use pulldown_cmark::{html, Options, Parser};

/// Longest slug made from a title, in bytes (slugs are ASCII).
const SLUG_MAX: usize = 80;

/// Renders Markdown and removes anything that could run script: `<script>`, event
/// handler attributes, `javascript:` and other non-web URLs, `<style>`, forms, frames.
/// Links get `rel="noopener noreferrer nofollow"`.
pub fn markdown_to_html(source: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_TASKLISTS;
    let mut unsafe_html = String::with_capacity(source.len() * 3 / 2);
    html::push_html(&mut unsafe_html, Parser::new_ext(source, options));
    ammonia::Builder::default()
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&unsafe_html)
        .to_string()
}

/// A URL slug for a title: lowercase ASCII words joined by '-', at most 80 bytes,
/// never empty (a title of only punctuation or emoji gets "post").
pub fn slug_for(title: &str) -> String {
    let mut slug = slug::slugify(title);
    if slug.len() > SLUG_MAX {
        slug.truncate(SLUG_MAX);
        while slug.ends_with('-') {
            slug.pop();
        }
    }
    if slug.is_empty() {
        slug.push_str("post");
    }
    slug
}

/// Whether `s` could be a slug `slug_for` made; anything else names no post, and is not
/// worth a query (PostgreSQL would refuse a NUL byte in it outright).
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= SLUG_MAX + 12
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_and_handlers_are_removed() {
        let html = markdown_to_html(
            "<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n[x](javascript:alert(1))",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
    }

    #[test]
    fn markdown_renders() {
        let html = markdown_to_html("# Hi\n\n[site](https://example.com)\n\n```\ncode\n```");
        assert!(html.contains("<h1>Hi</h1>"), "{html}");
        assert!(html.contains("href=\"https://example.com\""), "{html}");
        assert!(html.contains("<pre><code>code"), "{html}");
    }

    #[test]
    fn slugs() {
        assert_eq!(slug_for("Hello, World!"), "hello-world");
        assert_eq!(slug_for("!!!"), "post");
        assert_eq!(slug_for("¿¡ ... !?"), "post");
        assert!(slug_for(&"long words ".repeat(40)).len() <= SLUG_MAX);
        assert!(!slug_for(&("a".repeat(79) + " b")).ends_with('-'));
        assert!(is_slug("hello-world-2"));
        assert!(!is_slug("Hello") && !is_slug("a\0b") && !is_slug("") && !is_slug("../x"));
    }
}
