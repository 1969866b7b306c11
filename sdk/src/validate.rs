//! Validation with OpenEMR's rules and messages.
//!
//! OpenEMR validates with particle/validator and reports
//! `{"field": {"Rule::REASON": "message"}}`; this module reproduces those keys and texts so
//! clients that read them keep working.
//!
//! ```
//! use hearth_sdk::validate::Validator;
//! let body = serde_json::json!({"fname": "", "DOB": "1990-02-30"});
//! let body = body.as_object().unwrap();
//! let mut v = Validator::new(body);
//! v.required("fname", "First Name").length_between(1, 255);
//! v.required("lname", "Last Name").length_between(2, 255);
//! v.required("DOB", "Date of Birth").datetime("Y-m-d");
//! let errors = v.finish().unwrap_err();
//! # let _ = errors;
//! ```

use serde_json::{Map, Value};

use crate::json::Json;
use crate::response::ApiError;
use crate::sql::{Column, ident};
use crate::store::{self, StoreError};
use crate::time;

/// Collects validation errors for one JSON object.
pub struct Validator<'a> {
    input: &'a Map<String, Value>,
    errors: Vec<(String, Vec<(String, String)>)>,
    /// A failed lookup of a reference rule; it makes the request a 500, not a 400.
    store_error: Option<StoreError>,
}

impl<'a> Validator<'a> {
    /// Validates `input`.
    pub fn new(input: &'a Map<String, Value>) -> Validator<'a> {
        Validator {
            input,
            errors: Vec::new(),
            store_error: None,
        }
    }

    /// The object being validated.
    pub fn input(&self) -> &'a Map<String, Value> {
        self.input
    }

    /// True when some rule failed for `key`.
    pub fn has_error(&self, key: &str) -> bool {
        self.errors.iter().any(|(k, _)| k == key)
    }

    /// A field that must be present and not empty.
    pub fn required<'v>(&'v mut self, key: &str, name: &str) -> Field<'v, 'a> {
        self.field(key, name, true)
    }

    /// A field whose rules apply only when it is present and not empty.
    pub fn optional<'v>(&'v mut self, key: &str, name: &str) -> Field<'v, 'a> {
        self.field(key, name, false)
    }

    /// A field that is required on insert and optional on update: OpenEMR validates
    /// updates with the insert rules, each made optional, but empty values still fail.
    pub fn field<'v>(&'v mut self, key: &str, name: &str, required: bool) -> Field<'v, 'a> {
        let value = self.input.get(key);
        let mut field = Field {
            validator: self,
            key: key.to_owned(),
            name: name.to_owned(),
            value,
            skip: false,
        };
        match value {
            None if required => {
                let message = format!("{key} must be provided, but does not exist");
                field.fail("Required::NON_EXISTENT_KEY", message);
                field.skip = true;
            }
            None => field.skip = true,
            Some(v) if is_empty(v) => {
                let message = format!("{name} must not be empty");
                field.fail("NotEmpty::EMPTY_VALUE", message);
                field.skip = true;
            }
            Some(_) => {}
        }
        field
    }

    /// Like [`Validator::optional`], but empty values are allowed and skip the rules.
    pub fn optional_allow_empty<'v>(&'v mut self, key: &str, name: &str) -> Field<'v, 'a> {
        let value = self.input.get(key);
        let skip = value.is_none_or(is_empty);
        Field {
            validator: self,
            key: key.to_owned(),
            name: name.to_owned(),
            value,
            skip,
        }
    }

    /// Records an error found by other means.
    pub fn error(&mut self, key: &str, rule: &str, message: impl Into<String>) {
        match self.errors.iter_mut().find(|(k, _)| k == key) {
            Some((_, rules)) => rules.push((rule.to_owned(), message.into())),
            None => self
                .errors
                .push((key.to_owned(), vec![(rule.to_owned(), message.into())])),
        }
    }

    /// True when no rule failed so far.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors as OpenEMR's `validationErrors` object.
    pub fn errors_json(&self) -> Json {
        let mut out = Json::object();
        for (key, rules) in &self.errors {
            let mut reasons = Json::object();
            for (rule, message) in rules {
                reasons.field(rule, message.as_str());
            }
            out.field(key, reasons.end());
        }
        out.end()
    }

    /// `Ok` when valid, else a 400 [`ApiError::Validation`] (or a 500 when a reference
    /// rule could not look its value up).
    pub fn finish(self) -> Result<(), ApiError> {
        if let Some(error) = self.store_error {
            return Err(error.into());
        }
        if self.is_valid() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors_json()))
        }
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// The value as the text a PHP validator would see.
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(true) => Some("1".into()),
        Value::Bool(false) => Some(String::new()),
        _ => None,
    }
}

