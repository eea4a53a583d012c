//! The step after sanitizing a post: `<img>` tags whose `src` is one of our uploads get
//! `width`/`height` (so the page does not jump while it loads) and `srcset`/`sizes` over
//! the upload's variants. It reads the sanitizer's own serialization (attributes always
//! double-quoted, `"` escaped inside them) and only inserts attributes whose values it
//! writes itself from the database's numbers and file names; any tag it cannot read
//! exactly is left as it was, so the sanitizer's guarantees hold.

use std::collections::HashMap;

use crate::db::media::Sizes;

/// The `sizes` attribute: the full column width (`--measure`, 42rem) or the screen.
pub const SIZES: &str = "(max-width: 44rem) 100vw, 42rem";

struct Img {
    /// Where the tag's `>` (or `/>`) is.
    end: usize,
    attrs: Vec<(String, String)>,
}

/// Reads the tag at `start` (just after `<img`), or None if it is not in the
/// sanitizer's form.
fn read_img(html: &str, mut i: usize) -> Option<Img> {
    let b = html.as_bytes();
    let mut attrs = Vec::new();
    loop {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        if b[i] == b'>' {
            return Some(Img { end: i, attrs });
        }
        if html[i..].starts_with("/>") {
            return Some(Img { end: i, attrs });
        }
        let name_end = i + html[i..].find(['=', ' ', '>'])?;
        let name = html[i..name_end].to_string();
        if name.is_empty() {
            return None;
        }
        if b.get(name_end) == Some(&b'=') {
            if b.get(name_end + 1) != Some(&b'"') {
                return None;
            }
            let v_start = name_end + 2;
            let v_end = v_start + html[v_start..].find('"')?;
            attrs.push((name, html[v_start..v_end].to_string()));
            i = v_end + 1;
        } else {
            attrs.push((name, String::new()));
            i = name_end;
        }
    }
}

/// Every `<img` tag of `html` with the position just after its name.
fn img_tags(html: &str) -> impl Iterator<Item = usize> + '_ {
    html.match_indices("<img").filter_map(move |(at, _)| {
        let after = at + 4;
        matches!(html.as_bytes().get(after), Some(b' ' | b'>' | b'/')).then_some(after)
    })
}

/// `/media/<id>/<name>` read from a `src`: the id and the file name.
pub fn local_media(src: &str) -> Option<(i64, &str)> {
    let rest = src.strip_prefix("/media/")?;
    let (id, name) = rest.split_once('/')?;
    let ok_name = !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.');
    if !ok_name || id.is_empty() || id.len() > 18 || !id.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((id.parse().ok()?, name))
}

/// The ids of our uploads that `html`'s images show.
pub fn media_ids(html: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = img_tags(html)
        .filter_map(|at| read_img(html, at))
        .filter_map(|img| {
            img.attrs
                .iter()
                .find(|(n, _)| n == "src")
                .and_then(|(_, v)| local_media(v).map(|(id, _)| id))
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// `html` with the sizes of the uploads it shows, from `sizes` (upload id to its files).
/// Images of unknown uploads or files, and attributes already written, are left alone.
pub fn add_sizes(html: &str, sizes: &HashMap<i64, Sizes>) -> String {
    let mut out = String::with_capacity(html.len() + 256);
    let mut copied = 0;
    for at in img_tags(html) {
        let Some(img) = read_img(html, at) else {
            continue;
        };
        let has = |name: &str| img.attrs.iter().any(|(n, _)| n == name);
        let Some((id, name)) = img
            .attrs
            .iter()
            .find(|(n, _)| n == "src")
            .and_then(|(_, v)| local_media(v))
        else {
            continue;
        };
        let Some(upload) = sizes.get(&id) else {
            continue;
        };
        let Some(this) = upload.variants.iter().find(|v| v.name == name) else {
            continue;
        };
        let mut extra = String::new();
        if !has("width") && !has("height") {
            extra.push_str(&format!(
                " width=\"{}\" height=\"{}\"",
                this.width, this.height
            ));
        }
        // Offer the files no wider than the one linked.
        let offered: Vec<_> = upload
            .variants
            .iter()
            .filter(|v| v.width <= this.width)
            .collect();
        if offered.len() > 1 && !has("srcset") {
            let set = offered
                .iter()
                .map(|v| format!("/media/{id}/{} {}w", v.name, v.width))
                .collect::<Vec<_>>()
                .join(", ");
            extra.push_str(&format!(" srcset=\"{set}\" sizes=\"{SIZES}\""));
        }
        if !has("loading") {
            extra.push_str(" loading=\"lazy\"");
        }
        out.push_str(&html[copied..img.end]);
        out.push_str(&extra);
        copied = img.end;
    }
    out.push_str(&html[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::media::Variant;

    fn sizes() -> HashMap<i64, Sizes> {
        let v = |name: &str, width, height| Variant {
            name: name.into(),
            width,
            height,
        };
        HashMap::from([(
            7,
            Sizes {
                variants: vec![v("aa-2000.jpg", 2000, 1000), v("bb-480.jpg", 480, 240)],
            },
        )])
    }

    #[test]
    fn local_images_get_sizes_and_others_stay() {
        let html = "<p><img src=\"/media/7/aa-2000.jpg\" alt=\"a &quot;b&quot; > c\"> \
                    <img src=\"https://x.example/a.png\" alt=\"\"> \
                    <img src=\"/media/8/zz-1.png\"></p>";
        let out = add_sizes(html, &sizes());
        assert!(
            out.contains(
                "<img src=\"/media/7/aa-2000.jpg\" alt=\"a &quot;b&quot; > c\" width=\"2000\" \
             height=\"1000\" srcset=\"/media/7/aa-2000.jpg 2000w, /media/7/bb-480.jpg 480w\""
            ),
            "{out}"
        );
        assert!(
            out.contains("<img src=\"https://x.example/a.png\" alt=\"\"> "),
            "{out}"
        );
        assert!(out.contains("<img src=\"/media/8/zz-1.png\"></p>"), "{out}");
        assert_eq!(media_ids(html), vec![7, 8]);
    }

    #[test]
    fn only_our_paths_count() {
        assert_eq!(
            local_media("/media/12/ab-480.jpg"),
            Some((12, "ab-480.jpg"))
        );
        for bad in [
            "/media/x/a.jpg",
            "/media/1/",
            "/media/1/A\"b",
            "//media/1/a",
            "/media/1",
        ] {
            assert_eq!(local_media(bad), None, "{bad}");
        }
    }
}
