//! Story: an author puts pictures in posts. They upload JPEG, PNG, GIF or WebP images
//! from their library (/media) or from the post form; anything else, or anything too
//! big, is refused on the same page and nothing is kept. What is kept is re-encoded
//! (orientation applied, metadata gone) with smaller variants, served by every instance
//! on the database with long-lived caching, and shown in posts with `srcset`. Deleting
//! an image a post uses asks first; nobody deletes someone else's.

use std::io::{Cursor, Write};

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::LocalResponse;

use crate::common::process::Served;
use crate::common::*;

/// The value of the post form's text input `name`.
fn input_value(page: &str, name: &str) -> Option<String> {
    regex::Regex::new(&format!(
        r#"<input id="{name}" name="{name}"[^>]*value="([^"]*)""#
    ))
    .unwrap()
    .captures(page)
    .map(|c| unescape(&c[1]))
}

const BOUNDARY: &str = "quire-test-boundary-7d1f";

/// A multipart body with text `fields` and, when given, a file field `file`.
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        write!(
            body,
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        )
        .unwrap();
    }
    if let Some((file_name, bytes)) = file {
        write!(
            body,
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .unwrap();
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{BOUNDARY}--\r\n").unwrap();
    body
}

/// Posts a multipart form to `path` with this browser's CSRF token and `fields`.
async fn send<'c>(
    b: &'c Browser,
    path: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, &[u8])>,
) -> LocalResponse<'c> {
    let token = b.csrf_token().await;
    let mut all = vec![("csrf_token", token.as_str())];
    all.extend_from_slice(fields);
    b.client
        .post(path.to_string())
        .header(ContentType::new("multipart", "form-data").with_params(("boundary", BOUNDARY)))
        .body(multipart(&all, file))
        .dispatch()
        .await
}

/// Uploads from the library; returns the status and the page (after following the
/// redirect on success).
async fn upload(b: &Browser, file_name: &str, bytes: &[u8]) -> (Status, String) {
    let res = send(b, "/media", &[], Some((file_name, bytes))).await;
    if res.status() == Status::SeeOther {
        assert_eq!(location(&res), "/media");
        let (status, page) = b.get_text("/media").await;
        assert_eq!(status, Status::Ok);
        return (Status::SeeOther, page);
    }
    text_of(res).await
}

/// The Markdown of the library's newest upload: `![alt](/media/<id>/<file>)`.
fn newest_markdown(page: &str) -> String {
    let re = regex::Regex::new(r#"class="media-markdown" type="text" readonly value="([^"]*)""#)
        .unwrap();
    unescape(&re.captures(page).expect("an upload in the library")[1])
}

/// `/media/<id>/<file>` and the id, from Markdown.
fn url_of(markdown: &str) -> (String, i64) {
    let url = markdown
        .split_once("](")
        .and_then(|(_, r)| r.strip_suffix(')'))
        .expect("markdown image")
        .to_string();
    let id = url.split('/').nth(2).unwrap().parse().unwrap();
    (url, id)
}

async fn upload_ok(b: &Browser, file_name: &str, bytes: &[u8]) -> (String, i64) {
    let (status, page) = upload(b, file_name, bytes).await;
    assert_eq!(status, Status::SeeOther, "{}", field_errors(&page, "file"));
    let md = newest_markdown(&page);
    let (url, id) = url_of(&md);
    (url, id)
}

async fn stored(app: &TestApp) -> (i64, i64) {
    quire::db::media::counts(&app.db().await.inner)
        .await
        .unwrap()
}

/// The stored files' sizes of upload `id`, widest first.
async fn sizes(app: &TestApp, id: i64) -> Vec<(u32, u32)> {
    let all = quire::db::media::sizes_of(&app.db().await.inner, &[id])
        .await
        .unwrap();
    all.get(&id)
        .map(|s| s.variants.iter().map(|v| (v.width, v.height)).collect())
        .unwrap_or_default()
}

async fn fetch(b: &Browser, url: &str) -> (Status, Vec<u8>) {
    let res = b.get(url).await;
    let status = res.status();
    (status, res.into_bytes().await.unwrap_or_default())
}

fn encoded(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

/// A `w` x `h` picture with a gradient, so it is not trivially compressible.
fn picture(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    }))
}

