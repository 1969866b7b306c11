//! A misbehaving plugin is contained: a runaway loop, a runaway query, a memory hog, a
//! panic, an oversized answer, a CPU hog, too many concurrent requests and SQL outside its
//! grants each fail that request with a precise 5xx naming the limit and its value (or an
//! error the plugin sees) while the server keeps serving, and a failed request leaves no
//! partial write.

use std::time::{Duration, Instant};

use hearth_tests::*;

const SCOPE: &str = "openid api:oemr user/patient.crus";

/// The patient plugin and the misbehaving test plugin, with these limits on the latter.
fn options_with_limits(limits: &str) -> Options {
    Options::with_plugins(format!(
        r#"
[plugins.patient]
file = "patient.wasm"

[plugins.test-bad]
file = "test-bad.wasm"
{limits}
[sites."*"]
plugins = ["patient", "test-bad"]
"#
    ))
}

fn options() -> Options {
    options_with_limits("timeout_ms = 500\nmemory_mib = 16\nmax_response_bytes = 1048576\n")
}

/// The deadline plus generous slack for a loaded 2-core machine.
const WITHIN: Duration = Duration::from_millis(500 + 1500);

both! {
    options = options();

    async fn a_runaway_loop_gets_503_within_the_deadline_and_others_are_served(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        let looping = {
            let (url, token, client) = (app.api("default", "/api/bad/loop"), token.clone(), app.client.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let reply = Reply::from(client.get(url).bearer_auth(token).send().await.unwrap()).await;
                (reply, started.elapsed())
            })
        };
        // While it spins, the same plugin and another one keep answering.
        for _ in 0..5 {
            let started = Instant::now();
            let ok = app.get(&app.api("default", "/api/bad/ok"), &token).await;
            assert_eq!(ok.status, 200, "{}", ok.text);
            let list = app.get(&app.api("default", "/api/patient"), &token).await;
            assert_eq!(list.status, 200);
            assert!(started.elapsed() < WITHIN, "others were held up for {:?}", started.elapsed());
        }
        let (reply, took) = looping.await.unwrap();
        assert_eq!(reply.status, 503, "{}", reply.text);
        assert_eq!(reply.json["error"], "plugin_timeout");
        assert!(reply.json["message"].as_str().unwrap().contains("time limit of 500 ms (timeout_ms)"), "{}", reply.text);
        assert!(took < WITHIN, "answered after {took:?}");
    }

    async fn a_runaway_query_inside_a_host_call_also_meets_the_deadline(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        let started = Instant::now();
        let reply = app.get(&app.api("default", "/api/bad/slow-query"), &token).await;
        assert!(started.elapsed() < WITHIN, "answered after {:?}", started.elapsed());
        assert_eq!(reply.status, 503, "{}", reply.text);
        assert_eq!(reply.json["error"], "plugin_timeout", "{}", reply.text);
        assert_eq!(app.get(&app.api("default", "/api/bad/ok"), &token).await.status, 200);
    }

    async fn a_memory_hog_gets_500_naming_the_memory_limit(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        let reply = app.get(&app.api("default", "/api/bad/memory"), &token).await;
        assert_eq!(reply.status, 500, "{}", reply.text);
        assert_eq!(reply.json["error"], "plugin_memory_limit");
        assert!(reply.json["message"].as_str().unwrap().contains("memory limit of 16 MiB (memory_mib)"), "{}", reply.text);
        assert_eq!(app.get(&app.api("default", "/api/bad/ok"), &token).await.status, 200);
    }

    async fn a_panic_is_a_500_without_internals(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        let reply = app.get(&app.api("default", "/api/bad/panic"), &token).await;
        assert_eq!(reply.status, 500);
        assert_eq!(reply.json["error"], "plugin_failed");
        assert!(!reply.text.contains("on purpose"), "the panic message stays in the log: {}", reply.text);
        assert!(!reply.text.contains("wasm"), "{}", reply.text);
        assert_eq!(app.get(&app.api("default", "/api/bad/ok"), &token).await.status, 200);
    }

    async fn an_oversized_response_is_refused(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        let reply = app.get(&app.api("default", "/api/bad/huge-response"), &token).await;
        assert_eq!(reply.status, 500);
        assert_eq!(reply.json["error"], "plugin_response_too_large");
        assert!(reply.json["message"].as_str().unwrap().contains("size limit of 1048576 bytes (max_response_bytes)"), "{}", reply.text);
    }

    async fn sql_outside_the_grants_is_refused_and_the_plugin_sees_why(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        let seen = |reply: Reply| reply.json["data"]["error"].as_str().unwrap_or_default().to_owned();
        let error = seen(app.get(&app.api("default", "/api/bad/undeclared-read"), &token).await);
        assert!(error.starts_with("denied:") && error.contains("users") && error.contains("reading"), "{error}");
        let error = seen(app.get(&app.api("default", "/api/bad/host-table"), &token).await);
        assert!(error.starts_with("denied:") && error.contains("users_secure"), "{error}");
        let error = seen(app.post(&app.api("default", "/api/bad/undeclared-write"), &token, json!({})).await);
        assert!(error.starts_with("denied:") && error.contains("patient_data") && error.contains("writing"), "{error}");
        let error = seen(app.get(&app.api("default", "/api/bad/write-in-get"), &token).await);
        assert!(error.starts_with("denied:") && error.contains("GET"), "{error}");
    }

    async fn a_failed_request_leaves_no_partial_write(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        let reply = app.post(&app.api("default", "/api/bad/write-then-fail"), &token, json!({})).await;
        assert_eq!(reply.status, 500, "{}", reply.text);
        let reply = app.post(&app.api("default", "/api/bad/write-then-trap"), &token, json!({})).await;
        assert_eq!(reply.status, 500, "{}", reply.text);
        let rows = app.rows("default", "SELECT value FROM sequences WHERE name = 'pid'").await;
        assert_eq!(rows[0]["value"], 0, "both writes were rolled back");
        let (pid, _) = app.create_patient("default", &token, "Ann", "Smith").await;
        assert_eq!(pid, 1);
    }
}

