//! Rendering tests, one group per construct. Expected strings for the skopeo-shaped
//! data were checked against `skopeo inspect --format` (1.9.3) on the same image.

use serde_json::{json, Value};

use super::*;
use crate::error::ErrorKind;

fn data() -> Value {
    json!({
        "Name": "docker.io/library/alpine",
        "Digest": "sha256:31014b207e4a1625b30e926b0c13b185f3866e52e0022cecd95e22b53e3c9345",
        "RepoTags": [],
        "Created": "2024-01-02T03:04:05Z",
        "Labels": {"zeta": "1", "alpha": "x<y>&z", "mid": "m"},
        "Architecture": "amd64",
        "Layers": ["sha256:0fb6febcfe618b9f99a3205e1a481d4d67da74baa252273b3bc74205de30377c"],
        "Env": ["PATH=/usr/bin", "A=<b>&c"],
        "LayersData": [
            {"MIMEType": "application/vnd.oci.image.layer.v1.tar+gzip", "Digest": "sha256:aa", "Size": 123, "Annotations": null},
            {"MIMEType": "application/vnd.oci.image.layer.v1.tar+gzip", "Digest": "sha256:bb", "Size": 4567, "Annotations": {"k": "v"}}
        ],
        "Count": 3,
        "Ratio": 0.25,
        "Empty": "",
        "Nothing": null,
        "Flag": true
    })
}

fn r(t: &str) -> String {
    render(t, &data()).unwrap_or_else(|e| panic!("{t:?}: {e}"))
}

fn table(cases: &[(&str, &str)]) {
    for (t, want) in cases {
        assert_eq!(r(t), *want, "template {t:?}");
    }
}

#[test]
fn fields_and_plain_text() {
    table(&[
        ("", ""),
        ("plain text only", "plain text only"),
        ("{{.Name}}", "docker.io/library/alpine"),
        ("arch={{.Architecture}} name={{ .Name }}", "arch=amd64 name=docker.io/library/alpine"),
        ("{{.Labels.alpha}}", "x<y>&z"),
        ("{{.LayersData}}", "[map[Annotations:<nil> Digest:sha256:aa MIMEType:application/vnd.oci.image.layer.v1.tar+gzip Size:123] map[Annotations:map[k:v] Digest:sha256:bb MIMEType:application/vnd.oci.image.layer.v1.tar+gzip Size:4567]]"),
        ("{{.Count}} {{.Ratio}} {{.Flag}} [{{.Empty}}]", "3 0.25 true []"),
        ("{{$.Name}}", "docker.io/library/alpine"),
        ("tab\there\nnewline", "tab\there\nnewline"),
    ]);
}

/// Go's default formatting of values (checked against skopeo 1.9.3).
#[test]
fn default_value_printing() {
    table(&[
        ("{{.Labels}}", "map[alpha:x<y>&z mid:m zeta:1]"),
        ("{{.Env}}", "[PATH=/usr/bin A=<b>&c]"),
        (
            "{{.Layers}}",
            "[sha256:0fb6febcfe618b9f99a3205e1a481d4d67da74baa252273b3bc74205de30377c]",
        ),
        ("{{.RepoTags}}", "[]"),
        ("{{.Labels.nope}}", "<no value>"),
        ("{{.Nope}}", "<no value>"),
        ("{{.Nope.Deeper}}", "<no value>"),
        ("{{.Nothing}}", "<no value>"),
        ("{{.Nothing.X}}", "<no value>"),
    ]);
}