fn png(w: u32, h: u32) -> Vec<u8> {
    encoded(&picture(w, h), ImageFormat::Png)
}

/// A PNG chunk: length, type, data, CRC.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
    out
}

/// A complete, well-formed PNG of a few KB declaring 40,000 x 40,000 pixels.
fn pixel_bomb() -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&40_000u32.to_be_bytes());
    ihdr.extend_from_slice(&40_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; 2_000_000]).unwrap();
    let idat = z.finish().unwrap();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(b"IDAT", &idat));
    out.extend(chunk(b"IEND", &[]));
    assert!(out.len() < 16 * 1024, "{} bytes", out.len());
    out
}

/// A JPEG segment: marker, length, payload.
fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0xFF, marker];
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// EXIF (little-endian TIFF) with Orientation `orientation`, a camera make, and a GPS
/// IFD holding a latitude reference.
fn exif(orientation: u16) -> Vec<u8> {
    let mut t = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    // IFD0 at 8: 3 entries (2 + 3*12 + 4 = 42 bytes), Make text after it at 50.
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&kind.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&value);
    };
    let make = b"SECRETCAM\0";
    let make_at = 50u32;
    let gps_at = make_at + make.len() as u32;
    t.extend_from_slice(&3u16.to_le_bytes());
    entry(&mut t, 0x010F, 2, make.len() as u32, make_at.to_le_bytes()); // Make
    let o = orientation.to_le_bytes();
    entry(&mut t, 0x0112, 3, 1, [o[0], o[1], 0, 0]); // Orientation
    entry(&mut t, 0x8825, 4, 1, gps_at.to_le_bytes()); // GPS IFD
    t.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(t.len(), make_at as usize);
    t.extend_from_slice(make);
    // GPS IFD: GPSLatitudeRef "N".
    t.extend_from_slice(&1u16.to_le_bytes());
    entry(&mut t, 0x0001, 2, 2, [b'N', 0, 0, 0]);
    t.extend_from_slice(&0u32.to_le_bytes());
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend(t);
    payload
}

/// A `w` x `h` JPEG carrying EXIF (orientation, camera, GPS) and a comment.
fn jpeg_with_metadata(w: u32, h: u32, orientation: u16) -> Vec<u8> {
    let plain = encoded(&picture(w, h), ImageFormat::Jpeg);
    assert_eq!(&plain[..2], &[0xFF, 0xD8]);
    let mut out = plain[..2].to_vec();
    out.extend(segment(0xE1, &exif(orientation)));
    out.extend(segment(0xFE, b"SECRETCOMMENT at home"));
    out.extend_from_slice(&plain[2..]);
    out
}

fn gif(frames: usize, w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new_with_speed(&mut out, 30);
        enc.set_repeat(image::codecs::gif::Repeat::Infinite)
            .unwrap();
        for i in 0..frames {
            let shade = (i * 60 % 256) as u8;
            let img = RgbaImage::from_pixel(w, h, Rgba([shade, 255 - shade, 0, 255]));
            enc.encode_frame(image::Frame::new(img)).unwrap();
        }
    }
    out
}

fn decoded_size(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(bytes).expect("served bytes decode");
    (img.width(), img.height())
}

