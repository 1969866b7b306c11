//! The [`Resource`] trait: what a plugin declares, and how its routes reach handlers.

use crate::apidocs::{Answer, Param, Schema, Words};
use crate::bindings::hearth::plugin::types as wit;
use crate::request::{Caller, Request, Role};
use crate::response::{Family, Response, Result, Shape, openemr_status, wire_status};
use crate::sql::Column;

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

/// A route handler.
pub type Handler = fn(&Request) -> Result<Response>;

/// One route: method, path with its family prefix (`/api/...`, `/portal/...`,
/// `/fhir/...`), the scope it needs and its handler.
#[derive(Clone, Copy)]
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path template, family prefix included, e.g. `/api/patient/:puuid`.
    pub path: &'static str,
    /// `resource.permissions`, e.g. `patient.r`; the host adds the context.
    pub scope: &'static str,
    /// The handler.
    pub handler: Handler,
    /// The ACL section a staff caller's role must hold (`patients/demo`), or empty.
    pub acl: &'static str,
    /// True when no token is needed.
    pub anonymous: bool,
    /// One line for the API description.
    pub summary: &'static str,
    /// How the route answers: OpenEMR's envelope (the default), its envelope with lost
    /// statuses, or a bare payload (see [`Shape`]).
    pub shape: Shape,
    /// Parameters documented for API users (see [`crate::apidocs`]).
    pub params: &'static [Param],
    /// Columns a list filters on, documented as query parameters.
    pub filters: &'static [Column],
    /// The request body's schema, when the route takes one.
    pub accepts: Option<Schema>,
    /// What the route answers on success.
    pub answer: Answer,
}

impl Route {
    const fn new(
        method: Method,
        path: &'static str,
        scope: &'static str,
        handler: Handler,
    ) -> Route {
        Route {
            method,
            path,
            scope,
            handler,
            acl: "",
            anonymous: false,
            summary: "",
            shape: Shape::Envelope,
            params: &[],
            filters: &[],
            accepts: None,
            answer: Answer::Undeclared,
        }
    }

    /// A GET route.
    pub const fn get(path: &'static str, scope: &'static str, handler: Handler) -> Route {
        Route::new(Method::Get, path, scope, handler)
    }

    /// A POST route.
    pub const fn post(path: &'static str, scope: &'static str, handler: Handler) -> Route {
        Route::new(Method::Post, path, scope, handler)
    }

    /// A PUT route.
    pub const fn put(path: &'static str, scope: &'static str, handler: Handler) -> Route {
        Route::new(Method::Put, path, scope, handler)
    }

    /// A PATCH route.
    pub const fn patch(path: &'static str, scope: &'static str, handler: Handler) -> Route {
        Route::new(Method::Patch, path, scope, handler)
    }

    /// A DELETE route.
    pub const fn delete(path: &'static str, scope: &'static str, handler: Handler) -> Route {
        Route::new(Method::Delete, path, scope, handler)
    }

    /// Sets the one-line summary.
    pub const fn summary(mut self, summary: &'static str) -> Route {
        self.summary = summary;
        self
    }

    /// Documents the route's parameters (query parameters, and path parameters that
    /// deserve a description).
    pub const fn params(mut self, params: &'static [Param]) -> Route {
        self.params = params;
        self
    }

    /// Documents the columns a list filters on as query parameters.
    pub const fn filters(mut self, columns: &'static [Column]) -> Route {
        self.filters = columns;
        self
    }

    /// Declares the request body's schema.
    pub const fn accepts(mut self, body: Schema) -> Route {
        self.accepts = Some(body);
        self
    }

    /// Declares the payload of a successful answer (wrapped in OpenEMR's envelope by
    /// the host's description when the route answers the envelope).
    pub const fn answers(mut self, payload: Schema) -> Route {
        self.answer = Answer::One(payload);
        self
    }

    /// Declares a successful answer as a list of payloads of `item`.
    pub const fn answers_list(mut self, item: Schema) -> Route {
        self.answer = Answer::List(item);
        self
    }

    /// Sets the ACL section a staff caller's role must hold, e.g. `patients/demo` or
    /// `patients/med:write`.
    pub const fn acl(mut self, acl: &'static str) -> Route {
        self.acl = acl;
        self
    }

    /// Marks the route as needing no token.
    pub const fn anonymous(mut self) -> Route {
        self.anonymous = true;
        self
    }

    /// Marks the route as one where OpenEMR answers its envelope with status 200
    /// whatever happened ([`Shape::Legacy`]): encounters, medical problems, allergies.
    pub const fn legacy(mut self) -> Route {
        self.shape = Shape::Legacy;
        self
    }

    /// Marks the route as answering bare payloads ([`Shape::Bare`]): vitals, SOAP notes,
    /// medications, surgeries, dental issues.
    pub const fn bare(mut self) -> Route {
        self.shape = Shape::Bare;
        self
    }

    /// The family and the path below the family root.
    pub fn split(&self) -> (Family, &'static str) {
        for (prefix, family) in [
            ("/api", Family::Api),
            ("/portal", Family::Portal),
            ("/fhir", Family::Fhir),
        ] {
            if let Some(rest) = self.path.strip_prefix(prefix)
                && (rest.is_empty() || rest.starts_with('/'))
            {
                return (family, rest);
            }
        }
        // Rejected by the host at load time with a message naming the route.
        (Family::Api, self.path)
    }
}

