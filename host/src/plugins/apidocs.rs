//! A plugin's API description and scope words: reading the `hearth:api-docs` section its
//! component carries, and checking it before the plugin loads.
//!
//! The SDK writes the section (layout in `sdk/src/apidocs.rs`): per route its parameters
//! and request and response JSON Schemas, per scope resource its display name and words.
//! A component without it (built before it existed) loads with none: the OpenAPI
//! documents list its routes without schemas, and the consent page words its scopes from
//! their resource names. A section that is not valid JSON, whose route list does not run
//! parallel to the plugin's routes, or whose schemas are not JSON Schemas, fails the load
//! with a message naming the route and the keyword.

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

use super::migrations::custom_sections;

/// The custom section's name.
pub const SECTION: &str = "hearth:api-docs";

/// The words for one scope resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    /// The scope's resource part, e.g. `patient`.
    pub resource: String,
    /// The display name, e.g. `Patients`.
    pub name: String,
    /// What the permissions apply to, e.g. `patients' demographics`.
    pub what: String,
    /// Granular categories: code and words.
    pub categories: Vec<(String, String)>,
}

/// One route's documentation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteDocs {
    /// OpenAPI parameter objects (`name`, `in`, `required`, `description`, `schema`).
    pub parameters: Vec<Value>,
    /// The request body's schema.
    pub request: Option<Value>,
    /// The success payload's schema (one element when `list`).
    pub response: Option<Value>,
    /// True when the route answers a list of `response`.
    pub list: bool,
    /// True when the route answers OpenEMR's envelope around the payload.
    pub envelope: bool,
}

/// What a plugin declares for its users.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiDocs {
    /// Words per scope resource.
    pub words: Vec<Words>,
    /// Per route, parallel to the plugin's routes; empty when the component has no
    /// section.
    pub routes: Vec<RouteDocs>,
}

impl ApiDocs {
    /// The documentation of route `index`, if declared.
    pub fn route(&self, index: usize) -> Option<&RouteDocs> {
        self.routes.get(index)
    }
}

/// The declarations in the component `bytes` (empty when it has no section), checked
/// on their own; [`check_routes`] checks them against the routes once those are known.
pub fn read(bytes: &[u8]) -> Result<ApiDocs> {
    let sections = custom_sections(bytes, SECTION)?;
    match sections.as_slice() {
        [] => Ok(ApiDocs::default()),
        [one] => decode(one),
        _ => bail!("the component has more than one {SECTION} section"),
    }
}

fn decode(bytes: &[u8]) -> Result<ApiDocs> {
    let value: Value = serde_json::from_slice(bytes)
        .with_context(|| format!("the {SECTION} section is not valid JSON"))?;
    let format = value.get("format").and_then(Value::as_u64);
    if format != Some(1) {
        bail!("the {SECTION} section has format {format:?}; this host reads format 1");
    }
    let mut words = Vec::new();
    for item in array(&value, "words")? {
        let text = |key: &str| -> Result<String> {
            item.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("{SECTION}: a words entry has no {key}"))
        };
        let resource = text("resource")?;
        let name = text("name")?;
        let what = text("what")?;
        if resource.is_empty() || name.trim().is_empty() || what.trim().is_empty() {
            bail!("{SECTION}: the words for {resource:?} need a resource, a name and words");
        }
        let mut categories = Vec::new();
        for pair in array(item, "categories")? {
            match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(code), Value::String(text)]) => {
                    categories.push((code.clone(), text.clone()))
                }
                _ => bail!("{SECTION}: a category of {resource} is not [code, words]"),
            }
        }
        if words.iter().any(|w: &Words| w.resource == resource) {
            bail!("{SECTION}: the words for {resource} are declared twice");
        }
        words.push(Words {
            resource,
            name,
            what,
            categories,
        });
    }
    let mut routes = Vec::new();
    for (index, item) in array(&value, "routes")?.iter().enumerate() {
        let at = format!("{SECTION}: route {index}");
        let schema_at = |key: &str| -> Result<Option<Value>> {
            match item.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(schema) => {
                    check_schema(schema, &format!("{at} {key}"))?;
                    Ok(Some(schema.clone()))
                }
            }
        };
        let mut parameters = Vec::new();
        for parameter in array(item, "parameters")? {
            let name = parameter.get("name").and_then(Value::as_str).unwrap_or("");
            let place = parameter.get("in").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() || !matches!(place, "path" | "query") {
                bail!("{at}: a parameter needs a name and `in` path or query");
            }
            let schema = parameter.get("schema").unwrap_or(&Value::Null);
            check_schema(schema, &format!("{at} parameter {name}"))?;
            parameters.push(parameter.clone());
        }
        routes.push(RouteDocs {
            parameters,
            request: schema_at("request")?,
            response: schema_at("response")?,
            list: item.get("list").and_then(Value::as_bool).unwrap_or(false),
            envelope: item
                .get("envelope")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        });
    }
    Ok(ApiDocs { words, routes })
}

