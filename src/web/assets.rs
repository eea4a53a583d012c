//! Templates, stylesheet and migrations are compiled into the binary, so quire serves
//! from any working directory. An operator may set `template_dir` to a folder whose
//! `NAME.html.tera` files replace the built-in ones of the same name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};
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

/// An empty folder for rocket_dyn_templates' own loader, which insists on one; all our
/// templates are registered by `register_templates`.
pub fn empty_template_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("quire-no-template-files");
    let _ = std::fs::create_dir_all(&dir);
    dir
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
