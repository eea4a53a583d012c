//! Post text without markup: what search indexes, what share cards describe a post with,
//! and search snippets made safe to show.

use std::cell::RefCell;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

/// Where a search snippet's highlighted term starts and ends. Private-use characters:
/// `plain_text` removes them, so they can only come from the highlighter.
pub const MARK_START: char = '\u{E000}';
pub const MARK_END: char = '\u{E001}';
/// Stands for '<' in a snippet (PostgreSQL's headline parser would drop "<b>" as a tag).
pub const LT_STANDIN: char = '\u{E002}';

/// The readable text of sanitized post HTML: character references decoded, tags
/// dropped, a space between blocks (so "end.</p><p>Next" stays two words), whitespace
/// collapsed, control and snippet-marker characters removed. "" for HTML with no text.
pub fn plain_text(html: &str) -> String {
    let sink = TextSink {
        out: RefCell::new(String::with_capacity(html.len() / 2)),
    };
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let raw = tokenizer.sink.out.into_inner();
    collapse(&raw)
}

struct TextSink {
    out: RefCell<String>,
}

impl TokenSink for TextSink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        match token {
            Token::CharacterTokens(text) => self.out.borrow_mut().push_str(&text),
            Token::TagToken(tag) => {
                // Inline elements join their text to the words around them; anything
                // else (paragraphs, list items, cells, line breaks) separates words.
                let inline = matches!(
                    &*tag.name,
                    "a" | "abbr"
                        | "b"
                        | "bdi"
                        | "bdo"
                        | "cite"
                        | "code"
                        | "data"
                        | "del"
                        | "dfn"
                        | "em"
                        | "i"
                        | "ins"
                        | "kbd"
                        | "mark"
                        | "q"
                        | "s"
                        | "samp"
                        | "small"
                        | "span"
                        | "strong"
                        | "sub"
                        | "sup"
                        | "time"
                        | "u"
                        | "var"
                );
                if !inline {
                    self.out.borrow_mut().push(' ');
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// Whitespace runs become one space, ends are trimmed; control characters and the
/// snippet markers go.
fn collapse(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut space = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
        } else if c.is_control() || matches!(c, MARK_START | MARK_END | LT_STANDIN) {
            continue;
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

/// At most `max` characters of `text`, cut at a word boundary with "…" when shortened.
pub fn shorten(text: &str, max: usize) -> String {
    match head_at_word(text, max) {
        None => text.to_string(),
        Some(at_word) => format!(
            "{}…",
            at_word.trim_end_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation())
        ),
    }
}

/// The first `max` characters of `text`, cut back to the last space among them when that
/// keeps more than half; None when `text` is no longer than `max`.
pub fn head_at_word(text: &str, max: usize) -> Option<&str> {
    let (end, _) = text.char_indices().nth(max)?;
    let cut = &text[..end];
    Some(match cut.rfind(' ') {
        Some(i) if i > cut.len() / 2 => &cut[..i],
        _ => cut,
    })
}

/// A snippet with `MARK_START`/`MARK_END` around its matches, as HTML: everything
/// escaped, then the markers (and only they) become `<mark>` and `</mark>`, always
/// balanced, so neither the post nor the query can put markup in the page.
pub fn highlight(snippet: &str) -> String {
    let mut out = String::with_capacity(snippet.len() + 32);
    let mut open = false;
    for c in snippet.chars() {
        match c {
            MARK_START if !open => {
                out.push_str("<mark>");
                open = true;
            }
            MARK_END if open => {
                out.push_str("</mark>");
                open = false;
            }
            MARK_START | MARK_END => {}
            '<' | LT_STANDIN => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    if open {
        out.push_str("</mark>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_no_markup_and_keeps_words_apart() {
        let html = "<h1>Title</h1><p>One <strong>bold</strong> word.</p><p>Next&amp;co \
                    &lt;script&gt;</p><ul><li>a</li><li>b</li></ul><pre><code>x = 1\n</code></pre>";
        assert_eq!(
            plain_text(html),
            "Title One bold word. Next&co <script> a b x = 1"
        );
        assert_eq!(plain_text(""), "");
        assert_eq!(plain_text("a\u{E000}b\u{1}c\u{E002}"), "abc");
    }

    #[test]
    fn shortening_cuts_at_a_word() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("one two three four", 12), "one two…");
        assert_eq!(shorten("ééééééé", 3), "ééé…");
    }

    #[test]
    fn highlighting_escapes_everything_but_its_markers() {
        let s = format!("<b>{MARK_START}x&y{MARK_END}</b> \"{MARK_END}{MARK_START}q");
        assert_eq!(
            highlight(&s),
            "&lt;b&gt;<mark>x&amp;y</mark>&lt;/b&gt; &quot;<mark>q</mark>"
        );
    }
}
