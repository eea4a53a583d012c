//! The author's desk: their posts, writing, editing and deleting.

use chrono::TimeZone;
use chrono_tz::Tz;
use rocket::http::Status;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, uri, FromForm, Route, State};
use rocket_dyn_templates::Template;
use serde::Serialize;
use time::OffsetDateTime;

use super::preview;
use super::public::ListItem;
use super::tags::{parse_tags, tags_field};
use super::verify::Standing;
use super::{Frame, Reply};
use crate::auth::csrf::{CsrfForm, Submit};
use crate::auth::local::FieldErrors;
use crate::auth::CurrentUser;
use crate::config::Config;
use crate::db::posts::{self, NewPost, Post, PostUpdate};
use crate::db::tags::{self, NewTag};
use crate::db::{current_time, Db};
use crate::error::{Error, Result};
use crate::excerpt::{excerpt_source, has_more_marker, EXCERPT_MAX};
use crate::render::{render_all, slug_for, RenderError, Rendered};

pub const TITLE_MAX: usize = 200;
/// About 100 printed pages; the `form` limit (2 MiB) bounds the request itself.
pub use crate::render::BODY_MAX;

pub fn routes() -> Vec<Route> {
    routes![dashboard, create_post, edit_form, update_post, delete_post]
}

/// The post form. Fields other than these are ignored: nobody edits an author or id in.
#[derive(FromForm, Default)]
pub struct PostForm {
    #[field(default = String::new())]
    title: String,
    #[field(default = String::new())]
    body: String,
    publish: bool,
    /// `<input type="datetime-local">`: a local time in `site.timezone`; "" for none.
    #[field(default = String::new())]
    publish_at: String,
    /// Optional Markdown, used when the body has no `<!--more-->` line.
    #[field(default = String::new())]
    excerpt: String,
    /// "preview" for the Preview button: show the body rendered, save nothing.
    #[field(default = String::new())]
    action: String,
    /// Comma-separated (`tags::parse_tags`).
    #[field(default = String::new())]
    tags: String,
}

#[derive(Serialize, Default)]
struct PostValues {
    title: String,
    body: String,
    publish: bool,
    publish_at: String,
    excerpt: String,
    tags: String,
}

/// A post form that passed its checks.
struct Checked<'a> {
    title: String,
    body: &'a str,
    excerpt: &'a str,
    /// The time typed, in UTC.
    publish_at: Option<OffsetDateTime>,
    tags: Vec<NewTag>,
}

/// "3 Dec 2026, 14:30 CET": a time as clocks in the site's zone show it.
pub fn zoned_time(t: OffsetDateTime, tz: Tz) -> String {
    zoned(t, tz)
        .map(|z| z.format("%-d %b %Y, %H:%M %Z").to_string())
        .unwrap_or_default()
}

fn zoned(t: OffsetDateTime, tz: Tz) -> Option<chrono::DateTime<Tz>> {
    chrono::DateTime::from_timestamp(t.unix_timestamp(), 0).map(|u| u.with_timezone(&tz))
}

/// The `datetime-local` value showing `t` in the site's zone ("2026-12-03T14:30").
fn local_input(t: OffsetDateTime, tz: Tz) -> String {
    zoned(t, tz)
        .map(|z| z.format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

/// A `datetime-local` value ("2026-12-03T14:30", seconds optional) read as a time in
/// `tz`: None when blank, else the instant or the message for the field. Of a time the
/// clocks pass twice (when they go back) the first is taken; one they skip is refused.
fn parse_local(value: &str, tz: Tz) -> std::result::Result<Option<OffsetDateTime>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let format_hint = "Enter the date and time as YYYY-MM-DDTHH:MM, for example 2026-12-24T09:00.";
    let naive = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(value, f).ok())
        .filter(|_| value.len() <= 19)
        .ok_or_else(|| format_hint.to_string())?;
    let year_ok = (1971..=9999).contains(&chrono::Datelike::year(&naive));
    if !year_ok {
        return Err("Pick a year between 1971 and 9999.".into());
    }
    let local = tz.from_local_datetime(&naive).earliest().ok_or_else(|| {
        format!(
            "{value} does not exist in {} (the clocks skip it); pick another time.",
            tz.name()
        )
    })?;
    OffsetDateTime::from_unix_timestamp(local.timestamp())
        .map(Some)
        .map_err(|_| format_hint.to_string())
}

