//! Markdown to sanitized HTML, and slugs. Rendering happens once, when a post is saved.
//!
//! Every Markdown that becomes post HTML (bodies, and excerpts, previews and imports as
//! they arrive) goes through [`render_post`], which bounds the work one text can cause:
//! - at most [`BODY_MAX`] characters;
//! - at most [`DEPTH_MAX`] levels of nesting, counted on the Markdown parser's events and
//!   again on the tree the sanitizer's HTML parser builds (raw HTML can nest too). The
//!   sanitizer's parser scans its stack of open elements for most tags, so its cost grows
//!   with depth times length (150 000 `>` took 108 s in a release build); a text nested
//!   deeper than the limit is refused, not flattened, so what is saved is what was written;
//! - rendered HTML at most [`HTML_FACTOR`] times the size of its source plus
//!   [`HTML_FLOOR`], checked while writing (wide tables with empty cells, reused long
//!   links and re-opened inline HTML elements multiply their source) and on the result,
//!   plus what highlighting adds (bounded below);
//! - off the async executor, on the blocking pool, at most half the cores at once, with a
//!   short queue, so reading pages and /healthz answer while posts are saved. The queue is
//!   measured in bytes of Markdown waiting (a few full-size bodies per slot), so a burst
//!   of short posts waits its turn instead of being refused.
//!
//! Fenced code blocks that name a language syntect knows (```` ```rust ````) are
//! highlighted with CSS classes prefixed [`CLASS_PREFIX`] (static/highlight.css colours
//! them); the sanitizer keeps exactly the classes with that prefix, on `span`, `code` and
//! `pre`, and strips every other class. Highlighting stays inside the bounds above: a
//! block that is too big, has too long a line, would nest its spans past the depth limit
//! or grow more than [`HIGHLIGHT_FACTOR`] times its code is left plain, as is everything
//! after [`HIGHLIGHT_TOTAL_MAX`] bytes of highlighted code or [`HIGHLIGHT_TIME`] spent
//! highlighting in one body. Measured in a debug build, 32 KiB of Rust takes about 0.6 s.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElemName, ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{local_name, ns, Attribute, LocalName, Namespace, QualName};
use pulldown_cmark::{html, CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use rocket::http::Status;
use rocket::tokio::sync::Semaphore;

/// Longest slug made from a title, in bytes (slugs are ASCII).
const SLUG_MAX: usize = 80;

/// Longest body, in characters: about 100 printed pages. The `form` limit (2 MiB) bounds
/// the request itself, and 200 000 characters of UTF-8 fit in it.
pub const BODY_MAX: usize = 200_000;

/// Deepest nesting of block quotes, lists, emphasis, links and HTML elements. Real posts
/// stay under 20; the parsers' cost grows with depth times length.
pub const DEPTH_MAX: usize = 64;

/// Rendered HTML may be at most this many times the size of its Markdown, plus
/// [`HTML_FLOOR`]. Ordinary Markdown stays well under 10 (a link to a short URL is about
/// 9 times its source once `rel` is added).
pub const HTML_FACTOR: usize = 10;

/// Allowance for short bodies (footnotes and tables cost a fixed amount of markup).
pub const HTML_FLOOR: usize = 64 * 1024;

/// Bytes of HTML the sanitizer's parser is given at a time; after each piece the
/// measurement may stop it, so the work spent on a refused body stays small.
const MEASURE_CHUNK: usize = 1024;

/// The prefix of every class highlighting gives code; the sanitizer keeps only these.
pub const CLASS_PREFIX: &str = "hl-";

/// Code is highlighted only while the code highlighted in one body so far stays under
/// this many bytes; later blocks stay plain. With [`HIGHLIGHT_FACTOR`] this bounds what
/// highlighting may add to a body's HTML, and with [`HIGHLIGHT_TIME`] what it may cost.
const HIGHLIGHT_TOTAL_MAX: usize = 32 * 1024;

/// A block with a longer line stays plain (minified code): the grammars' regexes run
/// over the rest of the line at each token, so long lines cost more than their length.
const HIGHLIGHT_LINE_MAX: usize = 1000;

/// A highlighted block may be at most this many times the size of its code. Measured:
/// every token gets a span with all its scope's classes, so a line of ordinary Rust,
/// Python or JavaScript grows 35 to 48 times and a whole source file (with comments and
/// indentation) about 12 times; denser code, such as long runs of operators, stays plain.
/// What highlighting adds, at most this times [`HIGHLIGHT_TOTAL_MAX`], is allowed on top
/// of the body's [`HTML_FACTOR`] budget.
const HIGHLIGHT_FACTOR: usize = 50;

/// Each block counts as at least this many bytes of code against
/// [`HIGHLIGHT_TOTAL_MAX`], and may grow to [`HIGHLIGHT_FACTOR`] times that.
const HIGHLIGHT_BLOCK_MIN: usize = 64;

/// Highlighting in one body stops after this long, the block at hand and later ones
/// left plain: a guard against a grammar that is slow on some input.
const HIGHLIGHT_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// A post body as stored: sanitized HTML, safe to put in a page with `| safe`.
#[derive(Debug)]
pub struct Rendered {
    pub html: String,
    /// The HTML's text without markup (`text::plain_text`), for search and descriptions.
    pub text: String,
}

/// Why a body was not rendered. Each message is shown next to the body field, which keeps
/// what was typed; nothing is saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("The body is over {BODY_MAX} characters.")]
    TooLong,
    #[error(
        "Block quotes, lists, emphasis, links and HTML elements may nest at most \
         {DEPTH_MAX} levels deep, and this body nests deeper. Flatten the nesting and \
         save again."
    )]
    TooDeep,
    #[error(
        "As HTML this body would be more than {HTML_FACTOR} times its own size (for \
         example a table with many columns and rows of empty cells, one long link used \
         many times, or HTML tags left open across paragraphs). Shorten it and save again."
    )]
    TooLarge,
    #[error("Many posts are being saved right now. Save again in a moment.")]
    Busy,
    #[error("This body could not be rendered. Change it and save again.")]
    Failed,
}

