//! Full-text search over public posts: an FTS5 table on SQLite, a `tsvector` column on
//! PostgreSQL (migration 0007), both fed the same text and asked the same question.
//!
//! What a reader types is never handed to either query language: [`Query::parse`] reads
//! it (words, "quoted phrases", `or`, `-exclusions`, websearch style) into phrases of
//! plain words, and each backend gets a query built from those, every term quoted. So no
//! input is a syntax error, and both backends match the same posts: exact words, case
//! folded, no stemming, title matches ranked above body matches.
//!
//! Results page by keyset cursor ([`SearchCursor`]: a hit's rank, publication time and
//! id), which is only sound if a post's rank depends on nothing but the post and the
//! query; otherwise a cursor taken on page 1 would skip or repeat hits on page 2. So
//! neither SQLite's `bm25` (it weighs words by the whole index, drafts included, so
//! every save of any post would move every rank, and a rank in a link would tell readers
//! about drafts) nor per-match counting (FTS5's `highlight` re-reads and re-tokenizes
//! each matching post's text: 12 ms for a word in 1,000 posts) is used. A hit's rank is
//! [`TITLE_WEIGHT`] when its title alone holds the query's words and phrases, plus one
//! when its text alone does (a post whose words are split between the two ranks 0):
//! both backends answer that from their index, and the same way.
//!
//! Only the page's hits get their highlighted title and snippet: ranking and counting
//! read the index and the narrow `posts_visible` index (migration 0012), never a post's
//! text.

use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};
use time::OffsetDateTime;

use super::posts::visible_at;
use super::{time_at, time_or_never, unix, Backend, Big, Pool};
use crate::domain::PostId;
use crate::text::{LT_STANDIN, MARK_END, MARK_START};

/// Title matches weigh this many times a body match (bm25 weights on SQLite; ts_rank's
/// A and B weights on PostgreSQL).
const TITLE_WEIGHT: f64 = 10.0;

/// Words of context in a snippet.
const SNIPPET_WORDS: u32 = 24;

/// A reader's query as phrases of words: every group must match (AND), a group matches
/// when any of its phrases does (OR), and no excluded phrase may match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    pub groups: Vec<Vec<Phrase>>,
    pub excluded: Vec<Phrase>,
}

/// Words that must appear together in this order; one word is a phrase of one.
pub type Phrase = Vec<String>;

impl Query {
    /// Reads a websearch-style query: words, `"quoted phrases"` (an unclosed quote runs
    /// to the end), `or` between two terms, `-` before a term to exclude it. A term's
    /// words are its runs of letters and digits, lowercased; a term with none (only
    /// punctuation) is dropped, and so is an `or` with nothing on one side.
    pub fn parse(input: &str) -> Query {
        let mut query = Query::default();
        let mut pending_or = false;
        for (term, quoted, negated) in terms(input) {
            let words = words(&term);
            if !quoted && !negated && words.len() == 1 && words[0] == "or" && term.len() == 2 {
                pending_or = !query.groups.is_empty();
                continue;
            }
            if words.is_empty() {
                continue;
            }
            if negated {
                query.excluded.push(words);
                pending_or = false;
            } else if pending_or {
                if let Some(group) = query.groups.last_mut() {
                    group.push(words);
                }
                pending_or = false;
            } else {
                query.groups.push(vec![words]);
            }
        }
        query
    }

    /// True when nothing is asked for (only exclusions, or no words at all): such a query
    /// finds nothing.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The query in FTS5 syntax, every phrase quoted: `("a" OR "b c") AND "d" NOT "e"`.
    fn fts5(&self) -> String {
        let quote = |p: &Phrase| format!("\"{}\"", p.join(" ").replace('"', "\"\""));
        let positive = self
            .groups
            .iter()
            .map(|g| format!("({})", g.iter().map(quote).collect::<Vec<_>>().join(" OR ")))
            .collect::<Vec<_>>()
            .join(" AND ");
        let mut out = format!("({positive})");
        for p in &self.excluded {
            out.push_str(" NOT ");
            out.push_str(&quote(p));
        }
        out
    }

