//! Templates, stylesheet and migrations are compiled into the binary, so quire serves
//! from any working directory. An operator may set `template_dir` to a folder whose
//! `NAME.html.tera` files replace the built-in ones of the same name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};
use rocket::fairing::AdHoc;
use rocket::http::{ContentType, Header};
use rocket::{get, routes, Route};

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");
static STATIC: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/static");

pub fn routes() -> Vec<Route> {
    routes![static_file]
}

/// Registers the built-in templates, each replaced by the operator's file of the same
/// name when `override_dir` has one. Names keep their `.html` so Tera autoescapes them.
pub fn register_templates(
    tera: &mut rocket_dyn_templates::tera::Tera,
    override_dir: Option<&Path>,
) -> Result<(), String> {
    let mut sources: HashMap<String, String> = HashMap::new();
    collect_embedded(&TEMPLATES, &mut sources);
    if let Some(dir) = override_dir {
        collect_dir(dir, dir, &mut sources)
            .map_err(|e| format!("template_dir {}: {e}", dir.display()))?;
    }
    tera.add_raw_templates(sources)
        .map_err(|e| crate::error::chain(&e))
}

fn collect_embedded(dir: &Dir<'static>, out: &mut HashMap<String, String>) {
    for file in dir.files() {
        if let (Some(name), Some(text)) = (template_name(file.path()), file.contents_utf8()) {
            out.insert(name, text.to_string());
        }
    }
    for sub in dir.dirs() {
        collect_embedded(sub, out);
    }
}

fn collect_dir(root: &Path, dir: &Path, out: &mut HashMap<String, String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_dir(root, &path, out)?;
        } else if let Some(name) = path.strip_prefix(root).ok().and_then(template_name) {
            out.insert(name, std::fs::read_to_string(&path)?);
        }
    }
    Ok(())
}

/// "errors/error.html.tera" -> "errors/error.html".
fn template_name(path: &Path) -> Option<String> {
    let s = path.to_str()?;
    s.strip_suffix(".tera").map(|n| n.replace('\\', "/"))
}

/// rocket_dyn_templates' own loader insists on a `template_dir` it walks (following
/// links) and, in debug builds, watches; all our templates are registered by
/// `register_templates`. So each instance gets a fresh empty folder of its own (random
/// name, mode 0700) that nobody else can fill or swap for a link, held in managed state
/// and removed with the instance. Attach before the templating fairing.
pub fn private_template_dir() -> AdHoc {
    AdHoc::try_on_ignite("private template folder", |rocket| async move {
        match TemplateDir::create() {
            Ok(dir) => {
                let figment = rocket
                    .figment()
                    .clone()
                    .merge(("template_dir", dir.0.clone()));
                Ok(rocket.configure(figment).manage(dir))
            }
            Err(e) => {
                log::error!("cannot make a private temporary folder for templates: {e}");
                Err(rocket)
            }
        }
    })
}

/// The instance's empty template folder, removed when the instance is dropped.
pub struct TemplateDir(PathBuf);

impl TemplateDir {
    fn create() -> std::io::Result<TemplateDir> {
        use std::os::unix::fs::DirBuilderExt;
        // mkdir fails on anything already there (a link included), so the folder is ours.
        let path =
            std::env::temp_dir().join(format!("quire-templates-{}", crate::token::generate()));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(TemplateDir(path))
    }
}

impl Drop for TemplateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

pub struct Asset {
    content_type: ContentType,
    body: &'static [u8],
}

impl<'r> rocket::response::Responder<'r, 'static> for Asset {
    fn respond_to(self, _: &'r rocket::Request<'_>) -> rocket::response::Result<'static> {
        rocket::Response::build()
            .header(self.content_type)
            .header(Header::new("Cache-Control", "public, max-age=3600"))
            .sized_body(self.body.len(), std::io::Cursor::new(self.body))
            .ok()
    }
}

#[get("/static/<path..>")]
fn static_file(path: PathBuf) -> Option<Asset> {
    let file = STATIC.get_file(&path)?;
    let content_type = path
        .extension()
        .and_then(|e| e.to_str())
        .and_then(ContentType::from_extension)
        .unwrap_or(ContentType::Binary);
    Some(Asset {
        content_type,
        body: file.contents(),
    })
}
