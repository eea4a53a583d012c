//! Story: no input an author or a reader can type, and no file they can upload, makes
//! quire panic, hang or answer 500, and no post HTML quire stores can run script.
//! Property tests (proptest) generate hostile input from fragments for each parser that
//! takes outside input: the Markdown renderer and sanitizer, excerpts, slugs, the tags
//! field, search queries (against the test database, so on PostgreSQL too), image
//! decoding within the upload bounds, and the importers' parsers (damaged exports). Each case must finish within `CASE_TIME`.
//!
//! Budget: `PROPTEST_CASES` cases a target (each target's default below keeps the suite
//! to seconds); `PROPTEST_CASES=20000 cargo test --test main props::` is a long run.
//! Failures are not persisted to files: a find is shrunk, then kept below as a plain
//! regression test.

use std::cell::RefCell;
use std::sync::mpsc;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use quire::media::{self, Bounds, Refusal};
use quire::render::{self, RenderError};
use rocket::http::Status;
use rocket::tokio::runtime::Runtime;

use crate::common::*;

/// Longest a case may take (debug build, a machine shared with the rest of the suite):
/// far above what any of them takes (milliseconds), far below a hang.
const CASE_TIME: Duration = Duration::from_secs(20);

/// One runtime for the async parts (rendering and image work run on its blocking pool).
static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    rocket::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
});

/// The runner of one target: `PROPTEST_CASES` cases, else `default_cases`.
fn runner(default_cases: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Runs `work` on a thread of its own and gives its result, or fails the case when it
/// takes longer than `CASE_TIME` (the thread is left behind: the test fails anyway).
fn within<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, TestCaseError> {
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    match rx.recv_timeout(CASE_TIME) {
        Ok(v) => Ok(v),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(TestCaseError::fail(format!(
            "{what} took over {CASE_TIME:?}"
        ))),
        // The thread died without sending: it panicked.
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(TestCaseError::fail(format!(
            "{what} panicked after {:?}",
            started.elapsed()
        ))),
    }
}

fn run<S: Strategy>(
    runner: &mut TestRunner,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------------
// Hostile Markdown and HTML, built from fragments.

/// Pieces that have carried script past sanitizers: tags, handlers, URL schemes hidden by
/// entities, controls and case, markup that changes how what follows is parsed.
const DANGER: &[&str] = &[
    "<script>alert(1)</script>",
    "<script src=//x.example/a.js></script>",
    "<SCRIPT>",
    "</script>",
    "<scr<script>ipt>",
    "<img src=x onerror=alert(1)>",
    "<img src=\"x\" onerror=\"alert(1)\">",
    "<img/src/onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<body onload=alert(1)>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
    "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
    "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)\">x</a>",
    "<a href=\" javascript:alert(1)\">x</a>",
    "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>",
    "<a href=\"vbscript:msgbox(1)\">x</a>",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<iframe srcdoc=\"<script>alert(1)</script>\">",
    "<object data=\"data:text/html,<script>alert(1)</script>\"></object>",
    "<embed src=x>",
    "<form action=\"javascript:alert(1)\"><button>x</button></form>",
    "<button formaction=javascript:alert(1)>x</button>",
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<div style=\"background:url(javascript:alert(1))\">x</div>",
    "<style>@import 'x';</style>",
    "<link rel=stylesheet href=x>",
    "<meta http-equiv=refresh content=\"0;url=javascript:alert(1)\">",
    "<base href=\"javascript:/\">",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
    "<template><script>alert(1)</script></template>",
    "<textarea><script>alert(1)</script></textarea>",
    "<xmp><script>alert(1)</script></xmp>",
    "<!--<script>alert(1)</script>-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<img srcset=\"javascript:alert(1) 1x, x 2x\">",
    "<video poster=javascript:alert(1)>",
    "[x](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    "[x](  javascript:alert(1) )",
    "[x](<javascript:alert(1)>)",
    "[x](java\tscript:alert(1))",
    "[x](data:text/html,<script>alert(1)</script>)",
    "![x](javascript:alert(1))",
    "![x](data:image/svg+xml,<svg onload=alert(1)>)",
    "<javascript:alert(1)>",
    "<data:text/html,x>",
    "[x][r]\n\n[r]: javascript:alert(1)\n",
    "[x][r]\n\n[r]: data:text/html,x \"t\"\n",
    "[x](http://a.example \"\" onmouseover=\"alert(1)\")",
    "```\n<script>alert(1)</script>\n```",
    "`<script>`",
    "<span class=\"hl-x\" onclick=alert(1)>x</span>",
    "<pre class=\"hl-a x\"><code onclick=alert(1)>x</code></pre>",
];

/// Markdown structure and the characters that open or close markup.
const STRUCTURE: &[&str] = &[
    "\n",
    "\n\n",
    "> ",
    "- ",
    "1. ",
    "* ",
    "```",
    "```rust\n",
    "    ",
    "|a|b|\n|-|-|\n",
    "*",
    "_",
    "**",
    "~~",
    "[",
    "]",
    "(",
    ")",
    "<",
    ">",
    "</",
    "/>",
    "\"",
    "'",
    "=",
    "&",
    "&#",
    ";",
    "`",
    "\\",
    "!",
    "#",
    "[^1]",
    "[^1]: ",
    "<!--more-->",
    "- [ ] ",
    " ",
    "\t",
    "\0",
    "\u{feff}",
    "\u{202e}",
    "é",
    "👩‍💻",
];

/// Words that become dangerous when glued back together.
const SPLIT: &[(&str, &str)] = &[
    ("java", "script:alert(1)"),
    ("<scr", "ipt>alert(1)</script>"),
    ("on", "error=alert(1)"),
    ("da", "ta:text/html,x"),
    ("<img src=x on", "load=alert(1)>"),
];

/// What may stand between the halves of a split word.
const GLUE: &[&str] = &[
    "",
    "\t",
    "\n",
    "\r",
    " ",
    "\0",
    "&#x09;",
    "&Tab;",
    "&NewLine;",
    "&#0;",
    "%0a",
    "<!-- -->",
    "\\",
];

fn random_case(s: &str, flips: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if (flips >> (i % 64)) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (prop::sample::select(DANGER), any::<u64>()).prop_map(|(d, f)| random_case(d, f)),
        4 => prop::sample::select(STRUCTURE).prop_map(str::to_string),
        2 => (prop::sample::select(SPLIT), prop::sample::select(GLUE))
            .prop_map(|((a, b), g)| format!("{a}{g}{b}")),
        2 => "[a-z0-9 ]{0,12}",
        1 => any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ]
}

fn hostile_text() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..40).prop_map(|parts| parts.concat())
}

