use rocket::http::Status;

use crate::common::*;

#[rocket::async_test]
async fn signing_up_logs_the_new_author_in() {
    let app = TestApp::spawn().await;
    let res = app.signup("  Alice@Example.COM ", "Alice", PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/dashboard");
    let (status, page) = app.get_text("/dashboard").await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("Welcome to quire, Alice"), "{page}");
}
