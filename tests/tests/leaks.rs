//! Nothing a plugin keeps survives its request: the leak probe (`tests/plugins/leak`)
//! stores one user's secret in every place a guest can keep state — statics (atomic,
//! `static mut`, `thread_local!`, `OnceLock`), a leaked heap block, grown linear memory,
//! a page grown by hand, the stack — and every later request, another user's included,
//! scans its whole linear memory and reads those places: it must find them as a fresh
//! instance has them, whether the storing request answered, failed, trapped or was
//! stopped (by its CPU budget), one after another or many at once. A control request
//! proves the scan finds each place when the secret is there. The test holds for any way
//! the host recycles instances, so a faster instance reuse must keep it passing.

use std::collections::BTreeSet;

use hearth_tests::*;

const SCOPE: &str = "openid api:oemr user/patient.crus";

fn options() -> Options {
    Options::with_plugins(
        r#"
[plugins.test-leak]
file = "test-leak.wasm"
# The spinning request is stopped by its CPU budget, which time spent waiting for a
# thread does not use: on a loaded machine a wall-clock deadline this short also stopped
# requests of the concurrent test that were only waiting (503 instead of 200).
cpu_ms = 1000
timeout_ms = 30000

[sites."*"]
plugins = ["test-leak"]
"#,
    )
}

fn new_secret() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// What a fresh instance shows at the start of a request: nothing stored, memory at its
/// initial size, the stack where it always starts.
#[derive(Debug, Clone, PartialEq)]
struct Fresh {
    memory_pages: u64,
    get_stack: u64,
    post_stack: u64,
}

/// Asserts that `seen` (a request's report of what it found when it started) shows a fresh
/// instance, and that no secret appears anywhere in the answer's `text`.
fn assert_fresh(seen: &Value, fresh: &Fresh, post: bool, secrets: &BTreeSet<String>, text: &str) {
    assert_eq!(seen["counter"], 0, "an atomic static survived: {seen}");
    assert_eq!(seen["static_mut_bytes"], 0, "a static mut survived: {seen}");
    assert_eq!(seen["thread_local"], "", "a thread_local survived: {seen}");
    assert!(seen["once"].is_null(), "a OnceLock survived: {seen}");
    assert_eq!(
        seen["found"],
        json!([]),
        "secrets were found in memory: {seen}"
    );
    assert_eq!(
        seen["memory_pages"], fresh.memory_pages,
        "linear memory kept its growth: {seen}"
    );
    let stack = if post {
        fresh.post_stack
    } else {
        fresh.get_stack
    };
    assert_eq!(
        seen["stack"], stack,
        "the stack did not start where it starts: {seen}"
    );
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a stored secret came back: {text}"
        );
    }
}

async fn look(app: &TestApp, token: &str) -> Reply {
    let reply = app.get(&app.api("default", "/api/leak"), token).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply
}

async fn store(app: &TestApp, token: &str, secret: &str, then: &str) -> Reply {
    app.post(
        &app.api("default", "/api/leak"),
        token,
        json!({ "secret": secret, "then": then }),
    )
    .await
}

/// The fresh state, read from the first requests of a new server.
async fn fresh(app: &TestApp, token: &str) -> Fresh {
    let get = look(app, token).await;
    let post = store(app, token, &new_secret(), "").await;
    assert_eq!(post.status, 200, "{}", post.text);
    Fresh {
        memory_pages: get.json["data"]["seen"]["memory_pages"].as_u64().unwrap(),
        get_stack: get.json["data"]["seen"]["stack"].as_u64().unwrap(),
        post_stack: post.json["data"]["seen"]["stack"].as_u64().unwrap(),
    }
}

/// The statuses a storing request ends with, by what it does after storing.
fn expected_status(then: &str) -> u16 {
    match then {
        "fail" => 400,
        "trap" => 500,
        "spin" => 500,
        _ => 200,
    }
}

