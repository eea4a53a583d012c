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

/// A static file as served: its bytes, and gzip and brotli copies when they are smaller.
struct Variants {
    hash: String,
    gzip: Option<Vec<u8>>,
    brotli: Option<Vec<u8>>,
}

impl Variants {
    fn of(body: &[u8], compressible: bool) -> Variants {
        use super::http_cache::{compress, hash, Coding, BROTLI_STATIC, MIN_COMPRESS};
        let smaller = |coding| {
            (compressible && body.len() >= MIN_COMPRESS)
                .then(|| compress(body, coding, BROTLI_STATIC))
                .flatten()
                .filter(|c| c.len() < body.len())
        };
        Variants {
            hash: hash(body),
            gzip: smaller(Coding::Gzip),
            brotli: smaller(Coding::Brotli),
        }
    }
}

/// Each static file's variants, made once, on the first request for it.
fn variants(path: &Path, body: &[u8], compressible: bool) -> std::sync::Arc<Variants> {
    use std::sync::{Arc, Mutex, OnceLock};
    static MADE: OnceLock<Mutex<HashMap<PathBuf, Arc<Variants>>>> = OnceLock::new();
    let made = MADE.get_or_init(Default::default);
    if let Some(v) = made.lock().ok().and_then(|m| m.get(path).cloned()) {
        return v;
    }
    // Compressed outside the lock; two first requests at once may both do it, once.
    let v = Arc::new(Variants::of(body, compressible));
    if let Ok(mut m) = made.lock() {
        m.entry(path.to_path_buf()).or_insert_with(|| v.clone());
    }
    v
}

/// The variant a response sends, shared with the cache rather than copied.
struct Chosen(
    std::sync::Arc<Variants>,
    super::http_cache::Coding,
    &'static [u8],
);

impl AsRef<[u8]> for Chosen {
    fn as_ref(&self) -> &[u8] {
        use super::http_cache::Coding;
        let packed = match self.1 {
            Coding::Gzip => self.0.gzip.as_deref(),
            Coding::Brotli => self.0.brotli.as_deref(),
            Coding::Identity => None,
        };
        packed.unwrap_or(self.2)
    }
}

pub struct Asset {
    content_type: ContentType,
    path: PathBuf,
    body: &'static [u8],
}

impl<'r> rocket::response::Responder<'r, 'static> for Asset {
    fn respond_to(self, req: &'r rocket::Request<'_>) -> rocket::response::Result<'static> {
        use super::http_cache::{http_date, negotiate, started};
        let compressible = super::http_cache::compressible(&self.content_type);
        let v = variants(&self.path, self.body, compressible);
        let accept = req.headers().get_one("Accept-Encoding");
        let coding = negotiate(accept, v.gzip.is_some(), v.brotli.is_some());
        let mut res = rocket::Response::build();
        res.header(self.content_type)
            .header(Header::new("Cache-Control", "public, max-age=3600"))
            .header(Header::new("ETag", coding.etag(&v.hash)))
            .header(Header::new("Last-Modified", http_date(started())));
        let body = Chosen(v, coding, self.body);
        let len = body.as_ref().len();
        let mut res = res.sized_body(len, std::io::Cursor::new(body)).finalize();
        coding.set_on(&mut res);
        if compressible {
            super::http_cache::vary_on_encoding(&mut res);
        }
        Ok(res)
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
        path,
        body: file.contents(),
    })
}
