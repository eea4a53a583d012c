//! The author's desk: their posts, writing, editing and deleting.

use rocket::http::Status;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, uri, FromForm, Route};
use rocket_dyn_templates::Template;
use serde::Serialize;

use super::public::ListItem;
use super::{Frame, Reply};
use crate::auth::csrf::{CsrfForm, Submit};
use crate::auth::local::FieldErrors;
use crate::auth::CurrentUser;
use crate::db::posts::{self, NewPost, Post, PostUpdate};
use crate::db::{current_time, Db};
use crate::error::{Error, Result};
use crate::render::{render_post, slug_for};

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
}

#[derive(Serialize, Default)]
struct PostValues {
    title: String,
    body: String,
    publish: bool,
}

impl PostForm {
    /// The trimmed title and the body, or the problems by field.
    fn check(&self) -> std::result::Result<(String, &str), FieldErrors> {
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
        if errors.is_empty() {
            Ok((title.to_string(), &self.body))
        } else {
            Err(errors)
        }
    }

    fn values(&self) -> PostValues {
        PostValues {
            title: self.title.clone(),
            body: self.body.clone(),
            publish: self.publish,
        }
    }
}

#[derive(Serialize)]
struct DashboardPage {
    frame: Frame,
    posts: Vec<ListItem>,
    values: PostValues,
    errors: FieldErrors,
    /// The title field's `maxlength`, the limit `PostForm::check` enforces.
    title_max: usize,
}

async fn dashboard_page(
    db: &Db,
    frame: Frame,
    user: &CurrentUser,
    values: PostValues,
    errors: FieldErrors,
) -> Result<Template> {
    let rows = posts::list_by_author(&db.0, user.user.id).await?;
    let posts = rows.iter().map(ListItem::from).collect();
    Ok(Template::render(
        "dashboard.html",
        DashboardPage {
            frame,
            posts,
            values,
            errors,
            title_max: TITLE_MAX,
        },
    ))
}

#[get("/dashboard")]
async fn dashboard(db: &Db, frame: Frame, user: CurrentUser) -> Result<Template> {
    let values = PostValues {
        publish: true,
        ..Default::default()
    };
    dashboard_page(db, frame, &user, values, FieldErrors::new()).await
}

#[post("/posts", data = "<form>")]
async fn create_post(
    db: &Db,
    frame: Frame,
    user: CurrentUser,
    form: CsrfForm<PostForm>,
) -> Result<Reply> {
    let form = form.0;
    let (title, body) = match form.check() {
        Ok(ok) => ok,
        Err(errors) => {
            let page = dashboard_page(db, frame, &user, form.values(), errors).await?;
            return Ok(Reply::Page((Status::UnprocessableEntity, page)));
        }
    };
    let rendered = match render_post(body).await {
        Ok(rendered) => rendered,
        Err(e) => {
            let errors = FieldErrors::from([("body", vec![e.to_string()])]);
            let page = dashboard_page(db, frame, &user, form.values(), errors).await?;
            return Ok(Reply::Page((e.status(), page)));
        }
    };
    let new = NewPost {
        author_id: user.user.id,
        title: &title,
        body_md: body,
        body_html: &rendered.html,
        body_text: &rendered.text,
        published: form.publish,
        now: current_time(),
    };
    let slug = posts::insert(&db.0, &new, &slug_for(&title)).await?;
    let msg = if form.publish {
        "Published."
    } else {
        "Saved as a draft; only you can see it."
    };
    Ok(Reply::Flash(Flash::success(
        Redirect::to(uri!(super::public::show_post(slug.as_str()))),
        msg,
    )))
}

/// The post, if this user may manage it: 404 when there is none, 403 when it is
/// someone else's published post. Someone else's draft is a 404 like a missing slug,
/// so these routes cannot tell a stranger that a draft exists.
async fn managed_post(db: &Db, user: &CurrentUser, slug: &str) -> Result<Post> {
    if !crate::render::is_slug(slug) {
        return Err(Error::NotFound);
    }
    let post = posts::by_slug(&db.0, slug).await?.ok_or(Error::NotFound)?;
    if !user.may_manage(post.author_id) {
        return Err(if post.published {
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
    title_max: usize,
}

#[get("/posts/<slug>/edit")]
async fn edit_form(db: &Db, frame: Frame, user: CurrentUser, slug: &str) -> Result<Template> {
    let post = managed_post(db, &user, slug).await?;
    let values = PostValues {
        title: post.title,
        body: post.body_md,
        publish: post.published,
    };
    Ok(Template::render(
        "edit.html",
        EditPage {
            frame,
            slug: post.slug,
            values,
            errors: FieldErrors::new(),
            title_max: TITLE_MAX,
        },
    ))
}

#[post("/posts/<slug>/edit", data = "<form>")]
async fn update_post(
    db: &Db,
    frame: Frame,
    user: CurrentUser,
    slug: &str,
    form: CsrfForm<PostForm>,
) -> Result<Reply> {
    let form = form.0;
    let post = managed_post(db, &user, slug).await?;
    let (title, body) = match form.check() {
        Ok(ok) => ok,
        Err(errors) => {
            let page = EditPage {
                frame,
                slug: post.slug,
                values: form.values(),
                errors,
                title_max: TITLE_MAX,
            };
            let page = Template::render("edit.html", page);
            return Ok(Reply::Page((Status::UnprocessableEntity, page)));
        }
    };
    let rendered = match render_post(body).await {
        Ok(rendered) => rendered,
        Err(e) => {
            let errors = FieldErrors::from([("body", vec![e.to_string()])]);
            let page = EditPage {
                frame,
                slug: post.slug,
                values: form.values(),
                errors,
                title_max: TITLE_MAX,
            };
            return Ok(Reply::Page((
                e.status(),
                Template::render("edit.html", page),
            )));
        }
    };
    let update = PostUpdate {
        title: &title,
        body_md: body,
        body_html: &rendered.html,
        body_text: &rendered.text,
        published: form.publish,
        now: current_time(),
    };
    posts::update(&db.0, post.id, &update).await?;
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
        let dashboard = DashboardPage {
            frame: frame(),
            posts: Vec::new(),
            values: PostValues::default(),
            errors: FieldErrors::new(),
            title_max,
        };
        let edit = EditPage {
            frame: frame(),
            slug: "a-post".into(),
            values: PostValues::default(),
            errors: FieldErrors::new(),
            title_max,
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
        assert!(at_limit.check().is_ok() && over.check().is_err());
    }
}
