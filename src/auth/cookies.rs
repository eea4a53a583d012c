//! The names and attributes of quire's own cookies (session, CSRF, pre-login). Over
//! HTTPS each name takes the `__Host-` prefix: browsers accept such a cookie only when it
//! is Secure, for Path=/ and without a Domain, so a sibling subdomain (or a plain-http
//! page on this host) cannot plant one. Over plain HTTP the names stay as they were. A
//! leaf module, so `session` and `csrf` both use it without importing each other.

use rocket::http::{Cookie, CookieJar, SameSite};

/// One of quire's cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    Session,
    Csrf,
    /// The OIDC state, nonce, PKCE verifier and `next` between /login/oidc and the callback.
    OidcPending,
    /// A login between its password and its second step (`auth::mfa::Pending`).
    MfaPending,
    /// New recovery codes, until the page that shows them once has done so.
    RecoveryCodes,
    /// Names this browser's WebAuthn challenge (`auth::passkey`).
    Passkey,
}

impl Name {
    /// The name over plain HTTP.
    pub fn plain(self) -> &'static str {
        match self {
            Name::Session => "quire_session",
            Name::Csrf => "quire_csrf",
            Name::OidcPending => "quire_oidc",
            Name::MfaPending => "quire_mfa",
            Name::RecoveryCodes => "quire_codes",
            Name::Passkey => "quire_passkey",
        }
    }

    /// The name over HTTPS.
    pub fn host_only(self) -> &'static str {
        match self {
            Name::Session => "__Host-quire_session",
            Name::Csrf => "__Host-quire_csrf",
            Name::OidcPending => "__Host-quire_oidc",
            Name::MfaPending => "__Host-quire_mfa",
            Name::RecoveryCodes => "__Host-quire_codes",
            Name::Passkey => "__Host-quire_passkey",
        }
    }

    /// The name for a request served over HTTPS (`https`) or not.
    pub fn for_scheme(self, https: bool) -> &'static str {
        if https {
            self.host_only()
        } else {
            self.plain()
        }
    }
}

/// The private cookie `name` as this scheme names it; the other scheme's name is never
/// read, so over HTTPS only a `__Host-` cookie counts.
pub fn get(jar: &CookieJar<'_>, name: Name, https: bool) -> Option<Cookie<'static>> {
    jar.get_private(name.for_scheme(https))
}

/// A private cookie as quire sets them: HttpOnly, SameSite=Lax (the pre-login one must
/// come back on the cross-site redirect from the IdP; Rocket would make it Strict),
/// Path=/, no Domain, Secure over HTTPS.
pub fn build(name: Name, value: String, https: bool) -> Cookie<'static> {
    Cookie::build((name.for_scheme(https), value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(https)
        .build()
}

/// Removes the cookie under both names (a browser keeps a plain one it got over HTTP
/// before the site moved to HTTPS). A removal of a `__Host-` cookie must itself be Secure
/// with Path=/, or browsers ignore it.
pub fn remove(jar: &CookieJar<'_>, name: Name) {
    jar.remove_private(Cookie::build(name.plain()).path("/"));
    jar.remove_private(Cookie::build(name.host_only()).path("/").secure(true));
}

#[cfg(test)]
mod tests {
    use super::Name;

    #[test]
    fn https_names_carry_the_host_prefix_and_plain_ones_do_not() {
        for name in [
            Name::Session,
            Name::Csrf,
            Name::OidcPending,
            Name::MfaPending,
            Name::RecoveryCodes,
            Name::Passkey,
        ] {
            assert_eq!(name.for_scheme(true), format!("__Host-{}", name.plain()));
            assert!(!name.for_scheme(false).starts_with("__"));
        }
    }
}