#[rocket::async_test]
async fn refused_files_get_a_clear_error_on_the_same_page_and_nothing_is_kept() {
    let app = TestApp::spawn().await;
    let (author, _) = app.author("Ada").await;
    let mut cut = png(300, 200);
    cut.truncate(cut.len() / 2);
    let mut cut_jpeg = encoded(&picture(300, 200), ImageFormat::Jpeg);
    cut_jpeg.truncate(cut_jpeg.len() * 2 / 3);
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    let html = b"<!doctype html><html><body><script>alert(1)</script></body></html>";
    let big = {
        let mut b = png(8, 8);
        b.resize(50 * 1024 * 1024, 0);
        b
    };
    let cases: Vec<(&str, Vec<u8>, Status, &str)> = vec![
        (
            "drawing.svg",
            svg.to_vec(),
            Status::UnsupportedMediaType,
            "not a JPEG, PNG, GIF or WebP",
        ),
        (
            "page.png",
            html.to_vec(),
            Status::UnsupportedMediaType,
            "not a JPEG, PNG, GIF or WebP",
        ),
        ("cut.png", cut, Status::UnprocessableEntity, "incomplete"),
        (
            "cut.jpg",
            cut_jpeg,
            Status::UnprocessableEntity,
            "incomplete",
        ),
        (
            "bomb.png",
            pixel_bomb(),
            Status::UnprocessableEntity,
            "40000 x 40000 pixels",
        ),
        (
            "huge.png",
            big,
            Status::PayloadTooLarge,
            "over the limit of 20 MiB",
        ),
    ];
    for (name, bytes, status, message) in cases {
        let (got, page) = upload(&author, name, &bytes).await;
        assert_eq!(got, status, "{name}");
        let errors = unescape(&field_errors(&page, "file"));
        assert!(errors.contains(message), "{name}: {errors:?}");
        assert!(
            page.contains("Upload an image"),
            "{name}: the library page again"
        );
        assert_eq!(stored(&app).await, (0, 0), "{name}: nothing stored");
    }
    let (status, page) = upload(&author, "empty.png", b"").await;
    assert_eq!(status, Status::BadRequest);
    assert!(field_errors(&page, "file").contains("Choose an image file"));
    // A form sent without multipart carries no file, only its name.
    let (status, page) = text_of(author.post_form("/media", &[("file", "cat.png")]).await).await;
    assert_eq!(status, Status::BadRequest);
    assert!(field_errors(&page, "file").contains("Choose an image file"));
    assert_eq!(stored(&app).await, (0, 0));
}

#[rocket::async_test]
async fn an_upload_without_the_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    let (author, _) = app.author("Ada").await;
    let res = author
        .client
        .post("/media")
        .header(ContentType::new("multipart", "form-data").with_params(("boundary", BOUNDARY)))
        .body(multipart(&[], Some(("a.png", &png(10, 10)))))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Forbidden);
    assert_eq!(stored(&app).await, (0, 0));
}

#[rocket::async_test]
async fn metadata_is_stripped_and_orientation_applied() {
    let app = TestApp::spawn().await;
    let (author, _) = app.author("Ada").await;
    let original = jpeg_with_metadata(64, 32, 6);
    assert!(original.windows(6).any(|w| w == b"Exif\0\0"));
    let (url, id) = upload_ok(&author, "holiday.jpg", &original).await;
    assert!(url.ends_with(".jpg"), "{url}");
    let (status, served) = fetch(&author, &url).await;
    assert_eq!(status, Status::Ok);
    for secret in [&b"Exif"[..], b"SECRETCAM", b"SECRETCOMMENT"] {
        assert!(
            !served.windows(secret.len()).any(|w| w == secret),
            "{} survived",
            String::from_utf8_lossy(secret)
        );
    }
    // No comment (FFFE) or APPn segment other than JFIF (APP0) before the image data.
    let mut i = 2;
    while i + 4 <= served.len() && served[i] == 0xFF && served[i + 1] != 0xDA {
        let marker = served[i + 1];
        assert!(
            marker != 0xFE && !(0xE1..=0xEF).contains(&marker),
            "segment FF{marker:02X}"
        );
        i += 2 + u16::from_be_bytes([served[i + 2], served[i + 3]]) as usize;
    }
    // Orientation 6 (rotate 90° clockwise): 64 x 32 becomes 32 x 64.
    assert_eq!(decoded_size(&served), (32, 64));
    assert_eq!(sizes(&app, id).await, vec![(32, 64)]);
}

