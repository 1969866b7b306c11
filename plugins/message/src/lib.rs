//! OpenEMR patient messages (`pnotes`): `POST /api/patient/:pid/message`,
//! `PUT /api/patient/:pid/message/:mid` and `DELETE /api/patient/:pid/message/:mid`,
//! bare payloads with OpenEMR's numeric ids and MessageValidator's rules.
//!
//! As OpenEMR's `addPnote` does, the stored body starts with the time and the
//! `(from to to)` line, the addressee is `assigned_to` and a delete only marks the note
//! `deleted`. Unlike OpenEMR: the author recorded in `user` is the caller (a client
//! cannot write a note in another user's name; the body's `from` is kept in the text),
//! an update or delete names the patient's own note (another patient's is a 404), and a
//! deleted note can no longer be changed.

use hearth_emr::prelude::*;

/// The message resource.
pub struct Message;

impl Resource for Message {
    const NAME: &'static str = "message";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Patient messages (OpenEMR pnotes)";
    const WORDS: &'static [Words] = &[Words::new("message", "Messages", "patient messages")];
    const READS: &'static [&'static str] = &["patient_data"];
    const WRITES: &'static [&'static str] = &["pnotes"];
    const ROUTES: &'static [Route] = &[
        Route::post("/api/patient/:pid/message", "message.c", create)
            .acl("patients/notes:write")
            .bare()
            .summary("Send a message about a patient")
            .accepts(Schema::Body(&[COLUMNS], &[]))
            .answers(ANSWER),
        Route::put("/api/patient/:pid/message/:mid", "message.u", update)
            .acl("patients/notes:write")
            .bare()
            .summary("Update a patient's message")
            .accepts(Schema::Body(&[COLUMNS], &[]))
            .answers(ANSWER),
        Route::delete("/api/patient/:pid/message/:mid", "message.d", delete)
            .acl("patients/notes:write")
            .bare()
            .summary("Delete a patient's message")
            .answers(Schema::Boolean),
    ];
}

hearth_sdk::export!(Message);

/// What a write answers: the message's id.
const ANSWER: Schema = Schema::Object(&[Prop::new("mid", Schema::Integer).required()]);

/// The body's fields.
const COLUMNS: &[Column] = &[
    Column::text("body"),
    Column::text("to"),
    Column::text("from"),
    Column::text("groupname"),
    Column::text("title"),
    Column::text("message_status"),
];

/// MessageValidator's rules: every field on create; on update each is optional, but one
/// given must hold.
fn rules(v: &mut Validator<'_>, insert: bool) {
    v.field("body", "body", insert).length_between(2, 65535);
    for key in ["to", "from", "groupname", "title"] {
        v.field(key, key, insert).length_between(2, 255);
    }
    v.field("message_status", "message_status", insert)
        .length_between(2, 20);
}

fn text<'a>(fields: &'a Fields, key: &str) -> Option<&'a str> {
    match fields.get(key) {
        Some(Value::Text(t)) => Some(t.as_str()),
        _ => None,
    }
}

/// The stored text of a message: `YYYY-MM-DD HH:MM (from to to) body`, as OpenEMR
/// writes it.
pub fn stored_body(now: &str, from: &str, to: &str, body: &str) -> String {
    format!("{} ({from} to {to}) {body}", now.get(..16).unwrap_or(now))
}

fn create(req: &Request) -> Result<Response> {
    let patient = emr::path_pid(req, "pid")?;
    let fields = req.fields(COLUMNS, |v| rules(v, true))?;
    let now = hearth_sdk::time::now().datetime();
    let field = |key| text(&fields, key).unwrap_or("");
    let mut insert = Insert::into("pnotes");
    insert
        .set("date", now.as_str())
        .set(
            "body",
            stored_body(&now, field("from"), field("to"), field("body")),
        )
        .set("pid", patient.pid)
        .set("user", req.caller().username.as_str())
        .set("groupname", field("groupname"))
        .set("activity", 1)
        .set("authorized", 0)
        .set("title", field("title"))
        .set("assigned_to", field("to"))
        .set("deleted", 0)
        .set("message_status", field("message_status"));
    let id = insert.insert_id()?;
    Ok(req.created(Json::object().field("mid", id).end()))
}

fn update(req: &Request) -> Result<Response> {
    let patient = emr::path_pid(req, "pid")?;
    let mid = req.id("mid")?;
    let fields = req.fields(COLUMNS, |v| rules(v, false))?;
    let now = hearth_sdk::time::now().datetime();
    let mut update = Update::table("pnotes");
    update.set("update_date", now.as_str());
    if let Some(body) = text(&fields, "body") {
        // The stored line names who wrote and to whom, as on create.
        let current = store::query_one(
            "SELECT assigned_to FROM pnotes WHERE id = $1 AND pid = $2 AND deleted = 0",
            params![mid, patient.pid],
        )?
        .ok_or(ApiError::NotFound)?;
        let to = text(&fields, "to")
            .map(str::to_owned)
            .unwrap_or_else(|| current.text("assigned_to").unwrap_or("").to_owned());
        let from = text(&fields, "from").unwrap_or(req.caller().username.as_str());
        update.set("body", stored_body(&now, from, &to, body));
    }
    for (key, column) in [
        ("to", "assigned_to"),
        ("groupname", "groupname"),
        ("title", "title"),
        ("message_status", "message_status"),
    ] {
        if let Some(value) = text(&fields, key) {
            update.set(column, value);
        }
    }
    update
        .filter("id", mid)
        .filter("pid", patient.pid)
        .filter("deleted", 0)
        .apply()?;
    Ok(req.ok(Json::object().field("mid", mid).end()))
}

fn delete(req: &Request) -> Result<Response> {
    let patient = emr::path_pid(req, "pid")?;
    let mid = req.id("mid")?;
    Update::table("pnotes")
        .set("deleted", 1)
        .set("update_date", hearth_sdk::time::now().datetime())
        .filter("id", mid)
        .filter("pid", patient.pid)
        .filter("deleted", 0)
        .apply()?;
    Ok(req.ok(Json::raw("true")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_body_names_sender_and_addressee() {
        assert_eq!(
            stored_body("2025-03-04 05:06:07", "admin", "doctor", "Call back"),
            "2025-03-04 05:06 (admin to doctor) Call back"
        );
    }
}
