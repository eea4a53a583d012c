//! Story: an operator exports a blog with `quire export --out DIR` (posts as Markdown with
//! front matter, the uploads' files, one JSON document) and rebuilds the same site on a
//! new database with `quire import quire DIR`: the same pages, feeds, tag and author
//! pages, and the same image bytes at the same URLs.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use rocket::http::{ContentType, Status};
use serde_json::Value;

use crate::common::process::quire_command;
use crate::common::*;

const BOUNDARY: &str = "quire-export-test-boundary";

/// A `w` x `h` gradient PNG (not trivially compressible).
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
    }));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Png)
        .unwrap();
    out
}

/// Uploads `bytes` from the library; returns the `/media/<id>/<file>` URL of the
/// full-size file, read from the Markdown the library offers.
async fn upload(b: &Browser, file_name: &str, bytes: &[u8]) -> String {
    let token = b.csrf_token().await;
    let mut body = Vec::new();
    write!(
        body,
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .unwrap();
    body.extend_from_slice(bytes);
    write!(body, "\r\n--{BOUNDARY}--\r\n").unwrap();
    let res = b
        .client
        .post("/media")
        .header(ContentType::new("multipart", "form-data").with_params(("boundary", BOUNDARY)))
        .body(body)
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther, "upload of {file_name}");
    let (_, page) = b.get_text("/media").await;
    let re = regex::Regex::new(r#"class="media-markdown" type="text" readonly value="([^"]*)""#)
        .unwrap();
    let md = unescape(&re.captures(&page).expect("an upload in the library")[1]);
    md.split_once("](")
        .and_then(|(_, r)| r.strip_suffix(')'))
        .expect("markdown image")
        .to_string()
}

/// Creates a post through the form; returns its slug.
async fn post(b: &Browser, fields: &[(&str, &str)]) -> String {
    let res = b.post_form("/posts", fields).await;
    assert_eq!(res.status(), Status::SeeOther, "creating {fields:?}");
    let to = location(&res);
    to.strip_prefix("/posts/")
        .unwrap_or_else(|| panic!("redirected to {to}"))
        .to_string()
}

fn quire(app: &TestApp, args: &[&str]) -> Output {
    quire_command(app.dir.path(), &app.database.url)
        .args(args)
        .output()
        .expect("quire runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(out)
}

/// A failure: non-zero exit and one line on stderr, "quire: ...", returned.
fn one_line_failure(out: &Output) -> String {
    assert!(!out.status.success(), "succeeded: {}", stdout(out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(err.starts_with("quire: "), "stderr: {err}");
    err.trim_end().to_string()
}

fn export_to(app: &TestApp, dir: &Path) -> String {
    succeeded(&quire(app, &["export", "--out", dir.to_str().unwrap()]))
}

fn import(app: &TestApp, dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["import", "quire", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    quire(app, &args)
}

fn document(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("quire-export.json")).expect("the document");
    serde_json::from_str(&text).expect("the document is JSON")
}

/// Every file under `dir`, as paths relative to it, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The document without what differs between two exports of the same site: the time
/// of export, and the databases' own account ids (posts and uploads name their author's
/// email instead).
fn comparable(mut doc: Value) -> Value {
    doc.as_object_mut().unwrap().remove("exported_at");
    let emails: HashMap<i64, String> = doc["authors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_i64().unwrap(),
                a["email"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for a in doc["authors"].as_array_mut().unwrap() {
        a.as_object_mut().unwrap().remove("id");
    }
    for p in doc["posts"].as_array_mut().unwrap() {
        let id = p["author"].as_i64().unwrap();
        p["author"] = Value::String(emails[&id].clone());
    }
    for m in doc["media"].as_array_mut().unwrap() {
        let id = m["owner"].as_i64().unwrap();
        m["owner"] = Value::String(emails[&id].clone());
    }
    doc
}

/// Front matter as the Markdown files carry it.
#[derive(Debug, serde::Deserialize)]
struct FrontMatter {
    title: String,
    slug: String,
    date: Option<String>,
    updated: String,
    tags: Vec<String>,
    draft: bool,
    excerpt: Option<String>,
    author: String,
}

/// A Markdown file's front matter, parsed as YAML, and its body.
fn read_markdown(path: &Path) -> (FrontMatter, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let rest = text.strip_prefix("---\n").expect("front matter first");
    let (yaml, body) = rest.split_once("\n---\n").expect("front matter closed");
    let front: FrontMatter = serde_saphyr::from_str(yaml)
        .unwrap_or_else(|e| panic!("{}: front matter: {e}\n{yaml}", path.display()));
    (front, body.to_string())
}

/// A site with what an export must carry: two authors (one an admin), shared and
/// differently typed tags, a post showing an uploaded image, one with an excerpt, one
/// with a `<!--more-->` line, a backdated one, a draft and a scheduled post.
struct Seeded {
    app: TestApp,
    ada: String,
    bob: String,
    image: String,
    public: Vec<String>,
    hidden: Vec<String>,
}

const TRICKY_TITLE: &str = "Ada's \"notes\": part 1 --- #not: yaml, [really]";

async fn seed() -> Seeded {
    let app = TestApp::spawn().await;
    let (ada_b, ada) = app.author("Ada Lovelace").await;
    let (bob_b, bob) = app.author("Bob Byte").await;
    make_admin(&app, &ada).await;
    let image = upload(&ada_b, "engine.png", &png(1200, 800)).await;
    let with_image = post(
        &ada_b,
        &[
            ("title", "The engine"),
            (
                "body",
                &format!("A drawing:\n\n![The analytical engine]({image})\n\nMore words."),
            ),
            ("tags", "Rust, Engines"),
            ("publish", "true"),
        ],
    )
    .await;
    let tricky = post(
        &ada_b,
        &[
            ("title", TRICKY_TITLE),
            (
                "body",
                "Body with *emphasis* and `code`.\n\n```rust\nfn main() {}\n```\n",
            ),
            ("excerpt", "A hand-written **excerpt**."),
            ("tags", "rust"),
            ("publish", "true"),
        ],
    )
    .await;
    let backdated = post(
        &bob_b,
        &[
            ("title", "From the archive"),
            ("body", "Opening lines.\n\n<!--more-->\n\nThe rest."),
            ("tags", "History"),
            ("publish_at", "2020-05-01T10:30"),
            ("publish", "true"),
        ],
    )
    .await;
    let draft = post(
        &bob_b,
        &[
            ("title", "Unfinished"),
            ("body", "Not yet."),
            ("tags", "Hidden Tag"),
        ],
    )
    .await;
    let scheduled = post(
        &ada_b,
        &[
            ("title", "Coming soon"),
            ("body", "Next year's news."),
            ("tags", "rust"),
            // Before 2038: later times do not survive sqlx's Any driver on SQLite
            // (it reads INTEGERs as 32 bits), which the post page would show early.
            ("publish_at", "2037-06-01T09:00"),
            ("publish", "true"),
        ],
    )
    .await;
    Seeded {
        app,
        ada,
        bob,
        image,
        public: vec![with_image, tricky, backdated],
        hidden: vec![draft, scheduled],
    }
}

/// The public pages to compare, and the image files with their ETags.
fn public_paths(seeded: &Seeded, doc: &Value) -> Vec<String> {
    let mut paths: Vec<String> = [
        "/",
        "/feed.xml",
        "/sitemap.xml",
        "/tags/rust",
        "/tags/rust/feed.xml",
        "/tags/history",
        "/search?q=engine",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for slug in &seeded.public {
        paths.push(format!("/posts/{slug}"));
    }
    for a in doc["authors"].as_array().unwrap() {
        let handle = a["handle"].as_str().unwrap();
        paths.push(format!("/authors/{handle}"));
        paths.push(format!("/authors/{handle}/feed.xml"));
    }
    paths
}

#[rocket::async_test]
async fn an_exported_site_imported_into_a_new_database_is_the_same_site() {
    let seeded = seed().await;
    let app = &seeded.app;
    let out_root = tempfile::tempdir().unwrap();
    let dir = out_root.path().join("blog-export");
    let said = export_to(app, &dir);
    assert!(said.contains("5 post(s)"), "{said}");
    assert!(said.contains("1 upload(s)"), "{said}");

    // The document holds what it says, and nothing secret.
    let doc = document(&dir);
    assert_eq!(doc["format"], "quire-export");
    assert_eq!(doc["version"], 1);
    let authors = doc["authors"].as_array().unwrap();
    let ada = authors
        .iter()
        .find(|a| a["email"] == seeded.ada.as_str())
        .unwrap();
    assert_eq!(ada["name"], "Ada Lovelace");
    assert_eq!(ada["handle"], "ada-lovelace");
    assert_eq!(ada["role"], "admin");
    let bob = authors
        .iter()
        .find(|a| a["email"] == seeded.bob.as_str())
        .unwrap();
    assert_eq!(bob["role"], "author");
    let posts = doc["posts"].as_array().unwrap();
    assert_eq!(posts.len(), 5);
    let by_slug = |slug: &str| posts.iter().find(|p| p["slug"] == slug).unwrap();
    assert_eq!(by_slug(seeded.hidden[0].as_str())["draft"], true);
    assert_eq!(
        by_slug(seeded.hidden[1].as_str())["published_at"],
        "2037-06-01T09:00:00Z"
    );
    assert_eq!(
        by_slug(seeded.public[2].as_str())["published_at"],
        "2020-05-01T10:30:00Z"
    );
    assert_eq!(
        by_slug(seeded.public[0].as_str())["tags"],
        serde_json::json!(["rust", "engines"])
    );
    let media = doc["media"].as_array().unwrap();
    assert_eq!(media.len(), 1);
    assert_eq!(media[0]["url"], seeded.image.as_str());
    let widths: Vec<u64> = media[0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["width"].as_u64().unwrap())
        .collect();
    assert_eq!(widths, [1200, 960, 480]);
    for path in files_under(&dir) {
        let bytes = std::fs::read(dir.join(&path)).unwrap();
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        for secret in ["$argon2", "password", "secret", "token_hash", "totp"] {
            assert!(
                !text.contains(secret),
                "{} holds {secret:?}",
                path.display()
            );
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the export is its owner's only: {mode:o}");
    }

    // Every post as Markdown whose front matter parses, its body exactly as typed.
    for p in posts {
        let slug = p["slug"].as_str().unwrap();
        let (front, body) = read_markdown(&dir.join(format!("posts/{slug}.md")));
        assert_eq!(front.slug, slug);
        assert_eq!(front.title, p["title"].as_str().unwrap());
        assert_eq!(body, p["body"].as_str().unwrap());
        assert_eq!(front.draft, p["draft"].as_bool().unwrap());
        assert_eq!(front.date.as_deref(), p["published_at"].as_str());
        assert_eq!(front.updated, p["updated_at"].as_str().unwrap());
        let author = authors.iter().find(|a| a["id"] == p["author"]).unwrap();
        assert_eq!(front.author, author["handle"].as_str().unwrap());
        let excerpt = p["excerpt"].as_str().unwrap();
        assert_eq!(front.excerpt.as_deref().unwrap_or(""), excerpt);
        assert_eq!(front.tags.len(), p["tags"].as_array().unwrap().len());
    }
    let (tricky, _) = read_markdown(&dir.join(format!("posts/{}.md", seeded.public[1])));
    assert_eq!(tricky.title, TRICKY_TITLE);
    assert_eq!(
        tricky.tags,
        ["Rust"],
        "named as first typed on a public post"
    );
    // The image's files, byte for byte as served.
    for f in media[0]["files"].as_array().unwrap() {
        let url = format!("/media/{}/{}", media[0]["id"], f["name"].as_str().unwrap());
        let res = app.get(&url).await;
        assert_eq!(res.status(), Status::Ok, "{url}");
        let served = res.into_bytes().await.unwrap();
        let written = std::fs::read(dir.join(f["path"].as_str().unwrap())).unwrap();
        assert!(served == written, "{url}: the exported bytes differ");
    }

    // Rebuilt on a new database, with a dry run first that writes nothing.
    let fresh = TestApp::spawn().await;
    let said = succeeded(&import(&fresh, &dir, &["--dry-run"]));
    assert!(said.contains("would import 5 post(s)"), "{said}");
    assert_eq!(post_count(&fresh).await, 0);
    assert_eq!(user_count(&fresh).await, 0);
    let said = succeeded(&import(&fresh, &dir, &[]));
    assert!(said.starts_with("imported 5 post(s)"), "{said}");
    assert!(
        said.contains("2 of them new accounts without a password"),
        "{said}"
    );

    for path in public_paths(&seeded, &doc) {
        let (was_status, was) = app.get_text(&path).await;
        let (now_status, now) = fresh.get_text(&path).await;
        assert_eq!(was_status, Status::Ok, "{path}");
        assert_eq!(now_status, Status::Ok, "{path}");
        assert_eq!(now, was, "{path} differs after the round trip");
    }
    assert!(
        fresh
            .get_text(&format!("/posts/{}", seeded.public[0]))
            .await
            .1
            .contains(&format!("src=\"{}\"", seeded.image)),
        "the post shows the image at the same URL"
    );
    for slug in &seeded.hidden {
        for site in [app, &fresh] {
            let (status, _) = site.get_text(&format!("/posts/{slug}")).await;
            assert_eq!(status, Status::NotFound, "{slug} stays unpublished");
        }
    }
    for f in media[0]["files"].as_array().unwrap() {
        let url = format!("/media/{}/{}", media[0]["id"], f["name"].as_str().unwrap());
        let was = app.get(&url).await;
        let was_etag = was.headers().get_one("ETag").map(str::to_string);
        let was_bytes = was.into_bytes().await.unwrap();
        let now = fresh.get(&url).await;
        assert_eq!(now.status(), Status::Ok, "{url}");
        assert_eq!(
            now.headers().get_one("ETag").map(str::to_string),
            was_etag,
            "{url}"
        );
        assert_eq!(was_etag.as_deref(), f["etag"].as_str());
        assert!(
            now.into_bytes().await.unwrap() == was_bytes,
            "{url}: bytes differ"
        );
    }

    // Exporting the rebuilt site gives the same document (drafts, scheduled times,
    // excerpts and the stored HTML included) and the same files.
    let again = out_root.path().join("again");
    export_to(&fresh, &again);
    assert_eq!(comparable(document(&again)), comparable(doc.clone()));
    assert_eq!(files_under(&again), files_under(&dir));
    for path in files_under(&dir) {
        if path.starts_with("media") || path.starts_with("posts") {
            let a = std::fs::read(dir.join(&path)).unwrap();
            let b = std::fs::read(again.join(&path)).unwrap();
            assert!(a == b, "{} differs", path.display());
        }
    }

    // The accounts came without passwords: logging in fails until a reset.
    assert_eq!(password_hash(&fresh, &seeded.ada).await, "");
    let b = fresh.new_browser().await;
    b.login(&seeded.ada, PASSWORD).await;
    assert!(!b.is_logged_in().await, "no password came across");

    // A second run adds nothing and succeeds.
    let said = succeeded(&import(&fresh, &dir, &[]));
    assert!(said.starts_with("nothing to import"), "{said}");
    assert_eq!(post_count(&fresh).await, 5);
    assert_eq!(user_count(&fresh).await, 2);
    assert_eq!(tag_rows(&fresh).await.len(), tag_rows(app).await.len());

    // New uploads on the rebuilt site get ids of their own.
    let (carol, _) = fresh.author("Carol").await;
    let url = upload(&carol, "new.png", &png(20, 20)).await;
    assert_ne!(
        url.split('/').nth(2),
        seeded.image.split('/').nth(2),
        "{url}"
    );
}

/// A copy of the export in `src`, changed by `change`, in a new folder.
fn altered(src: &Path, root: &Path, name: &str, change: impl FnOnce(&Path)) -> PathBuf {
    let dst = root.join(name);
    for path in files_under(src) {
        let to = dst.join(&path);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.join(&path), to).unwrap();
    }
    change(&dst);
    dst
}

fn edit_document(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let mut doc = document(dir);
    edit(&mut doc);
    std::fs::write(
        dir.join("quire-export.json"),
        serde_json::to_vec_pretty(&doc).unwrap(),
    )
    .unwrap();
}

fn crc_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
    out
}

/// A complete PNG of a few KB declaring 40,000 x 40,000 pixels.
fn pixel_bomb() -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&40_000u32.to_be_bytes());
    ihdr.extend_from_slice(&40_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; 1_000_000]).unwrap();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(crc_chunk(b"IHDR", &ihdr));
    out.extend(crc_chunk(b"IDAT", &z.finish().unwrap()));
    out.extend(crc_chunk(b"IEND", &[]));
    out
}

#[rocket::async_test]
async fn a_damaged_or_hostile_export_is_refused_in_one_line_naming_the_place() {
    let app = TestApp::spawn().await;
    let (ada, _) = app.author("Ada").await;
    let image = upload(&ada, "a.png", &png(600, 400)).await;
    post(
        &ada,
        &[
            ("title", "Hello"),
            ("body", &format!("![a]({image})")),
            ("tags", "one"),
            ("publish", "true"),
        ],
    )
    .await;
    let root = tempfile::tempdir().unwrap();
    let good = root.path().join("good");
    export_to(&app, &good);
    let doc = document(&good);
    let full = doc["media"][0]["files"][0]["path"]
        .as_str()
        .unwrap()
        .to_string();

    let fresh = TestApp::spawn().await;
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        (
            "cut short",
            altered(&good, root.path(), "cut", |d| {
                let p = d.join("quire-export.json");
                let text = std::fs::read(&p).unwrap();
                std::fs::write(&p, &text[..text.len() / 2]).unwrap();
            }),
            "quire-export.json: EOF while parsing",
        ),
        (
            "newer",
            altered(&good, root.path(), "newer", |d| {
                edit_document(d, |doc| doc["version"] = 2.into())
            }),
            "version 2: made by a newer quire",
        ),
        (
            "slug",
            altered(&good, root.path(), "slug", |d| {
                edit_document(d, |doc| doc["posts"][0]["slug"] = "../../etc".into())
            }),
            "posts[0].slug",
        ),
        (
            "traversal",
            altered(&good, root.path(), "traversal", |d| {
                edit_document(d, |doc| {
                    doc["media"][0]["files"][0]["name"] = "../../quire-export.json".into()
                })
            }),
            "media[0].files[0].name",
        ),
        (
            "unknown author",
            altered(&good, root.path(), "author", |d| {
                edit_document(d, |doc| doc["posts"][0]["author"] = 999.into())
            }),
            "posts[0].author: names no author",
        ),
        (
            "date",
            altered(&good, root.path(), "date", |d| {
                edit_document(d, |doc| doc["posts"][0]["created_at"] = "yesterday".into())
            }),
            "posts[0].created_at: \"yesterday\" is not an RFC 3339 time",
        ),
        (
            "changed bytes",
            altered(&good, root.path(), "bytes", |d| {
                let p = d.join(&full);
                let mut bytes = std::fs::read(&p).unwrap();
                // Still a whole, valid PNG (padding after the end is allowed), but
                // not the bytes exported.
                bytes.extend_from_slice(&[0, 0, 0, 0]);
                std::fs::write(&p, bytes).unwrap();
            }),
            "do not match media[0].files[0].etag",
        ),
        (
            "pixel bomb",
            altered(&good, root.path(), "bomb", |d| {
                std::fs::write(d.join(&full), pixel_bomb()).unwrap();
            }),
            "40000 x 40000 pixels",
        ),
        (
            "missing image",
            altered(&good, root.path(), "missing", |d| {
                std::fs::remove_file(d.join(&full)).unwrap();
            }),
            "No such file",
        ),
        (
            "too long",
            altered(&good, root.path(), "long", |d| {
                edit_document(d, |doc| {
                    doc["posts"][0]["body"] = "x".repeat(300_000).into();
                })
            }),
            "posts[0] (hello) body: The body is over",
        ),
    ];
    for (what, dir, expected) in cases {
        let err = one_line_failure(&import(&fresh, &dir, &[]));
        assert!(err.contains(expected), "{what}: {err}");
        assert_eq!(post_count(&fresh).await, 0, "{what}: nothing written");
        assert_eq!(user_count(&fresh).await, 0, "{what}: nothing written");
        assert_eq!(tag_rows(&fresh).await.len(), 0, "{what}: nothing written");
    }

    // HTML in the document is never stored: bodies are rendered again, sanitized.
    let hostile = altered(&good, root.path(), "hostile", |d| {
        edit_document(d, |doc| {
            doc["posts"][0]["body"] =
                "Hi <script>alert(1)</script><img src=x onerror=alert(2)>".into();
            doc["posts"][0]["body_html"] = "<script>alert(3)</script>".into();
        })
    });
    succeeded(&import(&fresh, &hostile, &[]));
    let (status, page) = fresh.get_text("/posts/hello").await;
    assert_eq!(status, Status::Ok);
    for bad in ["alert(1)", "onerror", "alert(3)"] {
        assert!(!page.contains(bad), "{bad} survived: {page}");
    }
}

#[rocket::async_test]
async fn exports_never_overwrite_and_imports_never_merge_into_another_site() {
    let app = TestApp::spawn().await;
    let (ada, _) = app.author("Ada").await;
    post(
        &ada,
        &[("title", "Mine"), ("body", "Words."), ("publish", "true")],
    )
    .await;
    let root = tempfile::tempdir().unwrap();

    // A folder with anything in it is refused, and what was there is kept.
    let busy = root.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "keep me").unwrap();
    let err = one_line_failure(&quire(&app, &["export", "--out", busy.to_str().unwrap()]));
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(files_under(&busy), [PathBuf::from("notes.txt")]);
    // An empty one is fine, and nothing is left beside it.
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    export_to(&app, &empty);
    assert!(empty.join("quire-export.json").is_file());
    let mut names: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["busy", "empty"], "no temporary folder left");
    // Exporting again to the same folder is refused: it holds an export now.
    let err = one_line_failure(&quire(&app, &["export", "--out", empty.to_str().unwrap()]));
    assert!(err.contains("not empty"), "{err}");

    // Imported into its own site: everything is already there.
    let said = succeeded(&import(&app, &empty, &[]));
    assert!(said.starts_with("nothing to import"), "{said}");

    // Into another site with posts of its own: refused, nothing written.
    let other = TestApp::spawn().await;
    let (bob, _) = other.author("Bob").await;
    post(
        &bob,
        &[
            ("title", "Theirs"),
            ("body", "Other words."),
            ("publish", "true"),
        ],
    )
    .await;
    let err = one_line_failure(&import(&other, &empty, &[]));
    assert!(err.contains("already has 1 post(s)"), "{err}");
    assert_eq!(post_count(&other).await, 1);
    assert_eq!(user_count(&other).await, 1);

    // Not an export at all.
    let err = one_line_failure(&import(&other, &busy, &[]));
    assert!(err.contains("quire-export.json: not found"), "{err}");
}
