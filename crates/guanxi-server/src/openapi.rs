//! The OpenAPI 3.1 document, generated from code: the routes' `#[utoipa::path]` annotations plus
//! one record schema and one input schema per object, generated from the live metadata (custom
//! fields included). Served at `/api/v1/openapi.json`, browsable at `/api/docs`.

use guanxi_core::meta::FieldType;
use guanxi_core::{FieldDef, ObjectDef};
use guanxi_store::catalog::Snapshot;
use utoipa::OpenApi;
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{OpenApi as Document, RefOr};

use crate::error::{ErrorBody, ErrorEnvelope};
use crate::modules::identity;
use crate::modules::transfer::{export as transfer_export, import as transfer_import};
use crate::routes::{audit, health, jobs, meta, records};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Guanxi 关系 CRM API",
        version = "1",
        description = "REST API of Guanxi. Conventions (envelopes, error codes, filters, pagination) are described in docs/API-DESIGN.md."
    ),
    paths(
        records::list_records,
        records::query_records,
        records::create_record,
        records::get_record,
        records::update_record,
        records::delete_record,
        records::restore_record,
        records::list_recycle_bin,
        records::purge_record,
        records::record_history,
        records::bulk_update_records,
        records::bulk_delete_records,
        records::run_transition,
        records::record_transitions,
        meta::list_objects,
        meta::get_object,
        meta::create_custom_field,
        meta::delete_custom_field,
        meta::list_dictionaries,
        meta::get_dictionary,
        meta::permission_catalogue,
        crate::modules::views::list_views,
        crate::modules::views::create_view,
        crate::modules::views::update_view,
        crate::modules::views::delete_view,
        crate::modules::files::upload_file,
        crate::modules::files::download_file,
        jobs::get_job,
        audit::list_audit,
        audit::export_audit,
        identity::auth::auth_config,
        identity::auth::new_captcha,
        identity::auth::login,
        identity::auth::second_factor,
        identity::auth::send_email_code,
        identity::auth::change_expired_password,
        identity::auth::logout,
        identity::auth::register,
        identity::auth::verify_email,
        identity::auth::forgot_password,
        identity::auth::reset_password,
        identity::me::get_me,
        identity::me::update_profile,
        identity::me::change_password,
        identity::me::list_sessions,
        identity::me::revoke_session,
        identity::me::revoke_all_sessions,
        identity::me::totp_setup,
        identity::me::totp_enable,
        identity::me::totp_disable,
        identity::me::list_tokens,
        identity::me::create_token,
        identity::me::revoke_token,
        identity::admin::login_log,
        identity::admin::export_login_log,
        identity::admin::set_user_password,
        identity::admin::get_settings,
        identity::admin::update_settings,
        crate::modules::customers::convert_lead,
        crate::modules::regions::list_regions,
        crate::modules::pool::list_pool,
        crate::modules::pool::claim,
        crate::modules::pool::release,
        crate::modules::pool::run_reclaim,
        crate::modules::classification::get_rules,
        crate::modules::classification::put_rules,
        crate::modules::classification::classify,
        crate::modules::customer_duplicates::find_duplicates,
        crate::modules::customer_merge::merge_customers,
        crate::modules::customer_merge::list_merges,
        crate::modules::customer_merge::undo_merge,
        crate::modules::customer_stats::customer_stats,
        crate::modules::customer_stats::customer_growth,
        transfer_import::create_import,
        transfer_import::list_imports,
        transfer_import::get_import,
        transfer_import::update_mapping,
        transfer_import::dry_run,
        transfer_import::commit,
        transfer_import::undo,
        transfer_import::list_errors,
        transfer_import::error_report,
        transfer_export::create_export,
        transfer_export::get_export,
        transfer_export::download_export,
        health::healthz,
        health::readyz,
        health::metrics,
    ),
    components(schemas(
        ErrorEnvelope,
        ErrorBody,
        records::ListMeta,
        records::QueryBody,
        records::BulkUpdateBody,
        records::BulkDeleteBody,
        records::BulkResult,
        records::TransitionBody,
        crate::modules::pool::ReleaseBody,
        crate::modules::regions::RegionView,
        crate::modules::customer_duplicates::DuplicateQuery,
        crate::modules::customer_merge::MergeBody,
        meta::PermissionCatalogue,
        meta::ObjectPermissions,
        meta::ActionDef,
        meta::ModulePermission,
        meta::ScopeDef,
        meta::I18nLabel,
        crate::modules::views::SavedView,
        crate::modules::views::ViewBody,
        crate::modules::files::FileView,
    )),
    modifiers(&SecurityAddon),
    tags(
        (name = "auth", description = "Signing in and out, registration, password reset"),
        (name = "me", description = "The signed-in user: profile, password, sessions, 2FA, API tokens"),
        (name = "admin", description = "Login log, user passwords, system parameters"),
        (name = "customers", description = "Customer workflows: lead conversion, regions, value classification, public pool (公海), duplicate detection, merge and undo, statistics"),
        (name = "records", description = "Generic record API for every object"),
        (name = "metadata", description = "Objects, fields, custom fields, dictionaries"),
        (name = "audit", description = "Audit trail"),
        (name = "jobs", description = "Background jobs"),
        (name = "import", description = "Import of xlsx/csv files into any object: mapping, dry run, commit, error report, undo"),
        (name = "export", description = "Export of any filtered list to csv, xlsx or pdf"),
        (name = "views", description = "Saved list views, personal or shared"),
        (name = "files", description = "Attachment uploads and downloads"),
        (name = "operations", description = "Health and metrics"),
    )
)]
struct ApiDoc;

