//! The CRD: committed copies match the types (drift), the schema is
//! structural where Kubernetes needs it, and the deployment guides' three
//! `OrbitCluster` examples (tests/seeds/, copied verbatim) are admitted by
//! the generated `openAPIV3Schema` with no field pruned, and survive the
//! operator's own types unchanged.

use std::path::Path;

use orbit_operator::crd::OrbitCluster;
use orbit_operator::crd_gen;
use serde_json::Value as Json;

const SEEDS: &[&str] = &["demo", "production-cluster", "s3-cluster"];

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn seed(name: &str) -> Json {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/seeds/{name}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn open_api_schema() -> Json {
    let crd = crd_gen::crd_json();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Validates `value` against a structural OpenAPI v3 schema as the API
/// server does (types, enums, bounds, required) and reports every field
/// the server would prune (not named by the schema).
fn check(value: &Json, schema: &Json, path: &str, errors: &mut Vec<String>) {
    let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
    if schema["x-kubernetes-int-or-string"] == true {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            errors.push(format!("{path}: {value} is not an integer or a string"));
        }
        return;
    }
    if let Some(e) = schema["enum"].as_array()
        && !e.contains(value)
    {
        errors.push(format!("{path}: {value} is not one of {e:?}"));
    }
    match schema["type"].as_str() {
        Some("object") => {
            let Some(obj) = value.as_object() else {
                errors.push(format!("{path}: {value} is not an object"));
                return;
            };
            for r in schema["required"].as_array().into_iter().flatten() {
                if !obj.contains_key(r.as_str().unwrap_or_default()) {
                    errors.push(format!("{path}.{r}: required"));
                }
            }
            for (k, v) in obj {
                let p = format!("{path}.{k}");
                if let Some(s) = schema["properties"].get(k) {
                    check(v, s, &p, errors);
                } else if schema["additionalProperties"].is_object() {
                    check(v, &schema["additionalProperties"], &p, errors);
                } else if !preserve {
                    errors.push(format!("{p}: pruned (not in the schema)"));
                }
            }
        }
        Some("array") => match value.as_array() {
            Some(items) => {
                for (i, v) in items.iter().enumerate() {
                    check(v, &schema["items"], &format!("{path}[{i}]"), errors);
                }
            }
            None => errors.push(format!("{path}: {value} is not an array")),
        },
        Some("string") if !value.is_string() => {
            errors.push(format!("{path}: {value} is not a string"))
        }
        Some("boolean") if !value.is_boolean() => {
            errors.push(format!("{path}: {value} is not a boolean"))
        }
        Some("integer") => match value.as_i64() {
            Some(n) => {
                let n = n as f64;
                if schema["minimum"].as_f64().is_some_and(|m| n < m)
                    || schema["maximum"].as_f64().is_some_and(|m| n > m)
                {
                    errors.push(format!("{path}: {n} out of bounds"));
                }
            }
            None => errors.push(format!("{path}: {value} is not an integer")),
        },
        Some("number") if !value.is_number() => {
            errors.push(format!("{path}: {value} is not a number"))
        }
        None if !preserve && schema.get("properties").is_none() && schema != &Json::Null => {
            errors.push(format!("{path}: schema without a type (not structural)"))
        }
        _ => {}
    }
}

#[test]
fn committed_crd_matches_the_types() {
    if let Some(drift) = crd_gen::drift(root()).unwrap() {
        panic!("{drift}");
    }
}

#[test]
fn the_guides_examples_are_admitted_with_no_field_pruned() {
    let schema = open_api_schema();
    for name in SEEDS {
        let mut errors = Vec::new();
        let doc = seed(name);
        // The API server checks the object minus apiVersion/kind/metadata
        // against the schema's spec (and keeps metadata as is).
        check(
            &doc["spec"],
            &schema["properties"]["spec"],
            "spec",
            &mut errors,
        );
        assert!(errors.is_empty(), "{name}: {errors:#?}");
        // And the operator reads every field of it.
        let parsed: OrbitCluster = serde_json::from_value(doc.clone()).unwrap();
        let again = serde_json::to_value(&parsed).unwrap();
        assert_eq!(
            again["spec"], doc["spec"],
            "{name}: a field is lost by the Rust types"
        );
    }
}

#[test]
fn the_checker_catches_pruned_and_mistyped_fields() {
    let schema = open_api_schema();
    let mut doc = seed("production-cluster");
    doc["spec"]["persistence"]["local"]["no_such_field"] = Json::from(1);
    doc["spec"]["replicas"] = Json::from("five");
    doc["spec"]["persistence"]["lsmTree"] = serde_json::json!({"maxMemtables": 1, "nope": true});
    let mut errors = Vec::new();
    check(
        &doc["spec"],
        &schema["properties"]["spec"],
        "spec",
        &mut errors,
    );
    let text = errors.join("\n");
    for expected in [
        "spec.persistence.local.no_such_field: pruned",
        "spec.replicas: \"five\" is not an integer",
        "spec.persistence.lsmTree.maxMemtables: 1 out of bounds",
        "spec.persistence.lsmTree.nope: pruned",
    ] {
        assert!(text.contains(expected), "{expected} not in:\n{text}");
    }
}

#[test]
fn resource_shape_subresources_columns_and_rules() {
    let crd = crd_gen::crd_json();
    assert_eq!(crd["spec"]["group"], "orbit.turingworks.com");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    let v = &crd["spec"]["versions"][0];
    assert_eq!(v["name"], "v1");
    assert!(v["subresources"]["status"].is_object());
    assert_eq!(
        v["subresources"]["scale"]["specReplicasPath"],
        ".spec.replicas"
    );
    let columns: Vec<&str> = v["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for c in ["Backend", "Replicas", "Ready", "Age"] {
        assert!(columns.contains(&c), "{columns:?}");
    }
    let spec = &v["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let rules = |s: &Json| s["x-kubernetes-validations"].to_string();
    assert!(
        rules(&spec["properties"]["persistence"])
            .contains("self.local.backend_type == self.backend")
    );
    assert!(
        rules(&spec["properties"]["persistence"]).contains("self.cloud.provider == self.backend")
    );
    assert!(rules(&spec["properties"]["storage"]).contains("oldSelf.size"));
    // Every backend has its generated settings table.
    for t in [
        "memory", "cowBtree", "lsmTree", "rocksdb", "s3", "azure", "gcp",
    ] {
        assert!(
            spec["properties"]["persistence"]["properties"][t]["properties"].is_object(),
            "{t}"
        );
    }
}