impl RenderError {
    /// 503 when the server was too busy to try (the same body may succeed later), 422
    /// when the body itself was refused.
    pub fn status(&self) -> Status {
        match self {
            RenderError::Busy => Status::ServiceUnavailable,
            _ => Status::UnprocessableEntity,
        }
    }
}

/// Renders a post body's Markdown to sanitized HTML, within the bounds in the module
/// documentation; every caller that stores or shows rendered Markdown uses this.
/// Removes anything that could run script: `<script>`, event handler attributes,
/// `javascript:` and other non-web URLs, `<style>`, forms, frames; links get
/// `rel="noopener noreferrer nofollow"`. The empty body renders to "".
///
/// Errors: `TooLong`, `TooDeep` or `TooLarge` for a body outside the bounds, `Busy` when
/// too many renders are already waiting, `Failed` if the renderer panicked (logged).
pub async fn render_post(source: &str) -> Result<Rendered, RenderError> {
    check_length(source)?;
    let permit = RENDERS.admit(source.len()).await?;
    let source = source.to_owned();
    // The permit moves into the blocking task: a request given up by its client does not
    // free the slot while its render still runs.
    let task = rocket::tokio::task::spawn_blocking(move || {
        let _permit = permit;
        RENDERS.running.fetch_add(1, Ordering::SeqCst);
        let _running = Running;
        render_blocking(&source).map(|html| Rendered {
            text: crate::text::plain_text(&html),
            html,
        })
    });
    match task.await {
        Ok(result) => result,
        Err(e) => {
            log::error!("rendering a post body failed: {e}");
            Err(RenderError::Failed)
        }
    }
}

/// Renders several texts of one post (its body and its excerpt) as [`render_post`] does,
/// each within the same bounds, in one render slot: saving a post waits in the queue
/// once. Errors: as `render_post`'s, with the index of the text refused.
pub async fn render_all(sources: &[&str]) -> Result<Vec<Rendered>, (usize, RenderError)> {
    for (i, source) in sources.iter().enumerate() {
        check_length(source).map_err(|e| (i, e))?;
    }
    let bytes = sources.iter().map(|s| s.len()).sum();
    let permit = RENDERS.admit(bytes).await.map_err(|e| (0, e))?;
    let sources: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
    let task = rocket::tokio::task::spawn_blocking(move || {
        let _permit = permit;
        RENDERS.running.fetch_add(1, Ordering::SeqCst);
        let _running = Running;
        sources
            .iter()
            .enumerate()
            .map(|(i, s)| {
                render_blocking(s)
                    .map(|html| Rendered {
                        text: crate::text::plain_text(&html),
                        html,
                    })
                    .map_err(|e| (i, e))
            })
            .collect()
    });
    match task.await {
        Ok(result) => result,
        Err(e) => {
            log::error!("rendering a post failed: {e}");
            Err((0, RenderError::Failed))
        }
    }
}

/// How many renders are running on the blocking pool right now (not counting those
/// waiting for a slot).
pub fn renders_running() -> usize {
    RENDERS.running.load(Ordering::SeqCst)
}

/// Renders at once: half the cores, rounded up, so the other half keeps serving pages.
fn render_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2))
}

/// Full-size bodies that may wait for a slot, per slot; more are refused as `Busy` rather
/// than queueing without end.
const WAITING_PER_SLOT: usize = 8;

/// What a short text counts in the queue, in bytes: the queue holds a few hundred of
/// them per slot, each rendered in about a millisecond.
const MIN_QUEUE_COST: usize = 4096;

struct Renders {
    slots: Semaphore,
    /// Bytes of Markdown waiting for a slot (each text at least `MIN_QUEUE_COST`).
    waiting: AtomicUsize,
    max_waiting: usize,
    running: AtomicUsize,
}

static RENDERS: LazyLock<Renders> = LazyLock::new(|| Renders::new(render_slots()));

impl Renders {
    fn new(slots: usize) -> Renders {
        Renders {
            slots: Semaphore::new(slots),
            waiting: AtomicUsize::new(0),
            max_waiting: slots * WAITING_PER_SLOT * BODY_MAX,
            running: AtomicUsize::new(0),
        }
    }

    /// A slot for rendering `bytes` of Markdown: at once, after waiting in the queue, or
    /// `Busy` when the queue is full.
    async fn admit(
        &'static self,
        bytes: usize,
    ) -> Result<rocket::tokio::sync::SemaphorePermit<'static>, RenderError> {
        if let Ok(permit) = self.slots.try_acquire() {
            return Ok(permit);
        }
        let cost = bytes.clamp(MIN_QUEUE_COST, 4 * BODY_MAX);
        if self.waiting.fetch_add(cost, Ordering::SeqCst) + cost > self.max_waiting {
            self.waiting.fetch_sub(cost, Ordering::SeqCst);
            return Err(RenderError::Busy);
        }
        let _waiting = Waiting(&self.waiting, cost);
        self.slots.acquire().await.map_err(|_| RenderError::Busy)
    }
}

