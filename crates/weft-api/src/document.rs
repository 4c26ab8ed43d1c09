//! Files of resources: YAML or JSON, several documents separated by `---`.

use serde::Deserialize;
use serde_json::Value;

use crate::{Resource, ValidationErrors};

/// Why a file of resources could not be used. Documents count from 1.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("document {index}: not valid YAML or JSON: {message}")]
    Syntax { index: usize, message: String },
    #[error("document {index}{}: {errors}", describe(.kind, .name))]
    Invalid {
        index: usize,
        kind: Option<String>,
        name: Option<String>,
        errors: ValidationErrors,
    },
    #[error("no resources found")]
    Empty,
}

fn describe(kind: &Option<String>, name: &Option<String>) -> String {
    match (kind, name) {
        (Some(k), Some(n)) => format!(" ({k} {n:?})"),
        (Some(k), None) => format!(" ({k})"),
        _ => String::new(),
    }
}

/// Splits a YAML or JSON text into its documents, skipping empty ones.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, DocumentError> {
    let mut docs = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc).map_err(|e| DocumentError::Syntax {
            index: i + 1,
            message: e.to_string(),
        })?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    if docs.is_empty() {
        return Err(DocumentError::Empty);
    }
    Ok(docs)
}

/// Validates one document of a file, naming it in the error.
pub fn document_to_resource(index: usize, value: Value) -> Result<Resource, DocumentError> {
    let field = |f: &str| value.get(f).and_then(Value::as_str).map(str::to_owned);
    let (kind, name) = (field("type"), field("name"));
    Resource::from_value(value).map_err(|errors| DocumentError::Invalid {
        index,
        kind,
        name,
        errors,
    })
}

/// Parses and validates every document of a file.
pub fn parse_resources(text: &str) -> Result<Vec<Resource>, DocumentError> {
    parse_documents(text)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| document_to_resource(i + 1, v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_documents_in_yaml_and_json() {
        let text = "type: Mesh\nname: a\n---\n{\"type\": \"Mesh\", \"name\": \"b\"}\n---\n";
        let rs = parse_resources(text).unwrap();
        assert_eq!(
            rs.iter().map(Resource::name).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn malformed_yaml_names_document_and_line() {
        let text = "type: Mesh\nname: a\n---\ntype: Mesh\nname: [unclosed\n";
        let err = parse_resources(text).unwrap_err().to_string();
        assert!(
            err.starts_with("document 2: not valid YAML or JSON"),
            "{err}"
        );
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn invalid_document_is_named() {
        let text = "type: Mesh\nname: ok\n---\ntype: Mesh\nname: Bad\n";
        let err = parse_resources(text).unwrap_err().to_string();
        assert!(
            err.starts_with("document 2 (Mesh \"Bad\"): name: \"Bad\" is not a valid name"),
            "{err}"
        );
    }

    #[test]
    fn unknown_type_is_named() {
        let err = parse_resources("type: Meshy\nname: a\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "document 1 (Meshy \"a\"): type: \"Meshy\" is not a kind (one of Mesh, Dataplane, TrafficPermission, Timeout, Retry, CircuitBreaker, HealthCheck, LoadBalancer, RateLimit, FaultInjection, TrafficRoute, Tracing, AccessLog)"
        );
    }

    #[test]
    fn empty_file_is_an_error() {
        assert!(matches!(
            parse_resources("\n---\n"),
            Err(DocumentError::Empty)
        ));
    }

    #[test]
    fn metadata_from_get_output_is_accepted() {
        let text = "type: Mesh\nname: a\nrevision: 3\ncreationTime: x\nmodificationTime: y\n";
        assert_eq!(parse_resources(text).unwrap().len(), 1);
    }
}