    /// The query's positive part in FTS5 syntax, restricted to one column: what a post
    /// must hold there for that column to count in its rank.
    fn fts5_in(&self, column: &str) -> String {
        let quote = |p: &Phrase| format!("\"{}\"", p.join(" ").replace('"', "\"\""));
        let positive = self
            .groups
            .iter()
            .map(|g| format!("({})", g.iter().map(quote).collect::<Vec<_>>().join(" OR ")))
            .collect::<Vec<_>>()
            .join(" AND ");
        format!("{{{column}}} : ({positive})")
    }

    /// The query for PostgreSQL's `websearch_to_tsquery`, every phrase quoted:
    /// `"a" or "b c" "d" -"e"`.
    fn websearch(&self) -> String {
        let quote = |p: &Phrase| format!("\"{}\"", p.join(" "));
        let mut parts: Vec<String> = self
            .groups
            .iter()
            .map(|g| g.iter().map(quote).collect::<Vec<_>>().join(" or "))
            .collect();
        parts.extend(self.excluded.iter().map(|p| format!("-{}", quote(p))));
        parts.join(" ")
    }
}

/// The input's terms as (text, quoted, negated).
fn terms(input: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut negated = false;
        if c == '-' {
            chars.next();
            negated = true;
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            let phrase: String = chars.by_ref().take_while(|&c| c != '"').collect();
            out.push((phrase, true, negated));
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' {
                    break;
                }
                word.push(c);
                chars.next();
            }
            out.push((word, false, negated));
        }
    }
    out
}

/// Runs of letters and digits, lowercased: the words both backends' tokenizers see.
fn words(term: &str) -> Vec<String> {
    term.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// One result. `title_marked` and `snippet_marked` are plain text with
/// [`MARK_START`]/[`MARK_END`] around the matched words (see `text::highlight`).
#[derive(Debug, Clone)]
pub struct Hit {
    pub id: PostId,
    pub slug: String,
    pub title: String,
    pub title_marked: String,
    pub snippet_marked: String,
    pub author_name: String,
    /// "" while the author has no handle yet.
    pub author_handle: String,
    pub published_at: Option<OffsetDateTime>,
    pub updated_at: OffsetDateTime,
    pub rank: f64,
}

impl<'r> FromRow<'r, AnyRow> for Hit {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(Hit {
            id: PostId(row.try_get("id")?),
            slug: row.try_get("slug")?,
            title: row.try_get("title")?,
            title_marked: row.try_get("title_marked")?,
            snippet_marked: row.try_get("snippet_marked")?,
            author_name: row.try_get("author_name")?,
            author_handle: row.try_get("author_handle")?,
            published_at: time_or_never(row, "published_at")?,
            updated_at: time_at(row, "updated_at")?,
            rank: row.try_get("hit_rank")?,
        })
    }
}

impl Hit {
    /// Where a page that ends with this hit goes on: the hits after it.
    pub fn cursor(&self) -> SearchCursor {
        SearchCursor {
            rank: self.rank,
            at: self.published_at.map_or(0, unix),
            id: self.id.0,
        }
    }
}

/// A place in the best-first order of a query's hits: (rank, published_at, id) of the
/// last hit shown, the order's whole key. Written in links as `<rank>-<unix
/// seconds>-<id>`, the rank in the shortest decimal form that reads back as the same
/// number, so the database compares exactly what it computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchCursor {
    rank: f64,
    at: i64,
    id: i64,
}

impl std::fmt::Display for SearchCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.rank, self.at, self.id)
    }
}

impl std::str::FromStr for SearchCursor {
    type Err = ();

    /// A non-negative decimal number (digits, at most one '.') and two non-negative
    /// integers, joined by '-'; anything else (exponents, signs, "inf") is refused.
    fn from_str(s: &str) -> Result<SearchCursor, ()> {
        let mut parts = s.split('-');
        let (Some(rank), Some(at), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(());
        };
        let number = |n: &str| -> Result<i64, ()> {
            if n.is_empty() || n.len() > 18 || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            n.parse().map_err(|_| ())
        };
        let decimal = !rank.is_empty()
            && rank.len() <= 400
            && rank.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && rank.bytes().filter(|&b| b == b'.').count() <= 1
            && rank.bytes().any(|b| b.is_ascii_digit());
        if !decimal {
            return Err(());
        }
        let rank: f64 = rank.parse().map_err(|_| ())?;
        if !rank.is_finite() {
            return Err(());
        }
        Ok(SearchCursor {
            rank,
            at: number(at)?,
            id: number(id)?,
        })
    }
}

