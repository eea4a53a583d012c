//! WordPress's core shortcodes in exported post bodies. WordPress keeps `[caption]`,
//! `[gallery]`, `[embed]`, `[audio]`, `[video]` and `[playlist]` as typed and expands them
//! only when it shows a post (wp-includes/shortcodes.php, media.php, class-wp-embed.php);
//! quire has no shortcodes, so left alone they would show as bracketed text. Captions
//! become `<figure>` with `<figcaption>`, embeds and media become links to what they
//! named, galleries and playlists (lists of attachment ids, nothing to show) are left out
//! and said in the report. `[[caption]]` is WordPress's escape for the text itself.
//! Anything else in brackets is the author's text and stays.

use std::collections::BTreeSet;

const NAMES: [&str; 7] = [
    "caption",
    "wp_caption",
    "gallery",
    "embed",
    "audio",
    "video",
    "playlist",
];

/// An opening tag longer than this is not taken for a shortcode (WordPress's attributes
/// are short).
const TAG_MAX: usize = 4096;

/// `content` with its core shortcodes expanded; each one left out is named in `notes`.
pub fn expand(content: &str, notes: &mut Vec<String>) -> String {
    let mut out = String::with_capacity(content.len());
    let mut left_out = BTreeSet::new();
    // Where each name's last closing tag starts: an opening tag after it encloses
    // nothing, and is not searched for one (which, tag after tag, would be quadratic).
    let last_close: Vec<Option<usize>> = NAMES
        .iter()
        .map(|n| content.rfind(&format!("[/{n}]")))
        .collect();
    let mut rest = content;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..i]);
        let here = &rest[i..];
        let at = content.len() - here.len();
        match Shortcode::at(here, |name| {
            NAMES
                .iter()
                .position(|n| *n == name)
                .and_then(|k| last_close[k])
                .is_some_and(|c| c > at)
        }) {
            Some(code) => {
                code.write(&mut out, &mut left_out);
                rest = &here[code.len..];
            }
            None => {
                out.push('[');
                rest = &here[1..];
            }
        }
    }
    out.push_str(rest);
    for name in left_out {
        notes.push(format!(
            "a [{name}] shortcode was left out: quire has no counterpart for it"
        ));
    }
    out
}

struct Shortcode<'a> {
    name: &'a str,
    attrs: &'a str,
    inner: &'a str,
    /// `[[name]]`: the text itself, one bracket off each side.
    escaped: Option<&'a str>,
    /// Bytes of the source it covers.
    len: usize,
}