// ---------------------------------------------------------------------------------------
// What sanitized HTML may not carry, read as a browser's tokenizer reads it.

/// Elements that run script, load other documents or change how the page is parsed.
const FORBIDDEN_TAGS: &[&str] = &[
    "script",
    "style",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "form",
    "input",
    "button",
    "textarea",
    "select",
    "base",
    "meta",
    "link",
    "svg",
    "math",
    "template",
    "noscript",
    "xmp",
    "plaintext",
    "noembed",
    "noframes",
    "portal",
];

/// Attributes whose value a browser loads or follows as a URL.
const URL_ATTRIBUTES: &[&str] = &[
    "href",
    "src",
    "srcset",
    "action",
    "formaction",
    "cite",
    "poster",
    "background",
    "data",
    "longdesc",
    "lowsrc",
    "dynsrc",
    "ping",
    "manifest",
    "codebase",
    "xlink:href",
];

#[derive(Default)]
struct Collect {
    tags: RefCell<Vec<Tag>>,
}

impl TokenSink for Collect {
    type Handle = ();
    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        if let Token::TagToken(tag) = token {
            self.tags.borrow_mut().push(tag);
        }
        TokenSinkResult::Continue
    }
}

/// A URL as a browser resolves its scheme: tabs and newlines anywhere removed, leading
/// controls and spaces dropped, lowercased.
fn url_for_scheme(value: &str) -> String {
    value
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect::<String>()
        .trim_start_matches(|c: char| c <= ' ')
        .to_ascii_lowercase()
}