/// Where a page of results starts: after skipping some (`&page=N`), or after a cursor.
#[derive(Debug, Clone, Copy)]
pub enum PageStart {
    Offset(i64),
    After(SearchCursor),
}

/// On SQLite: the rank of the row of `posts_fts` at hand (see the module documentation),
/// with the query's positive part restricted to the title bound at `$title` and to the
/// text at `$title + 1` ([`Query::fts5_in`]). FTS5 answers each restriction once per
/// statement, from its index.
fn sqlite_rank(title: usize) -> String {
    let body = title + 1;
    format!(
        "CAST({TITLE_WEIGHT} * (posts_fts.rowid IN (SELECT rowid FROM posts_fts \
         WHERE posts_fts MATCH ${title})) + (posts_fts.rowid IN (SELECT rowid FROM posts_fts \
         WHERE posts_fts MATCH ${body})) AS REAL)"
    )
}

/// SQLite's matching posts that are public at `$now`, read through `posts_visible`
/// rather than the wide posts rows. CROSS JOIN keeps FTS5 as the outer loop: otherwise
/// SQLite walks the visible posts and asks FTS5 once for each.
fn sqlite_matches(now: usize) -> String {
    format!(
        "posts_fts CROSS JOIN posts p INDEXED BY posts_visible ON p.id = posts_fts.rowid \
         WHERE posts_fts MATCH $1 AND {}",
        visible_at(now)
    )
}

/// On PostgreSQL: the rank of post `p` for tsquery `q`, as on SQLite: title words carry
/// weight A and text words B in `p.search`, so `ts_filter` keeps one of the two.
fn postgres_rank() -> String {
    format!(
        "({TITLE_WEIGHT} * (ts_filter(p.search, '{{a}}') @@ q)::int \
         + (ts_filter(p.search, '{{b}}') @@ q)::int)::float8"
    )
}

/// A query's public hits, best first: (rank, published_at, id) each, as of `version` of
/// the page generation and until `due` (unix seconds: the next publication time then to
/// come, when a scheduled post joins the public ones).
struct Ranked {
    version: i64,
    due: Option<i64>,
    hits: Vec<(f64, i64, i64)>,
}

impl Ranked {
    /// The place of the first hit after `c` in the best-first order.
    fn after(&self, c: SearchCursor) -> usize {
        self.hits
            .partition_point(|&(rank, at, id)| (rank, at, id) >= (c.rank, c.at, c.id))
    }
}

/// Most queries kept, and most hits kept over all of them (24 bytes each, so about
/// 14 MiB): a visitor sending ever new queries only pushes older ones out. A query with
/// more hits than `MAX_KEPT_HITS` / 2 is ranked again for every page.
const MAX_KEPT_QUERIES: usize = 64;
const MAX_KEPT_HITS: usize = 600_000;

/// The ranked hits of recent queries, per pool. Ranking costs what the number of
/// matching posts costs (every one is ranked, and its visibility checked); a page of
/// results then costs what its ten hits cost. An entry holds while the page
/// generation (moved by every write to posts, by triggers, on any instance) is unchanged and no
/// scheduled post has come due since: both are checked on each use, so what a page shows
/// is never older than the database.
#[derive(Debug, Default)]
pub struct Cache {
    entries: std::sync::Mutex<std::collections::VecDeque<(String, std::sync::Arc<Ranked>)>>,
    /// One lock per query being ranked: requests that find nothing kept wait for the one
    /// ranking the same query instead of all ranking it at once. Different queries do
    /// not wait on each other (one lock for all let a slow query hold up every search).
    ranking: std::sync::Mutex<std::collections::HashMap<String, RankingLock>>,
    /// Rankings at once, `RANKINGS_AT_ONCE`: each holds every hit of its query.
    rankers: RankingSlots,
}

