//! The author's image library (/media), uploads from it and from the post form, deleting,
//! and serving the stored files (/media/<id>/<file>) to everyone.

use std::collections::HashMap;
use std::io::Cursor;

use rocket::data::ToByteUnit;
use rocket::figment::Figment;
use rocket::form::{self, Contextual, DataField, Form, FromFormField, ValueField};
use rocket::http::{ContentType, Header, Status};
use rocket::request::Request;
use rocket::response::{self, Flash, Redirect, Responder, Response};
use rocket::{get, post, routes, uri, FromForm, Route, State};
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::dashboard::{self, Typed};
use super::verify::Standing;
use super::{Frame, Reply};
use crate::auth::csrf::{CsrfForm, CsrfToken};
use crate::auth::local::FieldErrors;
use crate::auth::CurrentUser;
use crate::config::{Config, MediaConfig};
use crate::db::media::{self as store, Sizes, Upload};
use crate::db::{current_time, Db};
use crate::error::{Error, Result};
use crate::media::{self, human_bytes, Bounds, Refusal};

pub fn routes() -> Vec<Route> {
    routes![library, upload, delete, serve]
}

/// The name of the request limit the file field reads under (`media.max_bytes`).
const LIMIT: &str = "media";
/// Room in an upload's request for the post form's other fields and multipart framing.
const FORM_ROOM: u64 = (2 << 20) + (64 << 10);

/// The figment with request limits that fit `media.max_bytes`: the file field reads at
/// most one byte more (to tell an oversized file), and the whole multipart request may
/// also carry a post form. A larger `limits.data-form` set by the operator is kept.
pub fn with_upload_limits(figment: Figment) -> Figment {
    let max: u64 = figment
        .extract_inner("media.max_bytes")
        .unwrap_or(MediaConfig::default().max_bytes);
    let set: Option<u64> = figment
        .extract_inner::<rocket::data::ByteUnit>("limits.data-form")
        .ok()
        .map(|b| b.as_u64());
    let needed = max.saturating_add(FORM_ROOM);
    figment
        .merge((format!("limits.{LIMIT}"), max.saturating_add(1)))
        .merge(("limits.data-form", set.map_or(needed, |s| s.max(needed))))
}

fn bounds(config: &Config) -> Bounds {
    Bounds {
        max_bytes: config.media.max_bytes,
        max_pixels: config.media.max_pixels,
    }
}

/// The file field: its bytes (at most the `media` limit), the name the browser gave it,
/// and whether it was cut at the limit.
pub struct FileField {
    name: String,
    bytes: Vec<u8>,
    complete: bool,
}

#[rocket::async_trait]
impl<'r> FromFormField<'r> for FileField {
    fn from_value(_field: ValueField<'r>) -> form::Result<'r, Self> {
        // A text value where a file belongs (a form sent without multipart): no file.
        Ok(FileField {
            name: String::new(),
            bytes: Vec::new(),
            complete: true,
        })
    }

    async fn from_data(field: DataField<'r, '_>) -> form::Result<'r, Self> {
        let limit = field
            .request
            .limits()
            .get(LIMIT)
            .unwrap_or(MediaConfig::default().max_bytes.bytes());
        let name = field
            .file_name
            .map(|n| n.dangerous_unsafe_unsanitized_raw().as_str())
            .unwrap_or("")
            .to_string();
        let read = field.data.open(limit).into_bytes().await?;
        Ok(FileField {
            name,
            complete: read.is_complete(),
            bytes: read.into_inner(),
        })
    }
}

/// An upload: the file and the CSRF token. Sent from the post form (the button's
/// `formaction`), that form's fields come along and are read back from the form's
/// context (`typed`) to show again.
#[derive(FromForm)]
pub struct UploadForm {
    #[field(default = String::new())]
    csrf_token: String,
    file: Option<FileField>,
}

/// A row of the library.
#[derive(Serialize)]
struct UploadView {
    id: i64,
    file_name: String,
    url: String,
    /// The smallest file, for the thumbnail.
    thumb: String,
    thumb_width: u32,
    thumb_height: u32,
    width: u32,
    height: u32,
    size: String,
    kind: String,
    animated: bool,
    markdown: String,
    uploaded: String,
}

#[derive(Serialize)]
struct LibraryPage {
    frame: Frame,
    uploads: Vec<UploadView>,
    errors: FieldErrors,
    max_size: String,
    max_megapixels: u64,
    /// The Markdown of the upload just made, to copy.
    added: Option<String>,
}

/// `![alt](/media/<id>/<file>)`, the alt text made from the uploader's file name.
pub fn markdown_for(upload: &Upload) -> String {
    format!(
        "![{}](/media/{}/{})",
        alt_text(&upload.file_name),
        upload.id,
        upload.name
    )
}

