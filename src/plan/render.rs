//! Rendering aktualizr's config fragments from handlebars templates
//! (design.md section 7).
//!
//! The templates live in `templates/` and are built into the binary;
//! `--template-dir` overrides them file by file. Strict mode: a missing
//! variable is an error. No HTML escaping. Values reach a template only
//! through helpers that write them in the dialect aktualizr really parses
//! (domain.md section 3) or refuse them:
//!
//! - `{{str v}}`: a double-quoted string with no `"`, `\`, or control
//!   character (aktualizr drops every `"` and knows no escapes);
//! - `{{path v}}`: a double-quoted absolute path that also has no `&`
//!   (aktualizr's escape character in paths) and no whitespace;
//! - `{{int v}}`, `{{bool v}}`: bare, as aktualizr ignores quoted numbers.
//!
//! Every rendered fragment is normalised to LF with one final newline,
//! then checked: it parses as TOML, and the `lint` checker finds nothing in
//! it. A fragment that fails is never staged.

use std::collections::BTreeMap;

use handlebars::template::{Parameter, Template, TemplateElement, TemplateMapping};
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason,
};
use serde_json::Value;

use crate::error::{Error, Result};

/// The built-in templates: file name under `templates/`, and text.
pub const BUILT_IN: [(&str, &str); 4] = [
    (
        "20-sota-shared-cred.toml.hbs",
        include_str!("../../templates/20-sota-shared-cred.toml.hbs"),
    ),
    (
        "20-sota-device-cred.toml.hbs",
        include_str!("../../templates/20-sota-device-cred.toml.hbs"),
    ),
    (
        "20-sota-device-cred-hsm.toml.hbs",
        include_str!("../../templates/20-sota-device-cred-hsm.toml.hbs"),
    ),
    (
        "40-hardware-id.toml.hbs",
        include_str!("../../templates/40-hardware-id.toml.hbs"),
    ),
];

/// The largest template file read from a template folder.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

/// The templates of a run: the built-in ones, some replaced by the files of
/// a template folder (read once, by the command, before planning).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Templates {
    /// File name -> (where it came from, for messages; text).
    overrides: BTreeMap<String, (String, String)>,
}

impl Templates {
    /// Only the built-in templates.
    pub fn built_in() -> Templates {
        Templates::default()
    }