type RankingLock = std::sync::Arc<rocket::tokio::sync::Mutex<()>>;

/// How many queries are ranked at once, per pool: what bounds the memory ranking takes
/// (each holds 24 bytes a hit) while many different queries arrive together.
const RANKINGS_AT_ONCE: usize = 2;

#[derive(Debug)]
struct RankingSlots(rocket::tokio::sync::Semaphore);

impl Default for RankingSlots {
    fn default() -> Self {
        RankingSlots(rocket::tokio::sync::Semaphore::new(RANKINGS_AT_ONCE))
    }
}

impl std::fmt::Debug for Ranked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ranked({} hits)", self.hits.len())
    }
}

impl Cache {
    /// The hits kept for `key` if they were ranked at page generation `version` or later
    /// (generations only grow, so a later ranking is at least as fresh) and no scheduled
    /// post has come due by `now`.
    fn get(&self, key: &str, version: i64, now: i64) -> Option<std::sync::Arc<Ranked>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .find(|(k, r)| k == key && r.version >= version && r.due.is_none_or(|d| now < d))
            .map(|(_, r)| r.clone())
    }

    /// The lock of `key`'s ranking, made when none is held.
    fn ranking_lock(&self, key: &str) -> KeyLock<'_> {
        let mut locks = self.ranking.lock().unwrap_or_else(|p| p.into_inner());
        KeyLock {
            cache: self,
            key: key.to_string(),
            lock: locks.entry(key.to_string()).or_default().clone(),
        }
    }
}

/// A request's hold on a query's ranking lock; dropped (also when the request is given
/// up), it forgets the lock once no other request holds or waits for it.
struct KeyLock<'a> {
    cache: &'a Cache,
    key: String,
    lock: RankingLock,
}

impl Drop for KeyLock<'_> {
    fn drop(&mut self) {
        let mut locks = self.cache.ranking.lock().unwrap_or_else(|p| p.into_inner());
        // The map's and this one: nobody else has it.
        if std::sync::Arc::strong_count(&self.lock) == 2 {
            locks.remove(&self.key);
        }
    }
}

impl Cache {
    fn put(&self, key: String, ranked: std::sync::Arc<Ranked>) {
        if ranked.hits.len() > MAX_KEPT_HITS / 2 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|(k, _)| *k != key);
        entries.push_back((key, ranked));
        let mut kept: usize = entries.iter().map(|(_, r)| r.hits.len()).sum();
        while entries.len() > MAX_KEPT_QUERIES || kept > MAX_KEPT_HITS {
            match entries.pop_front() {
                Some((_, r)) => kept -= r.hits.len(),
                None => break,
            }
        }
    }
}

/// The page cache's generation (migration 0011), which triggers move in every write to
/// posts, tags and authors' names: what search shows changes with nothing else.
async fn search_version(pool: &Pool) -> sqlx::Result<i64> {
    let (version,): (i64,) = sqlx::query_as("SELECT generation FROM page_generation WHERE id = 1")
        .fetch_one(&pool.inner)
        .await?;
    Ok(version)
}

/// `query`'s hits public at `now`, best first: from the pool's cache while they hold,
/// else ranked by the database (and kept).
async fn ranked(
    pool: &Pool,
    query: &Query,
    now: OffsetDateTime,
) -> sqlx::Result<std::sync::Arc<Ranked>> {
    let now = unix(now);
    let (key, text) = match pool.backend {
        Backend::Sqlite => (query.fts5(), query.fts5()),
        Backend::Postgres => (query.websearch(), query.websearch()),
    };
    // Read before ranking: a write committed in between moves the version past what is
    // kept, so the entry is ranked again next time rather than kept stale.
    let version = search_version(pool).await?;
    if let Some(r) = pool.search_cache.get(&key, version, now) {
        return Ok(r);
    }
    let held = pool.search_cache.ranking_lock(&key);
    let _ranking = held.lock.lock().await;
    rank_once(pool, query, &key, text, version, now).await
}