both! {
    options = options();

    async fn the_probe_finds_a_secret_in_every_place_while_its_own_request_holds_it(app) {
        let token = app.user_token("default", "alice", SCOPE).await;
        let secret = new_secret();
        let reply = store(app, &token, &secret, "check").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let (seen, after) = (&reply.json["data"]["seen"], &reply.json["data"]["after"]);
        assert_eq!(seen["found"], json!([]), "{seen}");
        assert_ne!(after["counter"], 0, "{after}");
        assert_eq!(after["static_mut_bytes"], 48, "{after}");
        assert_eq!(after["thread_local"], secret.as_str(), "{after}");
        assert_eq!(after["once"], secret.as_str(), "{after}");
        assert!(
            after["memory_pages"].as_u64().unwrap() >= seen["memory_pages"].as_u64().unwrap() + 48,
            "memory grew by the 3 MiB block and a page: {after}"
        );
        // The static, the leaked box, the stack, the grown page and the 3 MiB block (the
        // latter thousands of times).
        let found = after["found"].as_array().unwrap();
        assert!(found.len() > 5_000, "{} copies found", found.len());
        assert!(found.iter().all(|s| s == secret.as_str()), "{after}");
    }

    async fn a_request_never_sees_what_another_users_earlier_request_stored(app) {
        let alice = app.user_token("default", "alice", SCOPE).await;
        let bob = app.user_token("default", "bob", SCOPE).await;
        let fresh = fresh(app, &bob).await;
        let mut secrets = BTreeSet::new();
        for round in 0..12 {
            let then = ["", "check", "fail", "trap", "", "spin"][round % 6];
            if then == "spin" && round > 6 {
                continue;
            }
            let secret = new_secret();
            secrets.insert(secret.clone());
            let stored = store(app, &alice, &secret, then).await;
            assert_eq!(stored.status, expected_status(then), "{then}: {}", stored.text);
            if stored.status == 200 {
                assert_fresh(&stored.json["data"]["seen"], &fresh, true, &BTreeSet::new(), "");
            }
            for _ in 0..4 {
                let seen = look(app, &bob).await;
                assert_fresh(&seen.json["data"]["seen"], &fresh, false, &secrets, &seen.text);
            }
            // The same user's next request starts fresh as well.
            let again = store(app, &alice, &new_secret(), "").await;
            assert_eq!(again.status, 200, "{}", again.text);
            assert_fresh(&again.json["data"]["seen"], &fresh, true, &secrets, &again.text);
        }
    }

    async fn concurrent_requests_of_two_users_never_see_each_others_secrets(app) {
        let alice = app.user_token("default", "alice", SCOPE).await;
        let bob = app.user_token("default", "bob", SCOPE).await;
        let fresh = fresh(app, &bob).await;
        let mut secrets = BTreeSet::new();
        let mut replies = Vec::new();
        for _wave in 0..6 {
            let mut tasks = tokio::task::JoinSet::new();
            for n in 0..24 {
                let (client, url) = (app.client.clone(), app.api("default", "/api/leak"));
                if n % 2 == 0 {
                    let then = ["", "check", "fail", "trap"][n / 2 % 4];
                    let secret = new_secret();
                    secrets.insert(secret.clone());
                    let token = alice.clone();
                    tasks.spawn(async move {
                        let body = json!({ "secret": secret, "then": then });
                        let response = client.post(url).bearer_auth(token).json(&body).send().await.unwrap();
                        (true, then, Reply::from(response).await)
                    });
                } else {
                    let token = bob.clone();
                    tasks.spawn(async move {
                        let response = client.get(url).bearer_auth(token).send().await.unwrap();
                        (false, "", Reply::from(response).await)
                    });
                }
            }
            while let Some(done) = tasks.join_next().await {
                replies.push(done.unwrap());
            }
        }
        assert_eq!(replies.len(), 144);
        for (post, then, reply) in &replies {
            assert_eq!(reply.status, expected_status(then), "{then}: {}", reply.text);
            if reply.status != 200 {
                continue;
            }
            let seen = &reply.json["data"]["seen"];
            if *post {
                // Its own secret is in its answer only under "after" (the control).
                assert_fresh(seen, &fresh, true, &BTreeSet::new(), "");
            } else {
                assert_fresh(seen, &fresh, false, &secrets, &reply.text);
            }
        }
        // And after the storm, one more look on each site.
        let seen = look(app, &bob).await;
        assert_fresh(&seen.json["data"]["seen"], &fresh, false, &secrets, &seen.text);
        let other = app.get(&app.api("second", "/api/leak"), &app.user_token("second", "carol", SCOPE).await).await;
        assert_eq!(other.status, 200, "{}", other.text);
        assert_fresh(&other.json["data"]["seen"], &fresh, false, &secrets, &other.text);
    }
}
