//! OpenEMR's registries that clients read to fill their screens: the option lists
//! (`list_options`, bare arrays), the staff users (`users`, the legacy envelope, never a
//! credential: those live in a table no plugin reads), and, without a token as in OpenEMR,
//! the release (`version`) and the product registration status (`product_registration`).

use hearth_emr::prelude::*;

/// The registry resource.
pub struct Registry;

impl Resource for Registry {
    const NAME: &'static str = "registry";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "List options, users, version and product registration";
    const WORDS: &'static [Words] = &[
        Words::new("list", "Lists", "option lists (list_options)"),
        Words::new("user", "Users", "staff users"),
        Words::new("version", "Version", "the server's OpenEMR version"),
        Words::new("product", "Product", "the product registration status"),
    ];
    const READS: &'static [&'static str] =
        &["list_options", "users", "version", "product_registration"];
    const ROUTES: &'static [Route] = &[
        Route::get("/api/list/:list_name", "list.r", list_options)
            .acl("lists/default")
            .bare()
            .summary("The active options of a list, in order")
            .params(emr::LIST_PARAMS)
            .answers_list(OPTION),
        Route::get("/api/user", "user.s", list_users)
            .acl("admin/users")
            .legacy()
            .summary("List users")
            .params(emr::LIST_PARAMS)
            .filters(USER_FILTERS)
            .answers_list(USER),
        Route::get("/api/user/:uuid", "user.r", get_user)
            .acl("admin/users")
            .legacy()
            .summary("Read a user")
            .answers(USER),
        Route::get("/api/version", "version.s", version)
            .anonymous()
            .bare()
            .summary("The OpenEMR release whose API this server answers")
            .answers(VERSION),
        Route::get("/api/product", "product.s", product)
            .anonymous()
            .bare()
            .summary("The product registration status")
            .answers(PRODUCT),
    ];
}

hearth_sdk::export!(Registry);

/// One list option as answered (every `list_options` column).
const OPTION: Schema = Schema::Row(&[&[
    Column::text("list_id"),
    Column::text("option_id"),
    Column::text("title"),
    Column::int("seq"),
    Column::int("is_default"),
    Column::real("option_value"),
    Column::text("mapping"),
    Column::text("notes"),
    Column::text("codes"),
    Column::int("activity"),
    Column::text("subtype"),
]]);

const OPTION_SORT: Sort = Sort {
    alias: "o",
    keys: &[
        SortKey::column("seq"),
        SortKey::column("option_id"),
        SortKey::column("title"),
    ],
    default: "seq",
    tiebreak: "option_id",
};

/// `GET /api/list/:list_name`: the list's active options by `seq`; a list with no
/// options at all is a 404.
fn list_options(req: &Request) -> Result<Response> {
    let name = req.param("list_name")?;
    let known = store::query_one(
        "SELECT 1 AS found FROM list_options WHERE list_id = $1 LIMIT 1",
        params![name],
    )?;
    if known.is_none() {
        return Err(ApiError::NotFound);
    }
    let mut search = Search::on("o");
    search.equals("list_id", name).equals("activity", 1);
    search.sort_by(req, &OPTION_SORT)?;
    crud::page(
        req,
        &search,
        "SELECT o.* FROM list_options o",
        Json::from_row,
    )
}

/// UserService's whitelist: the fields a user list filters on, and answers.
const USER_FILTERS: &[Column] = &[
    Column::int("id"),
    Column::text("title"),
    Column::text("fname"),
    Column::text("lname"),
    Column::text("mname"),
    Column::text("federaltaxid"),
    Column::text("federaldrugid"),
    Column::text("upin"),
    Column::int("facility_id"),
    Column::text("facility"),
    Column::text("npi"),
    Column::text("email"),
    Column::text("specialty"),
    Column::text("billname"),
    Column::text("url"),
    Column::text("assistant"),
    Column::text("organization"),
    Column::text("valedictory"),
    Column::text("street"),
    Column::text("streetb"),
    Column::text("city"),
    Column::text("state"),
    Column::text("zip"),
    Column::text("phone"),
    Column::text("fax"),
    Column::text("phonew1"),
    Column::text("phonecell"),
    Column::text("notes"),
    Column::text("state_license_number"),
    Column::text("username"),
];