/// Under `key`'s ranking lock: its hits, from the cache when a ranking that began after
/// the request arrived (at generation `arrived` or later) left them, else ranked now.
async fn rank_once(
    pool: &Pool,
    query: &Query,
    key: &str,
    text: String,
    arrived: i64,
    now: i64,
) -> sqlx::Result<std::sync::Arc<Ranked>> {
    // Under a steady stream of writes the generation moves on while requests wait here;
    // checking against the newest one made every waiter rank the same query again.
    if let Some(r) = pool.search_cache.get(key, arrived, now) {
        return Ok(r);
    }
    let _slot = pool
        .search_cache
        .rankers
        .0
        .acquire()
        .await
        .expect("the semaphore is never closed");
    let version = search_version(pool).await?;
    let hits: Vec<(f64, Big, i64)> = match pool.backend {
        Backend::Sqlite => {
            let sql = format!(
                "SELECT k.hit_rank, CAST(k.published_at AS TEXT), k.id FROM (SELECT {rank} AS hit_rank, \
                 p.published_at, p.id FROM {matches}) k \
                 ORDER BY k.hit_rank DESC, k.published_at DESC, k.id DESC",
                rank = sqlite_rank(3),
                matches = sqlite_matches(2),
            );
            sqlx::query_as(&sql)
                .bind(text)
                .bind(now)
                .bind(query.fts5_in("title"))
                .bind(query.fts5_in("body"))
                .fetch_all(&pool.inner)
                .await?
        }
        Backend::Postgres => {
            let sql = format!(
                "SELECT k.rank, CAST(k.published_at AS TEXT), k.id FROM (SELECT p.id, p.published_at, \
                 {rank} AS rank FROM posts p, websearch_to_tsquery('simple', $1) q \
                 WHERE p.search @@ q AND {visible}) k \
                 ORDER BY k.rank DESC, k.published_at DESC, k.id DESC",
                rank = postgres_rank(),
                visible = visible_at(2)
            );
            sqlx::query_as(&sql)
                .bind(text)
                .bind(now)
                .fetch_all(&pool.inner)
                .await?
        }
    };
    // 0 when none is to come (sqlx's Any driver cannot decode a bare NULL).
    let hits = hits.into_iter().map(|(r, at, id)| (r, at.0, id)).collect();
    let (Big(due),): (Big,) = sqlx::query_as(
        "SELECT CAST(COALESCE(MIN(p.published_at), 0) AS TEXT) FROM posts p \
         WHERE p.published = 1 AND p.published_at > $1",
    )
    .bind(now)
    .fetch_one(&pool.inner)
    .await?;
    let due = (due > now).then_some(due);
    let ranked = std::sync::Arc::new(Ranked { version, due, hits });
    pool.search_cache.put(key.to_string(), ranked.clone());
    Ok(ranked)
}

/// Posts public at `now` matching `query`, best match first (then newest, then by id),
/// `limit` of them from `from`. An empty query finds nothing without asking the
/// database. Every post is indexed; visibility ([`posts::VISIBLE`](super::posts::VISIBLE))
/// is decided here, at query time, so a scheduled post is found as soon as it is due.
pub async fn search(
    pool: &Pool,
    query: &Query,
    now: OffsetDateTime,
    from: PageStart,
    limit: i64,
) -> sqlx::Result<Vec<Hit>> {
    if query.is_empty() {
        return Ok(Vec::new());
    }
    let ranked = ranked(pool, query, now).await?;
    let first = match from {
        PageStart::Offset(n) => usize::try_from(n).unwrap_or(0),
        PageStart::After(c) => ranked.after(c),
    };
    let first = first.min(ranked.hits.len());
    let last = first
        .saturating_add(usize::try_from(limit).unwrap_or(0))
        .min(ranked.hits.len());
    page_hits(pool, query, &ranked.hits[first..last]).await
}