/// The rules of one field. Each rule runs unless an earlier failure stopped the chain
/// (a missing or empty field).
pub struct Field<'v, 'a> {
    validator: &'v mut Validator<'a>,
    key: String,
    name: String,
    value: Option<&'a Value>,
    skip: bool,
}

impl Field<'_, '_> {
    fn fail(&mut self, rule: &str, message: String) {
        self.validator.error(&self.key, rule, message);
    }

    fn check(&mut self, ok: impl FnOnce(&Value) -> bool, rule: &str, message: String) -> &mut Self {
        if let Some(value) = self.value.filter(|_| !self.skip)
            && !ok(value)
        {
            self.fail(rule, message);
        }
        self
    }

    /// Text of `min` to `max` characters.
    pub fn length_between(&mut self, min: usize, max: usize) -> &mut Self {
        let name = self.name.clone();
        if let Some(text) = self.value.filter(|_| !self.skip).map(as_text) {
            match text {
                None => self.fail("IsString::NOT_A_STRING", format!("{name} must be a string")),
                Some(t) if t.chars().count() < min => self.fail(
                    "LengthBetween::TOO_SHORT",
                    format!("{name} must be {min} characters or longer"),
                ),
                Some(t) if t.chars().count() > max => self.fail(
                    "LengthBetween::TOO_LONG",
                    format!("{name} must be {max} characters or shorter"),
                ),
                Some(_) => {}
            }
        }
        self
    }

    /// Text of exactly `length` characters.
    pub fn length(&mut self, length: usize) -> &mut Self {
        let name = self.name.clone();
        if let Some(text) = self.value.filter(|_| !self.skip).map(as_text) {
            let count = text.as_deref().map_or(0, |t| t.chars().count());
            if count < length {
                self.fail(
                    "Length::TOO_SHORT",
                    format!("{name} is too short and must be {length} characters long"),
                );
            } else if count > length {
                self.fail(
                    "Length::TOO_LONG",
                    format!("{name} is too long and must be {length} characters long"),
                );
            }
        }
        self
    }

    /// A number, or text holding one.
    pub fn numeric(&mut self) -> &mut Self {
        let message = format!("{} must be numeric", self.name);
        self.check(is_numeric, "Numeric::NOT_NUMERIC", message)
    }

    /// A number with `min..=max` digits, for NPIs and similar codes.
    pub fn digits_between(&mut self, min: usize, max: usize) -> &mut Self {
        self.numeric().length_between(min, max)
    }

    /// A date or datetime in a PHP-style format (`Y-m-d`, `Y-m-d H:i:s`).
    pub fn datetime(&mut self, format: &str) -> &mut Self {
        let message = format!("{} must be a valid date", self.name);
        self.check(
            |v| as_text(v).is_some_and(|t| time::parse(&t, format).is_some()),
            "DateTime::INVALID_VALUE",
            message,
        )
    }

    /// `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS`.
    pub fn date_or_datetime(&mut self) -> &mut Self {
        let message = format!("{} must be a valid date", self.name);
        self.check(
            |v| as_text(v).is_some_and(|t| time::parse_date_or_datetime(&t).is_some()),
            "DateTime::INVALID_VALUE",
            message,
        )
    }

    /// An e-mail address (unicode local parts allowed), reported as OpenEMR's patient
    /// validator does, keyed by the field and named by its display name:
    /// `{"email": {"email": "Email is not a valid email"}}`,
    /// `{"email_direct": {"email_direct": "Trusted Email is not a valid email"}}`.
    pub fn email(&mut self) -> &mut Self {
        let key = self.key.clone();
        let text = self.value.and_then(as_text).unwrap_or_default();
        let message = format!("{} is not a valid email", self.name);
        self.check(|_| is_email(&text), &key, message)
    }