fn array<'a>(value: &'a Value, key: &str) -> Result<&'a Vec<Value>> {
    match value.get(key) {
        Some(Value::Array(items)) => Ok(items),
        _ => bail!("the {SECTION} section has no {key} list"),
    }
}

/// Checks the declarations against the plugin's routes: one entry per route, and each
/// declared path parameter a parameter of the route's template.
pub fn check_routes(docs: &ApiDocs, routes: &[(String, Vec<String>)]) -> Result<()> {
    if docs.routes.is_empty() {
        return Ok(());
    }
    if docs.routes.len() != routes.len() {
        bail!(
            "the {SECTION} section documents {} routes; the plugin has {}",
            docs.routes.len(),
            routes.len()
        );
    }
    for (route, (path, params)) in docs.routes.iter().zip(routes) {
        for parameter in &route.parameters {
            let name = parameter["name"].as_str().unwrap_or("");
            if parameter["in"] == "path" && !params.iter().any(|p| p == name) {
                bail!(
                    "{SECTION}: route {path} documents the path parameter {name}, which its template does not have"
                );
            }
        }
    }
    Ok(())
}

/// The JSON Schema type names.
const TYPES: &[&str] = &[
    "null", "boolean", "object", "array", "number", "string", "integer",
];

/// Keywords whose value is one schema.
const ONE_SCHEMA: &[&str] = &[
    "items",
    "not",
    "additionalProperties",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedProperties",
    "unevaluatedItems",
];

/// Keywords whose value is a non-empty list of schemas.
const SCHEMA_LISTS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];

/// Keywords whose value is a map of schemas.
const SCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "dependentSchemas",
];

/// Keywords whose value is a non-negative integer.
const COUNTS: &[&str] = &[
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
];