/// Leaves the queue when the waiting request gets its slot or is given up.
struct Waiting(&'static AtomicUsize, usize);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::SeqCst);
    }
}

/// Leaves the running count even when the render panics.
struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        RENDERS.running.fetch_sub(1, Ordering::SeqCst);
    }
}

fn check_length(source: &str) -> Result<(), RenderError> {
    // Bytes bound characters from above: the count is needed only for long bodies.
    if source.len() > BODY_MAX && source.chars().count() > BODY_MAX {
        return Err(RenderError::TooLong);
    }
    Ok(())
}

/// The most HTML, in bytes, that a source of `source_len` bytes may render to.
fn html_budget(source_len: usize) -> usize {
    HTML_FLOOR + HTML_FACTOR * source_len
}

/// The whole render, on the calling thread: Markdown to HTML within the depth and size
/// bounds, the HTML measured as the sanitizer would parse it, then sanitized.
fn render_blocking(source: &str) -> Result<String, RenderError> {
    check_length(source)?;
    let (unsafe_html, budget) = markdown_html(source, html_budget(source.len()))?;
    measure_html(&unsafe_html, DEPTH_MAX, budget)?;
    let clean = sanitizer().clean(&unsafe_html).to_string();
    if clean.len() > budget {
        return Err(RenderError::TooLarge);
    }
    Ok(clean)
}

pub(crate) fn markdown_options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_TASKLISTS
}

fn sanitizer() -> ammonia::Builder<'static> {
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"));
    for tag in ["span", "code", "pre"] {
        builder.add_tag_attributes(tag, ["class"]);
    }
    builder.attribute_filter(|_element, attribute, value| {
        if attribute != "class" {
            return Some(value.into());
        }
        let kept = highlight_classes(value);
        (!kept.is_empty()).then_some(kept.into())
    });
    builder
}

/// The highlighting classes among `classes` (space-separated), the others dropped: a
/// post cannot borrow the site's own classes to restyle or hide parts of a page.
fn highlight_classes(classes: &str) -> String {
    classes
        .split_ascii_whitespace()
        .filter(|c| {
            c.strip_prefix(CLASS_PREFIX).is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Markdown to unsanitized HTML, stopping as soon as the nesting passes `DEPTH_MAX` or the
/// HTML passes `budget` bytes plus what highlighting added. Returns the HTML and that
/// budget with highlighting's allowance, which the sanitized result must also fit.
fn markdown_html(source: &str, budget: usize) -> Result<(String, usize), RenderError> {
    let allowance = Rc::new(Cell::new(0));
    let events = DepthLimit::new(Parser::new_ext(source, markdown_options()), DEPTH_MAX);
    let mut events = Highlight::new(events, allowance.clone());
    let mut out = CappedHtml {
        html: String::with_capacity(budget.min(source.len() * 3 / 2 + 64)),
        cap: budget,
        allowance: allowance.clone(),
    };
    let written = html::write_html_fmt(&mut out, &mut events);
    if events.events.exceeded {
        return Err(RenderError::TooDeep);
    }
    written.map_err(|_| RenderError::TooLarge)?;
    Ok((out.html, budget + allowance.get()))
}

/// Passes Markdown events through until they nest deeper than `max`, then ends the stream
/// and sets `exceeded`.
struct DepthLimit<I> {
    events: I,
    depth: usize,
    max: usize,
    exceeded: bool,
}

impl<I> DepthLimit<I> {
    fn new(events: I, max: usize) -> Self {
        DepthLimit {
            events,
            depth: 0,
            max,
            exceeded: false,
        }
    }
}

impl<'a, I: Iterator<Item = Event<'a>>> Iterator for DepthLimit<I> {
    type Item = Event<'a>;

    fn next(&mut self) -> Option<Event<'a>> {
        if self.exceeded {
            return None;
        }
        let event = self.events.next()?;
        match event {
            Event::Start(_) => {
                self.depth += 1;
                if self.depth > self.max {
                    self.exceeded = true;
                    return None;
                }
            }
            Event::End(_) => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        Some(event)
    }
}

/// The syntaxes that ship with syntect (Sublime Text's grammars), loaded on first use.
static SYNTAXES: LazyLock<syntect::parsing::SyntaxSet> =
    LazyLock::new(syntect::parsing::SyntaxSet::load_defaults_newlines);

/// The grammar a fenced block's info string names (its first word: `rust`, `rs`, `py`,
/// `Python`), or None for no language, plain text or one syntect does not know.
fn syntax_for(info: &str) -> Option<&'static syntect::parsing::SyntaxReference> {
    let token = info
        .split(|c: char| c.is_whitespace() || c == ',' || c == '{' || c == '}')
        .find(|t| !t.is_empty())?;
    if token.len() > 40 {
        return None;
    }
    SYNTAXES
        .find_syntax_by_token(token)
        .filter(|s| s.name != "Plain Text")
}

/// Replaces each fenced code block in a language syntect knows by its highlighted HTML,
/// when the block is within the highlighting bounds (module documentation); any other
/// block passes through as the Markdown writer would print it, plain.
struct Highlight<'a, I> {
    events: DepthLimit<I>,
    /// A block given up on, to pass through as it came.
    pending: std::collections::VecDeque<Event<'a>>,
    /// Bytes of code highlighted so far in this body.
    highlighted: usize,
    /// When the first block was highlighted.
    started: Option<std::time::Instant>,
    /// Bytes of HTML allowed beyond the body's budget: what highlighting added.
    allowance: Rc<Cell<usize>>,
}

impl<'a, I: Iterator<Item = Event<'a>>> Highlight<'a, I> {
    fn new(events: DepthLimit<I>, allowance: Rc<Cell<usize>>) -> Self {
        Highlight {
            events,
            pending: Default::default(),
            highlighted: 0,
            started: None,
            allowance,
        }
    }

    /// The block's HTML, `<pre><code>` and spans, or None to leave it plain. `depth` is
    /// the nesting of the block's own start event.
    fn highlight(
        &mut self,
        syntax: &syntect::parsing::SyntaxReference,
        code: &str,
        depth: usize,
    ) -> Option<String> {
        use syntect::html::{line_tokens_to_classed_spans, ClassStyle};
        use syntect::parsing::{ParseState, ScopeStack};
        // Short blocks count as longer: their spans cost more than their few characters.
        let charged = code.len().max(HIGHLIGHT_BLOCK_MIN);
        if self.highlighted + charged > HIGHLIGHT_TOTAL_MAX
            || code.lines().any(|l| l.len() > HIGHLIGHT_LINE_MAX)
        {
            return None;
        }
        self.highlighted += charged;
        let started = *self.started.get_or_insert_with(std::time::Instant::now);
        let style = ClassStyle::SpacedPrefixed {
            prefix: CLASS_PREFIX,
        };
        let cap = HIGHLIGHT_FACTOR * charged;
        let mut state = ParseState::new(syntax);
        let mut scopes = ScopeStack::new();
        let mut spans = String::new();
        let mut open = 0isize;
        // What ClassedHTMLGenerator does, a line at a time, so that a block going over
        // its size or the time is given up on at once.
        for line in syntect::util::LinesWithEndings::from(code) {
            let ops = state.parse_line(line, &SYNTAXES).ok()?;
            let (html, delta) =
                line_tokens_to_classed_spans(line, &ops, style, &mut scopes).ok()?;
            open += delta;
            spans.push_str(&html);
            if spans.len() > cap || started.elapsed() > HIGHLIGHT_TIME {
                return None;
            }
        }
        for _ in 0..open {
            spans.push_str("</span>");
        }
        // The block stands for `<pre>`; `<code>` and the spans go inside it.
        if depth + 1 + span_depth(&spans) > DEPTH_MAX || spans.len() > cap {
            return None;
        }
        let html = format!("<pre><code>{spans}</code></pre>\n");
        self.allowance
            .set(self.allowance.get() + html.len().saturating_sub(code.len()));
        Some(html)
    }
}