#[rocket::async_test]
async fn variants_are_made_narrower_only() {
    let app = TestApp::spawn().await;
    let (author, _) = app.author("Ada").await;
    let (url, id) = upload_ok(&author, "wide.png", &png(2000, 1000)).await;
    assert_eq!(
        sizes(&app, id).await,
        vec![(2000, 1000), (1600, 800), (960, 480), (480, 240)]
    );
    let (_, full) = fetch(&author, &url).await;
    assert_eq!(decoded_size(&full), (2000, 1000));
    let (_, id) = upload_ok(&author, "small.png", &png(700, 350)).await;
    assert_eq!(sizes(&app, id).await, vec![(700, 350), (480, 240)]);
    let (_, id) = upload_ok(&author, "tiny.png", &png(300, 100)).await;
    assert_eq!(sizes(&app, id).await, vec![(300, 100)]);
    // WebP photos are stored as JPEG (the WebP encoder here is lossless only).
    let webp = encoded(&picture(500, 300), ImageFormat::WebP);
    let (url, _) = upload_ok(&author, "photo.webp", &webp).await;
    assert!(url.ends_with(".jpg"), "{url}");
    let (_, page) = author.get_text("/media").await;
    assert!(
        page.contains("2000 × 1000") && page.contains("wide.png"),
        "{page}"
    );
}