/// A file name's stem as alt text: letters, digits and spaces ("holiday photo" from
/// "holiday_photo.JPG"), "image" when nothing is left. Nothing that Markdown would read
/// as syntax survives.
fn alt_text(file_name: &str) -> String {
    let stem = file_name.rsplit_once('.').map_or(file_name, |(s, _)| s);
    let words: String = stem
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let alt = words.split_whitespace().collect::<Vec<_>>().join(" ");
    let alt: String = alt.chars().take(80).collect();
    if alt.is_empty() {
        "image".into()
    } else {
        alt
    }
}

/// The uploader's file name as shown in the library: no path, no control characters.
fn display_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.trim().is_empty() {
        "image".into()
    } else {
        clean
    }
}

async fn library_page(
    db: &Db,
    frame: Frame,
    config: &Config,
    user: &CurrentUser,
    errors: FieldErrors,
    added: Option<String>,
) -> Result<Template> {
    let uploads = store::list_by_owner(&db.0, user.user.id).await?;
    let ids: Vec<i64> = uploads.iter().map(|u| u.id).collect();
    let sizes = store::sizes_of(&db.0, &ids).await?;
    let uploads = uploads.iter().map(|u| view(u, &sizes)).collect();
    Ok(Template::render(
        "media.html",
        LibraryPage {
            frame,
            uploads,
            errors,
            max_size: human_bytes(config.media.max_bytes),
            max_megapixels: config.media.max_pixels / 1_000_000,
            added,
        },
    ))
}

fn view(u: &Upload, sizes: &HashMap<i64, Sizes>) -> UploadView {
    let smallest = sizes.get(&u.id).and_then(|s| s.variants.last());
    let (thumb, thumb_width, thumb_height) = match smallest {
        Some(v) => (v.name.clone(), v.width, v.height),
        None => (u.name.clone(), u.width, u.height),
    };
    // Shown at most 160 px wide in the list.
    let shown = thumb_width.min(160);
    UploadView {
        id: u.id,
        file_name: u.file_name.clone(),
        url: format!("/media/{}/{}", u.id, u.name),
        thumb: format!("/media/{}/{}", u.id, thumb),
        thumb_height: (u64::from(thumb_height) * u64::from(shown) / u64::from(thumb_width.max(1)))
            .max(1) as u32,
        thumb_width: shown,
        width: u.width,
        height: u.height,
        size: human_bytes(u.byte_size),
        kind: u
            .content_type
            .strip_prefix("image/")
            .unwrap_or("")
            .to_uppercase(),
        animated: u.animated,
        markdown: markdown_for(u),
        uploaded: super::human_date(u.created_at),
    }
}

#[get("/media")]
async fn library(
    db: &Db,
    frame: Frame,
    config: &State<Config>,
    user: CurrentUser,
) -> Result<Template> {
    library_page(db, frame, config, &user, FieldErrors::new(), None).await
}

/// A post's body and excerpt HTML with the uploads they show sized (`media::html`).
pub async fn sized(db: &Db, body: &str, excerpt: &str) -> Result<(String, String)> {
    let mut ids = media::html::media_ids(body);
    ids.extend(media::html::media_ids(excerpt));
    if ids.is_empty() {
        return Ok((body.to_string(), excerpt.to_string()));
    }
    ids.sort_unstable();
    ids.dedup();
    let sizes = store::sizes_of(&db.0, &ids).await?;
    Ok((
        media::html::add_sizes(body, &sizes),
        media::html::add_sizes(excerpt, &sizes),
    ))
}

/// The post form's fields as sent with an upload (none when sent from the library).
fn typed(ctx: &form::Context<'_>) -> Typed {
    let field = |name: &str| ctx.field_value(name).unwrap_or("").to_string();
    Typed {
        title: field("title"),
        body: field("body"),
        tags: field("tags"),
        excerpt: field("excerpt"),
        publish_at: field("publish_at"),
        publish: ctx.field_value("publish") == Some("true"),
    }
}