/// How deep `<span>`s nest in the highlighter's output (its only tags).
fn span_depth(html: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at..];
        if rest.starts_with("</") {
            depth = depth.saturating_sub(1);
        } else {
            depth += 1;
            deepest = deepest.max(depth);
        }
        rest = &rest[1..];
    }
    deepest
}

impl<'a, I: Iterator<Item = Event<'a>>> Iterator for Highlight<'a, I> {
    type Item = Event<'a>;

    fn next(&mut self) -> Option<Event<'a>> {
        if let Some(event) = self.pending.pop_front() {
            return Some(event);
        }
        let event = self.events.next()?;
        let syntax = match &event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => syntax_for(info),
            _ => None,
        };
        let Some(syntax) = syntax else {
            return Some(event);
        };
        let depth = self.events.depth;
        let mut code = String::new();
        let mut end = None;
        // A code block holds only text; the depth limit may end the stream inside it.
        for inner in self.events.by_ref() {
            match inner {
                Event::Text(text) => code.push_str(&text),
                Event::End(TagEnd::CodeBlock) => {
                    end = Some(inner);
                    break;
                }
                other => self.pending.push_back(other),
            }
        }
        if end.is_some() && self.pending.is_empty() {
            if let Some(html) = self.highlight(syntax, &code, depth) {
                return Some(Event::Html(html.into()));
            }
        }
        let mut plain = vec![event, Event::Text(code.into())];
        plain.extend(self.pending.drain(..));
        plain.extend(end);
        self.pending.extend(plain);
        self.pending.pop_front()
    }
}

/// A `fmt::Write` that refuses to grow past `cap` bytes, which stops the HTML writer.
struct CappedHtml {
    html: String,
    cap: usize,
    /// Added to `cap` as code blocks are highlighted.
    allowance: Rc<Cell<usize>>,
}

impl std::fmt::Write for CappedHtml {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.html.len() + s.len() > self.cap + self.allowance.get() {
            return Err(std::fmt::Error);
        }
        self.html.push_str(s);
        Ok(())
    }
}