#[test]
fn json_function() {
    table(&[
        ("{{json .Labels}}", r#"{"zeta":"1","alpha":"x\u003cy\u003e\u0026z","mid":"m"}"#),
        ("{{json .Env}}", r#"["PATH=/usr/bin","A=\u003cb\u003e\u0026c"]"#),
        ("{{json .Name}}", r#""docker.io/library/alpine""#),
        ("{{json .Count}}", "3"),
        ("{{json .Ratio}}", "0.25"),
        ("{{json .Nothing}}", "null"),
        ("{{json .Nope}}", "null"),
        ("{{json .RepoTags}}", "[]"),
        // Compared with Go 1.19's encoding/json.
        ("{{json \"\\u2028<>&\\u0001\"}}|{{json 1e21}}|{{json 0.0000001}}|{{json 1e6}}|{{json 2.5}}", r#""\u2028\u003c\u003e\u0026\u0001"|1e+21|1e-7|1000000|2.5"#),
        ("{{.Env | json}}", r#"["PATH=/usr/bin","A=\u003cb\u003e\u0026c"]"#),
        ("{{json (index .LayersData 1)}}", r#"{"MIMEType":"application/vnd.oci.image.layer.v1.tar+gzip","Digest":"sha256:bb","Size":4567,"Annotations":{"k":"v"}}"#),
    ]);
}

#[test]
fn range_blocks() {
    table(&[
        ("{{range .Env}}[{{.}}]{{end}}", "[PATH=/usr/bin][A=<b>&c]"),
        (
            "{{range .Layers}}{{.}}\n{{end}}",
            "sha256:0fb6febcfe618b9f99a3205e1a481d4d67da74baa252273b3bc74205de30377c\n",
        ),
        (
            "{{range $i, $e := .Env}}{{$i}}={{$e}};{{end}}",
            "0=PATH=/usr/bin;1=A=<b>&c;",
        ),
        (
            "{{range $e := .Env}}<{{$e}}>{{end}}",
            "<PATH=/usr/bin><A=<b>&c>",
        ),
        (
            "{{range $k, $v := .Labels}}{{$k}}:{{$v}} {{end}}",
            "alpha:x<y>&z mid:m zeta:1 ",
        ),
        ("{{range .Labels}}{{.}},{{end}}", "x<y>&z,m,1,"),
        (
            "{{range .LayersData}}{{.Digest}} {{.Size}}|{{end}}",
            "sha256:aa 123|sha256:bb 4567|",
        ),
        ("{{range .RepoTags}}x{{else}}none{{end}}", "none"),
        ("{{range .Nothing}}x{{else}}nil{{end}}", "nil"),
        ("{{range .Nope}}x{{end}}", ""),
        ("{{range .Env}}{{$.Architecture}} {{end}}", "amd64 amd64 "),
        (
            "{{range .LayersData}}{{range $k, $v := .Annotations}}{{$k}}={{$v}}{{end}}{{end}}",
            "k=v",
        ),
        (
            "{{range $i, $e := .Env}}{{if eq $i 1}}{{break}}{{end}}{{$e}}{{end}}",
            "PATH=/usr/bin",
        ),
        (
            "{{range $i, $e := .Env}}{{if eq $i 0}}{{continue}}{{end}}{{$e}}{{end}}",
            "A=<b>&c",
        ),
        ("{{range 3}}{{.}}{{end}}", "012"),
    ]);
}

#[test]
fn index_function() {
    table(&[
        (r#"{{index .Labels "alpha"}}"#, "x<y>&z"),
        (r#"{{index .Labels "missing"}}"#, ""),
        ("{{index .Env 0}}", "PATH=/usr/bin"),
        ("{{index .Env 1}}", "A=<b>&c"),
        ("{{index .LayersData 1 \"Annotations\" \"k\"}}", "v"),
        ("{{(index .LayersData 0).Size}}", "123"),
        ("{{index .Name 0}}", "100"),
        ("{{index .Env}}", "[PATH=/usr/bin A=<b>&c]"),
    ]);
}

#[test]
fn conditionals_with_and_variables() {
    table(&[
        ("{{if .Flag}}yes{{end}}", "yes"),
        ("{{if .Empty}}yes{{else}}no{{end}}", "no"),
        ("{{if .Nope}}a{{else if .Count}}b{{else}}c{{end}}", "b"),
        ("{{if not .RepoTags}}no tags{{end}}", "no tags"),
        ("{{if and .Flag .Count}}both{{end}}", "both"),
        ("{{or .Empty .Nothing \"fallback\"}}", "fallback"),
        ("{{and .Flag .Empty \"unreached\"}}", ""),
        ("{{with .Labels}}{{.mid}}{{end}}", "m"),
        ("{{with .Nope}}x{{else}}none{{end}}", "none"),
        ("{{with $l := .Labels}}{{$l.zeta}}{{end}}", "1"),
        ("{{if eq .Architecture \"amd64\" \"arm64\"}}ok{{end}}", "ok"),
        ("{{if ne .Count 3}}x{{else}}three{{end}}", "three"),
        (
            "{{if lt .Ratio 1}}small{{end}}{{if ge .Count 3}} big{{end}}",
            "small big",
        ),
        ("{{$n := .Name}}{{$n}}", "docker.io/library/alpine"),
        ("{{$x := 1}}{{$x = 2}}{{$x}}", "2"),
        ("{{$x := 1}}{{if true}}{{$x = 5}}{{end}}{{$x}}", "5"),
        ("{{$d := index .LayersData 1}}{{$d.Annotations.k}}", "v"),
        ("{{len .Env}} {{len .Labels}} {{len .Name}}", "2 3 24"),
    ]);
}

#[test]
fn string_helpers_and_printing_functions() {
    table(&[
        (r#"{{join .Env ", "}}"#, "PATH=/usr/bin, A=<b>&c"),
        (r#"{{index (split .Name "/") 2}}"#, "alpine"),
        (r#"{{split "a,b" ","}}"#, "[a b]"),
        ("{{upper .Architecture}} {{lower \"ABC\"}} {{title \"hello big-world\"}}", "AMD64 abc Hello Big-World"),
        ("{{truncate .Digest 14}}", "sha256:31014b2"),
        (r#"{{pad .Architecture 2 1}}|{{pad "" 2 2}}|"#, "  amd64 ||"),
        (r#"{{printf "%s has %d tags" .Name (len .RepoTags)}}"#, "docker.io/library/alpine has 0 tags"),
        (r#"{{printf "%-6s|%5d|%05d|%.2f|%q|%v|%x" "ab" 42 -7 .Ratio "q\"" .Env 255}}"#, "ab    |   42|-0007|0.25|\"q\\\"\"|[PATH=/usr/bin A=<b>&c]|ff"),
        (r#"{{printf "%d %s"}}"#, "%!d(MISSING) %!s(MISSING)"),
        (r#"{{printf "%d" "x"}}"#, "%!d(string=x)"),
        (r#"{{printf "%s" "a" 1}}"#, "a%!(EXTRA int=1)"),
        (r#"{{printf "100%%"}}"#, "100%"),
        (r#"{{print "a" 1 2 "b"}}"#, "a1 2b"),
        (r#"{{println "a" 1}}"#, "a 1\n"),
        (r#"{{.Name | printf "<%s>"}}"#, "<docker.io/library/alpine>"),
        ("{{1.5}} {{-3}} {{0x1F}} {{1e6}} {{true}}", "1.5 -3 31 1e+06 true"),
        // The rows below were compared with Go 1.19's text/template.
        ("{{.Ratio}} {{1234567.0}} {{0.00001}} {{-0.5}}", "0.25 1.234567e+06 1e-05 -0.5"),
        (r#"{{printf "%e|%.2e|%g|%6.2f|%-6.1f|" 1234.5 0.000123 .Ratio 3.14159 2.0}}"#, "1.234500e+03|1.23e-04|0.25|  3.14|2.0   |"),
        (r#"{{printf "%x|%X|%q|%5s|%-5s|%.2s" "hi" 255 "a\tb" "ab" "ab" "abcdef"}}"#, "6869|FF|\"a\\tb\"|   ab|ab   |ab"),
        (r#"{{printf "%05.1f|%+d|%08.3f" 3.14159 5 -3.5}}"#, "003.1|+5|-003.500"),
        (r#"{{printf "%d" 1.5}}|{{printf "%t" true}}|{{print .Nothing}}|{{print 1 2}}"#, "%!d(float64=1.5)|true|<nil>|1 2"),
        (r#"{{title "élan vital_x o'neil"}}|{{upper "straße"}}"#, "Élan Vital_x O'Neil|STRAßE"),
        (r#"{{len "héllo"}}|{{index "héllo" 1}}|{{slice "abcdef" 1 3}}|{{slice .Env 1}}"#, "6|195|bc|[A=<b>&c]"),
        (r#"{{split "a,b,,c" ","}}|{{split "abc" ""}}|{{split "" ","}}"#, "[a b  c]|[a b c]|[]"),
        ("{{if and .Count .Nothing}}a{{else}}b{{end}}|{{or 0 \"\" .Ratio}}|{{and 1 2}}|{{not .Empty}}", "b|0.25|2|true"),
        ("{{\"quoted \\u00e9\"}} {{`raw\\n`}}", "quoted \u{e9} raw\\n"),
    ]);
}

#[test]
fn trim_markers_and_comments() {
    table(&[
        ("a  {{- .Architecture -}}  b", "aamd64b"),
        (
            "{{range .Env -}}\n  {{.}}\n{{- end}}",
            "PATH=/usr/binA=<b>&c",
        ),
        ("x{{/* a comment */}}y", "xy"),
        ("x {{- /* trimmed */ -}} y", "xy"),
    ]);
}

#[test]
fn parse_errors_name_the_template() {
    let cases = [
        ("{{.Name", "unclosed action"),
        ("{{nosuch .Name}}", "function \"nosuch\" not defined"),
        ("{{$undefined}}", "undefined variable \"$undefined\""),
        ("{{if .Flag}}x", "unexpected EOF"),
        ("{{end}}", "unexpected {{end}}"),
        ("{{else}}", "unexpected {{else}}"),
        (
            "{{range .Env}}{{else}}a{{else}}b{{end}}",
            "more than one {{else}}",
        ),
        ("{{break}}", "{{break}} outside {{range}}"),
        ("{{}}", "missing value"),
        ("{{.A |}}", "missing command"),
        ("{{nil}}", "nil is not a command"),
        ("{{(.A}}", "unclosed left paren"),
        ("{{1x}}", "bad number syntax"),
        ("{{define \"x\"}}{{end}}", "{{define}} is not supported"),
        ("{{$x = 1}}", "undefined variable \"$x\""),
        (
            "{{if true}}{{$y := 1}}{{else}}{{$y}}{{end}}",
            "undefined variable \"$y\"",
        ),
        ("{{\"s\".Field}}", "unexpected .Field"),
    ];
    for (t, want) in cases {
        let e = Template::parse(t).map(|_| ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{t:?}");
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("template {t:?}: ")), "{msg}");
        assert!(msg.contains(want), "{t:?}: {msg:?} lacks {want:?}");
    }
}

#[test]
fn execution_errors_name_the_template() {
    let cases = [
        (
            "{{.Name.Inner}}",
            "can't evaluate field Inner in type string",
        ),
        (
            "{{.Env.X}}",
            "can't evaluate field X in type []interface {}",
        ),
        (
            "{{index .Env 5}}",
            "error calling index: index out of range: 5",
        ),
        (
            "{{index .Env -1}}",
            "error calling index: index out of range: -1",
        ),
        (
            "{{index .Env \"a\"}}",
            "cannot index slice/array with type string",
        ),
        ("{{index .Nothing 0}}", "index of untyped nil"),
        ("{{len .Count}}", "error calling len: len of type int"),
        ("{{.Name .Env}}", "Name is not a method but has arguments"),
        ("{{.Env | .Name}}", "Name is not a method but has arguments"),
        ("{{\"x\" 1}}", "can't give argument to non-function \"x\""),
        (
            "{{slice .Name 3 2}}",
            "error calling slice: invalid slice index: 3 > 2",
        ),
        (
            "{{slice .Env 0 9}}",
            "error calling slice: index out of range: 9",
        ),
        (
            "{{json .A .B}}",
            "wrong number of args for json: want 1 got 2",
        ),
        ("{{upper .Count}}", "expected string; got int"),
        ("{{eq .Name 1}}", "incompatible types for comparison"),
        ("{{lt .Env 1}}", "invalid type for comparison"),
        (
            "{{range .Name}}{{end}}",
            "range can't iterate over docker.io/library/alpine",
        ),
    ];
    for (t, want) in cases {
        let e = render(t, &data())
            .map(|s| panic!("{t:?} rendered {s:?}"))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{t:?}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("executing template {t:?}: ")),
            "{msg}"
        );
        assert!(msg.contains(want), "{t:?}: {msg:?} lacks {want:?}");
    }
}

#[test]
fn parsed_template_is_reusable() {
    let t = Template::parse("{{.a}}-{{range .l}}{{.}}{{end}}").unwrap();
    assert_eq!(t.render(&json!({"a": 1, "l": ["x", "y"]})).unwrap(), "1-xy");
    assert_eq!(t.render(&json!({"a": "z", "l": []})).unwrap(), "z-");
    // The root itself may be a list or a scalar.
    assert_eq!(
        render("{{range .}}{{.}};{{end}}", &json!([1, 2])).unwrap(),
        "1;2;"
    );
    assert_eq!(render("{{.}}", &json!("s")).unwrap(), "s");
}
