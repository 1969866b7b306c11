//! What a plugin tells API users about itself: per route its parameters and request and
//! response JSON Schemas, and per scope resource the words the consent page shows.
//!
//! Everything is a constant declared beside the routes:
//!
//! ```
//! use hearth_sdk::prelude::*;
//! use hearth_sdk::apidocs::{Param, Schema, Words};
//!
//! const FIELDS: &[Column] = &[Column::text("name"), Column::int("billing_location")];
//! const SHOWN: &[Column] = &[Column::int("id"), Column::text("uuid")];
//!
//! struct Facility;
//! impl Resource for Facility {
//!     const NAME: &'static str = "facility-lite";
//!     const VERSION: &'static str = "0.1.0";
//!     const WRITES: &'static [&'static str] = &["facility"];
//!     const WORDS: &'static [Words] = &[Words::new("facility", "Facilities", "facilities")];
//!     const ROUTES: &'static [Route] = &[
//!         Route::get("/api/facility", "facility.s", list)
//!             .summary("List facilities")
//!             .filters(FIELDS)
//!             .answers_list(Schema::Row(&[SHOWN, FIELDS])),
//!         Route::post("/api/facility", "facility.c", list)
//!             .summary("Create a facility")
//!             .accepts(Schema::Body(&[FIELDS], &["name"]))
//!             .answers(Schema::Row(&[SHOWN])),
//!     ];
//! }
//! # fn list(_: &Request) -> Result<Response> { Ok(Response::ok(Json::raw("[]"))) }
//! ```
//!
//! [`crate::export!`] writes the declarations as JSON into the component's custom section
//! [`SECTION`] (as it writes migrations), so they need no contract version of their own:
//! the host reads the section when it loads the plugin, checks that each schema is a valid
//! JSON Schema, and builds the site's OpenAPI documents and consent words from them. A
//! component without the section (built before it existed) is documented from its routes
//! alone.
//!
//! On a native build, [`crate::testing::MockHost::call`] checks every request a route
//! accepted (a 2xx answer) against its declared request schema and every 2xx response
//! against its response schema, and fails the test on a mismatch, so what a plugin
//! declares is what its tests send and receive.
//!
//! The section's JSON (format 1):
//!
//! ```text
//! {"format":1,
//!  "words":[{"resource":"patient","name":"Patients","what":"patients' demographics",
//!            "categories":[["problem-list-item","problems"]]}],
//!  "routes":[{"parameters":[{"name","in","required","description","schema"}],
//!             "request":<schema>|null,"response":<schema>|null,"list":bool}]}
//! ```
//!
//! `routes` runs parallel to [`crate::Resource::ROUTES`]. A response schema is the payload
//! (one record, or with `list` one element of the list); the host wraps it in OpenEMR's
//! envelope on routes whose shape is the envelope.

use crate::Resource;
use crate::response::Shape;
use crate::sql::{Column, Kind};

/// The name of the component's custom section that carries the declarations.
pub const SECTION: &str = "hearth:api-docs";

/// The encoding's version (the JSON's `format`).
pub const FORMAT: u8 = 1;

/// A JSON Schema, as a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Any JSON value.
    Any,
    /// A string.
    String,
    /// A string of a JSON Schema `format` (`date`, `date-time`, `uuid`, `email`, `uri`).
    Format(&'static str),
    /// An integer.
    Integer,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// A string with digits only, or an integer: how OpenEMR takes numbers in bodies and
    /// query strings.
    Numeric,
    /// A list of values of one schema.
    Array(&'static Schema),
    /// An object with these properties (others allowed).
    Object(&'static [Prop]),
    /// A record as the plugin answers it: the columns of these lists, each its column's
    /// type or `null` (others allowed).
    Row(&'static [&'static [Column]]),
    /// A request body setting these columns (of these lists; others are ignored), with
    /// the keys that must be present.
    Body(&'static [&'static [Column]], &'static [&'static str]),
    /// A FHIR resource of this type.
    Fhir(&'static str),
    /// A FHIR `searchset` Bundle whose entries' resources have this schema.
    Bundle(&'static Schema),
    /// A JSON Schema written out as JSON text.
    Json(&'static str),
    /// This schema, or `null`.
    Nullable(&'static Schema),
}

/// One property of a [`Schema::Object`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prop {
    /// The key.
    pub name: &'static str,
    /// Its schema.
    pub schema: Schema,
    /// True when the key must be present.
    pub required: bool,
    /// What it means (may be empty).
    pub description: &'static str,
}

impl Prop {
    /// An optional property.
    pub const fn new(name: &'static str, schema: Schema) -> Prop {
        Prop {
            name,
            schema,
            required: false,
            description: "",
        }
    }

    /// Marks the property as required.
    pub const fn required(mut self) -> Prop {
        self.required = true;
        self
    }

    /// Sets the description.
    pub const fn describe(mut self, description: &'static str) -> Prop {
        self.description = description;
        self
    }
}

/// Where a [`Param`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    /// A segment of the path template (`:name`).
    Path,
    /// A query-string key.
    Query,
}

/// A route parameter. Path parameters need no declaration unless they deserve a
/// description: the host documents each `:name` of the template as a string (a UUID
/// when the name ends in `uuid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// Path or query.
    pub place: In,
    /// Its schema.
    pub schema: Schema,
    /// True when it must be given (path parameters always are).
    pub required: bool,
    /// What it does.
    pub description: &'static str,
}