    /// An e-mail address, reported with particle's `Email::INVALID_VALUE`.
    pub fn email_address(&mut self) -> &mut Self {
        let message = format!("{} must be a valid email address", self.name);
        self.check(
            |v| as_text(v).is_some_and(|t| is_email(&t)),
            "Email::INVALID_VALUE",
            message,
        )
    }

    /// An absolute http(s) URL.
    pub fn url(&mut self) -> &mut Self {
        let message = format!("{} must be a valid URL", self.name);
        self.check(
            |v| {
                as_text(v).is_some_and(|t| {
                    (t.starts_with("http://") || t.starts_with("https://"))
                        && t.split("://")
                            .nth(1)
                            .is_some_and(|rest| !rest.is_empty() && !rest.contains(' '))
                })
            },
            "Url::INVALID_URL",
            message,
        )
    }

    /// A UUID.
    pub fn uuid(&mut self) -> &mut Self {
        let message = format!("{} must be a valid UUID (valid format)", self.name);
        self.check(
            |v| as_text(v).is_some_and(|t| crate::request::is_uuid(&t)),
            "Uuid::INVALID_UUID",
            message,
        )
    }

    /// One of `allowed`.
    pub fn one_of(&mut self, allowed: &[&str]) -> &mut Self {
        let message = format!("{} must be one of {}", self.name, allowed.join(", "));
        self.check(
            |v| as_text(v).is_some_and(|t| allowed.contains(&t.as_str())),
            "InArray::NOT_IN_ARRAY",
            message,
        )
    }

    /// A reference to an existing row: the value (converted to `column`'s type) must be
    /// in `column` of `table`, e.g. `.exists_in("facility", Column::int("id"))`. Reported
    /// as OpenEMR's id callbacks are: `Callback::INVALID_VALUE`, "{name} is invalid".
    /// The lookup runs only when the field's earlier rules passed; the plugin must
    /// declare `table` in its `READS`.
    pub fn exists_in(&mut self, table: &str, column: Column) -> &mut Self {
        let Some(value) = self.lookup_value(column) else {
            return self;
        };
        let sql = format!(
            "SELECT 1 AS found FROM {table} WHERE {} = $1 LIMIT 1",
            ident(column.name)
        );
        self.found_or_fail(store::query(&sql, &[value]).map(|rows| !rows.is_empty()))
    }

    /// An optional reference as OpenEMR stores them in id columns: `0` means "none";
    /// any other value must exist, as with [`Field::exists_in`]. Clients read an
    /// encounter's `provider_id: 0` and send it back, so `0` must pass.
    pub fn reference(&mut self, table: &str, column: Column) -> &mut Self {
        let zero = self
            .value
            .and_then(as_text)
            .is_some_and(|t| t.trim() == "0");
        if zero {
            self
        } else {
            self.exists_in(table, column)
        }
    }

    /// A value no row holds yet in `column` of `table` (a unique key such as a user
    /// name), reported as `Unique::NOT_UNIQUE`, "{name} is already in use". The lookup
    /// runs only when the field's earlier rules passed.
    pub fn unique_in(&mut self, table: &str, column: Column) -> &mut Self {
        let Some(value) = self.lookup_value(column) else {
            return self;
        };
        let sql = format!(
            "SELECT 1 AS found FROM {table} WHERE {} = $1 LIMIT 1",
            ident(column.name)
        );
        match store::query(&sql, &[value]) {
            Ok(rows) if rows.is_empty() => {}
            Ok(_) => {
                let message = format!("{} is already in use", self.name);
                self.fail("Unique::NOT_UNIQUE", message);
            }
            Err(error) => self.validator.store_error = Some(error),
        }
        self
    }

    /// A code of the OpenEMR list `list_id`: the value must be an `option_id` of
    /// `list_options` in that list (e.g. an encounter's `class_code` in
    /// `_ActEncounterCode`). Reported as `Callback::INVALID_VALUE`, "{name} is invalid".
    pub fn list_option(&mut self, list_id: &str) -> &mut Self {
        let Some(value) = self.lookup_value(Column::text("option_id")) else {
            return self;
        };
        let sql =
            "SELECT 1 AS found FROM list_options WHERE list_id = $1 AND option_id = $2 LIMIT 1";
        let params = [crate::Value::from(list_id), value];
        self.found_or_fail(store::query(sql, &params).map(|rows| !rows.is_empty()))
    }

