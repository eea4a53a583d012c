//! Which part of a post is its excerpt, the short text listings and feeds show. The
//! excerpt is rendered and sanitized by `render::render_post` when the post is saved,
//! like the body, and stored beside it.

use pulldown_cmark::{Event, Parser, Tag};

/// Longest excerpt field, in characters: a few sentences. The other two sources are
/// parts of the body and bounded with it.
pub const EXCERPT_MAX: usize = 1000;

/// The Markdown of a post's excerpt:
/// - the body's text before a line `<!--more-->` (spaces inside the comment allowed) when
///   the body has one outside code blocks, lists and quotes;
/// - else the excerpt field, trimmed, when it is not blank;
/// - else the body's first paragraph (not one inside a list or quote).
///
/// "" when none of these has any text (say, a body of only a heading and a code block).
pub fn excerpt_source<'a>(body: &'a str, field: &'a str) -> &'a str {
    if let Some(at) = more_marker(body) {
        return body[..at].trim_end();
    }
    let field = field.trim();
    if !field.is_empty() {
        return field;
    }
    first_paragraph(body).unwrap_or("")
}

/// Whether the excerpt comes from the body (a `<!--more-->` line), so the field is unused.
pub fn has_more_marker(body: &str) -> bool {
    more_marker(body).is_some()
}

/// Where the first top-level `<!--more-->` line starts.
fn more_marker(body: &str) -> Option<usize> {
    if !body.contains("more") {
        return None;
    }
    let mut depth = 0usize;
    for (event, range) in
        Parser::new_ext(body, crate::render::markdown_options()).into_offset_iter()
    {
        match event {
            Event::Start(Tag::HtmlBlock) if depth == 0 => depth += 1,
            Event::Html(text) if depth == 1 && is_marker(&text) => return Some(range.start),
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

fn is_marker(line: &str) -> bool {
    let squeezed: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    squeezed.eq_ignore_ascii_case("<!--more-->")
}

/// The source of the body's first top-level paragraph: a Markdown one, or a `<p>` in a
/// top-level HTML block (the body of a post imported from an engine that writes HTML).
fn first_paragraph(body: &str) -> Option<&str> {
    let mut depth = 0usize;
    for (event, range) in
        Parser::new_ext(body, crate::render::markdown_options()).into_offset_iter()
    {
        match event {
            Event::Start(Tag::Paragraph) if depth == 0 => return Some(body[range].trim()),
            Event::Start(Tag::HtmlBlock) if depth == 0 => match html_paragraph(&body[range]) {
                Some(p) => return Some(p),
                None => depth += 1,
            },
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// The first `<p>...</p>` of an HTML block, tags included.
fn html_paragraph(block: &str) -> Option<&str> {
    let lower = block.to_ascii_lowercase();
    let start = ["<p>", "<p ", "<p\n"]
        .iter()
        .filter_map(|open| lower.find(open))
        .min()?;
    let end = lower[start..].find("</p>")? + start + "</p>".len();
    Some(&block[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_more_line_wins_then_the_field_then_the_first_paragraph() {
        let body = "Intro *here*.\n\nStill intro.\n\n<!--more-->\n\nThe rest.";
        assert_eq!(
            excerpt_source(body, "Typed"),
            "Intro *here*.\n\nStill intro."
        );
        assert_eq!(
            excerpt_source("A\n\n<!-- More -->\nB", ""),
            "A",
            "spaces and case"
        );
        assert_eq!(excerpt_source("First.\n\nSecond.", "  Typed  "), "Typed");
        assert_eq!(
            excerpt_source("# Title\n\nFirst *p*\nline two.\n\nSecond.", ""),
            "First *p*\nline two."
        );
        assert_eq!(excerpt_source("# Only a heading", " "), "");
        assert_eq!(excerpt_source("", ""), "");
    }

    #[test]
    fn a_marker_in_code_lists_or_text_does_not_count() {
        let fenced = "Para.\n\n```\n<!--more-->\n```\n\nAfter.";
        assert_eq!(excerpt_source(fenced, ""), "Para.");
        assert!(!has_more_marker(fenced));
        assert!(!has_more_marker("- item\n\n  <!--more-->\n"));
        assert!(!has_more_marker("Text <!--more--> inline."));
        assert!(has_more_marker("Text.\n\n<!--more-->"));
    }

    #[test]
    fn an_html_body_gives_its_first_p() {
        let wordpress =
            "<!-- wp:image -->\n<figure><img src=\"a.png\"></figure>\n<!-- /wp:image -->\n\n\
                         <!-- wp:paragraph -->\n<p class=\"x\">Welcome <b>here</b>.</p>\n\
                         <!-- /wp:paragraph -->\n\nLater.";
        assert_eq!(
            excerpt_source(wordpress, ""),
            "<p class=\"x\">Welcome <b>here</b>.</p>"
        );
        assert_eq!(excerpt_source("<pre>code</pre>\n\nText.", ""), "Text.");
        assert_eq!(excerpt_source("<p>Unclosed\n\nText.", ""), "Text.");
    }

    #[test]
    fn paragraphs_inside_quotes_and_lists_are_skipped() {
        assert_eq!(
            excerpt_source("> quoted\n\n- item\n\nReal one.", ""),
            "Real one."
        );
    }
}