/// Why `html` could run script, if it could.
fn script_in(html: &str) -> Option<String> {
    // Even as text, a literal "<script" would mean the output was not escaped.
    if html.to_ascii_lowercase().contains("<script") {
        return Some("a literal <script".into());
    }
    let tokenizer = Tokenizer::new(Collect::default(), TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    for tag in tokenizer.sink.tags.borrow().iter() {
        if tag.kind != TagKind::StartTag {
            continue;
        }
        if FORBIDDEN_TAGS.contains(&&*tag.name) {
            return Some(format!("a <{}> element", &*tag.name));
        }
        for attr in &tag.attrs {
            let name = attr.name.local.to_string().to_ascii_lowercase();
            if name.starts_with("on") || name == "style" || name == "srcdoc" {
                return Some(format!("a {name} attribute on <{}>", &*tag.name));
            }
            if URL_ATTRIBUTES.contains(&name.as_str()) {
                let urls: Vec<&str> = if name == "srcset" {
                    attr.value.split(',').collect()
                } else {
                    vec![&*attr.value]
                };
                for url in urls {
                    let url = url_for_scheme(url);
                    if ["javascript:", "data:", "vbscript:"]
                        .iter()
                        .any(|s| url.starts_with(s))
                    {
                        return Some(format!("{name}=\"{url}\" on <{}>", &*tag.name));
                    }
                }
            }
        }
    }
    None
}

/// Renders as saving a post does; Busy (other tests rendering at the same moment) is
/// retried, so every case is checked.
fn render(source: &str) -> Result<Result<render::Rendered, RenderError>, TestCaseError> {
    let owned = source.to_string();
    within("rendering", move || loop {
        match RUNTIME.block_on(render::render_post(&owned)) {
            Err(RenderError::Busy) => std::thread::sleep(Duration::from_millis(20)),
            other => return other,
        }
    })
}

#[test]
fn sanitized_html_never_carries_script_handlers_or_script_urls() {
    run(&mut runner(256), hostile_text(), |source| {
        match render(&source)? {
            Ok(rendered) => {
                if let Some(why) = script_in(&rendered.html) {
                    return Err(TestCaseError::fail(format!(
                        "{why} in the HTML of {source:?}: {}",
                        rendered.html
                    )));
                }
            }
            // A body refused for its shape is fine; a panic inside the renderer is not.
            Err(RenderError::Failed) => {
                return Err(TestCaseError::fail(format!("render failed on {source:?}")))
            }
            Err(_) => {}
        }
        Ok(())
    });
}

/// The checker itself: each of these must be caught, or the property above proves little.
#[test]
fn the_script_checker_catches_what_it_looks_for() {
    for html in [
        "<p><script>x</script></p>",
        "<img src=x onerror=alert(1)>",
        "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
        "<a href=\" JAVASCRIPT:x\">x</a>",
        "<img src=\"data:image/png;base64,AA\">",
        "<img srcset=\"a 1x, javascript:x 2x\">",
        "<div style=\"x\">",
        "<svg><a>x</a></svg>",
    ] {
        assert!(script_in(html).is_some(), "{html} passed the checker");
    }
    for html in [
        "<p>javascript: is a word here, &lt;script&gt; too</p>",
        "<a href=\"https://example.com/?q=javascript:\" rel=\"noopener\">x</a>",
        "<a href=\"/posts/data:x\">x</a>",
        "<img src=\"/media/1/a.png\" alt=\"onerror\">",
    ] {
        assert_eq!(script_in(html), None, "{html} was flagged");
    }
}

#[test]
fn markdown_of_any_shape_renders_or_is_refused_without_panic_or_hang() {
    // Unrestricted text and deep, repetitive structure, beside the fragments above.
    let structure = prop::collection::vec(prop::sample::select(STRUCTURE), 0..400)
        .prop_map(|parts| parts.concat());
    let strategy = prop_oneof![any::<String>(), structure, hostile_text()];
    run(&mut runner(256), strategy, |source| {
        match render(&source)? {
            Ok(rendered) => {
                let budget = render::HTML_FLOOR + render::HTML_FACTOR * source.len();
                // Highlighting may add up to 50 times 32 KiB of code (render.rs).
                prop_assert!(rendered.html.len() <= budget + 50 * 32 * 1024);
                prop_assert!(rendered.text.len() <= rendered.html.len());
            }
            Err(RenderError::Failed) => {
                return Err(TestCaseError::fail(format!("render failed on {source:?}")))
            }
            Err(_) => {}
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------
// Excerpts, slugs, tags, search queries.

#[test]
fn excerpts_are_a_part_of_what_was_written() {
    let strategy = (
        prop_oneof![any::<String>(), hostile_text()],
        prop_oneof![any::<String>(), "[a-z <!-]{0,30}"],
    );
    run(&mut runner(512), strategy, |(body, field)| {
        let (b, f) = (body.clone(), field.clone());
        let excerpt = within("excerpt_source", move || {
            quire::excerpt::excerpt_source(&b, &f).to_string()
        })?;
        prop_assert!(
            body.contains(&excerpt) || field.contains(&excerpt),
            "{excerpt:?} is in neither {body:?} nor {field:?}"
        );
        Ok(())
    });
}

#[test]
fn every_title_gets_a_valid_short_slug() {
    run(
        &mut runner(512),
        prop_oneof![any::<String>(), hostile_text()],
        |title| {
            let t = title.clone();
            let slug = within("slug_for", move || render::slug_for(&t))?;
            prop_assert!(render::is_slug(&slug), "{slug:?} from {title:?}");
            prop_assert!(slug.len() <= 80, "{slug:?} from {title:?}");
            Ok(())
        },
    );
}

#[test]
fn the_tags_field_gives_bounded_valid_tags_or_messages() {
    let piece = prop_oneof![
        "[A-Za-z0-9 ]{0,8}",
        prop::sample::select(vec![
            ",", ",,", " , ", "\t", "\n", "-", "#", "é", "Ü", "ß", "🦀"
        ])
        .prop_map(str::to_string),
        any::<String>().prop_map(|s| s.chars().take(6).collect()),
    ];
    let strategy = prop::collection::vec(piece, 0..80).prop_map(|p| p.concat());
    run(&mut runner(512), strategy, |field| {
        let f = field.clone();
        let parsed = within("parse_tags", move || quire::web::tags::parse_tags(&f))?;
        match parsed {
            Ok(tags) => {
                prop_assert!(tags.len() <= quire::web::tags::MAX_TAGS);
                let mut slugs = std::collections::HashSet::new();
                for tag in &tags {
                    prop_assert!(tag.name.chars().count() <= quire::web::tags::TAG_MAX);
                    prop_assert!(!tag.name.chars().any(char::is_control));
                    prop_assert!(!tag.slug.is_empty());
                    prop_assert!(
                        tag.slug
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                        "slug {:?} of {:?}",
                        tag.slug,
                        tag.name
                    );
                    prop_assert!(slugs.insert(tag.slug.clone()), "two tags {:?}", tag.slug);
                }
            }
            Err(messages) => prop_assert!(!messages.is_empty()),
        }
        Ok(())
    });
}

/// What readers type into the search box, FTS5's and websearch's syntax included.
fn search_input() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "garden",
            "river",
            "or",
            "OR",
            "AND",
            "NOT",
            "NEAR(",
            "NEAR/2",
            "*",
            "^",
            ":",
            "(",
            ")",
            "\"",
            "-",
            "--",
            "'",
            "''",
            "\\",
            "\0",
            "%",
            "_",
            "{title}",
            "title:",
            "body_text:",
            "&",
            "|",
            "!",
            "<->",
            ";",
            "DROP TABLE posts;",
            " ",
            "  ",
            "é",
            "İ",
            "👩‍💻",
            "\u{E000}",
            "\u{E002}",
        ])
        .prop_map(str::to_string),
        "[a-z]{1,8}",
        any::<String>().prop_map(|s| s.chars().take(6).collect()),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|p| p.concat())
}

#[test]
fn search_queries_parse_into_words() {
    run(&mut runner(1024), search_input(), |input| {
        let i = input.clone();
        let query = within("Query::parse", move || quire::db::search::Query::parse(&i))?;
        for phrase in query.groups.iter().flatten().chain(&query.excluded) {
            prop_assert!(!phrase.is_empty(), "an empty phrase from {input:?}");
            for word in phrase {
                prop_assert!(!word.is_empty() && !word.contains(['"', ' ', '\0']));
            }
        }
        Ok(())
    });
}

#[test]
fn any_search_answers_a_results_page_on_the_database() {
    let app = RUNTIME.block_on(async {
        let app = TestApp::spawn().await;
        let (author, _) = app.author("Searcher").await;
        for (title, body) in [
            (
                "A garden by the river",
                "The garden holds stone and river words.",
            ),
            (
                "Quiet morning",
                "A *quiet* morning; \"quoted\" words and (brackets).",
            ),
            (
                "Zeichen und Wörter",
                "Ünïcödé text, İstanbul, 👩‍💻 and 'quotes'.",
            ),
        ] {
            author.create_post(title, body, true).await;
        }
        app
    });
    let mut runner = runner(128);
    let result = runner.run(&search_input(), |input| {
        let path = format!("/search?q={}", urlencode(&input));
        let (status, page) = RUNTIME.block_on(async {
            match rocket::tokio::time::timeout(CASE_TIME, app.get_text(&path)).await {
                Ok(answer) => Ok(answer),
                Err(_) => Err(TestCaseError::fail(format!(
                    "{path} took over {CASE_TIME:?}"
                ))),
            }
        })?;
        // 422 is the documented answer to a query without a word to look for.
        match status {
            Status::Ok => {}
            Status::UnprocessableEntity => prop_assert!(
                page.contains("search for at least one word"),
                "{path}: 422 without saying why"
            ),
            other => return Err(TestCaseError::fail(format!("{path} answered {other}"))),
        }
        // The search page itself (an empty query gets the bare form).
        prop_assert!(
            page.contains("id=\"search-q\""),
            "{path}: not the search page"
        );
        Ok(())
    });
    // The app's client and pools end on the runtime they started on.
    RUNTIME.block_on(async move { drop(app) });
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------------
// Image decoding within the upload bounds.

const TEST_BOUNDS: Bounds = Bounds {
    max_bytes: 1 << 20,
    max_pixels: 1_000_000,
};

/// A small valid image of one of the four accepted formats.
fn image_bytes(format: image::ImageFormat, w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([
            (x as u8).wrapping_mul(seed),
            (y as u8).wrapping_add(seed),
            seed,
            if format == image::ImageFormat::Jpeg {
                255
            } else {
                (x + y) as u8
            },
        ])
    });
    let img = if format == image::ImageFormat::Jpeg {
        image::DynamicImage::ImageRgb8(image::DynamicImage::ImageRgba8(img).to_rgb8())
    } else {
        image::DynamicImage::ImageRgba8(img)
    };
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode a test image");
    out.into_inner()
}