/// The hits of one page, in the order of `page` ((rank, published_at, id), as ranked):
/// their highlighted titles and snippets, which both backends make by re-reading the
/// text, so only for these.
async fn page_hits(pool: &Pool, query: &Query, page: &[(f64, i64, i64)]) -> sqlx::Result<Vec<Hit>> {
    let (Some(low), Some(high)) = (
        page.iter().map(|h| h.2).min(),
        page.iter().map(|h| h.2).max(),
    ) else {
        return Ok(Vec::new());
    };
    // On SQLite the range lets FTS5 skip to the ids; the list picks them out. The ids
    // are bound, so a page of n hits is one statement whatever its ids, and each
    // connection's statement cache holds at most one per page length.
    let ids = |first: usize| {
        (first..first + page.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (start, end) = (MARK_START.to_string(), MARK_END.to_string());
    let found: Vec<Hit> = match pool.backend {
        Backend::Sqlite => {
            let sql = format!(
                "SELECT p.id, p.slug, p.title, u.name AS author_name, \
                 u.handle AS author_handle, CAST(p.published_at AS TEXT) AS published_at, \
                 CAST(p.updated_at AS TEXT) AS updated_at, 0.0 AS hit_rank, \
                 highlight(posts_fts, 0, $2, $3) AS title_marked, \
                 snippet(posts_fts, 1, $2, $3, '…', {SNIPPET_WORDS}) AS snippet_marked \
                 FROM posts_fts CROSS JOIN posts p ON p.id = posts_fts.rowid \
                 JOIN users u ON u.id = p.author_id \
                 WHERE posts_fts MATCH $1 AND posts_fts.rowid BETWEEN $4 AND $5 \
                 AND posts_fts.rowid IN ({})",
                ids(6)
            );
            let mut select = sqlx::query_as(&sql)
                .bind(query.fts5())
                .bind(start)
                .bind(end)
                .bind(low)
                .bind(high);
            for hit in page {
                select = select.bind(hit.2);
            }
            select.fetch_all(&pool.inner).await?
        }
        Backend::Postgres => {
            // ts_headline re-reads the whole text. Its parser drops anything that looks
            // like an HTML tag, which in plain text is what the author wrote: '<' goes
            // through as LT_STANDIN and comes back.
            let body_opts = format!(
                "StartSel={start}, StopSel={end}, MaxWords={SNIPPET_WORDS}, MinWords={}, \
                 ShortWord=0, MaxFragments=1",
                SNIPPET_WORDS / 2
            );
            let title_opts = format!("StartSel={start}, StopSel={end}, HighlightAll=true");
            let sql = format!(
                "SELECT p.id, p.slug, p.title, u.name AS author_name, \
                 u.handle AS author_handle, CAST(p.published_at AS TEXT) AS published_at, \
                 CAST(p.updated_at AS TEXT) AS updated_at, \
                 0.0::float8 AS hit_rank, \
                 ts_headline('simple', replace(p.title, '<', $4), q, $2) AS title_marked, \
                 ts_headline('simple', replace(left(CASE WHEN p.body_text = '' THEN p.body_md \
                   ELSE p.body_text END, 100000), '<', $4), q, $3) AS snippet_marked \
                 FROM posts p JOIN users u ON u.id = p.author_id, \
                 websearch_to_tsquery('simple', $1) q WHERE p.id IN ({})",
                ids(5)
            );
            let mut select = sqlx::query_as(&sql)
                .bind(query.websearch())
                .bind(title_opts)
                .bind(body_opts)
                .bind(LT_STANDIN.to_string());
            for hit in page {
                select = select.bind(hit.2);
            }
            select.fetch_all(&pool.inner).await?
        }
    };
    let mut found: std::collections::HashMap<i64, Hit> =
        found.into_iter().map(|hit| (hit.id.0, hit)).collect();
    // A post deleted since it was ranked is left out.
    Ok(page
        .iter()
        .filter_map(|&(rank, _, id)| found.remove(&id).map(|hit| Hit { rank, ..hit }))
        .collect())
}

/// How many posts public at `now` match `query` (0 for an empty query).
pub async fn count(pool: &Pool, query: &Query, now: OffsetDateTime) -> sqlx::Result<i64> {
    if query.is_empty() {
        return Ok(0);
    }
    Ok(ranked(pool, query, now).await?.hits.len() as i64)
}

/// The cursor of the page of `page_size` hits just better than `cursor` (the "Better
/// matches" link of a cursor page); None when that page is the first one.
pub async fn better_page(
    pool: &Pool,
    query: &Query,
    now: OffsetDateTime,
    cursor: SearchCursor,
    page_size: i64,
) -> sqlx::Result<Option<SearchCursor>> {
    if query.is_empty() {
        return Ok(None);
    }
    let ranked = ranked(pool, query, now).await?;
    // As for the home page's "Newer posts": the better page holds the `page_size` hits
    // at or just better than the cursor, so it starts after the one `page_size` further.
    let at_or_better = ranked.after(cursor);
    let page_size = usize::try_from(page_size).unwrap_or(0);
    Ok(at_or_better
        .checked_sub(page_size + 1)
        .map(|i| ranked.hits[i])
        .map(|(rank, at, id)| SearchCursor { rank, at, id }))
}

/// The first `chars` characters of a post's plain text; "" when the post has none
/// stored (saved before search existed, or by a writer that leaves it out).
pub async fn text_start(db: &sqlx::AnyPool, id: PostId, chars: i64) -> sqlx::Result<String> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT substr(body_text, 1, CAST($1 AS INTEGER)) FROM posts WHERE id = $2")
            .bind(chars)
            .bind(id.0)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|(t,)| t).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrase(words: &[&str]) -> Phrase {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn words_phrases_or_and_exclusions() {
        let q = Query::parse(r#"Rust "borrow checker" async or await -Java -"old news""#);
        assert_eq!(
            q.groups,
            vec![
                vec![phrase(&["rust"])],
                vec![phrase(&["borrow", "checker"])],
                vec![phrase(&["async"]), phrase(&["await"])],
            ]
        );
        assert_eq!(
            q.excluded,
            vec![phrase(&["java"]), phrase(&["old", "news"])]
        );
        assert_eq!(
            q.fts5(),
            r#"(("rust") AND ("borrow checker") AND ("async" OR "await")) NOT "java" NOT "old news""#
        );
        assert_eq!(
            q.websearch(),
            r#""rust" "borrow checker" "async" or "await" -"java" -"old news""#
        );
    }

    #[test]
    fn a_cursor_reads_back_as_the_very_rank_it_was_written_from() {
        for rank in [
            0.0,
            1.0,
            22.0,
            0.060_792_71_f32 as f64,
            1e-20,
            0.1 + 0.2,
            f64::MAX,
        ] {
            let c = SearchCursor {
                rank,
                at: 1_700_000_000,
                id: 42,
            };
            let text = c.to_string();
            assert_eq!(text.parse::<SearchCursor>(), Ok(c), "{text}");
        }
        for bad in [
            "",
            "1-2",
            "1-2-3-4",
            "-1-2-3",
            "1e5-2-3",
            "inf-2-3",
            "NaN-2-3",
            ".-2-3",
            "1..2-3-4",
            "1.2.3-4-5",
            "1-x-3",
            "1-2-",
            "+1-2-3",
            " 1-2-3",
        ] {
            assert!(bad.parse::<SearchCursor>().is_err(), "{bad:?}");
        }
        assert!(format!("{}-1-1", "9".repeat(401))
            .parse::<SearchCursor>()
            .is_err());
    }

    #[test]
    fn operators_and_punctuation_are_only_text() {
        let q = Query::parse(r#"title:x* NEAR(a b) AND "" ((( ''' ")"#);
        assert_eq!(
            q.groups,
            vec![
                vec![phrase(&["title", "x"])],
                vec![phrase(&["near", "a"])],
                vec![phrase(&["b"])],
                vec![phrase(&["and"])],
            ]
        );
        assert!(Query::parse("!!! ... \"\" - -- ***").is_empty());
        assert!(Query::parse("-only -exclusions").is_empty());
        assert!(Query::parse("or").is_empty());
        assert_eq!(Query::parse("or a or").groups, vec![vec![phrase(&["a"])]]);
        assert_eq!(Query::parse(r#"say "unclosed quote"#).groups.len(), 2);
        assert_eq!(
            Query::parse("ÉCOLE café").groups[0],
            vec![phrase(&["école"])]
        );
    }
}
