//! The committed OpenAPI document is the one the code generates (CI runs
//! this with `cargo test`).

#[test]
fn committed_openapi_json_is_the_generated_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = rvs_agent::openapi_json();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map(|i| i + 1)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()) + 1);
        panic!(
            "crates/rvs-agent/openapi.json is not the generated OpenAPI document (first difference at line {line}); \
             regenerate it with:\n    cargo run -p rvs-agent -- --print-openapi > crates/rvs-agent/openapi.json"
        );
    }
}

#[test]
fn document_covers_the_control_api() {
    let doc: serde_json::Value = serde_json::from_str(&rvs_agent::openapi_json()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v2/vs",
        "/v2/vs/{service}",
        "/v2/vs/{service}/rs",
        "/v2/vs/{service}/rs/{dest}",
        "/v2/vs/{service}/laddr",
        "/v2/vs/{service}/limits",
        "/v2/addr",
        "/v2/route",
        "/v2/neigh",
        "/v2/link",
        "/v2/conn",
        "/v2/acl/{kind}",
        "/v2/ipset/{name}/members",
        "/v2/daemon",
        "/v2/daemon/{role}",
    ] {
        assert!(paths.contains_key(p), "{p} missing from the document");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert_eq!(schemas["DestSpec"]["properties"]["addr"]["type"], "string");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