    /// The value to look up, or none when it is absent, empty, already failed a rule or
    /// does not convert to the column's type (the type error is reported elsewhere).
    fn lookup_value(&self, column: Column) -> Option<crate::Value> {
        let value = self
            .value
            .filter(|_| !self.skip && !self.validator.has_error(&self.key))?;
        column
            .value_of(value)
            .ok()
            .filter(|v| *v != crate::Value::Null)
    }

    fn found_or_fail(&mut self, found: Result<bool, StoreError>) -> &mut Self {
        match found {
            Ok(true) => {}
            Ok(false) => {
                let message = format!("{} is invalid", self.name);
                self.fail("Callback::INVALID_VALUE", message);
            }
            Err(error) => self.validator.store_error = Some(error),
        }
        self
    }

    /// A rule of your own: `ok` decides; a failure is recorded as `rule` with `message`.
    pub fn rule(
        &mut self,
        ok: impl FnOnce(&Value) -> bool,
        rule: &str,
        message: &str,
    ) -> &mut Self {
        self.check(ok, rule, message.to_owned())
    }
}

fn is_numeric(value: &Value) -> bool {
    match value {
        Value::Number(_) => true,
        Value::String(s) => {
            let t = s.trim();
            !t.is_empty() && t.parse::<f64>().is_ok_and(f64::is_finite)
        }
        _ => false,
    }
}