    /// The built-in templates, with `files` (file name, where it came from,
    /// text) in place of those of the same name. A `*.hbs` file that names
    /// no template is refused: a typo would silently keep the built-in one.
    pub fn with_overrides(
        files: impl IntoIterator<Item = (String, String, String)>,
    ) -> std::result::Result<Templates, String> {
        let mut overrides = BTreeMap::new();
        for (name, origin, text) in files {
            if !BUILT_IN.iter().any(|(file, _)| *file == name) {
                return Err(format!(
                    "`{origin}` is not a template sota-stage knows; name a replacement after one of {}",
                    BUILT_IN
                        .iter()
                        .map(|(file, _)| format!("`{file}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if text.len() > MAX_TEMPLATE_BYTES {
                return Err(format!(
                    "`{origin}` is larger than {MAX_TEMPLATE_BYTES} bytes; a fragment template is a few lines"
                ));
            }
            overrides.insert(name, (origin, text));
        }
        Ok(Templates { overrides })
    }

    /// The text of template `file` and where it came from.
    fn get(&self, file: &str) -> Result<(&str, String)> {
        if let Some((origin, text)) = self.overrides.get(file) {
            return Ok((text, origin.clone()));
        }
        BUILT_IN
            .iter()
            .find(|(name, _)| *name == file)
            .map(|(name, text)| (*text, format!("templates/{name}")))
            .ok_or_else(|| Error::Invalid(format!("no template `{file}`")))
    }
}

/// Renders template `file` with `data`, then checks the result.
pub fn render(templates: &Templates, file: &str, data: &Value) -> Result<String> {
    let (text, origin) = templates.get(file)?;
    check_template(text).map_err(|why| Error::Invalid(format!("template `{origin}`: {why}")))?;
    let rendered = render_text(text, data)
        .map_err(|why| Error::Invalid(format!("template `{origin}`: {why}")))?;
    let fragment = normalise(&rendered);
    check_fragment(file.trim_end_matches(".hbs"), &fragment)?;
    Ok(fragment)
}

/// The value helpers: the only way a value reaches a fragment.
const VALUE_HELPERS: [&str; 4] = ["str", "path", "int", "bool"];
/// Blocks that only choose what to write; they print no value.
const CONDITION_BLOCKS: [&str; 2] = ["if", "unless"];
/// The deepest nesting of blocks a template may have; the built-in ones use
/// one level. handlebars parses and renders nested blocks recursively, so an
/// unbounded depth could exhaust the stack.
const MAX_BLOCK_DEPTH: usize = 8;

/// Refuses a template that could write a value without a dialect helper,
/// or recurse: every expression must be `{{str v}}`, `{{path v}}`,
/// `{{int v}}` or `{{bool v}}` with one variable or literal; blocks only
/// `{{#if v}}` and `{{#unless v}}`; no partials, inline partials or
/// decorators (a partial can call itself until the stack overflows), no
/// subexpressions (`{{str (log p12_password)}}` would reach a built-in
/// helper). The reason names the line.
fn check_template(text: &str) -> std::result::Result<(), String> {
    // handlebars' parser recurses on nested blocks and subexpressions: bound
    // both depths before it sees the text.
    // A tag may span lines: scan the whole text, tag after tag (linear
    // time), and count the line only for the message.
    let mut blocks: usize = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find("{{") {
        let at = from + found;
        let end = text[at + 2..].find("}}").map_or(text.len(), |e| at + 2 + e);
        from = (end + 2).min(text.len());
        let too_deep = |what: &str| {
            Err(format!(
                "line {}: {what} are nested more than {MAX_BLOCK_DEPTH} deep",
                text[..at].matches('\n').count() + 1
            ))
        };
        let tag = &text[at + 2..end];
        let opened = tag.trim_start_matches(['~', '{']);
        if opened.starts_with('#') {
            blocks += 1;
            if blocks > MAX_BLOCK_DEPTH {
                return too_deep("blocks");
            }
        } else if opened.starts_with('/') {
            blocks = blocks.saturating_sub(1);
        }
        let mut parens: usize = 0;
        for c in tag.chars() {
            match c {
                '(' => parens += 1,
                ')' => parens = parens.saturating_sub(1),
                _ => {}
            }
            if parens > MAX_BLOCK_DEPTH {
                return too_deep("subexpressions");
            }
        }
    }
    let template = Template::compile(text).map_err(|e| e.to_string())?;
    check_elements(&template)
}

fn check_elements(template: &Template) -> std::result::Result<(), String> {
    for (index, element) in template.elements.iter().enumerate() {
        let line = template
            .mapping
            .get(index)
            .map_or(0, |mapping: &TemplateMapping| mapping.0);
        let refuse = |why: String| Err(format!("line {line}: {why}"));
        match element {
            TemplateElement::RawString(_) | TemplateElement::Comment(_) => {}
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                let name = h.name.as_name().unwrap_or_default();
                if !VALUE_HELPERS.contains(&name) {
                    return refuse(format!(
                        "`{{{{{name}}}}}` writes a value without a helper; write values only \
                         through `str`, `path`, `int` or `bool` (e.g. `{{{{str {name}}}}}`)"
                    ));
                }
                let plain = |p: &Parameter| matches!(p, Parameter::Path(_) | Parameter::Literal(_));
                if h.params.len() != 1 || !h.params.iter().all(plain) || !h.hash.is_empty() {
                    return refuse(format!(
                        "`{name}` takes exactly one variable (e.g. `{{{{{name} value}}}}`)"
                    ));
                }
            }
            TemplateElement::HelperBlock(h) => {
                let name = h.name.as_name().unwrap_or_default();
                if !CONDITION_BLOCKS.contains(&name) {
                    return refuse(format!(
                        "the block `{{{{#{name}}}}}` is not allowed; a template may use only \
                         `{{{{#if}}}}` and `{{{{#unless}}}}` blocks"
                    ));
                }
                if h.params.len() != 1 || !matches!(h.params[0], Parameter::Path(_)) {
                    return refuse(format!("`#{name}` takes exactly one variable"));
                }
                for inner in [&h.template, &h.inverse].into_iter().flatten() {
                    check_elements(inner)?;
                }
            }
            TemplateElement::PartialExpression(_) | TemplateElement::PartialBlock(_) => {
                return refuse("partials are not allowed in a template".into());
            }
            TemplateElement::DecoratorExpression(_) | TemplateElement::DecoratorBlock(_) => {
                return refuse(
                    "inline partials and decorators are not allowed in a template".into(),
                );
            }
            // `TemplateElement` is non-exhaustive: a kind handlebars adds later
            // is refused until it is looked at.
            _ => return refuse("this kind of expression is not allowed in a template".into()),
        }
    }
    Ok(())
}

/// Renders template text in strict mode with the dialect helpers.
fn render_text(text: &str, data: &Value) -> std::result::Result<String, String> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    // The dialect helpers; a value reaches a template only through them.
    type Writer = fn(&Helper<'_>, &mut dyn Output) -> HelperResult;
    let helpers: [(&str, Writer); 4] = [
        ("str", |h, out| write_checked(h, out, "str", dialect_string)),
        ("path", |h, out| write_checked(h, out, "path", dialect_path)),
        ("int", |h, out| {
            write_bare(h, out, "int", "an integer", bare_integer)
        }),
        ("bool", |h, out| {
            write_bare(h, out, "bool", "a boolean", bare_bool)
        }),
    ];
    for (name, write) in helpers {
        hb.register_helper(
            name,
            Box::new(
                move |h: &Helper<'_>,
                      _: &Handlebars<'_>,
                      _: &Context,
                      _: &mut RenderContext<'_, '_>,
                      out: &mut dyn Output| write(h, out),
            ),
        );
    }
    hb.render_template(text, data).map_err(|e| {
        // Keep handlebars' own words (they name the variable or the helper
        // and the line) but never the data.
        match e.reason() {
            RenderErrorReason::Other(why) => why.clone(),
            _ => e.to_string(),
        }
    })
}

/// LF line ends, no trailing blank lines, exactly one final newline.
fn normalise(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let mut out = text.trim_end_matches(['\n', ' ', '\t']).to_string();
    out.push('\n');
    out
}

/// A rendered fragment must parse as TOML and pass `lint` without a
/// single problem.
pub fn check_fragment(name: &str, fragment: &str) -> Result<()> {
    if let Err(e) = fragment.parse::<toml::Value>() {
        return Err(Error::Invalid(format!(
            "rendered `{name}` is not valid TOML ({e}); fix the template"
        )));
    }
    let problems = crate::aktualizr::rules::lint_text(name, fragment);
    if let Some(first) = problems.first() {
        return Err(Error::Invalid(format!(
            "rendered `{name}` would not be read as intended by aktualizr: line {}: {}; fix the template",
            first.line, first.message
        )));
    }
    Ok(())
}

/// Writes `value` as a string aktualizr reads back unchanged, or says why
/// it cannot.
pub fn dialect_string(value: &str) -> std::result::Result<String, String> {
    if let Some(c) = value.chars().find(|c| matches!(c, '"' | '\\')) {
        return Err(format!(
            "contains `{c}`, which aktualizr's parser drops or mangles"
        ));
    }
    if value.chars().any(char::is_control) {
        return Err("contains a control character or line break".into());
    }
    Ok(format!("\"{value}\""))
}

/// Writes an absolute path aktualizr reads back unchanged, or says why it
/// cannot: paths are also read with `&` as an escape character, and a space
/// makes them fragile in every shell that touches the config.
pub fn dialect_path(value: &str) -> std::result::Result<String, String> {
    if !value.starts_with('/') {
        return Err("is not an absolute path".into());
    }
    if value.contains('&') {
        return Err("contains `&`, which aktualizr reads as an escape character in paths".into());
    }
    if value.chars().any(char::is_whitespace) {
        return Err("contains whitespace".into());
    }
    dialect_string(value)
}

fn param<'a>(
    h: &'a Helper<'_>,
    name: &'static str,
) -> std::result::Result<&'a Value, RenderErrorReason> {
    let p = h
        .param(0)
        .ok_or(RenderErrorReason::ParamNotFoundForIndex(name, 0))?;
    if p.is_value_missing() || p.value().is_null() {
        let var = p.relative_path().cloned().unwrap_or_default();
        return Err(RenderErrorReason::Other(format!(
            "the value `{var}` given to `{name}` is missing"
        )));
    }
    Ok(p.value())
}

fn var_name(h: &Helper<'_>) -> String {
    h.param(0)
        .and_then(|p| p.relative_path().cloned())
        .unwrap_or_else(|| "value".into())
}

fn write_checked(
    h: &Helper<'_>,
    out: &mut dyn Output,
    name: &'static str,
    check: fn(&str) -> std::result::Result<String, String>,
) -> HelperResult {
    let Some(text) = param(h, name)?.as_str() else {
        return Err(RenderErrorReason::Other(format!("`{}` is not a string", var_name(h))).into());
    };
    let written = check(text).map_err(|why| {
        RenderErrorReason::Other(format!(
            "`{}` cannot be written safely for aktualizr: it {why}",
            var_name(h)
        ))
    })?;
    out.write(&written)?;
    Ok(())
}

/// Writes a value bare (aktualizr ignores quoted numbers and booleans), or
/// refuses it when `bare` finds it is not of the kind `what`.
fn write_bare(
    h: &Helper<'_>,
    out: &mut dyn Output,
    name: &'static str,
    what: &str,
    bare: fn(&Value) -> Option<String>,
) -> HelperResult {
    let Some(written) = bare(param(h, name)?) else {
        return Err(RenderErrorReason::Other(format!("`{}` is not {what}", var_name(h))).into());
    };
    out.write(&written)?;
    Ok(())
}

fn bare_integer(v: &Value) -> Option<String> {
    v.as_number()
        .filter(|n| n.is_i64() || n.is_u64())
        .map(ToString::to_string)
}

fn bare_bool(v: &Value) -> Option<String> {
    v.as_bool().map(|b| b.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_quoted_or_refused() {
        assert_eq!(
            dialect_string("raspberrypi4").as_deref(),
            Ok("\"raspberrypi4\"")
        );
        for bad in ["pa\"ss", "a\\b", "a\nb", "a\tb", "a\u{7f}"] {
            assert!(dialect_string(bad).is_err(), "{bad:?}");
        }
        assert!(dialect_path("/usr/lib/softhsm/libsofthsm2.so").is_ok());
        for bad in ["/a&b", "/a b", "relative.so", "/a\"b"] {
            assert!(dialect_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn helpers_render_values_in_the_dialect() {
        let out = render_text(
            "a = {{str s}}\nb = {{path p}}\nc = {{int n}}\nd = {{bool t}}\n",
            &json!({"s": "x", "p": "/var/sota", "n": 30, "t": true}),
        )
        .expect("renders");
        assert_eq!(out, "a = \"x\"\nb = \"/var/sota\"\nc = 30\nd = true\n");
    }

    #[test]
    fn missing_variables_and_unsafe_values_are_errors() {
        let e = render_text("a = {{str nope}}\n", &json!({})).expect_err("strict");
        assert!(e.contains("nope"), "{e}");
        let e = render_text("a = {{nope}}\n", &json!({})).expect_err("strict");
        assert!(e.contains("nope"), "{e}");
        let e = render_text("a = {{str pin}}\n", &json!({"pin": "12\"34"})).expect_err("quote");
        assert!(e.contains("`pin`") && !e.contains("12\"34"), "{e}");
        let e = render_text("a = {{int n}}\n", &json!({"n": "30"})).expect_err("quoted number");
        assert!(e.contains("integer"), "{e}");
    }

    #[test]
    fn no_html_escaping() {
        let out = render_text("a = {{str s}}\n", &json!({"s": "<&>'"})).expect("renders");
        assert_eq!(out, "a = \"<&>'\"\n");
    }

    #[test]
    fn built_in_templates_pass_the_template_check() {
        for (name, text) in BUILT_IN {
            assert_eq!(check_template(text), Ok(()), "{name}");
        }
    }

    #[test]
    fn templates_that_bypass_the_helpers_or_recurse_are_refused() {
        let cases = [
            (
                "a = {{p12_password}}\n",
                "line 1: `{{p12_password}}` writes a value without a helper",
            ),
            (
                "a = {{{p12_password}}}\n",
                "writes a value without a helper",
            ),
            (
                "\n\na = {{log p12_password}}\n",
                "line 3: `{{log}}` writes a value",
            ),
            (
                "a = {{str (lookup this \"p12_password\")}}\n",
                "takes exactly one variable",
            ),
            ("a = {{str a b}}\n", "takes exactly one variable"),
            (
                "{{#*inline \"x\"}}a{{> x}}{{/inline}}{{> x}}\n",
                "line 1: inline partials",
            ),
            ("{{> x}}\n", "partials are not allowed"),
            (
                "{{#each this}}{{str @key}}{{/each}}\n",
                "the block `{{#each}}` is not allowed",
            ),
            (
                "{{#if a}}\n{{p12_password}}{{/if}}\n",
                "line 2: `{{p12_password}}`",
            ),
            ("{{#if a}}{{else}}{{b}}{{/if}}\n", "`{{b}}` writes a value"),
            (
                &"{{#if a}}".repeat(9),
                "line 1: blocks are nested more than 8 deep",
            ),
            (
                &format!(
                    "\n{{{{str {}{}}}}}",
                    "(a\n".repeat(10_000),
                    ")".repeat(10_000)
                ),
                "line 2: subexpressions are nested more than 8 deep",
            ),
        ];
        for (text, why) in cases {
            match check_template(text) {
                Err(e) => assert!(e.contains(why), "{text:?}: {e}"),
                Ok(()) => panic!("{text:?} passed"),
            }
        }
        assert_eq!(
            check_template("{{#if a}}{{str a}}{{else}}{{int b}}{{/if}}{{! note }}\n"),
            Ok(())
        );
    }

    #[test]
    fn output_is_normalised() {
        assert_eq!(normalise("a\r\nb\n\n\n"), "a\nb\n");
        assert_eq!(normalise("a"), "a\n");
    }
}
