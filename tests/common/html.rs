//! Reading quire's pages as a person (or a script) would: text with the escapes undone,
//! the forms, their CSRF tokens and field values, and the messages a refused form shows.
//! What the templates' markup looks like to the tests is here, not in the stories.

use regex::Regex;

/// Undoes the escapes Tera's autoescape produces, so pages can be searched for text.
pub fn unescape(html: &str) -> String {
    html.replace("&#x2F;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every `<form method="post">` on the page, whole.
pub fn post_forms(page: &str) -> Vec<String> {
    let re = Regex::new(r#"(?is)<form\b[^>]*\bmethod="post"[^>]*>.*?</form>"#).unwrap();
    re.find_iter(page).map(|m| m.as_str().to_string()).collect()
}

/// The value of every `csrf_token` field on the page, in order.
pub fn csrf_tokens(page: &str) -> Vec<String> {
    let re = Regex::new(r#"name="csrf_token" value="([^"]*)""#).unwrap();
    re.captures_iter(page).map(|c| c[1].to_string()).collect()
}

/// The CSRF token of the first form that has one, as a person would submit it; panics
/// when the page has none.
pub fn csrf_token_in(page: &str) -> String {
    match csrf_tokens(page).into_iter().find(|t| !t.is_empty()) {
        Some(token) => token,
        None => panic!("no csrf_token field in the page:\n{page}"),
    }
}

/// The value of the first field named `name`, as the browser reads it (unescaped).
pub fn field_value(page: &str, name: &str) -> Option<String> {
    let re = Regex::new(&format!(
        r#"name="{}" value="([^"]*)""#,
        regex::escape(name)
    ))
    .unwrap();
    re.captures(page).map(|c| unescape(&c[1]))
}

/// The error shown above a form ("" when none).
pub fn form_error(page: &str) -> String {
    let re = Regex::new(r#"<p class="flash flash-error" role="alert">([^<]*)</p>"#).unwrap();
    re.captures(page)
        .map(|c| c[1].to_string())
        .unwrap_or_default()
}

/// The messages listed under one field of a re-rendered form ("" when none).
pub fn field_errors(page: &str, field: &str) -> String {
    let re = Regex::new(&format!(
        r#"(?s)<ul class="field-errors" id="{field}-errors">(.*?)</ul>"#
    ))
    .unwrap();
    re.captures(page)
        .map(|c| c[1].to_string())
        .unwrap_or_default()
}

/// The page's text as a reader sees it: tags removed, escapes undone, runs of whitespace
/// one space ("By Ada" whether or not "Ada" is a link).
pub fn visible_text(page: &str) -> String {
    let tags = Regex::new(r"(?s)<[^>]*>").unwrap();
    let text = unescape(&tags.replace_all(page, ""));
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