impl PostForm {
    /// The trimmed title, the body, the excerpt field, the publication time typed (read
    /// in `tz`) and the tags, or the problems by field.
    fn check(&self, tz: Tz) -> std::result::Result<Checked<'_>, FieldErrors> {
        let mut errors = FieldErrors::new();
        let title = self.title.trim();
        if title.is_empty() {
            errors
                .entry("title")
                .or_default()
                .push("Give the post a title.".into());
        } else if title.chars().count() > TITLE_MAX {
            errors
                .entry("title")
                .or_default()
                .push(format!("Keep the title under {TITLE_MAX} characters."));
        }
        if self.body.chars().count() > BODY_MAX {
            errors
                .entry("body")
                .or_default()
                .push(format!("The body is over {BODY_MAX} characters."));
        }
        if self.excerpt.chars().count() > EXCERPT_MAX {
            errors
                .entry("excerpt")
                .or_default()
                .push(format!("Keep the excerpt under {EXCERPT_MAX} characters."));
        }
        let publish_at = match parse_local(&self.publish_at, tz) {
            Ok(at) => at,
            Err(msg) => {
                errors.entry("publish_at").or_default().push(msg);
                None
            }
        };
        let tags = parse_tags(&self.tags).unwrap_or_else(|problems| {
            errors.insert("tags", problems);
            Vec::new()
        });
        if errors.is_empty() {
            Ok(Checked {
                title: title.to_string(),
                body: &self.body,
                excerpt: self.excerpt.trim(),
                publish_at,
                tags,
            })
        } else {
            Err(errors)
        }
    }

    fn values(&self) -> PostValues {
        PostValues {
            title: self.title.clone(),
            body: self.body.clone(),
            publish: self.publish,
            publish_at: self.publish_at.clone(),
            excerpt: self.excerpt.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// A post's body rendered (HTML and its text) and its excerpt's HTML ("" when there is
/// none), rendered together through the bounded renderer; a refusal comes with the field
/// it concerns.
async fn render_both(
    checked: &Checked<'_>,
) -> std::result::Result<(Rendered, String), (&'static str, RenderError)> {
    let source = excerpt_source(checked.body, checked.excerpt);
    let excerpt_field = if has_more_marker(checked.body) || checked.excerpt.is_empty() {
        "body"
    } else {
        "excerpt"
    };
    let sources: &[&str] = if source.is_empty() {
        &[checked.body]
    } else {
        &[checked.body, source]
    };
    let mut rendered = render_all(sources)
        .await
        .map_err(|(i, e)| (if i == 0 { "body" } else { excerpt_field }, e))?
        .into_iter();
    let body = rendered.next().unwrap_or(Rendered {
        html: String::new(),
        text: String::new(),
    });
    Ok((body, rendered.next().map(|r| r.html).unwrap_or_default()))
}

/// `render_both` with the uploads its images show sized for `srcset` (`media::html`), from
/// the database now, so the stored HTML needs no lookup when read.
async fn render_sized(
    db: &Db,
    checked: &Checked<'_>,
) -> Result<std::result::Result<(Rendered, String), (&'static str, RenderError)>> {
    let (mut body, excerpt) = match render_both(checked).await {
        Ok(ok) => ok,
        Err(e) => return Ok(Err(e)),
    };
    let (body_html, excerpt) = crate::web::media::sized(db, &body.html, &excerpt).await?;
    body.html = body_html;
    Ok(Ok((body, excerpt)))
}

/// The fields' messages for a refused render.
fn render_errors(field: &'static str, e: &RenderError) -> FieldErrors {
    let msg = match (field, e) {
        ("excerpt", RenderError::TooDeep | RenderError::TooLarge | RenderError::Failed) => {
            "This excerpt could not be rendered (too deeply nested or too large as HTML). \
             Simplify it and save again."
                .to_string()
        }
        _ => e.to_string(),
    };
    FieldErrors::from([(field, vec![msg])])
}

/// A post form's fields as sent along with an upload from it (`web::media`), to show
/// again as typed.
#[derive(Default)]
pub struct Typed {
    pub title: String,
    pub body: String,
    pub tags: String,
    pub excerpt: String,
    pub publish_at: String,
    pub publish: bool,
}

/// The post form again after an upload from it: the dashboard's (`slug` None) or the
/// edit page of the post `slug`, with the values typed and `errors` by field (a refused
/// file under "file"). Errors: 404/403 as the edit page gives them.
pub async fn form_after_upload(
    db: &Db,
    frame: Frame,
    config: &Config,
    (user, standing): (&CurrentUser, &Standing),
    slug: Option<&str>,
    typed: Typed,
    errors: FieldErrors,
) -> Result<Template> {
    let tz = config.site.timezone;
    let values = PostValues {
        title: typed.title,
        body: typed.body,
        publish: typed.publish,
        publish_at: typed.publish_at,
        excerpt: typed.excerpt,
        tags: typed.tags,
    };
    match slug {
        None => dashboard_page(db, frame, tz, (user, standing), values, errors).await,
        Some(slug) => {
            let post = managed_post(db, user, slug).await?;
            let page = EditPage {
                frame,
                slug: post.slug,
                values,
                errors,
                form: FormInfo::new(tz),
                preview: None,
            };
            Ok(Template::render("edit.html", page))
        }
    }
}

/// A row of the author's own list: a listing item with its state.
#[derive(Serialize)]
struct DeskItem {
    #[serde(flatten)]
    item: ListItem,
    /// When a published post is not yet due: its time in the site's zone.
    scheduled_for: Option<String>,
}

/// What the post form shows besides the values: limits and the zone times are read in.
#[derive(Serialize)]
struct FormInfo {
    /// The title field's `maxlength`, the limit `PostForm::check` enforces.
    title_max: usize,
    excerpt_max: usize,
    /// `site.timezone`, named next to the publish_at field.
    timezone: &'static str,
}

impl FormInfo {
    fn new(tz: Tz) -> FormInfo {
        FormInfo {
            title_max: TITLE_MAX,
            excerpt_max: EXCERPT_MAX,
            timezone: tz.name(),
        }
    }
}

#[derive(Serialize)]
struct DashboardPage {
    frame: Frame,
    posts: Vec<DeskItem>,
    values: PostValues,
    errors: FieldErrors,
    #[serde(flatten)]
    form: FormInfo,
    /// The body rendered, after the Preview button.
    preview: Option<String>,
    /// The address waiting for confirmation (`auth.verify_email`): a notice and a button.
    email_unconfirmed: Option<String>,
}

async fn dashboard_page(
    db: &Db,
    frame: Frame,
    tz: Tz,
    (user, standing): (&CurrentUser, &Standing),
    values: PostValues,
    errors: FieldErrors,
) -> Result<Template> {
    dashboard_page_with(db, frame, tz, (user, standing), values, errors, None).await
}

async fn dashboard_page_with(
    db: &Db,
    frame: Frame,
    tz: Tz,
    (user, standing): (&CurrentUser, &Standing),
    values: PostValues,
    errors: FieldErrors,
    preview: Option<String>,
) -> Result<Template> {
    let rows = posts::list_by_author(&db.0, user.user.id).await?;
    let now = current_time();
    let posts = rows
        .iter()
        .map(|p| DeskItem {
            item: ListItem::from(p),
            scheduled_for: p.is_scheduled(now).then(|| zoned_time(p.shown_date(), tz)),
        })
        .collect();
    Ok(Template::render(
        "dashboard.html",
        DashboardPage {
            frame,
            posts,
            values,
            errors,
            form: FormInfo::new(tz),
            preview,
            email_unconfirmed: standing.unconfirmed.clone(),
        },
    ))
}

#[get("/dashboard")]
async fn dashboard(
    db: &Db,
    frame: Frame,
    config: &State<Config>,
    user: CurrentUser,
    standing: Standing,
) -> Result<Template> {
    let values = PostValues {
        publish: true,
        ..Default::default()
    };
    let tz = config.site.timezone;
    let who = (&user, &standing);
    dashboard_page(db, frame, tz, who, values, FieldErrors::new()).await
}

#[post("/posts", data = "<form>")]
async fn create_post(
    db: &Db,
    frame: Frame,
    config: &State<Config>,
    user: CurrentUser,
    standing: Standing,
    form: CsrfForm<PostForm>,
) -> Result<Reply> {
    let form = form.0;
    let tz = config.site.timezone;
    let who = (&user, &standing);
    if form.action == preview::ACTION {
        let shown = preview::of_body(&form.body).await;
        let page = dashboard_page_with(db, frame, tz, who, form.values(), shown.errors, shown.html)
            .await?;
        return Ok(Reply::Page((shown.status, page)));
    }
    let checked = match form.check(tz) {
        Ok(ok) => ok,
        Err(errors) => {
            let page = dashboard_page(db, frame, tz, who, form.values(), errors).await?;
            return Ok(Reply::Page((Status::UnprocessableEntity, page)));
        }
    };
    let (body, excerpt_html) = match render_sized(db, &checked).await? {
        Ok(ok) => ok,
        Err((field, e)) => {
            let errors = render_errors(field, &e);
            let page = dashboard_page(db, frame, tz, who, form.values(), errors).await?;
            return Ok(Reply::Page((e.status(), page)));
        }
    };
    let now = current_time();
    // An account whose email awaits confirmation keeps what it wrote, as a draft.
    let publish = form.publish && standing.may_publish();
    let new = NewPost {
        author_id: user.user.id,
        title: &checked.title,
        body_md: checked.body,
        body_html: &body.html,
        body_text: &body.text,
        excerpt_md: checked.excerpt,
        excerpt_html: &excerpt_html,
        published: publish,
        publish_at: checked.publish_at,
        now,
    };
    let slug = posts::insert(&db.0, &new, &slug_for(&checked.title), &checked.tags).await?;
    if form.publish && !publish {
        return Ok(Reply::Flash(Flash::error(
            Redirect::to(uri!(edit_form(slug.as_str()))),
            standing.refusal(),
        )));
    }
    let msg = match checked.publish_at {
        Some(at) if form.publish && at > now => {
            format!("Scheduled for {}.", zoned_time(at, tz))
        }
        _ if form.publish => "Published.".to_string(),
        _ => "Saved as a draft; only you can see it.".to_string(),
    };
    Ok(Reply::Flash(Flash::success(
        Redirect::to(uri!(super::public::show_post(slug.as_str()))),
        msg,
    )))
}

/// The post, if this user may manage it: 404 when there is none, 403 when it is
/// someone else's published post. Someone else's draft (or post not yet due) is a 404 like a missing slug,
/// so these routes cannot tell a stranger that a draft exists.
pub(super) async fn managed_post(db: &Db, user: &CurrentUser, slug: &str) -> Result<Post> {
    if !crate::render::is_slug(slug) {
        return Err(Error::NotFound);
    }
    let post = posts::by_slug(&db.0, slug).await?.ok_or(Error::NotFound)?;
    if !user.may_manage(post.author_id) {
        return Err(if post.is_visible(current_time()) {
            Error::Forbidden
        } else {
            Error::NotFound
        });
    }
    Ok(post)
}

#[derive(Serialize)]
struct EditPage {
    frame: Frame,
    slug: String,
    values: PostValues,
    errors: FieldErrors,
    /// As on the dashboard's form.
    #[serde(flatten)]
    form: FormInfo,
    /// As on the dashboard's form.
    preview: Option<String>,
}

#[get("/posts/<slug>/edit")]
async fn edit_form(
    db: &Db,
    frame: Frame,
    config: &State<Config>,
    user: CurrentUser,
    slug: &str,
) -> Result<Template> {
    let post = managed_post(db, &user, slug).await?;
    let tz = config.site.timezone;
    let values = PostValues {
        publish_at: post
            .published_at
            .map(|t| local_input(t, tz))
            .unwrap_or_default(),
        title: post.title,
        body: post.body_md,
        publish: post.published,
        excerpt: post.excerpt_md,
        tags: tags_field(&tags::of_post(&db.0, post.id).await?),
    };
    Ok(Template::render(
        "edit.html",
        EditPage {
            frame,
            slug: post.slug,
            values,
            errors: FieldErrors::new(),
            form: FormInfo::new(tz),
            preview: None,
        },
    ))
}

#[post("/posts/<slug>/edit", data = "<form>")]
async fn update_post(
    db: &Db,
    frame: Frame,
    config: &State<Config>,
    user: CurrentUser,
    slug: &str,
    standing: Standing,
    form: CsrfForm<PostForm>,
) -> Result<Reply> {
    let form = form.0;
    let tz = config.site.timezone;
    let post = managed_post(db, &user, slug).await?;
    if form.action == preview::ACTION {
        let shown = preview::of_body(&form.body).await;
        let page = EditPage {
            frame,
            slug: post.slug,
            values: form.values(),
            errors: shown.errors,
            form: FormInfo::new(tz),
            preview: shown.html,
        };
        return Ok(Reply::Page((
            shown.status,
            Template::render("edit.html", page),
        )));
    }
    let page_with = |frame, errors| EditPage {
        frame,
        slug: post.slug.clone(),
        values: form.values(),
        errors,
        form: FormInfo::new(tz),
        preview: None,
    };
    let checked = match form.check(tz) {
        Ok(ok) => ok,
        Err(errors) => {
            let page = Template::render("edit.html", page_with(frame, errors));
            return Ok(Reply::Page((Status::UnprocessableEntity, page)));
        }
    };
    let (body, excerpt_html) = match render_sized(db, &checked).await? {
        Ok(ok) => ok,
        Err((field, e)) => {
            let page = page_with(frame, render_errors(field, &e));
            return Ok(Reply::Page((
                e.status(),
                Template::render("edit.html", page),
            )));
        }
    };
    let now = current_time();
    // The form shows the stored time to the minute: sent back unchanged, it keeps the
    // stored time to the second.
    let typed = match (checked.publish_at, post.published_at) {
        (Some(_), Some(stored)) if form.publish_at.trim() == local_input(stored, tz) => {
            Some(stored)
        }
        (typed, _) => typed,
    };
    // An account whose email awaits confirmation keeps its changes, as a draft.
    let publish = form.publish && (standing.may_publish() || post.published);
    let update = PostUpdate {
        title: &checked.title,
        body_md: checked.body,
        body_html: &body.html,
        body_text: &body.text,
        excerpt_md: checked.excerpt,
        excerpt_html: &excerpt_html,
        published: publish,
        published_at: posts::publication_time(post.published_at, typed, publish, now),
        now,
    };
    posts::update(&db.0, post.id, &update, &checked.tags).await?;
    if form.publish && !publish {
        return Ok(Reply::Flash(Flash::error(
            Redirect::to(uri!(edit_form(post.slug.as_str()))),
            standing.refusal(),
        )));
    }
    Ok(Reply::Flash(Flash::success(
        Redirect::to(uri!(super::public::show_post(post.slug.as_str()))),
        "Saved.",
    )))
}

#[post("/posts/<slug>/delete", data = "<_form>")]
async fn delete_post(
    db: &Db,
    user: CurrentUser,
    slug: &str,
    _form: CsrfForm<Submit>,
) -> Result<Flash<Redirect>> {
    let post = managed_post(db, &user, slug).await?;
    posts::delete(&db.0, post.id).await?;
    Ok(Flash::success(
        Redirect::to(uri!(dashboard)),
        format!("Deleted “{}”.", post.title),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::testing::{frame, render};

    /// The browser stops typing where `PostForm::check` would refuse the title: both
    /// forms take the number from their context, which the handlers fill from TITLE_MAX.
    #[test]
    fn the_title_field_allows_what_the_check_allows() {
        let title_max = 42;
        let info = || FormInfo {
            title_max,
            ..FormInfo::new(Tz::UTC)
        };
        let dashboard = DashboardPage {
            frame: frame(),
            posts: Vec::new(),
            values: PostValues::default(),
            errors: FieldErrors::new(),
            form: info(),
            preview: None,
            email_unconfirmed: None,
        };
        let edit = EditPage {
            frame: frame(),
            slug: "a-post".into(),
            values: PostValues::default(),
            errors: FieldErrors::new(),
            form: info(),
            preview: None,
        };
        for html in [
            render("dashboard.html", &dashboard),
            render("edit.html", &edit),
        ] {
            let title = html
                .lines()
                .find(|l| l.contains("id=\"title\""))
                .expect("a title field");
            assert!(title.contains("maxlength=\"42\""), "{title}");
        }
        let at_limit = PostForm {
            title: "t".repeat(TITLE_MAX),
            ..Default::default()
        };
        let over = PostForm {
            title: "t".repeat(TITLE_MAX + 1),
            ..Default::default()
        };
        assert!(at_limit.check(Tz::UTC).is_ok() && over.check(Tz::UTC).is_err());
    }

    #[test]
    fn publish_at_is_read_in_the_site_zone() {
        let berlin = Tz::Europe__Berlin;
        let winter = parse_local("2026-12-03T14:30", berlin).unwrap().unwrap();
        assert_eq!(winter.unix_timestamp(), 1_796_304_600); // 13:30 UTC
        assert_eq!(zoned_time(winter, berlin), "3 Dec 2026, 14:30 CET");
        assert_eq!(local_input(winter, berlin), "2026-12-03T14:30");
        assert_eq!(parse_local("  ", berlin), Ok(None));
        // Clocks go back: 02:30 happens twice, the first (CEST) is taken.
        let twice = parse_local("2026-10-25T02:30", berlin).unwrap().unwrap();
        assert_eq!(zoned_time(twice, berlin), "25 Oct 2026, 02:30 CEST");
        let skipped = parse_local("2026-03-29T02:30", berlin).unwrap_err();
        assert!(skipped.contains("Europe/Berlin"), "{skipped}");
        for bad in [
            "tomorrow",
            "2026-13-01T10:00",
            "2026-12-03",
            "1969-12-31T23:00",
            "99999-01-01T00:00",
        ] {
            assert!(parse_local(bad, berlin).is_err(), "{bad}");
        }
    }
}