/// Parses `html` as the sanitizer will (html5ever, as a fragment inside a `<div>`) into a
/// tree of bare nodes, and refuses it as soon as an element lands deeper than
/// `max_depth` or more elements are built than `budget` bytes of HTML could hold. Raw
/// HTML can nest through unclosed tags, and the parser re-opens formatting elements left
/// open (each `<b>` still open is re-created in every later paragraph), so only the
/// parser itself knows what it will build.
fn measure_html(html: &str, max_depth: usize, budget: usize) -> Result<(), RenderError> {
    let verdict = Rc::new(Cell::new(None));
    let sink = ShapeSink {
        nodes: RefCell::new(vec![ShapeNode::document()]),
        max_depth,
        // An element takes at least 7 bytes (`<b></b>`) in the sanitized output.
        max_elements: budget / 7,
        elements: Cell::new(0),
        verdict: verdict.clone(),
    };
    let mut parser = html5ever::parse_fragment(
        sink,
        html5ever::ParseOpts::default(),
        QualName::new(None, ns!(html), local_name!("div")),
        vec![],
        false,
    );
    let mut rest = html;
    while !rest.is_empty() {
        let mut cut = rest.len().min(MEASURE_CHUNK);
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        let (piece, after) = rest.split_at(cut);
        parser.process(StrTendril::from_slice(piece));
        if let Some(e) = verdict.get() {
            return Err(e);
        }
        rest = after;
    }
    parser.finish();
    verdict.get().map_or(Ok(()), Err)
}

/// One node of the measuring tree: just enough for the tree builder's questions (names,
/// template contents, integration points) and for depth.
struct ShapeNode {
    name: Option<QualName>,
    parent: Option<usize>,
    children: Vec<usize>,
    template_contents: Option<usize>,
    annotation_xml_integration_point: bool,
}

impl ShapeNode {
    fn document() -> ShapeNode {
        ShapeNode::other(None)
    }

    fn other(parent: Option<usize>) -> ShapeNode {
        ShapeNode {
            name: None,
            parent,
            children: Vec::new(),
            template_contents: None,
            annotation_xml_integration_point: false,
        }
    }
}

struct ShapeSink {
    nodes: RefCell<Vec<ShapeNode>>,
    max_depth: usize,
    max_elements: usize,
    elements: Cell<usize>,
    verdict: Rc<Cell<Option<RenderError>>>,
}

/// An element's name, owned: the tree builder asks for names while it changes the tree.
#[derive(Debug)]
struct ShapeName(QualName);

impl ElemName for ShapeName {
    fn ns(&self) -> &Namespace {
        &self.0.ns
    }

    fn local_name(&self) -> &LocalName {
        &self.0.local
    }
}

impl ShapeSink {
    fn refuse(&self, e: RenderError) {
        if self.verdict.get().is_none() {
            self.verdict.set(Some(e));
        }
    }

    fn new_node(&self, node: ShapeNode) -> usize {
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(node);
        nodes.len() - 1
    }

    fn detach(&self, nodes: &mut [ShapeNode], child: usize) {
        if let Some(parent) = nodes[child].parent.take() {
            nodes[parent].children.retain(|&c| c != child);
        }
    }

    /// Attaches `child` under `parent` and checks how deep it landed: elements above it
    /// are counted up to the root, the fragment's `<html>` not included, stopping once
    /// past the limit, so each check costs at most `max_depth` steps.
    fn attach(&self, parent: usize, child: NodeOrText<usize>) {
        let NodeOrText::AppendNode(child) = child else {
            return;
        };
        let mut nodes = self.nodes.borrow_mut();
        self.detach(&mut nodes, child);
        nodes[child].parent = Some(parent);
        nodes[parent].children.push(child);
        let mut depth = 0;
        let mut at = Some(child);
        while let Some(node) = at {
            if nodes[node].name.is_some() {
                depth += 1;
                if depth > self.max_depth + 1 {
                    self.refuse(RenderError::TooDeep);
                    return;
                }
            }
            at = nodes[node].parent;
        }
    }
}

impl TreeSink for ShapeSink {
    type Handle = usize;
    type Output = ();
    type ElemName<'a> = ShapeName;

    fn finish(self) {}

    fn parse_error(&self, _msg: std::borrow::Cow<'static, str>) {}

    fn get_document(&self) -> usize {
        0
    }

    fn elem_name<'a>(&'a self, target: &'a usize) -> ShapeName {
        let nodes = self.nodes.borrow();
        // The tree builder asks only about elements; a blank name answers nothing wrongly.
        let name = nodes[*target].name.clone();
        ShapeName(name.unwrap_or_else(|| QualName::new(None, ns!(), local_name!(""))))
    }

    fn create_element(&self, name: QualName, _attrs: Vec<Attribute>, flags: ElementFlags) -> usize {
        let count = self.elements.get() + 1;
        self.elements.set(count);
        if count > self.max_elements {
            self.refuse(RenderError::TooLarge);
        }
        let element = self.new_node(ShapeNode {
            name: Some(name),
            annotation_xml_integration_point: flags.mathml_annotation_xml_integration_point,
            ..ShapeNode::other(None)
        });
        if flags.template {
            let contents = self.new_node(ShapeNode::other(Some(element)));
            self.nodes.borrow_mut()[element].template_contents = Some(contents);
        }
        element
    }

    fn create_comment(&self, _text: StrTendril) -> usize {
        self.new_node(ShapeNode::other(None))
    }

    fn create_pi(&self, _target: StrTendril, _data: StrTendril) -> usize {
        self.new_node(ShapeNode::other(None))
    }

    fn append(&self, parent: &usize, child: NodeOrText<usize>) {
        self.attach(*parent, child);
    }