/// A practical e-mail check: one `@`, a non-empty local part without spaces, and a domain
/// with a dot whose labels are letters, digits or hyphens (unicode letters allowed).
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"\"(),:;<>@[\\]".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(input: Value, rules: impl FnOnce(&mut Validator<'_>)) -> Value {
        let input = input.as_object().unwrap().clone();
        let mut v = Validator::new(&input);
        rules(&mut v);
        v.errors_json().to_value()
    }

    #[test]
    fn missing_and_empty_fields_stop_their_chain() {
        let e = errors(json!({"lname": ""}), |v| {
            v.required("fname", "First Name").length_between(1, 255);
            v.required("lname", "Last Name").length_between(2, 255);
        });
        assert_eq!(
            e,
            json!({
                "fname": {"Required::NON_EXISTENT_KEY": "fname must be provided, but does not exist"},
                "lname": {"NotEmpty::EMPTY_VALUE": "Last Name must not be empty"}
            })
        );
    }

    #[test]
    fn rules_report_openemr_messages() {
        let e = errors(
            json!({"lname": "A", "sex": "M", "DOB": "2020-02-30", "npi": "12a", "site": "ftp://x"}),
            |v| {
                v.required("lname", "Last Name").length_between(2, 255);
                v.required("sex", "Gender").length_between(4, 30);
                v.required("DOB", "Date of Birth").datetime("Y-m-d");
                v.required("npi", "NPI").numeric();
                v.optional("site", "Website").url();
                v.optional("absent", "Absent").numeric();
            },
        );
        assert_eq!(
            e["lname"]["LengthBetween::TOO_SHORT"],
            "Last Name must be 2 characters or longer"
        );
        assert_eq!(
            e["sex"]["LengthBetween::TOO_SHORT"],
            "Gender must be 4 characters or longer"
        );
        assert_eq!(
            e["DOB"]["DateTime::INVALID_VALUE"],
            "Date of Birth must be a valid date"
        );
        assert_eq!(e["npi"]["Numeric::NOT_NUMERIC"], "NPI must be numeric");
        assert_eq!(e["site"]["Url::INVALID_URL"], "Website must be a valid URL");
        assert!(e.get("absent").is_none());
    }

    #[test]
    fn emails_follow_the_patient_validator_shape() {
        let e = errors(json!({"email": "nope"}), |v| {
            v.optional("email", "Email").email();
        });
        assert_eq!(e, json!({"email": {"email": "Email is not a valid email"}}));
        assert!(is_email("jane.doe+x@example.org"));
        assert!(is_email("josé@exämple.de"));
        assert!(!is_email("a@b"));
        assert!(!is_email("a b@example.org"));
    }

    #[test]
    fn references_are_looked_up_only_for_well_formed_values() {
        let input =
            json!({"facility_id": "3", "provider_id": "abc", "class_code": "XYZ", "pc_catid": ""});
        let input = input.as_object().unwrap().clone();
        let mut host = crate::testing::MockHost::new()
            .on_query(
                "FROM facility",
                crate::Rows::from_values(&["found"], vec![vec![1.into()]]),
            )
            .on_query("FROM list_options", crate::Rows::default());
        let errors = host.run(|| {
            let mut v = Validator::new(&input);
            v.required("facility_id", "Facility Id")
                .numeric()
                .exists_in("facility", Column::int("id"));
            v.optional("provider_id", "provider_id")
                .numeric()
                .exists_in("users", Column::int("id"));
            v.required("class_code", "class_code")
                .list_option("_ActEncounterCode");
            v.optional_allow_empty("pc_catid", "pc_catid")
                .exists_in("categories", Column::int("id"));
            v.errors_json().to_value()
        });
        assert_eq!(
            errors,
            json!({
                "provider_id": {"Numeric::NOT_NUMERIC": "provider_id must be numeric"},
                "class_code": {"Callback::INVALID_VALUE": "class_code is invalid"}
            })
        );
        let queries = host.queries();
        assert_eq!(
            queries.len(),
            2,
            "no lookup for a value that already failed or is empty"
        );
        assert_eq!(
            queries[0].1,
            vec![crate::Value::Integer(3)],
            "ids bind as integers"
        );
        assert_eq!(queries[1].1, vec!["_ActEncounterCode".into(), "XYZ".into()]);
    }

    #[test]
    fn a_zero_reference_means_none() {
        let input = json!({"provider_id": 0, "facility_id": "0", "billing_facility": "9"});
        let input = input.as_object().unwrap().clone();
        let mut host =
            crate::testing::MockHost::new().on_query("FROM facility", crate::Rows::default());
        let errors = host.run(|| {
            let mut v = Validator::new(&input);
            v.optional("provider_id", "provider_id")
                .reference("users", Column::int("id"));
            v.optional("facility_id", "facility_id")
                .reference("facility", Column::int("id"));
            v.optional("billing_facility", "billing_facility")
                .reference("facility", Column::int("id"));
            v.errors_json().to_value()
        });
        assert_eq!(
            errors,
            json!({"billing_facility": {"Callback::INVALID_VALUE": "billing_facility is invalid"}})
        );
        assert_eq!(host.queries().len(), 1);
    }

    #[test]
    fn unique_values_must_not_exist_yet() {
        let input = json!({"username": "ann", "other": ""});
        let input = input.as_object().unwrap().clone();
        let mut host = crate::testing::MockHost::new().on_query(
            "FROM users",
            crate::Rows::from_values(&["found"], vec![vec![1.into()]]),
        );
        let errors = host.run(|| {
            let mut v = Validator::new(&input);
            v.optional_allow_empty("username", "Username")
                .unique_in("users", Column::text("username"));
            v.optional_allow_empty("other", "Other")
                .unique_in("users", Column::text("other"));
            v.errors_json().to_value()
        });
        assert_eq!(
            errors,
            json!({"username": {"Unique::NOT_UNIQUE": "Username is already in use"}})
        );
        assert_eq!(host.queries().len(), 1, "empty values are not looked up");
    }

    #[test]
    fn a_failed_lookup_is_an_internal_error() {
        let input = json!({"facility_id": 3});
        let input = input.as_object().unwrap().clone();
        let mut host = crate::testing::MockHost::new()
            .on_error("FROM facility", crate::StoreError::Failed("down".into()));
        let result = host.run(|| {
            let mut v = Validator::new(&input);
            v.optional("facility_id", "Facility Id")
                .exists_in("facility", Column::int("id"));
            v.finish()
        });
        assert!(matches!(result, Err(ApiError::Internal(_))));
    }

    #[test]
    fn optional_allow_empty_skips_empty_values() {
        let e = errors(json!({"email": ""}), |v| {
            v.optional_allow_empty("email", "Email").email();
        });
        assert_eq!(e, json!({}));
    }
}