/// One change to a file: a byte overwritten, a cut, or a header field set to a size.
#[derive(Debug, Clone)]
enum Mutation {
    Byte(usize, u8),
    Cut(usize),
    /// Four bytes at this offset set to this big-endian value (PNG's IHDR width and
    /// height sit at 16 and 20; GIF's screen size at 6, WebP's at 24-29).
    Size(usize, u32),
    Splice(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (0usize..4096, any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
        1 => (0usize..4096).prop_map(Mutation::Cut),
        2 => (
            prop::sample::select(vec![6usize, 8, 16, 20, 24, 26]),
            prop_oneof![Just(0u32), Just(16_385), Just(65_535), Just(u32::MAX), any::<u32>()]
        )
            .prop_map(|(at, v)| Mutation::Size(at, v)),
        1 => (0usize..4096, prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(i, b)| Mutation::Splice(i, b)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Byte(i, b) => {
                if let Some(x) = bytes.get_mut(i % len) {
                    *x = *b;
                }
            }
            Mutation::Cut(i) => bytes.truncate(i % len),
            Mutation::Size(at, v) => {
                if bytes.len() >= at + 4 {
                    bytes[*at..at + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
            Mutation::Splice(i, more) => {
                let at = (i % len).min(bytes.len());
                bytes.splice(at..at, more.iter().copied());
            }
        }
    }
    bytes
}

fn process(bytes: Vec<u8>) -> Result<Result<media::Processed, Refusal>, TestCaseError> {
    within("processing an upload", move || {
        RUNTIME.block_on(media::process(bytes, TEST_BOUNDS))
    })
}

#[test]
fn damaged_and_oversized_images_are_refused_or_stay_within_the_bounds() {
    use image::ImageFormat::*;
    let strategy = (
        prop::sample::select(vec![Jpeg, Png, Gif, WebP]),
        1u32..48,
        1u32..48,
        any::<u8>(),
        prop::collection::vec(mutation(), 0..6),
    );
    run(
        &mut runner(256),
        strategy,
        |(format, w, h, seed, mutations)| {
            let original = image_bytes(format, w, h, seed);
            let bytes = mutate(original, &mutations);
            match process(bytes)? {
                Ok(processed) => {
                    for file in &processed.files {
                        prop_assert!(
                            file.width <= media::MAX_SIDE && file.height <= media::MAX_SIDE
                        );
                        prop_assert!(
                            u64::from(file.width) * u64::from(file.height)
                                <= TEST_BOUNDS.max_pixels
                        );
                        prop_assert!(matches!(
                            file.content_type,
                            "image/jpeg" | "image/png" | "image/gif"
                        ));
                        // What is stored is an image of the type it is served as.
                        let sniffed = media::sniff(&file.bytes).map_err(|r| {
                            TestCaseError::fail(format!("stored file not an image: {r}"))
                        })?;
                        prop_assert_eq!(sniffed.to_mime_type(), file.content_type);
                    }
                }
                Err(Refusal::Failed) => {
                    return Err(TestCaseError::fail(format!(
                        "processing failed (panicked) on {format:?} {w}x{h} with {mutations:?}"
                    )))
                }
                Err(_) => {}
            }
            Ok(())
        },
    );
}

#[test]
fn a_file_declaring_more_pixels_than_allowed_is_refused_before_decoding() {
    // A PNG whose header claims up to 16384 x 16384 (268 megapixels) over a few bytes of
    // data: refused from the header, at once.
    run(
        &mut runner(64),
        (1_001u32..=16_384, 1_001u32..=16_384),
        |(w, h)| {
            let mut bytes = image_bytes(image::ImageFormat::Png, 8, 8, 7);
            bytes[16..20].copy_from_slice(&w.to_be_bytes());
            bytes[20..24].copy_from_slice(&h.to_be_bytes());
            let started = Instant::now();
            let answer = process(bytes)?;
            prop_assert!(answer.is_err(), "{w}x{h} accepted");
            prop_assert!(started.elapsed() < Duration::from_secs(5));
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// Importers (src/import/): each format's fixture export, damaged with pieces of its own
// syntax and others', parsed within `CASE_TIME` into posts or one line naming the file,
// never a panic; every body parsed renders like typed Markdown, with no script left.

/// Syntax of the four formats (XML, JSON, YAML front matter, WordPress shortcodes) and
/// text that parsers trip on.
const EXPORT_SYNTAX: &[&str] = &[
    "<",
    ">",
    "<item>",
    "</item>",
    "</channel>",
    "<![CDATA[",
    "]]>",
    "<!DOCTYPE rss [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]>",
    "&b;",
    "&#0;",
    "&#x110000;",
    "&amp;",
    "<wp:status>future</wp:status>",
    "<wp:post_date_gmt>9999-99-99 99:99:99</wp:post_date_gmt>",
    "<wp:post_type>page</wp:post_type>",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\u0000",
    "\\ud800",
    "1e999",
    "-1",
    "null",
    "\"published_at\": \"0000-00-00\"",
    "__GHOST_URL__",
    "__GHOST_URL__/content/images/size/w9/../../x.png",
    "---\n",
    "\n---\n",
    "title: [",
    "date: 2099-13-45",
    "tags: {a: b}",
    "*alias ",
    "&anchor ",
    "!!binary ",
    "[caption]",
    "[/caption]",
    "[[gallery]]",
    "[embed]javascript:alert(1)[/embed]",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "\u{0}",
    "\u{feff}",
    "é",
    "\r\n",
];

#[derive(Debug, Clone)]
enum Edit {
    Insert(prop::sample::Index, String),
    Delete(prop::sample::Index, usize),
    Cut(prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        5 => (any::<prop::sample::Index>(), prop_oneof![
            4 => prop::sample::select(EXPORT_SYNTAX).prop_map(str::to_string),
            1 => any::<String>(),
        ])
            .prop_map(|(i, s)| Edit::Insert(i, s)),
        2 => (any::<prop::sample::Index>(), 1usize..64).prop_map(|(i, n)| Edit::Delete(i, n)),
        1 => any::<prop::sample::Index>().prop_map(Edit::Cut),
    ]
}

/// The byte offset `i` picks in `text`, moved back to a character boundary.
fn boundary(text: &str, i: &prop::sample::Index) -> usize {
    let mut at = i.index(text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn edited(mut text: String, edits: &[Edit]) -> String {
    for e in edits {
        match e {
            Edit::Insert(i, s) => {
                let at = boundary(&text, i);
                text.insert_str(at, s);
            }
            Edit::Delete(i, n) => {
                let at = boundary(&text, i);
                let mut end = (at + n).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                text.replace_range(at..end, "");
            }
            Edit::Cut(i) => {
                let at = boundary(&text, i);
                text.truncate(at);
            }
        }
    }
    text
}

fn import_fixture(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An import's outcome: posts that render clean, or one line naming `name`.
fn check_export(
    name: &str,
    parsed: Result<quire::import::Export, String>,
) -> Result<(), TestCaseError> {
    match parsed {
        Err(msg) => {
            prop_assert!(!msg.contains('\n'), "a message of several lines: {msg:?}");
            prop_assert!(
                msg.contains(name),
                "the message does not name the file: {msg:?}"
            );
        }
        Ok(export) => {
            for item in export.items {
                if let Ok(done) = render(item.body.text())? {
                    prop_assert_eq!(script_in(&done.html), None, "{}", item.body.text());
                }
            }
        }
    }
    Ok(())
}

#[test]
fn damaged_exports_of_every_format_import_or_say_where_in_one_line() {
    use quire::import::{ghost, wordpress, writefreely};
    type Parse = fn(&str, &str) -> Result<quire::import::Export, String>;
    let formats: Vec<(&'static str, Parse)> = vec![
        ("wordpress/export.xml", wordpress::parse),
        ("wordpress/hostile.xml", wordpress::parse),
        ("ghost/export.json", ghost::parse),
        ("writefreely/export.json", writefreely::parse),
    ];
    let texts: Vec<(&'static str, Parse, String)> = formats
        .into_iter()
        .map(|(rel, parse)| (rel, parse, import_fixture(rel)))
        .collect();
    run(
        &mut runner(192),
        (
            prop::sample::select((0..texts.len()).collect::<Vec<_>>()),
            prop::collection::vec(edit(), 0..8),
        ),
        |(which, edits)| {
            let (rel, parse, original) = &texts[which];
            let text = edited(original.clone(), &edits);
            let (rel, parse) = (*rel, *parse);
            let parsed = within(&format!("parsing {rel}"), move || parse(rel, &text))?;
            check_export(rel, parsed)
        },
    );
}

#[test]
fn damaged_markdown_files_import_or_say_where_in_one_line() {
    let originals = [
        "markdown/site/hello.md",
        "markdown/site/2024-02-03-jekyll-style.md",
    ]
    .map(|rel| (rel, import_fixture(rel)));
    run(
        &mut runner(96),
        (0usize..originals.len(), prop::collection::vec(edit(), 0..8)),
        |(which, edits)| {
            let (rel, original) = &originals[which];
            let dir = tempfile::tempdir().expect("temp dir");
            let file = std::path::Path::new(rel)
                .file_name()
                .expect("a file name")
                .to_owned();
            std::fs::write(dir.path().join(&file), edited(original.clone(), &edits))
                .expect("write");
            let path = dir.path().to_path_buf();
            let parsed = within("reading Markdown files", move || {
                quire::import::markdown::read_dir(&path)
            })?;
            check_export(&file.to_string_lossy(), parsed)
        },
    );
}

#[test]
fn a_line_break_quoted_from_a_damaged_export_stays_on_the_messages_line() {
    // Found by the target above: quick-xml's message quotes the tag it found.
    let text = import_fixture("wordpress/export.xml").replacen(
        "</wp:post_date_gmt>",
        "</\r\nwp:post_date_gmt>",
        1,
    );
    let err = quire::import::wordpress::parse("export.xml", &text).unwrap_err();
    assert!(
        err.starts_with("export.xml:") && !err.contains('\n') && err.contains("</\\r\\nwp:"),
        "{err}"
    );
}