    fn append_based_on_parent_node(
        &self,
        element: &usize,
        prev_element: &usize,
        child: NodeOrText<usize>,
    ) {
        let parent = self.nodes.borrow()[*element].parent;
        match parent {
            Some(parent) => self.attach(parent, child),
            None => self.attach(*prev_element, child),
        }
    }

    fn append_doctype_to_document(&self, _: StrTendril, _: StrTendril, _: StrTendril) {}

    fn get_template_contents(&self, target: &usize) -> usize {
        // Only templates are asked about; they all have contents.
        self.nodes.borrow()[*target]
            .template_contents
            .unwrap_or(*target)
    }

    fn same_node(&self, x: &usize, y: &usize) -> bool {
        x == y
    }

    fn set_quirks_mode(&self, _mode: QuirksMode) {}

    fn append_before_sibling(&self, sibling: &usize, new_node: NodeOrText<usize>) {
        // Order among siblings does not change depth.
        let parent = self.nodes.borrow()[*sibling].parent;
        if let Some(parent) = parent {
            self.attach(parent, new_node);
        }
    }

    fn add_attrs_if_missing(&self, _target: &usize, _attrs: Vec<Attribute>) {}

    fn remove_from_parent(&self, target: &usize) {
        let mut nodes = self.nodes.borrow_mut();
        self.detach(&mut nodes, *target);
    }

    fn reparent_children(&self, node: &usize, new_parent: &usize) {
        let mut nodes = self.nodes.borrow_mut();
        let children = std::mem::take(&mut nodes[*node].children);
        for &child in &children {
            nodes[child].parent = Some(*new_parent);
        }
        nodes[*new_parent].children.extend(children);
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &usize) -> bool {
        self.nodes.borrow()[*handle].annotation_xml_integration_point
    }
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

    fn render(source: &str) -> Result<String, RenderError> {
        render_blocking(source)
    }

    /// Renders what must render, failing with the reason otherwise.
    fn ok(source: &str) -> String {
        render(source).unwrap_or_else(|e| panic!("{e:?} for {}", &source[..source.len().min(80)]))
    }

    #[test]
    fn script_and_handlers_are_removed() {
        let html = render(
            "<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n[x](javascript:alert(1))",
        )
        .unwrap();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
    }

    #[test]
    fn markdown_renders() {
        let html = render("# Hi\n\n[site](https://example.com)\n\n```\ncode\n```").unwrap();
        assert!(html.contains("<h1>Hi</h1>"), "{html}");
        assert!(html.contains("href=\"https://example.com\""), "{html}");
        assert!(html.contains("<pre><code>code"), "{html}");
        assert_eq!(render("").unwrap(), "");
    }

    /// `n` block quotes, one inside the other, around a paragraph: n + 1 levels.
    fn quotes(n: usize) -> String {
        "> ".repeat(n) + "a"
    }

    #[test]
    fn markdown_depth_is_counted_to_the_limit() {
        // Quotes and the paragraph inside them: exactly DEPTH_MAX levels pass.
        let html = ok(&quotes(DEPTH_MAX - 1));
        assert_eq!(html.matches("<blockquote>").count(), DEPTH_MAX - 1);
        assert_eq!(render(&quotes(DEPTH_MAX)), Err(RenderError::TooDeep));
        // Lists count their items too: `1. ` opens a list and an item.
        ok(&("1. ".repeat(DEPTH_MAX / 2) + "a"));
        assert_eq!(
            render(&("1. ".repeat(DEPTH_MAX / 2 + 1) + "a")),
            Err(RenderError::TooDeep)
        );
        // Emphasis nests inline: `*a ` .. `a* ` pairs, inside one paragraph.
        let emphasis = |n: usize| "*a ".repeat(n) + &"a* ".repeat(n);
        ok(&emphasis(DEPTH_MAX - 1));
        assert_eq!(render(&emphasis(DEPTH_MAX)), Err(RenderError::TooDeep));
        // Siblings do not add up: many shallow quotes are fine.
        ok(&"> a\n\n".repeat(5000));
    }

    #[test]
    fn depth_counter_follows_starts_and_ends() {
        let events = |src: &'static str| Parser::new_ext(src, markdown_options());
        let mut deep = DepthLimit::new(events("> > > a"), 3);
        assert!(deep.by_ref().count() > 0);
        assert!(
            deep.exceeded,
            "three quotes and a paragraph are four levels"
        );
        let mut fits = DepthLimit::new(events("> > a\n\nb\n\n> c"), 3);
        fits.by_ref().for_each(drop);
        assert!(!fits.exceeded);
        assert_eq!(fits.depth, 0, "every start was ended");
    }

    #[test]
    fn html_depth_is_measured_as_the_sanitizer_parses_it() {
        let divs = |n: usize| "<div>".repeat(n);
        ok(&divs(DEPTH_MAX));
        assert_eq!(render(&divs(DEPTH_MAX + 1)), Err(RenderError::TooDeep));
        // Closed tags do not nest, however many.
        assert!(!ok(&"<div>a</div>".repeat(15_000)).is_empty());
        // Markdown inside raw HTML adds to the HTML's depth.
        let half = DEPTH_MAX / 2;
        ok(&("<div>\n\n".repeat(half - 1) + &quotes(half)));
        let mixed = "<div>\n\n".repeat(half) + &quotes(half);
        assert_eq!(render(&mixed), Err(RenderError::TooDeep));
        // A `<p>` is closed by the next block, as the HTML parser does it: no nesting.
        ok(&"<p>a<div>b</div>".repeat(1000));
        // ... but `<p>` around a `<div>` left open is a nest the parser builds.
        assert_eq!(
            render(&"<p><div></p>".repeat(DEPTH_MAX + 1)),
            Err(RenderError::TooDeep)
        );
    }

