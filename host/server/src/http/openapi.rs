//! The OpenAPI 3.1 description of the HTTP API, served at `GET
//! /openapi.json` and committed as `docs/openapi.json`.
//!
//! Nothing in it is written by hand as JSON: the operations come from the
//! `#[utoipa::path]` attributes on the handlers themselves (their statuses,
//! parameters, headers and bodies), and every body schema is derived from
//! the Rust type the handler reads or writes (`ToSchema`, `IntoParams`), so
//! a changed type changes the description. `orbit-server config generate`
//! writes the file and `tests/docs.rs` fails when the committed one has
//! drifted; `scripts/api-fuzz.sh` runs schemathesis against the real binary
//! to check that every answer matches it.
//!
//! Authentication is described as optional bearer auth on `/v1/*`
//! (`security: [{}, {"bearer": []}]`): it is required exactly when the
//! server has `ORBIT_API_TOKEN`. The health probes and this description
//! are always open. The metrics are on their own port and not described.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, KnownFormat, ObjectBuilder, Ref, RefOr, ResponseBuilder, Schema,
    SchemaFormat, Type,
};
use utoipa::{Modify, OpenApi, PartialSchema, ToResponse, ToSchema};

use super::error::ErrorBody;
use super::{batch, kv};

/// The description (see the module documentation).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Orbit storage host",
        description = "A key-value HTTP API with compare-and-set, TTLs, atomic batches and ordered listing. Versions travel as strong ETags; every error is JSON `{\"error\": {\"code\", \"message\", ...}}`, a 4xx for anything the client got wrong and a 5xx only for backend failures. With `ORBIT_API_TOKEN` set, `/v1/*` needs `Authorization: Bearer <token>`.",
    ),
    paths(
        kv::get,
        kv::put,
        kv::delete,
        kv::list,
        batch::apply,
        super::health,
        super::live,
        super::startup,
        super::ready,
        serve,
    ),
    components(responses(Unauthorized)),
    modifiers(&BearerAuth, &RequiredHeaders),
    tags(
        (name = "kv", description = "One key at a time, and listings."),
        (name = "batch", description = "Atomic batches of puts and deletes."),
        (name = "health", description = "Probes for orchestrators (never need the token)."),
        (name = "meta", description = "This description."),
    ),
)]
pub struct ApiDoc;

/// The description as JSON, exactly as committed in `docs/openapi.json`.
///
/// Versions, sizes and times are `u64`: utoipa's `non_strict_integers`
/// describes them as unsigned 64-bit (not `int64`, whose maximum is half
/// of theirs), but spells the format `u-int64`; it is written `uint64`.
pub fn json() -> String {
    let text = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the description serialises");
    let mut text = ["8", "16", "32", "64"].iter().fold(text, |text, bits| {
        text.replace(
            &format!("\"format\": \"u-int{bits}\""),
            &format!("\"format\": \"uint{bits}\""),
        )
    });
    text.push('\n');
    text
}

/// The OpenAPI 3.1 description of this API (this document).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    responses(
        (status = 200, description = "The OpenAPI 3.1 description.", body = Object, content_type = "application/json"),
    ),
)]
pub async fn serve() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    (
        [(header::CONTENT_TYPE, "application/json")],
        JSON.get_or_init(json).as_str(),
    )
        .into_response()
}

/// A value: any bytes (`application/octet-stream`).
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .content_media_type("application/octet-stream")
            .into()
    }
}

impl ToSchema for Binary {}

/// The `401` of every `/v1` operation when the server has a token.
pub struct Unauthorized;

impl<'r> ToResponse<'r> for Unauthorized {
    fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
        let response = ResponseBuilder::new()
            .description(
                "The server has `ORBIT_API_TOKEN` and the request has no `Authorization: Bearer <token>` with it.",
            )
            .header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some(["Bearer"])),
                    ))
                    .description(Some("`Bearer`"))
                    .build(),
            )
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                    .build(),
            )
            .build();
        ("Unauthorized", response.into())
    }
}

/// Declares the bearer token scheme.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The value of `ORBIT_API_TOKEN` (or `ORBIT_API_TOKEN_FILE`); required on `/v1/*` exactly when the server has one.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Response headers that the server always sends with the response they
/// are declared on.
pub const REQUIRED_HEADERS: &[&str] = &["ETag", "WWW-Authenticate"];

/// Marks [`REQUIRED_HEADERS`] `required: true` (the attribute macros have
/// no syntax for it).
struct RequiredHeaders;

impl Modify for RequiredHeaders {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let required = || Some(Extensions::from_iter([("required", true)]));
        let mark = |response: &mut utoipa::openapi::Response| {
            for (name, header) in response.headers.iter_mut() {
                if let RefOr::T(header) = header
                    && REQUIRED_HEADERS.contains(&name.as_str())
                {
                    header.extensions = required();
                }
            }
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
                &mut item.query,
            ]
            .into_iter()
            .flatten()
            {
                for response in op.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        mark(response);
                    }
                }
            }
        }
        if let Some(components) = openapi.components.as_mut() {
            for response in components.responses.values_mut() {
                if let RefOr::T(response) = response {
                    mark(response);
                }
            }
        }
    }
}
