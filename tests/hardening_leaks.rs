//! Story: nothing a stranger can reach tells them more than a reader should know: other
//! authors' drafts, the Host they sent, the files quire keeps on disk.

use rocket::http::Status;

use crate::common::*;

/// What `b` gets for GET and POST on a post's own routes: view, edit form, edit, delete.
async fn post_routes(b: &Browser, slug: &str) -> Vec<(Status, String)> {
    let mut answers = vec![
        b.get_text(&format!("/posts/{slug}")).await,
        b.get_text(&format!("/posts/{slug}/edit")).await,
    ];
    let edit = b.edit_post(slug, "Mine now", "Defaced.", true).await;
    answers.push(text_of(edit).await);
    let delete = b.post_form(&format!("/posts/{slug}/delete"), &[]).await;
    answers.push(text_of(delete).await);
    answers
}

#[rocket::async_test]
async fn another_authors_draft_answers_like_a_missing_post() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    let draft = alice.create_post("Secret plan", "Not yet.", false).await;
    let before = post_row(&app, &draft).await;
    // Bob's welcome has been shown and his forms have their token, as after any visit.
    bob.get("/dashboard").await;

    let for_draft = post_routes(&bob, &draft).await;
    let for_missing = post_routes(&bob, "no-such-post-at-all").await;
    for (i, ((status, page), (missing_status, missing_page))) in
        for_draft.iter().zip(&for_missing).enumerate()
    {
        assert_eq!(*missing_status, Status::NotFound, "route {i}");
        assert_eq!(status, missing_status, "route {i}: {page}");
        assert_eq!(page, missing_page, "route {i}: the pages differ");
        assert!(!page.contains("Secret plan"), "route {i}: {page}");
    }
    assert_eq!(
        post_row(&app, &draft).await,
        before,
        "the draft is untouched"
    );
    // Its author still reaches it.
    let (status, page) = alice.get_text(&format!("/posts/{draft}/edit")).await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("Not yet."), "{page}");
}

#[rocket::async_test]
async fn a_title_taken_by_another_authors_drafts_is_not_counted() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.author("Alice").await;
    let (bob, _) = app.author("Bob").await;
    // Alice holds "secret-plan" and "secret-plan-2" as drafts.
    let hers = [
        alice.create_post("Secret plan", "One.", false).await,
        alice.create_post("Secret plan", "Two.", false).await,
    ];
    assert_eq!(
        hers,
        ["secret-plan", "secret-plan-2"],
        "her own are numbered"
    );

    let his = bob.create_post("Secret plan", "Mine.", true).await;
    let suffix = his.strip_prefix("secret-plan-").unwrap_or("");
    assert!(
        suffix.len() == 8 && !suffix.chars().all(|c| c.is_ascii_digit()),
        "a collision with drafts Bob cannot see gets a random suffix, not a count: {his}"
    );
    let (status, page) = app.get_text(&format!("/posts/{his}")).await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("Mine."), "{page}");
    // A published post is visible to everyone, so it is counted as before.
    let (carol, _) = app.author("Carol").await;
    let public = carol.create_post("Open letter", "Hi.", true).await;
    let again = bob.create_post("Open letter", "Hello.", true).await;
    assert_eq!(
        [public.as_str(), again.as_str()],
        ["open-letter", "open-letter-2"]
    );
}