    #[test]
    fn measurement_matches_the_depth_the_parser_builds() {
        let depth = |html: &str| {
            (1..200)
                .find(|&max| measure_html(html, max, usize::MAX).is_ok())
                .unwrap()
        };
        assert_eq!(depth("<p>a</p>"), 1);
        assert_eq!(depth("<ul><li><em>a</em></li></ul>"), 3);
        assert_eq!(
            depth("<table><tr><td>a</td></tr></table>"),
            4,
            "tbody is implied"
        );
        assert_eq!(depth("<b><p>x</b>y</p>"), 2, "rearranged, not nested");
        // `</b>` after ten divs: the parser moves a new `<b>` down eight of them and puts
        // the last two divs (still open) inside it, so the paragraph is 12 levels deep.
        let adopted = "<b>".to_string() + &"<div>".repeat(10) + "</b><p>x</p>";
        assert_eq!(depth(&adopted), 12, "adoption agency");
        assert_eq!(depth("<div><div></div></div><div></div>"), 2);
        assert_eq!(depth("<template><div><div></div></div></template>"), 3);
    }

    #[test]
    fn rendered_html_stays_proportionate() {
        // A wide header and short rows: every row is padded to the header's width.
        let mut table = "|a".repeat(2000) + "|\n" + &"|-".repeat(2000) + "|\n";
        table.push_str(&"x\n".repeat(2000));
        assert_eq!(render(&table), Err(RenderError::TooLarge));
        // Formatting elements left open are re-opened in every later paragraph.
        let open: String = (0..50).map(|i| format!("<b id=b{i}>")).collect();
        let reopened = format!("x {open}{}", "</p><p>x".repeat(5000));
        assert_eq!(render(&reopened), Err(RenderError::TooLarge));
        // The measurement alone stops it, before the sanitizer builds anything.
        let budget = html_budget(reopened.len());
        let (html, _) = markdown_html(&reopened, budget).unwrap();
        assert!(html.len() < 2 * reopened.len());
        assert_eq!(
            measure_html(&html, DEPTH_MAX, budget),
            Err(RenderError::TooLarge)
        );
        // The same long link reused many times.
        let link = format!("[a]: https://example.com/{}\n\n", "x".repeat(1000));
        ok(&(link.clone() + &"[a] ".repeat(40)));
        let reused = link + &"[a] ".repeat(20_000);
        assert!(render(&reused).map_or(true, |h| h.len() <= html_budget(reused.len())));
        // Text that only escapes grows within the bound.
        for text in [
            "<".repeat(BODY_MAX),
            "&".repeat(BODY_MAX),
            "\"".repeat(BODY_MAX),
        ] {
            let html = ok(&text);
            assert!(html.len() <= html_budget(text.len()), "{}", html.len());
        }
    }

    /// Runs a queue test on a runtime of its own, with timers.
    fn block_on<F: std::future::Future>(test: F) -> F::Output {
        rocket::tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(test)
    }

    #[test]
    fn renders_wait_for_a_slot_in_a_short_queue() {
        block_on(async {
            let renders: &'static Renders = Box::leak(Box::new(Renders::new(1)));
            let busy = renders.admit(10).await.unwrap();
            let mut queued = Vec::new();
            for _ in 0..WAITING_PER_SLOT {
                queued.push(rocket::tokio::spawn(renders.admit(BODY_MAX)));
            }
            rocket::tokio::task::yield_now().await;
            assert_eq!(
                renders.waiting.load(Ordering::SeqCst),
                WAITING_PER_SLOT * BODY_MAX
            );
            // Refused at once, even a short text; a wrong queue bound would wait here for
            // the held slot.
            let one_more =
                rocket::tokio::time::timeout(std::time::Duration::from_secs(10), renders.admit(1));
            assert_eq!(
                one_more.await.ok().and_then(|r| r.err()),
                Some(RenderError::Busy)
            );
            drop(busy);
            for waiter in queued {
                drop(waiter.await.unwrap().unwrap());
            }
            assert_eq!(renders.waiting.load(Ordering::SeqCst), 0);
            assert!(renders.admit(10).await.is_ok(), "the queue drained");
        });
    }

    #[test]
    fn short_texts_queue_by_the_hundred() {
        block_on(async {
            let renders: &'static Renders = Box::leak(Box::new(Renders::new(1)));
            let busy = renders.admit(10).await.unwrap();
            let queued: Vec<_> = (0..300)
                .map(|_| rocket::tokio::spawn(renders.admit(500)))
                .collect();
            for _ in 0..50 {
                rocket::tokio::task::yield_now().await;
            }
            assert_eq!(renders.waiting.load(Ordering::SeqCst), 300 * MIN_QUEUE_COST);
            drop(busy);
            for waiter in queued {
                drop(waiter.await.unwrap().expect("admitted"));
            }
        });
    }

    #[test]
    fn length_is_counted_in_characters() {
        assert!(check_length(&"é".repeat(BODY_MAX)).is_ok());
        assert_eq!(
            check_length(&"a".repeat(BODY_MAX + 1)),
            Err(RenderError::TooLong)
        );
        assert_eq!(render(&"a".repeat(BODY_MAX + 1)), Err(RenderError::TooLong));
    }