/// A user as answered.
const USER: Schema = Schema::Row(&[
    emr::IDS,
    USER_FILTERS,
    &[Column::int("active"), Column::int("authorized")],
]);

const USER_SELECT: &str = "SELECT u.id, u.uuid, u.title, u.fname, u.lname, u.mname, \
    u.federaltaxid, u.federaldrugid, u.upin, u.facility_id, u.facility, u.npi, u.email, \
    u.specialty, u.billname, u.url, u.assistant, u.organization, u.valedictory, u.street, \
    u.streetb, u.city, u.state, u.zip, u.phone, u.fax, u.phonew1, u.phonecell, u.notes, \
    u.state_license_number, u.username, u.active, u.authorized FROM users u";

const USER_SORT: Sort = Sort {
    alias: "u",
    keys: &[
        SortKey::column("id"),
        SortKey::column("username"),
        SortKey::column("fname"),
        SortKey::column("lname"),
        SortKey::column("npi"),
        SortKey::column("facility_id"),
        SortKey::column("active"),
    ],
    default: "lname,fname",
    tiebreak: "id",
};

/// `GET /api/user`: the users, filtered by UserService's whitelist.
fn list_users(req: &Request) -> Result<Response> {
    let mut search = Search::on("u");
    search
        .filter_exact(req.query_pairs(), USER_FILTERS)?
        .sort_by(req, &USER_SORT)?;
    crud::page(req, &search, USER_SELECT, Json::from_row)
}

/// `GET /api/user/:uuid`: one user, or a 404.
fn get_user(req: &Request) -> Result<Response> {
    let mut search = Search::on("u");
    search.equals("uuid", req.uuid("uuid")?);
    Ok(req.ok(crud::find(&search, USER_SELECT, Json::from_row)?))
}

const VERSION: Schema = Schema::Object(&[
    Prop::new("v_major", Schema::Integer).required(),
    Prop::new("v_minor", Schema::Integer).required(),
    Prop::new("v_patch", Schema::Integer).required(),
    Prop::new("v_realpatch", Schema::Integer).required(),
    Prop::new("v_tag", Schema::String).required(),
    Prop::new("v_database", Schema::Integer).required(),
    Prop::new("v_acl", Schema::Integer).required(),
]);

/// `GET /api/version`: the `version` row.
fn version(req: &Request) -> Result<Response> {
    let sql = "SELECT v_major, v_minor, v_patch, v_realpatch, v_tag, v_database, v_acl \
               FROM version LIMIT 1";
    Ok(req.ok(crud::one(sql, &[], Json::from_row)?))
}

const PRODUCT: Schema = Schema::Object(&[Prop::new(
    "status",
    Schema::Enum(&["UNREGISTERED", "REGISTERED", "OPT_OUT"]),
)
.required()]);

/// `GET /api/product`: `UNREGISTERED` until the site registers, then `REGISTERED`, or
/// `OPT_OUT` when it declined.
fn product(req: &Request) -> Result<Response> {
    let row = store::query_one(
        "SELECT opt_out FROM product_registration ORDER BY id DESC LIMIT 1",
        &[],
    )?;
    let status = match row.and_then(|r| r.int("opt_out")) {
        None => "UNREGISTERED",
        Some(0) => "REGISTERED",
        Some(_) => "OPT_OUT",
    };
    Ok(req.ok(Json::object().field("status", status).end()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    #[test]
    fn an_unknown_list_is_404_and_is_not_searched() {
        let mut host = MockHost::new().on_query("FROM list_options", Rows::default());
        let response = host.call::<Registry>(TestRequest::get("/api/list/nosuchlist"));
        assert_eq!(response.status, 404);
        assert_eq!(host.queries().len(), 1);
    }

    #[test]
    fn an_unregistered_product_says_so() {
        let mut host = MockHost::new().on_query("FROM product_registration", Rows::default());
        let response = host.call::<Registry>(TestRequest::get("/api/product"));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json()["status"], "UNREGISTERED");
    }
}