impl<'a> Shortcode<'a> {
    /// The shortcode `s` starts with, if any; `may_close(name)` says whether a closing tag
    /// of that name comes later.
    fn at(s: &'a str, may_close: impl Fn(&str) -> bool) -> Option<Shortcode<'a>> {
        let escaped = s.starts_with("[[");
        let open = if escaped { 2 } else { 1 };
        let body = &s[open..];
        let name_len = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(body.len());
        let name = &body[..name_len];
        if !NAMES.contains(&name) {
            return None;
        }
        let after = &body[name_len..];
        if !after.starts_with([' ', ']', '/']) {
            return None;
        }
        // The tag ends at the first ']', with no '[' before it (where the next one starts).
        let close = after.find(['[', ']'])?;
        if close > TAG_MAX || !after[close..].starts_with(']') {
            return None;
        }
        let tag = &after[..close];
        let self_closing = tag.ends_with('/');
        let mut len = open + name_len + close + 1;
        let mut inner = "";
        // An escaped one is the opening tag alone: `[[caption]]`.
        if !self_closing && !escaped && may_close(name) {
            let end = format!("[/{name}]");
            if let Some(j) = s[len..].find(&end) {
                inner = &s[len..len + j];
                len += j + end.len();
            }
        }
        let escaped = if escaped {
            if !s[len..].starts_with(']') {
                return None;
            }
            len += 1;
            Some(&s[1..len - 1])
        } else {
            None
        };
        Some(Shortcode {
            name,
            attrs: tag.trim_end_matches('/').trim(),
            inner,
            escaped,
            len,
        })
    }

    fn write(&self, out: &mut String, left_out: &mut BTreeSet<&'static str>) {
        if let Some(text) = self.escaped {
            out.push_str(text);
            return;
        }
        match self.name {
            "caption" | "wp_caption" => self.write_caption(out),
            "embed" => match url(self.inner.trim()) {
                Some(u) => block(out, &link(u)),
                None => out.push_str(self.inner),
            },
            "audio" | "video" => {
                let src = [
                    "src", "mp3", "m4a", "ogg", "wav", "mp4", "webm", "ogv", "m4v",
                ]
                .iter()
                .find_map(|k| attr(self.attrs, k).and_then(|v| url(&v).map(str::to_owned)));
                match src {
                    Some(u) => block(out, &link(&u)),
                    None if !self.inner.trim().is_empty() => out.push_str(self.inner),
                    None => {
                        left_out.insert(if self.name == "audio" {
                            "audio"
                        } else {
                            "video"
                        });
                    }
                }
            }
            _ => {
                left_out.insert(if self.name == "gallery" {
                    "gallery"
                } else {
                    "playlist"
                });
            }
        }
    }

    /// `[caption ...]<a><img></a> Text[/caption]` (or the text in `caption="..."`, as
    /// WordPress wrote it before 3.4) as a figure.
    fn write_caption(&self, out: &mut String) {
        let (media, rest) = split_media(self.inner);
        let text = attr(self.attrs, "caption").unwrap_or_else(|| rest.trim().to_string());
        if media.is_empty() {
            out.push_str(self.inner);
            return;
        }
        let mut figure = format!("<figure>{media}");
        if !text.is_empty() {
            // One line: a blank line would end the HTML block in Markdown.
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            figure.push_str(&format!("<figcaption>{text}</figcaption>"));
        }
        figure.push_str("</figure>");
        block(out, &figure);
    }
}

/// An HTML block on its own, between blank lines.
fn block(out: &mut String, html: &str) {
    out.push_str("\n\n");
    out.push_str(html);
    out.push_str("\n\n");
}

fn link(u: &str) -> String {
    let u = escape(u);
    format!("<a href=\"{u}\">{u}</a>")
}

fn url(s: &str) -> Option<&str> {
    let lower = s.to_ascii_lowercase();
    ((lower.starts_with("https://") || lower.starts_with("http://"))
        && !s.contains(char::is_whitespace))
    .then_some(s)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The leading `<img>` of a caption, with the `<a>` around it if any, and what follows.
fn split_media(inner: &str) -> (&str, &str) {
    let start = inner.len() - inner.trim_start().len();
    let s = &inner[start..];
    let lower = s.to_ascii_lowercase();
    let tag_end = |from: usize| lower[from..].find('>').map(|i| from + i + 1);
    let mut end = 0;
    if lower.starts_with("<a ") || lower.starts_with("<a\n") {
        let Some(a_end) = tag_end(0) else {
            return ("", inner);
        };
        let img = a_end + (lower[a_end..].len() - lower[a_end..].trim_start().len());
        if !lower[img..].starts_with("<img") {
            return ("", inner);
        }
        let Some(img_end) = tag_end(img) else {
            return ("", inner);
        };
        let close = img_end + (lower[img_end..].len() - lower[img_end..].trim_start().len());
        if !lower[close..].starts_with("</a>") {
            return ("", inner);
        }
        end = close + 4;
    } else if lower.starts_with("<img") {
        match tag_end(0) {
            Some(e) => end = e,
            None => return ("", inner),
        }
    }
    if end == 0 {
        return ("", inner);
    }
    (&s[..end], &s[end..])
}

/// The value of `key` in a shortcode's attributes (`key="v"`, `key='v'` or `key=v`).
fn attr(attrs: &str, key: &str) -> Option<String> {
    let mut rest = attrs;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let eq = rest.find('=')?;
        // A bare word before it (`autoplay src=...`) is a flag, not this key's name.
        let name = rest[..eq].split_whitespace().last().unwrap_or("");
        let after = rest[eq + 1..].trim_start();
        let (value, next) = match after.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let close = after[1..].find(q)? + 1;
                (&after[1..close], &after[close + 1..])
            }
            _ => {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        if name.eq_ignore_ascii_case(key) {
            return Some(value.to_string());
        }
        rest = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &str) -> (String, Vec<String>) {
        let mut notes = Vec::new();
        let out = expand(s, &mut notes);
        (out, notes)
    }

    #[test]
    fn a_caption_becomes_a_figure_with_its_text() {
        let (out, notes) = run(
            "Before [caption id=\"attachment_6\" align=\"alignright\" width=\"300\"]\
             <a href=\"https://x.example/p.png\"><img src=\"https://x.example/p.png\" width=\"300\" /></a> \
             A lake at dawn[/caption] after",
        );
        assert_eq!(
            out,
            "Before \n\n<figure><a href=\"https://x.example/p.png\"><img src=\"https://x.example/p.png\" \
             width=\"300\" /></a><figcaption>A lake at dawn</figcaption></figure>\n\n after"
        );
        assert!(notes.is_empty());
    }

    #[test]
    fn the_old_caption_attribute_is_read() {
        let (out, _) =
            run("[caption caption='Old style' width=\"10\"]<img src=\"a.png\">[/caption]");
        assert!(
            out.contains("<figure><img src=\"a.png\"><figcaption>Old style</figcaption></figure>"),
            "{out}"
        );
    }

    #[test]
    fn embeds_and_media_become_links_and_galleries_are_reported() {
        let (out, notes) = run(
            "[embed]https://video.example/v/1[/embed] [audio mp3=\"https://a.example/s.mp3\"][/audio] \
             [gallery ids=\"1,2,3\"] [playlist ids=\"4\"]",
        );
        assert!(
            out.contains("<a href=\"https://video.example/v/1\">"),
            "{out}"
        );
        assert!(
            out.contains("<a href=\"https://a.example/s.mp3\">"),
            "{out}"
        );
        assert!(
            !out.contains("gallery") && !out.contains("playlist"),
            "{out}"
        );
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("[gallery]") && notes[1].contains("[playlist]"));
    }

    #[test]
    fn other_brackets_and_escapes_stay_text() {
        let (out, notes) = run("[1] [link](https://x.example) [captions] [[caption]] [caption");
        assert_eq!(
            out,
            "[1] [link](https://x.example) [captions] [caption] [caption"
        );
        assert!(notes.is_empty());
    }

    #[test]
    fn many_open_tags_without_an_end_take_linear_time() {
        let hostile = "[caption é".repeat(50_000) + &"[caption]".repeat(50_000) + "[/video]";
        let started = std::time::Instant::now();
        let (out, _) = run(&hostile);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(out.starts_with("[caption é"), "kept as text");
    }

    #[test]
    fn a_javascript_embed_is_not_made_a_link() {
        let (out, _) = run("[embed]javascript:alert(1)[/embed]");
        assert!(!out.contains("href"), "{out}");
    }
}