impl Param {
    /// An optional query parameter.
    pub const fn query(name: &'static str, schema: Schema, description: &'static str) -> Param {
        Param {
            name,
            place: In::Query,
            schema,
            required: false,
            description,
        }
    }

    /// A path parameter.
    pub const fn path(name: &'static str, schema: Schema, description: &'static str) -> Param {
        Param {
            name,
            place: In::Path,
            schema,
            required: true,
            description,
        }
    }

    /// Marks the parameter as required.
    pub const fn required(mut self) -> Param {
        self.required = true;
        self
    }
}

/// What a route answers on success, as declared with [`crate::Route::answers`] and
/// [`crate::Route::answers_list`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Not declared.
    Undeclared,
    /// One payload of this schema.
    One(Schema),
    /// A list of payloads of this schema.
    List(Schema),
}

/// The words for one scope resource (`patient` in `user/patient.rs`), for the consent
/// page and the admin console: `Read and search patients' demographics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Words {
    /// The resource part of the scope, as the routes write it (`patient`, `Patient`).
    pub resource: &'static str,
    /// The resource's display name, a heading: `Patients`.
    pub name: &'static str,
    /// What the permissions apply to, after a verb: `patients' demographics`.
    pub what: &'static str,
    /// Granular categories (`?category=` of SMART v2 scopes): code and words, e.g.
    /// `("problem-list-item", "problems")`.
    pub categories: &'static [(&'static str, &'static str)],
}

impl Words {
    /// Words without categories.
    pub const fn new(resource: &'static str, name: &'static str, what: &'static str) -> Words {
        Words {
            resource,
            name,
            what,
            categories: &[],
        }
    }

    /// Adds granular categories.
    pub const fn categories(
        mut self,
        categories: &'static [(&'static str, &'static str)],
    ) -> Words {
        self.categories = categories;
        self
    }
}

/// A JSON writer that works in constants: with an empty buffer it only counts.
struct Out<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Out<'_> {
    const fn byte(&mut self, b: u8) {
        if self.at < self.buf.len() {
            self.buf[self.at] = b;
        }
        self.at += 1;
    }

    const fn raw(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            self.byte(bytes[i]);
            i += 1;
        }
    }

    /// A JSON string literal.
    const fn string(&mut self, text: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bytes = text.as_bytes();
        self.byte(b'"');
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match b {
                b'"' => self.raw("\\\""),
                b'\\' => self.raw("\\\\"),
                b'\n' => self.raw("\\n"),
                0..0x20 => {
                    self.raw("\\u00");
                    self.byte(HEX[(b >> 4) as usize]);
                    self.byte(HEX[(b & 15) as usize]);
                }
                _ => self.byte(b),
            }
            i += 1;
        }
        self.byte(b'"');
    }

    const fn key(&mut self, first: bool, key: &str) {
        if !first {
            self.byte(b',');
        }
        self.string(key);
        self.byte(b':');
    }

    const fn bool(&mut self, value: bool) {
        self.raw(if value { "true" } else { "false" });
    }
}

/// The JSON Schema of a column's values in answers (its type, or `null`).
const fn column_out(out: &mut Out, kind: Kind) {
    out.raw(match kind {
        Kind::Text | Kind::TextOrNull => r#"{"type":["string","null"]}"#,
        Kind::Integer => r#"{"type":["integer","null"]}"#,
        Kind::Real => r#"{"type":["number","null"]}"#,
        Kind::Date => r#"{"type":["string","null"],"format":"date"}"#,
        Kind::DateTime => r#"{"type":["string","null"]}"#,
    })
}