/// Declares the two ways to authenticate: the browser's session cookie (with the CSRF header on
/// writes) and bearer API tokens.
struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut Document) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "gx_session",
                "Browser session; writes also need the X-CSRF-Token header (value of the gx_csrf cookie)",
            ))),
        );
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("API token gxt_…"))
                    .build(),
            ),
        );
        openapi.security = Some(vec![
            utoipa::openapi::security::SecurityRequirement::new("session_cookie", Vec::<String>::new()),
            utoipa::openapi::security::SecurityRequirement::new("api_token", Vec::<String>::new()),
        ]);
    }
}

/// The whole document for the current metadata.
pub fn document(snapshot: &Snapshot) -> Document {
    let mut doc = ApiDoc::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    for object in snapshot.objects() {
        components
            .schemas
            .insert(object.key.clone(), RefOr::T(record_schema(object, false)));
        components
            .schemas
            .insert(format!("{}_input", object.key), RefOr::T(record_schema(object, true)));
    }
    doc
}

fn string(format: Option<KnownFormat>) -> ObjectBuilder {
    let b = ObjectBuilder::new().schema_type(SchemaType::Type(Type::String));
    match format {
        Some(f) => b.format(Some(SchemaFormat::KnownFormat(f))),
        None => b,
    }
}

fn formatted(format: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .format(Some(SchemaFormat::Custom(format.to_owned())))
}

fn field_schema(field: &FieldDef) -> Schema {
    let described = |b: ObjectBuilder| -> Schema {
        b.title(Some(field.label.zh.clone()))
            .description(Some(format!("{} ({})", field.label.en, field.field_type.name())))
            .into()
    };
    match &field.field_type {
        FieldType::Text { max_len } | FieldType::LongText { max_len } => {
            described(string(None).max_length(Some(*max_len as usize)))
        }
        FieldType::Integer { min, max } => {
            #[expect(clippy::cast_precision_loss, reason = "schema bounds are informational")]
            let b = ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Integer))
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(min.map(|m| m as f64))
                .maximum(max.map(|m| m as f64));
            described(b)
        }
        FieldType::Decimal => described(ObjectBuilder::new().schema_type(SchemaType::Type(Type::Number))),
        FieldType::Money => described(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Object))
                .property(
                    "amount",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::Type(Type::Integer))
                        .description(Some("minor units (分)")),
                )
                .property("currency", string(None).description(Some("ISO 4217, default CNY")))
                .required("amount"),
        ),
        FieldType::Boolean => described(ObjectBuilder::new().schema_type(SchemaType::Type(Type::Boolean))),
        FieldType::Date => described(string(Some(KnownFormat::Date))),
        FieldType::DateTime => described(string(Some(KnownFormat::DateTime))),
        FieldType::Email => described(formatted("email")),
        FieldType::Url => described(formatted("uri")),
        FieldType::Relation { .. } => described(formatted("uuid")),
        FieldType::Phone | FieldType::Select { .. } | FieldType::State => described(string(None)),
        FieldType::MultiRelation { .. } => ArrayBuilder::new()
            .items(formatted("uuid"))
            .title(Some(field.label.zh.clone()))
            .description(Some(field.label.en.clone()))
            .into(),
        FieldType::MultiSelect { .. } => ArrayBuilder::new()
            .items(string(None))
            .title(Some(field.label.zh.clone()))
            .description(Some(field.label.en.clone()))
            .into(),
        FieldType::Attachments { .. } => ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .property("id", formatted("uuid"))
                    .property("name", string(None))
                    .property(
                        "size",
                        ObjectBuilder::new().schema_type(SchemaType::Type(Type::Integer)),
                    )
                    .required("id"),
            )
            .title(Some(field.label.zh.clone()))
            .description(Some(format!(
                "{}: files uploaded with POST /api/v1/files; name and size are filled in from the upload",
                field.label.en
            )))
            .into(),
        FieldType::Json => ObjectBuilder::new().title(Some(field.label.zh.clone())).into(),
    }
}

fn record_schema(object: &ObjectDef, input: bool) -> Schema {
    let mut b = ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Object))
        .title(Some(object.label.zh.clone()))
        .description(Some(if input {
            format!("Fields accepted when creating or updating a {}", object.label.en)
        } else {
            format!("A {} record", object.label.en)
        }));
    for field in &object.fields {
        if input && (field.read_only || matches!(field.field_type, FieldType::State)) {
            continue;
        }
        b = b.property(field.key.clone(), field_schema(field));
        if input && field.required {
            b = b.required(field.key.clone());
        }
    }
    if input {
        b = b.additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)));
    }
    b.into()
}