    #[test]
    fn code_in_a_known_language_is_highlighted_with_prefixed_classes() {
        let html = ok("```rust\nfn main() { let x = \"<b>\"; }\n```");
        assert!(
            html.starts_with("<pre><code><span class=\"hl-source hl-rust\">"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"hl-storage hl-type hl-function hl-rust\">fn</span>"),
            "{html}"
        );
        assert!(
            html.contains("&lt;b&gt;") && !html.contains("<b>"),
            "{html}"
        );
        // Every class kept is a highlighting class.
        let classes = classes_in(&html);
        assert!(!classes.is_empty() && classes.iter().all(|c| c.starts_with(CLASS_PREFIX)));
        // Short names and file extensions name languages too.
        for info in [
            "rs",
            "python",
            "py",
            "js",
            "sh",
            "Rust ignore",
            "rust,no_run",
        ] {
            let html = ok(&format!("```{info}\nx = 1\n```"));
            assert!(html.contains("class=\"hl-"), "{info}: {html}");
        }
    }

    /// Every class name in `html`.
    fn classes_in(html: &str) -> Vec<String> {
        html.split("class=\"")
            .skip(1)
            .flat_map(|rest| {
                rest.split('"')
                    .next()
                    .unwrap_or("")
                    .split(' ')
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn code_without_a_known_language_stays_plain() {
        for source in [
            "```\nfn main() {}\n```",
            "```nosuchlanguage\nfn main() {}\n```",
            "```text\nfn main() {}\n```",
            "    fn main() {}",
        ] {
            let html = ok(source);
            assert!(html.contains("<pre><code>fn main() {}"), "{source}: {html}");
            assert!(!html.contains("class"), "{source}: {html}");
        }
    }

    #[test]
    fn only_highlighting_classes_survive_the_sanitizer() {
        let html = ok(
            "<span class=\"evil hl-keyword\">a</span> <p class=\"flash\">b</p> \
            <code class=\"language-rust\">c</code> <pre class=\"hl-x hl-\">d</pre> \
            <div class=\"hl-keyword\">e</div> <span class=\"hl-a\\\"b\">f</span>",
        );
        assert!(
            html.contains("<span class=\"hl-keyword\">a</span>"),
            "{html}"
        );
        assert!(html.contains("<p>b</p>"), "{html}");
        assert!(html.contains("<code>c</code>"), "{html}");
        assert!(html.contains("<pre class=\"hl-x\">d</pre>"), "{html}");
        assert!(
            html.contains("<div>e</div>"),
            "classes only on span, code and pre: {html}"
        );
        assert!(!html.contains("evil") && !html.contains("flash") && !html.contains("language-"));
        assert_eq!(highlight_classes("hl-a  hl-b\tx hl- hl-<"), "hl-a hl-b");
    }

    #[test]
    fn highlighting_stays_within_the_bounds() {
        let block = |code: &str| format!("```rust\n{code}\n```\n");
        let highlighted = |html: &str| html.contains("class=\"hl-");
        // Dense code grows more than the body's own budget, and is allowed that.
        let code = "fn add(a: u32, b: u32) -> u32 { a.wrapping_add(b) }\n".repeat(100);
        let html = ok(&block(&code));
        assert!(highlighted(&html));
        assert!(html.len() > html_budget(code.len()), "{}", html.len());
        assert!(html.len() <= HIGHLIGHT_FACTOR * code.len());
        // Past the total, later blocks stay plain.
        let code = "let x = 1;\n".repeat(HIGHLIGHT_TOTAL_MAX / 11 / 2 + 1);
        let html = ok(&(block(&code) + &block(&code)));
        assert_eq!(
            html.matches("<pre><code><span").count(),
            1,
            "one of two highlighted"
        );
        // A long line, or spans nested past the depth limit: plain, not refused.
        assert!(!highlighted(&ok(&block(
            &"x".repeat(HIGHLIGHT_LINE_MAX + 1)
        ))));
        let deep = "(".repeat(DEPTH_MAX);
        assert!(span_depth(&ok(&block(&deep))) <= DEPTH_MAX);
        let in_quotes = "> ".repeat(DEPTH_MAX - 10)
            + "```rust\n"
            + &"> ".repeat(DEPTH_MAX - 10)
            + "(((((((((((((\n";
        ok(&in_quotes);
        // Dense code that would grow past the factor stays plain, and quickly.
        let dense = "a+b*(c-d)/e;".repeat(2000);
        let started = std::time::Instant::now();
        let html = ok(&block(&dense));
        assert!(!highlighted(&html) || html.len() <= HIGHLIGHT_FACTOR * dense.len());
        assert!(started.elapsed() < HIGHLIGHT_TIME * 2);
        // The largest body, all code: plain beyond the total, and proportionate.
        let code = "let x = vec![1, 2, 3];\n".repeat(BODY_MAX / 23 - 1);
        let source = block(&code);
        let html = ok(&source);
        assert!(html.len() <= html_budget(source.len()), "{}", html.len());
    }

    #[test]
    fn span_depth_counts_open_spans() {
        assert_eq!(span_depth("a"), 0);
        assert_eq!(span_depth("<span>a</span><span>b</span>"), 1);
        assert_eq!(span_depth("<span><span>&lt;</span></span>"), 2);
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