#[rocket::async_test]
async fn posts_show_uploads_with_srcset_and_their_size() {
    let app = TestApp::spawn().await;
    let (author, _) = app.author("Ada").await;
    let (url, id) = upload_ok(&author, "wide.png", &png(2000, 1000)).await;
    let slug = author
        .create_post(
            "Pictures",
            &format!("Look:\n\n![A wide view]({url})\n"),
            true,
        )
        .await;
    let (status, page) = app
        .new_browser()
        .await
        .get_text(&format!("/posts/{slug}"))
        .await;
    assert_eq!(status, Status::Ok);
    let img = regex::Regex::new(r#"<img src="/media/[^>]*>"#)
        .unwrap()
        .find(&page)
        .expect("the image in the post")
        .as_str()
        .to_string();
    assert!(img.contains(r#"width="2000" height="1000""#), "{img}");
    assert!(img.contains(r#"alt="A wide view""#), "{img}");
    let srcset = regex::Regex::new(r#"srcset="([^"]*)""#)
        .unwrap()
        .captures(&img)
        .expect("srcset")[1]
        .to_string();
    let widths: Vec<&str> = srcset
        .split(", ")
        .map(|c| c.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(widths, ["2000w", "1600w", "960w", "480w"], "{srcset}");
    assert!(img.contains("sizes=\""), "{img}");
    for candidate in srcset.split(", ") {
        let file = candidate.split(' ').next().unwrap();
        assert!(file.starts_with(&format!("/media/{id}/")), "{file}");
        assert_eq!(fetch(&author, file).await.0, Status::Ok, "{file}");
    }
    // An image written as raw HTML keeps the sanitizer's guarantees.
    let slug = author
        .create_post(
            "Raw",
            &format!("<img src=\"{url}\" onerror=\"alert(1)\" srcset=\"javascript:x 1w\">"),
            true,
        )
        .await;
    let (_, page) = author.get_text(&format!("/posts/{slug}")).await;
    assert!(
        !page.contains("onerror") && !page.contains("javascript:"),
        "{page}"
    );
    assert!(page.contains(r#"width="2000" height="1000""#), "{page}");
}

#[rocket::async_test]
async fn served_files_have_their_type_sandbox_and_immutable_caching() {
    let app = TestApp::spawn().await;
    let (author, _) = app.author("Ada").await;
    let (url, _) = upload_ok(&author, "a.png", &png(100, 50)).await;
    let reader = app.new_browser().await;
    for b in [&author, &reader] {
        // Asking for compression changes nothing: images are sent as stored.
        let res = b
            .client
            .get(url.clone())
            .header(Header::new("Accept-Encoding", "br, gzip"))
            .dispatch()
            .await;
        assert_eq!(res.status(), Status::Ok);
        let h = res.headers();
        assert_eq!(h.get_one("Content-Type"), Some("image/png"));
        assert_eq!(h.get_one("X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(h.get_one("Content-Security-Policy"), Some("sandbox"));
        assert_eq!(
            h.get_one("Cache-Control"),
            Some("public, max-age=31536000, immutable")
        );
        assert!(h.get_one("Content-Encoding").is_none());
        let etag = h.get_one("ETag").expect("an ETag").to_string();
        assert!(
            etag.starts_with('"') && etag.len() == 66,
            "strong, a SHA-256: {etag}"
        );
        let bytes = res.into_bytes().await.unwrap();
        assert_eq!(decoded_size(&bytes), (100, 50));
        let again = b
            .client
            .get(url.clone())
            .header(Header::new("If-None-Match", etag.clone()))
            .dispatch()
            .await;
        assert_eq!(again.status(), Status::NotModified);
        assert_eq!(again.headers().get_one("ETag"), Some(etag.as_str()));
        assert!(again.into_bytes().await.unwrap_or_default().is_empty());
    }
    let (status, _) = reader.get_text(&format!("{url}x")).await;
    assert_eq!(status, Status::NotFound);
    assert_eq!(
        reader.get_text("/media/99999/nothing.png").await.0,
        Status::NotFound
    );
    assert_eq!(
        reader.get_text("/media/abc/nothing.png").await.0,
        Status::NotFound
    );
}

#[rocket::async_test]
async fn animated_gifs_stay_animated_within_a_frame_budget() {
    let app = TestApp::spawn_with(|f| f.merge(("media.max_pixels", 20_000))).await;
    let (author, _) = app.author("Ada").await;
    let (url, id) = upload_ok(&author, "spin.gif", &gif(3, 40, 30)).await;
    assert!(url.ends_with(".gif"), "{url}");
    let (_, served) = fetch(&author, &url).await;
    use image::AnimationDecoder;
    let frames = image::codecs::gif::GifDecoder::new(Cursor::new(&served))
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    assert_eq!(frames.len(), 3);
    assert_eq!(sizes(&app, id).await, vec![(40, 30)]);
    // 40 x 30 x 20 frames = 24 000 pixels, over the 20 000 allowed.
    let before = stored(&app).await;
    let (status, page) = upload(&author, "long.gif", &gif(20, 40, 30)).await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(
        field_errors(&page, "file").contains("animated GIF is too long"),
        "{page}"
    );
    assert_eq!(stored(&app).await, before);
    // A still GIF is stored as PNG.
    let (url, _) = upload_ok(&author, "still.gif", &gif(1, 40, 30)).await;
    assert!(url.ends_with(".png"), "{url}");
}

#[rocket::async_test]
async fn the_post_form_uploads_and_comes_back_with_the_markdown_added() {
    let app = TestApp::spawn().await;
    let (author, _) = app.author("Ada").await;
    let fields = [
        ("title", "My trip"),
        ("body", "First day."),
        ("tags", "travel"),
        ("publish", "true"),
    ];
    let res = send(
        &author,
        "/media?to=new",
        &fields,
        Some(("beach.png", &png(100, 80))),
    )
    .await;
    let (status, page) = text_of(res).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(input_value(&page, "title").as_deref(), Some("My trip"));
    assert_eq!(input_value(&page, "tags").as_deref(), Some("travel"));
    let body = regex::Regex::new(r#"(?s)<textarea id="body" name="body"[^>]*>(.*?)</textarea>"#)
        .unwrap()
        .captures(&page)
        .map(|c| unescape(&c[1]))
        .expect("the body field");
    let re =
        regex::Regex::new(r"^First day\.\n\n!\[beach\]\((/media/\d+/[0-9a-f]{16}-100\.png)\)\n$")
            .unwrap();
    let url = re.captures(&body).unwrap_or_else(|| panic!("{body:?}"))[1].to_string();
    assert_eq!(fetch(&author, &url).await.0, Status::Ok);
    assert!(unescape(&page).contains("The post is not saved yet"));
    // A refused file: the same form with what was typed, the error under the file field.
    let res = send(
        &author,
        "/media?to=new",
        &fields,
        Some(("x.png", b"<svg/>")),
    )
    .await;
    let (status, page) = text_of(res).await;
    assert_eq!(status, Status::UnsupportedMediaType);
    assert_eq!(input_value(&page, "title").as_deref(), Some("My trip"));
    assert!(field_errors(&page, "file").contains("not a JPEG"), "{page}");
    assert_eq!(stored(&app).await.0, 1);
    // From the edit page: the edit form comes back.
    let slug = author.create_post("Old", "Text.", true).await;
    let path = format!("/media?to=edit&slug={slug}");
    let fields = [("title", "Old, edited"), ("body", "Text.")];
    let res = send(&author, &path, &fields, Some(("b.png", &png(50, 50)))).await;
    let (status, page) = text_of(res).await;
    assert_eq!(status, Status::Ok);
    assert!(
        page.contains(&format!("action=\"/posts/{slug}/edit\"")),
        "the edit form"
    );
    assert_eq!(input_value(&page, "title").as_deref(), Some("Old, edited"));
    // Someone else's post: refused before anything is stored.
    let before = stored(&app).await;
    let (bob, _) = app.author("Bob").await;
    let res = send(&bob, &path, &fields, Some(("c.png", &png(50, 50)))).await;
    assert_eq!(res.status(), Status::Forbidden);
    assert_eq!(stored(&app).await, before);
    // The form offers the upload without script: a submit button posting multipart.
    let (_, dashboard) = author.get_text("/dashboard").await;
    assert!(dashboard.contains("formenctype=\"multipart/form-data\""));
    assert!(dashboard.contains("name=\"file\" type=\"file\""));
}

#[rocket::async_test]
async fn a_file_uploaded_on_one_instance_is_served_by_another_at_once() {
    let app = TestApp::spawn().await;
    let (author, _) = app.author("Ada").await;
    let (url, _) = upload_ok(&author, "a.png", &png(120, 60)).await;
    let (_, first) = fetch(&author, &url).await;
    // A second Rocket instance on the same database (another process behind the load
    // balancer, with PostgreSQL).
    let other = Browser::launch(app.figment.clone()).await;
    let (status, second) = fetch(&other, &url).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(first, second);
}

#[rocket::async_test]
async fn deleting_an_image_a_post_uses_warns_first() {
    let app = TestApp::spawn().await;
    let (author, _) = app.author("Ada").await;
    let (url, id) = upload_ok(&author, "a.png", &png(100, 50)).await;
    author
        .create_post("Uses it", &format!("![a]({url})"), true)
        .await;
    let path = format!("/media/{id}/delete");
    let (status, page) = text_of(author.post_form(&path, &[]).await).await;
    assert_eq!(status, Status::Conflict);
    let text = visible_text(&page);
    assert!(
        text.contains("still used by 1 post") && text.contains("Uses it"),
        "{text}"
    );
    assert_eq!(fetch(&author, &url).await.0, Status::Ok);
    let res = author.post_form(&path, &[("confirm", "true")]).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(fetch(&author, &url).await.0, Status::NotFound);
    assert_eq!(stored(&app).await, (0, 0));
    // Unused: deleted at once.
    let (url, id) = upload_ok(&author, "b.png", &png(100, 50)).await;
    let res = author.post_form(&format!("/media/{id}/delete"), &[]).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(fetch(&author, &url).await.0, Status::NotFound);
}

#[rocket::async_test]
async fn another_author_can_neither_see_nor_delete_an_upload() {
    let app = TestApp::spawn().await;
    let (ada, _) = app.author("Ada").await;
    let (bob, _) = app.author("Bob").await;
    let (url, id) = upload_ok(&ada, "mine.png", &png(100, 50)).await;
    let (_, library) = bob.get_text("/media").await;
    assert!(!library.contains("mine.png"));
    let path = format!("/media/{id}/delete");
    for fields in [&[][..], &[("confirm", "true")][..]] {
        let res = bob.post_form(&path, fields).await;
        assert_eq!(res.status(), Status::NotFound);
    }
    assert_eq!(fetch(&bob, &url).await.0, Status::Ok, "still served");
    assert_eq!(stored(&app).await.0, 1);
    // Without the CSRF token nothing happens either, even for the owner.
    let res = ada.post_raw(&path, "confirm=true").await;
    assert_eq!(res.status(), Status::Forbidden);
    assert_eq!(stored(&app).await.0, 1);
    // Logged out: sent to log in.
    let stranger = app.new_browser().await;
    assert_eq!(stranger.get("/media").await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn two_processes_on_one_database_serve_an_upload_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let database = crate::common::database::TestDatabase::create(dir.path());
    // The first start applies the migrations; the second finds them applied.
    let a = Served::start(dir.path(), &database.url, "a").await;
    let b = Served::start(dir.path(), &database.url, "b").await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let http = reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let page = http.get(format!("{}/signup", a.base)).send().await.unwrap();
    let token = csrf_token_in(&page.text().await.unwrap());
    let email = unique_email("Ada");
    let res = http
        .post(format!("{}/signup", a.base))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", &email),
            ("name", "Ada"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::SEE_OTHER);
    let page = http.get(format!("{}/media", a.base)).send().await.unwrap();
    let token = csrf_token_in(&page.text().await.unwrap());
    let res = http
        .post(format!("{}/media", a.base))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(
            &[("csrf_token", &token)],
            Some(("a.png", &png(640, 320))),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::SEE_OTHER);
    let page = http.get(format!("{}/media", a.base)).send().await.unwrap();
    let (url, _) = url_of(&newest_markdown(&page.text().await.unwrap()));
    // A reader sent to the other instance gets it, byte for byte.
    let reader = reqwest::Client::builder().no_proxy().build().unwrap();
    let from_a = reader.get(format!("{}{url}", a.base)).send().await.unwrap();
    let from_b = reader.get(format!("{}{url}", b.base)).send().await.unwrap();
    assert_eq!(from_b.status(), reqwest::StatusCode::OK);
    assert_eq!(from_b.headers().get("etag"), from_a.headers().get("etag"));
    let (bytes_a, bytes_b) = (from_a.bytes().await.unwrap(), from_b.bytes().await.unwrap());
    assert_eq!(bytes_a, bytes_b);
    assert_eq!(decoded_size(&bytes_b), (640, 320));
    drop((a, b));
}

/// A RIFF chunk: type, little-endian length, data, padding to an even length.
fn riff_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = kind.to_vec();
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    out
}

fn u24(n: u32) -> [u8; 3] {
    let b = n.to_le_bytes();
    [b[0], b[1], b[2]]
}

/// An animated WebP of two 16 x 16 frames (VP8X with the animation flag, ANIM, ANMF),
/// its frames the lossless bitstream of a still WebP.
fn animated_webp() -> Vec<u8> {
    let still = encoded(&picture(16, 16), ImageFormat::WebP);
    assert_eq!(&still[12..16], b"VP8L");
    let vp8l = &still[12..];
    let mut vp8x = vec![0x02, 0, 0, 0]; // animation
    vp8x.extend(u24(15));
    vp8x.extend(u24(15));
    let mut body = b"WEBP".to_vec();
    body.extend(riff_chunk(b"VP8X", &vp8x));
    body.extend(riff_chunk(b"ANIM", &[0, 0, 0, 0, 0, 0]));
    for _ in 0..2 {
        let mut frame = Vec::new();
        frame.extend(u24(0));
        frame.extend(u24(0));
        frame.extend(u24(15));
        frame.extend(u24(15));
        frame.extend(u24(100));
        frame.push(0);
        frame.extend_from_slice(vp8l);
        body.extend(riff_chunk(b"ANMF", &frame));
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

#[rocket::async_test]
async fn animated_webp_is_refused_with_a_reason() {
    let app = TestApp::spawn().await;
    let (author, _) = app.author("Ada").await;
    let (status, page) = upload(&author, "moving.webp", &animated_webp()).await;
    assert_eq!(
        status,
        Status::UnsupportedMediaType,
        "{}",
        field_errors(&page, "file")
    );
    assert!(
        field_errors(&page, "file").contains("Animated WebP"),
        "{page}"
    );
    assert_eq!(stored(&app).await, (0, 0));
    // A motion photo (a video after the JPEG's end) is an image: kept, the video dropped.
    let mut motion = encoded(&picture(40, 20), ImageFormat::Jpeg);
    motion.extend_from_slice(b"\0\0\0\x18ftypmp42 and then a video");
    let (url, _) = upload_ok(&author, "motion.jpg", &motion).await;
    let (_, served) = fetch(&author, &url).await;
    assert!(!served.windows(4).any(|w| w == b"ftyp"));
}
