//! FHIR search paging by key (issue 16's export speed) and Group search by member, through
//! the real server on SQLite and PostgreSQL: a search in key order pages with keyset
//! cursors (`v2.…`): every row is seen exactly once while rows are added between pages
//! and while a row already shown leaves the search (an offset would then skip a row), and
//! `previous` links walk back over the same pages; a search with `_sort` keeps offset
//! cursors (`v1.…`); the export's larger pages are the host's alone (a client's
//! `hearth-page-cap` header is not passed on); `Group?member=` / `Group?patient=` find the
//! groups that list a patient; the vital signs a page reads together (one read of each
//! `form_vitals` row) are the rows their branches give one by one.

use std::collections::BTreeSet;

use hearth::auth::tokens::{Grant, Role};
use hearth_tests::fhir::{Documents, fhir, get_with, ids, link, patient};
use hearth_tests::{TestApp, Value, both, json};

const SCOPES: &str = "openid api:oemr api:fhir user/Patient.crus user/patient.crus";

/// The cursor of a link (`_cursor=…`), decoded.
fn cursor(url: &str) -> String {
    let (_, query) = url.split_once('?').expect("a query");
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "_cursor")
        .map(|(_, v)| v.into_owned())
        .expect("a _cursor")
}

/// Follows `next` links from `first`, answering every page's ids; calls `between` before
/// each next page with the page number (1 = before the second page).
async fn walk<F, Fut>(app: &TestApp, token: &str, first: &str, mut between: F) -> Vec<Vec<String>>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut docs = Documents::default();
    let mut pages = Vec::new();
    let mut url = first.to_owned();
    loop {
        let reply = app.get(&url, token).await;
        assert_eq!(reply.status, 200, "{url}: {}", reply.text);
        let bundle = docs.keep(&reply);
        pages.push(ids(&bundle));
        let Some(next) = link(&bundle, "next") else {
            break;
        };
        assert!(cursor(&next).starts_with("v2."), "a keyset cursor: {next}");
        assert!(pages.len() < 1000, "the pages end");
        between(pages.len()).await;
        url = next;
    }
    docs.validate();
    pages
}