/// A plugin: its name, version, grants and routes.
///
/// Everything is a constant, so a fresh instance per request costs nothing to set up.
pub trait Resource {
    /// Unique kebab-case name, e.g. `patient`.
    const NAME: &'static str;
    /// The plugin's semantic version; usually `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    /// One sentence about what it serves.
    const DESCRIPTION: &'static str = "";
    /// Tables its SQL reads.
    const READS: &'static [&'static str] = &[];
    /// Tables its SQL writes (and may read).
    const WRITES: &'static [&'static str] = &[];
    /// Configuration keys it reads.
    const CONFIG_KEYS: &'static [&'static str] = &[];
    /// Its routes.
    const ROUTES: &'static [Route];
    /// Its migrations, oldest first: the tables of its namespace (`x_<name>__*`, see
    /// [`crate::migrations`]), which it reads and writes without listing them above.
    const MIGRATIONS: &'static [crate::Migration] = &[];
    /// The words for the scopes its routes declare, per scope resource, for the consent
    /// page (see [`crate::apidocs::Words`]).
    const WORDS: &'static [Words] = &[];

    /// The FHIR resource types it serves, for the host's CapabilityStatement (see
    /// [`FhirType`]). The interactions are read off its `/fhir` routes.
    fn fhir_types() -> Vec<FhirType> {
        Vec::new()
    }
}

/// A FHIR resource type a plugin serves, as the host lists it in `/fhir/metadata`.
///
/// `hearth-fhir` builds these from a type's search definition
/// (`hearth_fhir::TypeDef::declaration`), so a FHIR plugin writes them down once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FhirType {
    /// The resource type, e.g. `Patient`.
    pub resource_type: String,
    /// Canonical URLs of the profiles its resources claim.
    pub profiles: Vec<String>,
    /// Search parameters: name, FHIR search type (`string`, `token`, `date`,
    /// `reference`, …) and the FHIRPath expression it searches (may be empty).
    pub search_params: Vec<FhirSearchParam>,
}

/// One search parameter of a [`FhirType`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FhirSearchParam {
    /// The name, e.g. `birthdate`.
    pub name: String,
    /// The FHIR search type, e.g. `date`.
    pub kind: String,
    /// The FHIRPath expression, e.g. `Patient.birthDate`, or empty.
    pub expression: String,
}

impl FhirSearchParam {
    /// The contract's `(name, type)` pair: the type, then a space and the expression
    /// when there is one (`("birthdate", "date Patient.birthDate")`).
    fn to_wit(&self) -> (String, String) {
        let kind = if self.expression.is_empty() {
            self.kind.clone()
        } else {
            format!("{} {}", self.kind, self.expression)
        };
        (self.name.clone(), kind)
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[doc(hidden)]
pub fn __describe<R: Resource>() -> wit::PluginInfo {
    wit::PluginInfo {
        name: R::NAME.into(),
        version: R::VERSION.into(),
        description: R::DESCRIPTION.into(),
        routes: R::ROUTES
            .iter()
            .map(|route| {
                let (family, path) = route.split();
                wit::Route {
                    method: match route.method {
                        Method::Get => wit::Method::Get,
                        Method::Post => wit::Method::Post,
                        Method::Put => wit::Method::Put,
                        Method::Patch => wit::Method::Patch,
                        Method::Delete => wit::Method::Delete,
                    },
                    path: path.into(),
                    family: match family {
                        Family::Api => wit::Family::Api,
                        Family::Portal => wit::Family::Portal,
                        Family::Fhir => wit::Family::Fhir,
                    },
                    scope: route.scope.into(),
                    acl: route.acl.into(),
                    anonymous: route.anonymous,
                    summary: route.summary.into(),
                }
            })
            .collect(),
        reads: strings(R::READS),
        writes: strings(R::WRITES),
        config_keys: strings(R::CONFIG_KEYS),
        fhir: R::fhir_types()
            .into_iter()
            .map(|t| wit::FhirResource {
                resource_type: t.resource_type,
                profiles: t.profiles,
                search_params: t
                    .search_params
                    .iter()
                    .map(FhirSearchParam::to_wit)
                    .collect(),
            })
            .collect(),
    }
}

#[doc(hidden)]
pub fn __handle<R: Resource>(request: wit::Request) -> wit::Response {
    let response = dispatch::<R>(request);
    wit::Response {
        status: response.status,
        headers: response.headers,
        body: response.body,
    }
}

/// Turns a contract request into an SDK [`Request`] and runs the route's handler.
pub(crate) fn dispatch<R: Resource>(request: wit::Request) -> Response {
    let Some(route) = R::ROUTES.get(request.route as usize) else {
        return Response::json(
            500,
            crate::json::Json::raw(r#"{"error":"route index out of range"}"#),
        );
    };
    let (family, _) = route.split();
    let caller = request.caller;
    let request = Request {
        method: route.method,
        family,
        shape: route.shape,
        template: route.path,
        path: request.path,
        params: request.params,
        query: request.query,
        headers: request.headers,
        body: request.body,
        caller: Caller {
            role: match caller.role {
                wit::Role::User => Role::User,
                wit::Role::Patient => Role::Patient,
                wit::Role::System => Role::System,
                wit::Role::Anonymous => Role::Anonymous,
            },
            subject: caller.subject,
            username: caller.username,
            client_id: caller.client_id,
            scopes: caller.scopes,
            patient: caller.patient,
        },
        base_url: request.base_url,
    };
    run(route, &request)
}

/// Runs the route's handler and renders its error in the route's shape. On a site in
/// OpenEMR compatibility the response also names OpenEMR's status for the wire; the
/// status answered stays Hearth's, so the host commits only what succeeded.
pub(crate) fn run(route: &Route, request: &Request) -> Response {
    let response = match (route.handler)(request) {
        Ok(response) => response,
        Err(error) => error.render(request),
    };
    if request.openemr_compatible() && request.family != Family::Fhir {
        let status = openemr_status(route.shape, response.status);
        wire_status(response, status)
    } else {
        response
    }
}
