//! The few route paths that layers below the web layer must name: `config` checks that
//! `auth.oidc.redirect_url` ends in the callback, and the provider registers the logout
//! URIs. A leaf module (it imports nothing), so those layers depend on it without
//! depending on the web layer's handlers; the tests below hold each constant equal to
//! the path Rocket routes (`uri!`), so a renamed route cannot leave one behind.

/// The home page.
pub const HOME: &str = "/";
/// The OpenID Connect redirect URI's path.
pub const OIDC_CALLBACK: &str = "/oidc/callback";
/// Where the provider posts back-channel logout tokens.
pub const OIDC_BACKCHANNEL_LOGOUT: &str = "/oidc/backchannel-logout";
/// The login page (mails link to it).
pub const LOGIN: &str = "/login";
/// Where a password reset is asked for.
pub const PASSWORD_FORGOT: &str = "/password/forgot";

/// The reset form for a token (base64url, so it needs no escaping in a path).
pub fn password_reset(token: &str) -> String {
    format!("/password/reset/{token}")
}

/// The link that confirms an email address (`auth.verify_email`).
pub fn verify_email(token: &str) -> String {
    format!("/verify-email/{token}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_constant_is_the_path_its_route_is_mounted_at() {
        assert_eq!(super::HOME, crate::web::public::home_path());
        assert_eq!(super::OIDC_CALLBACK, crate::web::oidc::callback_path());
        assert_eq!(
            super::OIDC_BACKCHANNEL_LOGOUT,
            crate::web::oidc::backchannel_logout_path()
        );
        assert_eq!(super::PASSWORD_FORGOT, crate::web::password::forgot_path());
        assert_eq!(
            super::password_reset("abc"),
            crate::web::password::reset_path("abc")
        );
        assert_eq!(
            super::verify_email("abc"),
            crate::web::verify::verify_path("abc")
        );
        assert_eq!(
            super::LOGIN,
            rocket::uri!(crate::web::login::login_form(_)).to_string()
        );
    }
}