/// Checks that `schema` is a JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1):
/// an object or a boolean, whose applicator keywords hold schemas and whose assertion
/// keywords have values of the kind the specification requires. `$ref` is refused: a
/// plugin's schemas stand alone.
pub fn check_schema(schema: &Value, at: &str) -> Result<()> {
    let object: &Map<String, Value> = match schema {
        Value::Bool(_) => return Ok(()),
        Value::Object(object) => object,
        other => bail!("{at}: a schema is an object or a boolean, not {other}"),
    };
    for (key, value) in object {
        let at = format!("{at}/{key}");
        let complaint: Option<String> = match key.as_str() {
            "type" => {
                let names: Vec<&Value> = match value {
                    Value::Array(names) if !names.is_empty() => names.iter().collect(),
                    Value::String(_) => vec![value],
                    _ => bail!("{at}: type is a type name or a non-empty list of them"),
                };
                names
                    .into_iter()
                    .find(|name| !name.as_str().is_some_and(|n| TYPES.contains(&n)))
                    .map(|name| format!("{name} is not a JSON Schema type ({})", TYPES.join(", ")))
            }
            "required" => (!value
                .as_array()
                .is_some_and(|keys| keys.iter().all(Value::is_string)))
            .then(|| "required is a list of property names".to_owned()),
            "enum" => value
                .as_array()
                .is_none_or(|values| values.is_empty())
                .then(|| "enum is a non-empty list".to_owned()),
            "pattern" => {
                (!value.is_string()).then(|| "pattern is a regular expression string".to_owned())
            }
            "format" | "description" | "title" => {
                (!value.is_string()).then(|| format!("{key} is a string"))
            }
            "$ref" | "$dynamicRef" => {
                Some("references are not allowed; write the schema out".to_owned())
            }
            key if ONE_SCHEMA.contains(&key) => {
                check_schema(value, &at)?;
                None
            }
            key if SCHEMA_LISTS.contains(&key) => match value {
                Value::Array(list) if !list.is_empty() => {
                    for (i, item) in list.iter().enumerate() {
                        check_schema(item, &format!("{at}/{i}"))?;
                    }
                    None
                }
                _ => Some(format!("{key} is a non-empty list of schemas")),
            },
            key if SCHEMA_MAPS.contains(&key) => match value {
                Value::Object(map) => {
                    for (name, item) in map {
                        check_schema(item, &format!("{at}/{name}"))?;
                    }
                    None
                }
                _ => Some(format!("{key} is a map of schemas")),
            },
            key if COUNTS.contains(&key) => value
                .as_u64()
                .is_none()
                .then(|| format!("{key} is a non-negative integer")),
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" | "multipleOf" => {
                (!value.is_number()).then(|| format!("{key} is a number"))
            }
            // Annotations and keywords without constraints on their value (`const`,
            // `default`, `examples`, ...).
            _ => None,
        };
        if let Some(complaint) = complaint {
            bail!("{at}: {complaint}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schemas_are_checked_keyword_by_keyword() {
        let good = json!({"type": "object", "properties": {"a": {"type": ["string", "null"]}},
            "required": ["a"], "items": {"anyOf": [{"type": "integer"}, true]}});
        check_schema(&good, "s").unwrap();
        for (bad, says) in [
            (json!({"type": "text"}), "not a JSON Schema type"),
            (json!({"properties": {"a": 3}}), "object or a boolean"),
            (json!({"required": "a"}), "list of property names"),
            (json!({"anyOf": []}), "non-empty list of schemas"),
            (json!({"$ref": "#/x"}), "references are not allowed"),
            (json!({"minLength": -1}), "non-negative integer"),
            (json!(3), "object or a boolean"),
        ] {
            let error = check_schema(&bad, "s").unwrap_err().to_string();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn the_section_decodes_and_checks_against_routes() {
        let text = json!({"format": 1,
            "words": [{"resource": "widget", "name": "Widgets", "what": "widgets",
                       "categories": [["a", "A things"]]}],
            "routes": [{"parameters": [{"name": "wid", "in": "path", "required": true,
                                        "schema": {"type": "string"}}],
                        "request": null, "response": {"type": "object"},
                        "list": false, "envelope": true}]})
        .to_string();
        let docs = decode(text.as_bytes()).unwrap();
        assert_eq!(
            docs.words[0].categories,
            [("a".to_owned(), "A things".to_owned())]
        );
        assert_eq!(docs.routes[0].response, Some(json!({"type": "object"})));
        check_routes(&docs, &[("/widget/:wid".into(), vec!["wid".into()])]).unwrap();
        let error = check_routes(&docs, &[("/widget".into(), vec![])]).unwrap_err();
        assert!(error.to_string().contains("path parameter wid"), "{error}");
        let error = check_routes(&docs, &[]).unwrap_err();
        assert!(error.to_string().contains("documents 1 routes"), "{error}");
        assert!(decode(b"{\"format\":2}").is_err());
        assert!(decode(b"not json").is_err());
    }
}