/// Follows `previous` links (keyset cursors) back from the bundle `last`, answering every
/// page's ids in forward order and the first page; the walk ends within `most` pages.
async fn walk_back(
    app: &TestApp,
    token: &str,
    last: Value,
    most: usize,
) -> (Vec<Vec<String>>, Value) {
    let mut backward = vec![ids(&last)];
    let mut page = last;
    while let Some(previous) = link(&page, "previous") {
        assert!(cursor(&previous).starts_with("v2."), "{previous}");
        let reply = app.get(&previous, token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        backward.push(ids(&reply.json));
        page = reply.json;
        assert!(backward.len() <= most, "the walk back ends");
    }
    backward.reverse();
    (backward, page)
}

/// The uuids of every patient whose family name starts with `family`, in key order.
async fn family_ids(app: &TestApp, token: &str, family: &str) -> Vec<String> {
    let url = fhir(
        app,
        "default",
        &format!("/Patient?family={family}&_count=200"),
    );
    let reply = app.get(&url, token).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(link(&reply.json, "next").is_none(), "one page holds them");
    ids(&reply.json)
}

both! {
    async fn unfiltered_pages_over_branches_are_the_rows_of_one_statement(app) {
        // An unfiltered search over a derived table of many branches reads each page
        // after the first in windows of the derived key (hearth_fhir::search_branches):
        // pages of 3 and of 200 hold the same rows in the same order, each once, as many
        // as the count, and the same rows as the patient-filtered searches (which page
        // each branch by itself).
        hearth_tests::bulk::seed(app, "default", 4).await;
        let token = hearth_tests::bulk::system_token(app, "default", "pager", "system/*.read").await;
        let patients = walk(app, &token, &fhir(app, "default", "/Patient?_count=200"), |_| async {}).await.concat();
        for t in ["Observation", "Provenance", "Condition", "MedicationRequest"] {
            let count = app.get(&fhir(app, "default", &format!("/{t}?_summary=count")), &token).await;
            let total = count.json["total"].as_u64().unwrap_or_else(|| panic!("{t}: {}", count.text));
            let small = walk(app, &token, &fhir(app, "default", &format!("/{t}?_count=3&_total=none")), |_| async {}).await;
            let large = walk(app, &token, &fhir(app, "default", &format!("/{t}?_count=200&_total=none")), |_| async {}).await;
            assert!(small.len() > 2, "{t}: several pages of 3");
            let (small, large) = (small.concat(), large.concat());
            assert_eq!(small.len() as u64, total, "{t}: every row, as many as the count");
            assert_eq!(small, large, "{t}: the same rows in the same order");
            let unique: BTreeSet<&String> = small.iter().collect();
            assert_eq!(unique.len(), small.len(), "{t}: each row once");
            if t != "Provenance" {
                let mut filtered = BTreeSet::new();
                for p in &patients {
                    let pages = walk(app, &token, &fhir(app, "default", &format!("/{t}?patient={p}&_count=200")), |_| async {}).await;
                    filtered.extend(pages.concat());
                }
                assert_eq!(unique, filtered.iter().collect(), "{t}: the rows of the filtered searches");
            }
        }
    }

    async fn vital_signs_read_together_are_the_rows_each_branch_gives(app) {
        // A page that keeps every vital sign alike reads each `form_vitals` row once and
        // joins it to the measurements it holds (hearth_fhir::branches::Fused); a search
        // of one code, or a read, reads that vital sign's branch alone. Both give the
        // same resources, field for field, in the same order, forwards and backwards.
        hearth_tests::bulk::seed(app, "default", 4).await;
        let site = app.state.sites.get("default").await.expect("the site");
        let token = hearth_tests::bulk::system_token(app, "default", "pager", "system/*.read").await;
        let before: BTreeSet<String> = site.gate.allowed_statements().into_iter().collect();
        let mut forward: Vec<Vec<Value>> = Vec::new();
        let mut url = fhir(app, "default", "/Observation?_count=7&_total=none");
        let last = loop {
            let reply = app.get(&url, &token).await;
            assert_eq!(reply.status, 200, "{url}: {}", reply.text);
            let entries = reply.json["entry"].as_array().cloned().unwrap_or_default();
            forward.push(entries.into_iter().map(|e| e["resource"].clone()).collect());
            match link(&reply.json, "next") {
                Some(next) => url = next,
                None => break reply.json,
            }
            assert!(forward.len() < 1000, "the pages end");
        };
        let fused = site
            .gate
            .allowed_statements()
            .into_iter()
            .filter(|sql| !before.contains(sql) && sql.contains("hearth_encounter"))
            .count();
        assert!(fused > 0, "the unfiltered pages read the vital signs together");

        let all: Vec<&Value> = forward.iter().flatten().collect();
        let vitals: Vec<&Value> = all
            .iter()
            .copied()
            .filter(|r| r["category"][0]["coding"][0]["code"] == "vital-signs")
            .collect();
        let codes: BTreeSet<&str> = vitals
            .iter()
            .map(|r| r["code"]["coding"][0]["code"].as_str().expect("a code"))
            .collect();
        assert!(vitals.len() > 20 && codes.len() >= 6, "{} vital signs, codes {codes:?}", vitals.len());
        for code in &codes {
            let reply = app
                .get(&fhir(app, "default", &format!("/Observation?code={code}&_count=200")), &token)
                .await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            assert!(link(&reply.json, "next").is_none(), "{code}: one page");
            let alone: Vec<Value> = reply.json["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["resource"].clone())
                .collect();
            let together: Vec<Value> = vitals
                .iter()
                .filter(|r| r["code"]["coding"][0]["code"] == *code)
                .map(|r| (*r).clone())
                .collect();
            assert_eq!(alone, together, "{code}: the branch's rows, field for field");
        }
        for vital in vitals.iter().step_by(5) {
            let id = vital["id"].as_str().expect("an id");
            let read = app.get(&fhir(app, "default", &format!("/Observation/{id}")), &token).await;
            assert_eq!(read.status, 200, "{}", read.text);
            assert_eq!(&read.json, *vital, "a read of {id}");
        }

        // `previous` links walk back over the same pages.
        let (backward, _) = walk_back(app, &token, last, forward.len()).await;
        let forward: Vec<Vec<String>> = forward
            .iter()
            .map(|p| p.iter().map(|r| r["id"].as_str().unwrap_or_default().to_owned()).collect())
            .collect();
        assert_eq!(backward, forward);
    }

    async fn keyset_pages_see_every_row_once_while_rows_come_and_go(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let mut made = Vec::new();
        for i in 0..23 {
            made.push(patient(app, &token, json!({"lname": format!("Keyset{i:02}")})).await);
        }
        assert_eq!(family_ids(app, &token, "keyset").await, made);

        // Rows added between pages stay out (the first page fixed the bound); the pages
        // hold every row that was there, once each, in key order.
        let first = fhir(app, "default", "/Patient?family=keyset&_count=5");
        let mut added = 0;
        let pages = walk(app, &token, &first, |_| {
            added += 1;
            let name = format!("Keyset-late{added}");
            let token = token.clone();
            async move {
                patient(app, &token, json!({"lname": name})).await;
            }
        })
        .await;
        assert_eq!(pages.len(), 5, "{pages:?}");
        assert!(pages[..4].iter().all(|p| p.len() == 5), "{pages:?}");
        let seen: Vec<String> = pages.concat();
        assert_eq!(seen, made, "every row once, in key order");
        assert_eq!(family_ids(app, &token, "keyset").await.len(), 23 + added);

        // A row already shown leaves the search before the next page (renamed): a keyset
        // page starts after the last row shown, so none of the rest is skipped, where an
        // offset would skip one row per row gone. With `_total=none` too.
        for total in ["", "&_total=none"] {
            let before = family_ids(app, &token, "keyset").await;
            let first = fhir(app, "default", &format!("/Patient?family=keyset&_count=4{total}"));
            let mut gone = Vec::new();
            let pages = walk(app, &token, &first, |n| {
                // Before pages 2 and 3: rename the first row of the page just read.
                let leave = (n <= 2).then(|| before[(n - 1) * 4].clone());
                if let Some(uuid) = &leave {
                    gone.push(uuid.clone());
                }
                let token = token.clone();
                async move {
                    if let Some(uuid) = leave {
                        let reply = app
                            .put(&app.api("default", &format!("/api/patient/{uuid}")), &token,
                                json!({"fname": "Ann", "lname": "Gone", "sex": "Female", "DOB": "1980-05-06"}))
                            .await;
                        assert_eq!(reply.status, 200, "{}", reply.text);
                    }
                }
            })
            .await;
            let seen: Vec<String> = pages.concat();
            assert_eq!(seen, before, "{total}: every row once, none skipped");
            let unique: BTreeSet<&String> = seen.iter().collect();
            assert_eq!(unique.len(), seen.len());
            assert_eq!(gone.len(), 2);
            let now = family_ids(app, &token, "keyset").await;
            assert_eq!(now.len(), before.len() - 2);
        }

        // `previous` links walk back over the same pages.
        let rows = family_ids(app, &token, "keyset").await;
        let mut url = fhir(app, "default", "/Patient?family=keyset&_count=6");
        let mut forward = Vec::new();
        let last: Value = loop {
            let reply = app.get(&url, &token).await;
            forward.push(ids(&reply.json));
            match link(&reply.json, "next") {
                Some(next) => url = next,
                None => break reply.json,
            }
        };
        assert_eq!(forward.concat(), rows);
        let (backward, page) = walk_back(app, &token, last, forward.len()).await;
        assert_eq!(backward, forward);
        assert!(link(&page, "next").is_some());

        // With `_sort` the pages go by offset (`v1.`) and still hold every row once.
        let first = app.get(&fhir(app, "default", "/Patient?family=keyset&_sort=-family&_count=7"), &token).await;
        let next = link(&first.json, "next").expect("a next page");
        assert!(cursor(&next).starts_with("v1."), "{next}");
        let mut sorted = ids(&first.json);
        let mut url = Some(next);
        while let Some(next) = url {
            let reply = app.get(&next, &token).await;
            sorted.extend(ids(&reply.json));
            url = link(&reply.json, "next");
        }
        let mut expected = rows.clone();
        expected.sort();
        let mut got = sorted.clone();
        got.sort();
        assert_eq!(got, expected);

        // A keyset cursor someone made up is a 400 OperationOutcome, not a 5xx.
        for junk in ["v2.1.0.x5", "v2.1.0.a", "v2.-1.0.a3", "v2.1.0.a99999999999999999999"] {
            let reply = app.get(&fhir(app, "default", &format!("/Patient?_cursor={junk}")), &token).await;
            assert_eq!(reply.status, 400, "{junk}: {}", reply.text);
            assert_eq!(reply.json["resourceType"], "OperationOutcome");
        }
    }

    async fn clients_cannot_ask_for_the_exports_larger_pages(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        for i in 0..3 {
            patient(app, &token, json!({"lname": format!("Cap{i}")})).await;
        }
        let reply = get_with(app, &fhir(app, "default", "/Patient?_count=5000"), &token,
            &[("hearth-page-cap", "5000")]).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let own = link(&reply.json, "self").expect("self");
        assert!(own.contains("_count=200"), "{own}");
    }

    async fn groups_are_searched_by_member_and_patient(app) {
        let site_ref = app.state.sites.get("default").await.expect("the site");
        let subject = hearth::auth::users::system_user(&site_ref).await.expect("the system user");
        let token = app.issue("default", Grant {
            client_id: "group-client".into(),
            subject,
            role: Role::System,
            username: None,
            acl_role: None,
            scope: "system/*.read system/Group.cu".into(),
            patient: None,
            context: json!({}),
            lifetime: 3600,
        }).await;
        let staff = app.user_token("default", "admin", SCOPES).await;
        let mut people = Vec::new();
        for i in 0..3 {
            people.push(patient(app, &staff, json!({"lname": format!("Member{i}")})).await);
        }
        let member = |id: &str| json!({"entity": {"reference": format!("Patient/{id}")}});
        let mut groups = Vec::new();
        for (name, members) in [
            ("Renal", vec![member(&people[0]), member(&people[1])]),
            ("Cardiac", vec![member(&people[1])]),
            ("Empty", vec![]),
        ] {
            let reply = app.post(&fhir(app, "default", "/Group"), &token,
                json!({"resourceType": "Group", "name": name, "member": members})).await;
            assert_eq!(reply.status, 201, "{}", reply.text);
            groups.push(reply.json["id"].as_str().expect("an id").to_owned());
        }
        let mut docs = Documents::default();
        let search = |query: String| {
            let token = token.clone();
            async move {
                let reply = app.get(&fhir(app, "default", &format!("/Group?{query}")), &token).await;
                assert_eq!(reply.status, 200, "{query}: {}", reply.text);
                (reply.json["total"].as_u64().expect("a total"), ids(&reply.json), reply)
            }
        };
        let (n, found, reply) = search(format!("member=Patient/{}", people[0])).await;
        docs.keep(&reply);
        assert_eq!((n, found), (1, vec![groups[0].clone()]));
        let (n, found, _) = search(format!("member={}", people[1])).await;
        assert_eq!((n, found), (2, vec![groups[0].clone(), groups[1].clone()]));
        let (n, found, _) = search(format!("patient=Patient/{}", people[1].to_uppercase())).await;
        assert_eq!((n, found), (2, vec![groups[0].clone(), groups[1].clone()]));
        let (n, _, _) = search(format!("member={}", people[2])).await;
        assert_eq!(n, 0);
        // Commas are OR; a repeat is AND.
        let (n, _, _) = search(format!("member={},{}", people[0], people[2])).await;
        assert_eq!(n, 1);
        let (n, found, _) = search(format!("member={}&member={}", people[0], people[1])).await;
        assert_eq!((n, found), (1, vec![groups[0].clone()]));
        let (n, found, _) = search(format!("member:Patient={}&name=card", people[1])).await;
        assert_eq!((n, found), (1, vec![groups[1].clone()]));
        let (n, found, _) = search("member:missing=true".to_owned()).await;
        assert_eq!((n, found), (1, vec![groups[2].clone()]));
        // Another type's reference or no id: nothing matches; a bad modifier is a 400.
        let (n, _, _) = search(format!("member=Practitioner/{}", people[0])).await;
        assert_eq!(n, 0);
        let (n, _, _) = search("patient=12".to_owned()).await;
        assert_eq!(n, 0);
        let reply = app.get(&fhir(app, "default", "/Group?member:Device=x"), &token).await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        docs.keep(&reply);
        // The CapabilityStatement names the parameters.
        let metadata = app.send(reqwest::Method::GET, &fhir(app, "default", "/metadata"), None, None).await;
        let group = metadata.json["rest"][0]["resource"].as_array().unwrap().iter()
            .find(|r| r["type"] == "Group").expect("Group").clone();
        for name in ["member", "patient"] {
            assert!(group["searchParam"].as_array().unwrap().iter()
                .any(|p| p["name"] == name && p["type"] == "reference"), "{name}");
        }
        docs.validate();
    }
}