/// The JSON Schema of what a body may send for a column (what `Column::value_of`
/// accepts: numbers also as strings, `null` where it means empty).
const fn column_in(out: &mut Out, kind: Kind) {
    out.raw(match kind {
        Kind::Text => r#"{"type":["string","number","null"]}"#,
        Kind::TextOrNull => r#"{"type":["string","number","null"]}"#,
        Kind::Integer => r#"{"type":["integer","string","null"]}"#,
        Kind::Real => r#"{"type":["number","string","null"]}"#,
        Kind::Date | Kind::DateTime => r#"{"type":["string","null"]}"#,
    })
}

const fn columns(out: &mut Out, lists: &[&[Column]], input: bool) {
    out.raw(r#"{"type":"object","properties":{"#);
    let mut first = true;
    let mut l = 0;
    while l < lists.len() {
        let list = lists[l];
        let mut c = 0;
        while c < list.len() {
            let column = list[c];
            // A name listed twice is written once.
            if !seen(lists, l, c) {
                out.key(first, column.name);
                first = false;
                if input {
                    column_in(out, column.kind);
                } else {
                    column_out(out, column.kind);
                }
            }
            c += 1;
        }
        l += 1;
    }
    out.byte(b'}');
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// True when column `c` of list `l` has a name an earlier column had.
const fn seen(lists: &[&[Column]], l: usize, c: usize) -> bool {
    let name = lists[l][c].name;
    let mut i = 0;
    while i <= l {
        let end = if i == l { c } else { lists[i].len() };
        let mut j = 0;
        while j < end {
            if str_eq(lists[i][j].name, name) {
                return true;
            }
            j += 1;
        }
        i += 1;
    }
    false
}

const fn strings(out: &mut Out, items: &[&str]) {
    out.byte(b'[');
    let mut i = 0;
    while i < items.len() {
        if i > 0 {
            out.byte(b',');
        }
        out.string(items[i]);
        i += 1;
    }
    out.byte(b']');
}

const fn schema(out: &mut Out, s: &Schema) {
    match *s {
        Schema::Any => out.raw("{}"),
        Schema::String => out.raw(r#"{"type":"string"}"#),
        Schema::Format(format) => {
            out.raw(r#"{"type":"string","format":"#);
            out.string(format);
            out.byte(b'}');
        }
        Schema::Integer => out.raw(r#"{"type":"integer"}"#),
        Schema::Number => out.raw(r#"{"type":"number"}"#),
        Schema::Boolean => out.raw(r#"{"type":"boolean"}"#),
        Schema::Numeric => {
            out.raw(r#"{"type":["integer","string"],"pattern":"^-?[0-9]+$"}"#);
        }
        Schema::Enum(values) => {
            out.raw(r#"{"type":"string","enum":"#);
            strings(out, values);
            out.byte(b'}');
        }
        Schema::Array(items) => {
            out.raw(r#"{"type":"array","items":"#);
            schema(out, items);
            out.byte(b'}');
        }
        Schema::Object(props) => {
            out.raw(r#"{"type":"object","properties":{"#);
            let mut i = 0;
            while i < props.len() {
                out.key(i == 0, props[i].name);
                if props[i].description.is_empty() {
                    schema(out, &props[i].schema);
                } else {
                    out.raw(r#"{"description":"#);
                    out.string(props[i].description);
                    out.raw(r#","allOf":["#);
                    schema(out, &props[i].schema);
                    out.raw("]}");
                }
                i += 1;
            }
            out.byte(b'}');
            let mut required = false;
            let mut i = 0;
            while i < props.len() {
                if props[i].required {
                    out.raw(if required { "," } else { r#","required":["# });
                    required = true;
                    out.string(props[i].name);
                }
                i += 1;
            }
            if required {
                out.byte(b']');
            }
            out.byte(b'}');
        }
        Schema::Row(lists) => {
            columns(out, lists, false);
            out.byte(b'}');
        }
        Schema::Body(lists, required) => {
            columns(out, lists, true);
            if !required.is_empty() {
                out.raw(r#","required":"#);
                strings(out, required);
            }
            out.byte(b'}');
        }
        Schema::Fhir(resource_type) => {
            out.raw(r#"{"type":"object","required":["resourceType"],"properties":{"resourceType":{"const":"#);
            out.string(resource_type);
            out.raw(r#"},"id":{"type":"string"},"meta":{"type":"object"}}}"#);
        }
        Schema::Bundle(resource) => {
            out.raw(r#"{"type":"object","required":["resourceType","type"],"properties":{"resourceType":{"const":"Bundle"},"type":{"const":"searchset"},"total":{"type":"integer"},"link":{"type":"array","items":{"type":"object","properties":{"relation":{"type":"string"},"url":{"type":"string"}}}},"entry":{"type":"array","items":{"type":"object","properties":{"fullUrl":{"type":"string"},"resource":"#);
            schema(out, resource);
            out.raw("}}}}}");
        }
        Schema::Json(text) => out.raw(text),
        Schema::Nullable(inner) => {
            out.raw(r#"{"anyOf":["#);
            schema(out, inner);
            out.raw(r#",{"type":"null"}]}"#);
        }
    }
}

const fn write<R: Resource>(out: &mut Out) {
    out.raw(r#"{"format":1,"words":["#);
    let mut i = 0;
    while i < R::WORDS.len() {
        let w = &R::WORDS[i];
        if i > 0 {
            out.byte(b',');
        }
        out.raw(r#"{"resource":"#);
        out.string(w.resource);
        out.raw(r#","name":"#);
        out.string(w.name);
        out.raw(r#","what":"#);
        out.string(w.what);
        out.raw(r#","categories":["#);
        let mut c = 0;
        while c < w.categories.len() {
            if c > 0 {
                out.byte(b',');
            }
            out.byte(b'[');
            out.string(w.categories[c].0);
            out.byte(b',');
            out.string(w.categories[c].1);
            out.byte(b']');
            c += 1;
        }
        out.raw("]}");
        i += 1;
    }
    out.raw(r#"],"routes":["#);
    let mut i = 0;
    while i < R::ROUTES.len() {
        let route = &R::ROUTES[i];
        if i > 0 {
            out.byte(b',');
        }
        out.raw(r#"{"parameters":["#);
        let mut first = true;
        let mut p = 0;
        while p < route.params.len() {
            param(out, &mut first, &route.params[p]);
            p += 1;
        }
        let mut f = 0;
        while f < route.filters.len() {
            let column = route.filters[f];
            if !declared(route.params, column.name) {
                let filter = Param::query(column.name, Schema::String, "");
                param(out, &mut first, &filter);
            }
            f += 1;
        }
        out.raw(r#"],"request":"#);
        match &route.accepts {
            Some(s) => schema(out, s),
            None => out.raw("null"),
        }
        out.raw(r#","response":"#);
        match &route.answer {
            Answer::One(s) | Answer::List(s) => schema(out, s),
            Answer::Undeclared => out.raw("null"),
        }
        out.raw(r#","list":"#);
        out.bool(matches!(route.answer, Answer::List(_)));
        out.raw(r#","envelope":"#);
        out.bool(!matches!(route.shape, Shape::Bare));
        out.byte(b'}');
        i += 1;
    }
    out.raw("]}");
}

const fn declared(params: &[Param], name: &str) -> bool {
    let mut i = 0;
    while i < params.len() {
        if str_eq(params[i].name, name) {
            return true;
        }
        i += 1;
    }
    false
}

const fn param(out: &mut Out, first: &mut bool, p: &Param) {
    if !*first {
        out.byte(b',');
    }
    *first = false;
    out.raw(r#"{"name":"#);
    out.string(p.name);
    out.raw(r#","in":"#);
    out.string(match p.place {
        In::Path => "path",
        In::Query => "query",
    });
    out.raw(r#","required":"#);
    out.bool(p.required || matches!(p.place, In::Path));
    if !p.description.is_empty() {
        out.raw(r#","description":"#);
        out.string(p.description);
    }
    out.raw(r#","schema":"#);
    schema(out, &p.schema);
    out.byte(b'}');
}

/// The length of [`encode`]'s output for `R`.
pub const fn encoded_len<R: Resource>() -> usize {
    let mut out = Out {
        buf: &mut [],
        at: 0,
    };
    write::<R>(&mut out);
    out.at
}

/// The section's bytes for `R`: its declarations as JSON. `N` must be
/// [`encoded_len`]`::<R>()`.
pub const fn encode<R: Resource, const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    let mut out = Out {
        buf: &mut bytes,
        at: 0,
    };
    write::<R>(&mut out);
    assert!(out.at == N, "encoded length mismatch");
    bytes
}

/// `R`'s declarations as the section carries them (JSON text).
pub fn json<R: Resource>() -> String {
    let mut bytes = vec![0u8; encoded_len::<R>()];
    let mut out = Out {
        buf: &mut bytes,
        at: 0,
    };
    write::<R>(&mut out);
    String::from_utf8(bytes).expect("the writer writes UTF-8")
}

/// The JSON text of one schema.
pub fn schema_json(s: &Schema) -> String {
    let mut count = Out {
        buf: &mut [],
        at: 0,
    };
    schema(&mut count, s);
    let mut bytes = vec![0u8; count.at];
    schema(
        &mut Out {
            buf: &mut bytes,
            at: 0,
        },
        s,
    );
    String::from_utf8(bytes).expect("the writer writes UTF-8")
}
