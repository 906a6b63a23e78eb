//! The value `inspect --config --format` renders: the OCI image config as skopeo's Go
//! struct (`v1.Image` of the OCI image spec) sees it, with Go field names, fields in
//! declaration order, empty lists and maps for absent ones, and times in Go's form.

use serde_json::{Map, Value};

use crate::template::{go_nil, go_struct, go_time};

/// `v1.Image` for the OCI-form config JSON `config` (what `inspect --config` prints).
pub fn config_value(config: &Value) -> Value {
    let empty = Map::new();
    let c = config.as_object().unwrap_or(&empty);
    let image_config = c.get("config").and_then(Value::as_object).unwrap_or(&empty);
    let rootfs = c.get("rootfs").and_then(Value::as_object).unwrap_or(&empty);
    let history: Vec<Value> = list(c.get("history"))
        .iter()
        .map(|h| {
            let h = h.as_object().unwrap_or(&empty);
            go_struct(
                "v1.History",
                [
                    ("Created", time(h.get("created"))),
                    ("CreatedBy", string(h.get("created_by"))),
                    ("Author", string(h.get("author"))),
                    ("Comment", string(h.get("comment"))),
                    ("EmptyLayer", boolean(h.get("empty_layer"))),
                ],
            )
        })
        .collect();
    go_struct(
        "v1.Image",
        [
            ("Created", time(c.get("created"))),
            ("Author", string(c.get("author"))),
            ("Architecture", string(c.get("architecture"))),
            ("Variant", string(c.get("variant"))),
            ("OS", string(c.get("os"))),
            ("OSVersion", string(c.get("os.version"))),
            ("OSFeatures", Value::Array(list(c.get("os.features")))),
            (
                "Config",
                go_struct(
                    "v1.ImageConfig",
                    [
                        ("User", string(image_config.get("User"))),
                        ("ExposedPorts", set(image_config.get("ExposedPorts"))),
                        ("Env", Value::Array(list(image_config.get("Env")))),
                        (
                            "Entrypoint",
                            Value::Array(list(image_config.get("Entrypoint"))),
                        ),
                        ("Cmd", Value::Array(list(image_config.get("Cmd")))),
                        ("Volumes", set(image_config.get("Volumes"))),
                        ("WorkingDir", string(image_config.get("WorkingDir"))),
                        ("Labels", map(image_config.get("Labels"))),
                        ("StopSignal", string(image_config.get("StopSignal"))),
                        ("ArgsEscaped", boolean(image_config.get("ArgsEscaped"))),
                    ],
                ),
            ),
            (
                "RootFS",
                go_struct(
                    "v1.RootFS",
                    [
                        ("Type", string(rootfs.get("type"))),
                        ("DiffIDs", Value::Array(list(rootfs.get("diff_ids")))),
                    ],
                ),
            ),
            ("History", Value::Array(history)),
        ],
    )
}

fn string(v: Option<&Value>) -> Value {
    Value::String(v.and_then(Value::as_str).unwrap_or_default().to_string())
}

fn boolean(v: Option<&Value>) -> Value {
    Value::Bool(v.and_then(Value::as_bool).unwrap_or(false))
}

fn list(v: Option<&Value>) -> Vec<Value> {
    v.and_then(Value::as_array).cloned().unwrap_or_default()
}

fn map(v: Option<&Value>) -> Value {
    Value::Object(v.and_then(Value::as_object).cloned().unwrap_or_default())
}

/// `map[string]struct{}`: every value prints `{}`.
fn set(v: Option<&Value>) -> Value {
    let keys = v
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect::<Vec<_>>());
    Value::Object(
        keys.unwrap_or_default()
            .into_iter()
            .map(|k| (k, go_struct("struct {}", [])))
            .collect(),
    )
}

/// `*time.Time`: a Go time, or a nil pointer.
fn time(v: Option<&Value>) -> Value {
    match v.and_then(Value::as_str) {
        Some(t) => go_time(t),
        None => go_nil("*time.Time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Template;

    fn render(t: &str, config: &Value) -> String {
        Template::parse(t)
            .unwrap()
            .render_struct(&config_value(config))
            .unwrap()
    }

    #[test]
    fn prints_as_skopeo_does() {
        // Expected strings are skopeo 1.9.3's output for the same configs.
        let full = serde_json::json!({
            "created": "2024-01-02T03:04:05.5Z", "author": "me", "architecture": "arm64",
            "os": "linux",
            "config": {"User": "u", "ExposedPorts": {"80/tcp": {}}, "Env": ["X=1"],
                "Entrypoint": ["/bin/sh"], "Cmd": ["-c"], "Volumes": {"/data": {}},
                "WorkingDir": "/w", "Labels": {"a": "b"}, "StopSignal": "SIGTERM"},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "cb",
                "author": "me", "comment": "hc", "empty_layer": true}]
        });
        assert_eq!(
            render("{{.}}", &full),
            "{2024-01-02 03:04:05.5 +0000 UTC me arm64  linux  [] {u map[80/tcp:{}] [X=1] \
             [/bin/sh] [-c] map[/data:{}] /w map[a:b] SIGTERM false} {layers []} \
             [{2024-01-02 03:04:05 +0000 UTC cb me hc true}]}"
        );
        assert_eq!(
            render(
                "{{range $k,$v := .Config.ExposedPorts}}{{$k}}={{$v}};{{end}}",
                &full
            ),
            "80/tcp={};"
        );
        let bare = serde_json::json!({"architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []}});
        assert_eq!(
            render("{{.}}", &bare),
            "{<nil>  amd64  linux  [] { map[] [] [] [] map[]  map[]  false} {layers []} []}"
        );
        assert_eq!(
            render(
                "{{if .Created}}t{{else}}f{{end}} {{.Created}} {{if .Config}}s{{end}}",
                &bare
            ),
            "f <nil> s"
        );
        let err = Template::parse("{{.Config.Nope}}")
            .unwrap()
            .render_struct(&config_value(&bare))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("can't evaluate field Nope in type v1.ImageConfig"),
            "{err}"
        );
    }
}