/// Limits other than the deadline, with a deadline generous enough never to be what
/// stops a request: a CPU budget of 300 ms, and at most two instances at once.
fn budget_options() -> Options {
    options_with_limits("timeout_ms = 120000\ncpu_ms = 300\nmax_instances = 2\n")
}

/// Like [`budget_options`], with a CPU budget large enough for requests that hold their
/// instance for seconds.
fn instance_options() -> Options {
    options_with_limits("timeout_ms = 120000\ncpu_ms = 120000\nmax_instances = 2\n")
}

/// Free instance slots of `plugin` on the default site.
fn free_slots(app: &TestApp, plugin: &str) -> usize {
    let table = app.state.registry.table("default");
    let plugin = table
        .plugins
        .iter()
        .find(|p| p.loaded.name == plugin)
        .expect("the plugin is loaded");
    plugin.permits.available_permits()
}

both! {
    options = budget_options();

    async fn a_cpu_hog_is_stopped_by_its_cpu_budget_long_before_its_deadline(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        let started = Instant::now();
        let reply = app.get(&app.api("default", "/api/bad/loop"), &token).await;
        let took = started.elapsed();
        assert_eq!(reply.status, 500, "{}", reply.text);
        assert_eq!(reply.json["error"], "plugin_cpu_limit", "{}", reply.text);
        let message = reply.json["message"].as_str().unwrap();
        assert!(message.contains("CPU budget of 300 ms (cpu_ms)"), "{message}");
        // The deadline is 120 s: anything well below it proves the budget stopped it.
        assert!(took < Duration::from_secs(60), "answered after {took:?}");
        // The plugin and the others keep serving.
        assert_eq!(app.get(&app.api("default", "/api/bad/ok"), &token).await.status, 200);
        assert_eq!(app.get(&app.api("default", "/api/patient"), &token).await.status, 200);
    }
}

both! {
    options = instance_options();

    async fn requests_beyond_max_instances_get_503_while_the_slow_ones_finish(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        assert_eq!(free_slots(app, "test-bad"), 2);
        // Two slow requests take both of the plugin's instances for 4 s each.
        let slow: Vec<_> = (0..2)
            .map(|_| {
                let (url, token, client) =
                    (app.api("default", "/api/bad/hold/4000"), token.clone(), app.client.clone());
                tokio::spawn(async move {
                    Reply::from(client.get(url).bearer_auth(token).send().await.unwrap()).await
                })
            })
            .collect();
        let waiting = Instant::now();
        while free_slots(app, "test-bad") > 0 {
            assert!(waiting.elapsed() < Duration::from_secs(60), "the slow requests never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Now every other request to the plugin, on any route, is turned away at once.
        let extra: Vec<_> = (0..3)
            .map(|_| {
                let (url, token, client) =
                    (app.api("default", "/api/bad/ok"), token.clone(), app.client.clone());
                tokio::spawn(async move {
                    Reply::from(client.get(url).bearer_auth(token).send().await.unwrap()).await
                })
            })
            .collect();
        for reply in extra {
            let reply = reply.await.unwrap();
            assert_eq!(reply.status, 503, "{}", reply.text);
            assert_eq!(reply.json["error"], "plugin_busy", "{}", reply.text);
            let message = reply.json["message"].as_str().unwrap();
            assert!(message.contains("limit of 2 concurrent requests (max_instances)"), "{message}");
        }
        // Another plugin is not affected.
        assert_eq!(app.get(&app.api("default", "/api/patient"), &token).await.status, 200);
        // The slow requests finish normally, and their slots come back.
        for reply in slow {
            let reply = reply.await.unwrap();
            assert_eq!(reply.status, 200, "{}", reply.text);
            assert_eq!(reply.json["data"]["held_ms"], 4000);
        }
        assert_eq!(free_slots(app, "test-bad"), 2);
        assert_eq!(app.get(&app.api("default", "/api/bad/ok"), &token).await.status, 200);
    }
}