/// The file sent, or why there is none to process; Err(Forbidden) for a wrong or missing
/// CSRF token. Errors of the request as a whole (over `limits.data-form`, malformed
/// multipart) leave every field at its default, so they are answered first; they change
/// nothing.
fn sent_file(
    form: Contextual<'_, UploadForm>,
    token: &CsrfToken,
    max_bytes: u64,
) -> Result<std::result::Result<FileField, Refusal>> {
    match form.context.status() {
        Status::PayloadTooLarge => return Ok(Err(Refusal::TooLarge(max_bytes))),
        s if s.code >= 400 => return Ok(Err(Refusal::Empty)),
        _ => {}
    }
    let Some(f) = form.value else {
        return Ok(Err(Refusal::Empty));
    };
    if !crate::token::constant_eq(&f.csrf_token, &token.0) {
        log::warn!("CSRF check failed for an upload");
        return Err(Error::Forbidden);
    }
    Ok(match f.file {
        Some(file) if !file.complete => Err(Refusal::TooLarge(max_bytes)),
        Some(file) if !file.bytes.is_empty() => Ok(file),
        _ => Err(Refusal::Empty),
    })
}

/// Where an upload came from, and so which page answers it.
enum Origin<'a> {
    Library,
    NewPost,
    EditPost(&'a str),
}

/// POST /media: from the library, or (with `?to=new` or `?to=edit&slug=...`) from the
/// post form, whose page comes back with the Markdown added to the body. A refused file
/// gets that page again with the message under the file field and a 4xx status; nothing
/// is stored.
#[allow(clippy::too_many_arguments)]
#[post("/media?<to>&<slug>", data = "<form>")]
async fn upload(
    db: &Db,
    frame: Frame,
    config: &State<Config>,
    user: CurrentUser,
    standing: Standing,
    token: CsrfToken,
    to: Option<&str>,
    slug: Option<&str>,
    form: Form<Contextual<'_, UploadForm>>,
) -> Result<Reply> {
    let origin = match (to, slug) {
        (Some("new"), _) => Origin::NewPost,
        (Some("edit"), Some(slug)) => Origin::EditPost(slug),
        _ => Origin::Library,
    };
    let form = form.into_inner();
    // Checked first: an upload for a post the caller may not edit stores nothing.
    if let Origin::EditPost(slug) = origin {
        dashboard::managed_post(db, &user, slug).await?;
    }
    let mut t = typed(&form.context);
    let file = match sent_file(form, &token, config.media.max_bytes)? {
        Ok(file) => file,
        Err(refusal) => {
            return answer_refusal(db, frame, config, (&user, &standing), &origin, t, refusal).await
        }
    };
    let name = display_name(&file.name);
    let processed = match media::process(file.bytes, bounds(config)).await {
        Ok(p) => p,
        Err(refusal) => {
            let page =
                answer_refusal(db, frame, config, (&user, &standing), &origin, t, refusal).await?;
            return Ok(page);
        }
    };
    let id = store::insert(&db.0, user.user.id, &name, &processed, current_time()).await?;
    let upload = store::by_id(&db.0, id).await?.ok_or(Error::NotFound)?;
    let markdown = markdown_for(&upload);
    match origin {
        Origin::Library => Ok(Reply::Flash(Flash::success(
            Redirect::to(uri!(library)),
            format!("Uploaded. Paste this into a post: {markdown}"),
        ))),
        Origin::NewPost | Origin::EditPost(_) => {
            if !t.body.is_empty() && !t.body.ends_with('\n') {
                t.body.push('\n');
            }
            if !t.body.is_empty() {
                t.body.push('\n');
            }
            t.body.push_str(&markdown);
            t.body.push('\n');
            let frame = Frame {
                flash: Some(super::FlashView {
                    kind: "success".into(),
                    message: format!(
                        "Uploaded; its Markdown was added at the end of the body: {markdown}. \
                         The post is not saved yet."
                    ),
                }),
                ..frame
            };
            let slug = match origin {
                Origin::EditPost(s) => Some(s),
                _ => None,
            };
            let page = dashboard::form_after_upload(
                db,
                frame,
                config,
                (&user, &standing),
                slug,
                t,
                FieldErrors::new(),
            )
            .await?;
            Ok(Reply::Page((Status::Ok, page)))
        }
    }
}

async fn answer_refusal(
    db: &Db,
    frame: Frame,
    config: &Config,
    who: (&CurrentUser, &Standing),
    origin: &Origin<'_>,
    typed: Typed,
    refusal: Refusal,
) -> Result<Reply> {
    let errors = FieldErrors::from([("file", vec![refusal.to_string()])]);
    let page = match origin {
        Origin::Library => library_page(db, frame, config, who.0, errors, None).await?,
        Origin::NewPost => {
            dashboard::form_after_upload(db, frame, config, who, None, typed, errors).await?
        }
        Origin::EditPost(slug) => {
            dashboard::form_after_upload(db, frame, config, who, Some(slug), typed, errors).await?
        }
    };
    Ok(Reply::Page((refusal.status(), page)))
}

#[derive(FromForm)]
struct DeleteForm {
    #[field(default = false)]
    confirm: bool,
}

