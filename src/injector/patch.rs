//! The JSON Patch (RFC 6902) that turns the pod the API server sent into the injected one: a
//! structural diff, so the patch touches only what injection changed.

use serde_json::{json, Map, Value};

/// The operations that turn `before` into `after`.
pub fn diff(before: &Value, after: &Value) -> Vec<Value> {
    let mut operations = Vec::new();
    walk(&mut String::new(), before, after, &mut operations);
    operations
}

fn walk(path: &mut String, before: &Value, after: &Value, out: &mut Vec<Value>) {
    match (before, after) {
        (Value::Object(before), Value::Object(after)) => objects(path, before, after, out),
        // Same length: element by element (a renamed port, a rewritten probe). Otherwise the
        // whole list, which the API server applies as atomically as one element.
        (Value::Array(b), Value::Array(a)) if b.len() == a.len() => {
            for (at, (b, a)) in b.iter().zip(a).enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&at.to_string());
                walk(path, b, a, out);
                path.truncate(len);
            }
        }
        _ if before == after => {}
        _ => out.push(json!({"op": "replace", "path": path.as_str(), "value": after})),
    }
}

fn objects(
    path: &mut String,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    out: &mut Vec<Value>,
) {
    for (key, was) in before {
        let len = path.len();
        push_token(path, key);
        match after.get(key) {
            Some(now) => walk(path, was, now, out),
            None => out.push(json!({"op": "remove", "path": path.as_str()})),
        }
        path.truncate(len);
    }
    for (key, now) in after {
        if !before.contains_key(key) {
            let len = path.len();
            push_token(path, key);
            out.push(json!({"op": "add", "path": path.as_str(), "value": now}));
            path.truncate(len);
        }
    }
}

/// Appends `/key` as a JSON Pointer token (RFC 6901: `~` is `~0`, `/` is `~1`), which the
/// annotation names need: `prometheus.io/port` is `prometheus.io~1port`.
fn push_token(path: &mut String, key: &str) {
    path.push('/');
    for c in key.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_changed_is_patched_with_escaped_pointers() {
        let before = json!({"metadata": {"annotations": {"a~b/c": "1"}, "name": "x"},
            "spec": {"containers": [{"ports": [{"name": "http"}]}]}});
        let after = json!({"metadata": {"annotations": {"a~b/c": "2"}, "name": "x"},
            "spec": {"containers": [{"ports": [{"name": "app-http"}]}], "initContainers": [1]}});
        assert_eq!(
            diff(&before, &after),
            vec![
                json!({"op": "replace", "path": "/metadata/annotations/a~0b~1c", "value": "2"}),
                json!({"op": "replace", "path": "/spec/containers/0/ports/0/name", "value": "app-http"}),
                json!({"op": "add", "path": "/spec/initContainers", "value": [1]}),
            ]
        );
        assert!(diff(&before, &before).is_empty());
        assert_eq!(
            diff(&json!({"l": [1]}), &json!({"l": [0, 1]})),
            vec![json!({"op": "replace", "path": "/l", "value": [0, 1]})]
        );
        assert_eq!(
            diff(&json!({"gone": 1}), &json!({})),
            vec![json!({"op": "remove", "path": "/gone"})]
        );
    }
}
