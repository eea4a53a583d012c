//! Full-text search over public posts: an FTS5 table on SQLite, a `tsvector` column on
//! PostgreSQL (migration 0007), both fed the same text and asked the same question.
//!
//! What a reader types is never handed to either query language: [`Query::parse`] reads
//! it (words, "quoted phrases", `or`, `-exclusions`, websearch style) into phrases of
//! plain words, and each backend gets a query built from those, every term quoted. So no
//! input is a syntax error, and both backends match the same posts: exact words, case
//! folded, no stemming, title matches ranked above body matches.

use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};
use time::OffsetDateTime;

use super::posts::visible_at;
use super::{time_at, time_or_never, unix, Backend, Pool};
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
    pub slug: String,
    pub title: String,
    pub title_marked: String,
    pub snippet_marked: String,
    pub author_name: String,
    pub published_at: Option<OffsetDateTime>,
    pub updated_at: OffsetDateTime,
}

impl<'r> FromRow<'r, AnyRow> for Hit {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(Hit {
            slug: row.try_get("slug")?,
            title: row.try_get("title")?,
            title_marked: row.try_get("title_marked")?,
            snippet_marked: row.try_get("snippet_marked")?,
            author_name: row.try_get("author_name")?,
            published_at: time_or_never(row, "published_at")?,
            updated_at: time_at(row, "updated_at")?,
        })
    }
}

/// Posts public at `now` matching `query`, best match first (then newest), `limit` from
/// `offset`. An empty query finds nothing without asking the database. Every post is
/// indexed; visibility ([`posts::VISIBLE`](super::posts::VISIBLE)) is decided here, at
/// query time, so a scheduled post is found as soon as it is due.
pub async fn search(
    pool: &Pool,
    query: &Query,
    now: OffsetDateTime,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<Hit>> {
    if query.is_empty() {
        return Ok(Vec::new());
    }
    let (start, end) = (MARK_START.to_string(), MARK_END.to_string());
    match pool.backend {
        Backend::Sqlite => {
            sqlx::query_as(&format!(
                "SELECT p.slug, p.title, u.name AS author_name, p.published_at, p.updated_at, \
                 highlight(posts_fts, 0, $4, $5) AS title_marked, \
                 snippet(posts_fts, 1, $4, $5, '…', {SNIPPET_WORDS}) AS snippet_marked \
                 FROM posts_fts JOIN posts p ON p.id = posts_fts.rowid \
                 JOIN users u ON u.id = p.author_id \
                 WHERE posts_fts MATCH $1 AND {} \
                 ORDER BY bm25(posts_fts, {TITLE_WEIGHT}, 1.0), p.published_at DESC, p.id DESC \
                 LIMIT $2 OFFSET $3",
                visible_at(6)
            ))
            .bind(query.fts5())
            .bind(limit)
            .bind(offset)
            .bind(start)
            .bind(end)
            .bind(unix(now))
            .fetch_all(&pool.inner)
            .await
        }
        Backend::Postgres => {
            // Only the page's rows get headlines: ts_headline re-reads the whole text.
            // Its parser drops anything that looks like an HTML tag, which in plain text
            // is what the author wrote: '<' goes through as LT_STANDIN and comes back.
            let body_opts = format!(
                "StartSel={start}, StopSel={end}, MaxWords={SNIPPET_WORDS}, MinWords={}, \
                 ShortWord=0, MaxFragments=1",
                SNIPPET_WORDS / 2
            );
            let title_opts = format!("StartSel={start}, StopSel={end}, HighlightAll=true");
            let body_weight = 1.0 / TITLE_WEIGHT;
            sqlx::query_as(&format!(
                "SELECT p.slug, p.title, u.name AS author_name, p.published_at, p.updated_at, \
                 ts_headline('simple', replace(p.title, '<', $6), hits.q, $4) AS title_marked, \
                 ts_headline('simple', replace(left(CASE WHEN p.body_text = '' THEN p.body_md \
                   ELSE p.body_text END, 100000), '<', $6), hits.q, $5) AS snippet_marked \
                 FROM (SELECT p.id, p.published_at, q, \
                   ts_rank('{{0.1, 0.1, {body_weight}, 1.0}}', p.search, q) AS rank \
                   FROM posts p, websearch_to_tsquery('simple', $1) q \
                   WHERE p.search @@ q AND {visible} \
                   ORDER BY rank DESC, p.published_at DESC, p.id DESC LIMIT $2 OFFSET $3) hits \
                 JOIN posts p ON p.id = hits.id JOIN users u ON u.id = p.author_id \
                 ORDER BY hits.rank DESC, hits.published_at DESC, hits.id DESC",
                visible = visible_at(7)
            ))
            .bind(query.websearch())
            .bind(limit)
            .bind(offset)
            .bind(title_opts)
            .bind(body_opts)
            .bind(LT_STANDIN.to_string())
            .bind(unix(now))
            .fetch_all(&pool.inner)
            .await
        }
    }
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