#[derive(Serialize)]
struct UsingView {
    title: String,
    /// None for a post the user may not see (someone else's draft).
    url: Option<String>,
}

#[derive(Serialize)]
struct DeletePage {
    frame: Frame,
    upload: UploadView,
    posts: Vec<UsingView>,
}

/// Deletes an upload of the caller's (an admin may delete anyone's). When a post still
/// uses it, a page lists those posts and asks to confirm first (409). Someone else's
/// upload, or none, is a 404.
#[post("/media/<id>/delete", data = "<form>")]
async fn delete(
    db: &Db,
    frame: Frame,
    user: CurrentUser,
    id: i64,
    form: CsrfForm<DeleteForm>,
) -> Result<Reply> {
    let upload = store::by_id(&db.0, id).await?.ok_or(Error::NotFound)?;
    if !user.may_manage(upload.owner_id) {
        return Err(Error::NotFound);
    }
    let using = store::posts_using(&db.0, id).await?;
    if !using.is_empty() && !form.0.confirm {
        let sizes = store::sizes_of(&db.0, &[id]).await?;
        let posts = using
            .into_iter()
            .map(|p| {
                let visible = p.published || user.may_manage(p.author_id);
                UsingView {
                    title: if visible {
                        p.title
                    } else {
                        "A draft by another author".into()
                    },
                    url: visible.then(|| format!("/posts/{}", p.slug)),
                }
            })
            .collect();
        let page = DeletePage {
            frame,
            upload: view(&upload, &sizes),
            posts,
        };
        return Ok(Reply::Page((
            Status::Conflict,
            Template::render("media_delete.html", page),
        )));
    }
    store::delete(&db.0, id).await?;
    Ok(Reply::Flash(Flash::success(
        Redirect::to(uri!(library)),
        format!("Deleted {}.", upload.file_name),
    )))
}

/// A stored file as served: its own type, never sniffed, sandboxed if opened directly,
/// cached for a year (its URL changes with its content) and validated by its hash.
pub struct MediaFile {
    content_type: String,
    etag: String,
    /// None: the client has it (304).
    bytes: Option<Vec<u8>>,
}

/// Cache-Control of served files.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Whether `path` is a served file's (`/media/<id>/<file>`), whose answer keeps its own
/// caching and Content-Security-Policy (see `headers`).
pub fn is_file_path(path: &str) -> bool {
    path.strip_prefix("/media/")
        .is_some_and(|rest| rest.contains('/'))
}

impl<'r> Responder<'r, 'static> for MediaFile {
    fn respond_to(self, _req: &'r Request<'_>) -> response::Result<'static> {
        let mut res = Response::build();
        res.header(Header::new("ETag", self.etag))
            .header(Header::new("Cache-Control", IMMUTABLE))
            .header(Header::new("X-Content-Type-Options", "nosniff"))
            .header(Header::new("Content-Security-Policy", "sandbox"));
        match self.bytes {
            Some(bytes) => {
                let ct =
                    ContentType::parse_flexible(&self.content_type).unwrap_or(ContentType::Binary);
                res.header(ct).sized_body(bytes.len(), Cursor::new(bytes));
            }
            None => {
                res.status(Status::NotModified);
            }
        }
        res.ok()
    }
}

/// The If-None-Match header, when sent.
pub struct IfNoneMatch(Option<String>);

#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for IfNoneMatch {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> rocket::request::Outcome<Self, ()> {
        rocket::request::Outcome::Success(IfNoneMatch(
            req.headers().get_one("If-None-Match").map(str::to_string),
        ))
    }
}

fn matches(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

/// GET /media/<id>/<file>: public, like the posts that show it.
#[get("/media/<id>/<file>")]
async fn serve(db: &Db, id: &str, file: &str, inm: IfNoneMatch) -> Result<MediaFile> {
    let id: i64 = id.parse().map_err(|_| Error::NotFound)?;
    let head = store::file_head(&db.0, id, file)
        .await?
        .ok_or(Error::NotFound)?;
    if inm.0.as_deref().is_some_and(|h| matches(h, &head.etag)) {
        return Ok(MediaFile {
            content_type: head.content_type,
            etag: head.etag,
            bytes: None,
        });
    }
    let bytes = store::file_bytes(&db.0, head.id)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(MediaFile {
        content_type: head.content_type,
        etag: head.etag,
        bytes: Some(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alt_text_keeps_words_only() {
        assert_eq!(alt_text("holiday_photo.JPG"), "holiday photo");
        assert_eq!(alt_text("](javascript:x).png"), "javascript x");
        assert_eq!(alt_text(".png"), "image");
        assert_eq!(display_name("C:\\Users\\me\\cat.png"), "cat.png");
    }
}
