//! The script library: saved scripts with typed parameters, each edit a new version.
//!
//! Parameters are never spliced into a script's text. A run resolves the values a technician
//! gave against the declared parameters ([`resolve_parameters`]) into plain strings that the
//! agent passes to the script as environment variables named after the parameters, so a value
//! holding quotes, `;` or `$(...)` reaches the script as literal text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// How a script runs on the agent (the command types a script can have).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScriptKind {
    Shell,
    Powershell,
    Python,
    /// Run by `interpreter` (or the agent's configured one) from a file.
    Script,
}

impl ScriptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptKind::Shell => "shell",
            ScriptKind::Powershell => "powershell",
            ScriptKind::Python => "python",
            ScriptKind::Script => "script",
        }
    }

    pub fn parse(s: &str) -> Option<ScriptKind> {
        Some(match s {
            "shell" => ScriptKind::Shell,
            "powershell" => ScriptKind::Powershell,
            "python" => ScriptKind::Python,
            "script" => ScriptKind::Script,
            _ => return None,
        })
    }
}

/// The operating systems a script is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetOs {
    Any,
    Windows,
    Linux,
    Macos,
}

impl TargetOs {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetOs::Any => "any",
            TargetOs::Windows => "windows",
            TargetOs::Linux => "linux",
            TargetOs::Macos => "macos",
        }
    }

    pub fn parse(s: &str) -> Option<TargetOs> {
        Some(match s {
            "any" => TargetOs::Any,
            "windows" => TargetOs::Windows,
            "linux" => TargetOs::Linux,
            "macos" => TargetOs::Macos,
            _ => return None,
        })
    }
}

/// What a parameter's value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParameterKind {
    String,
    Number,
    Boolean,
    /// One of `choices`.
    Choice,
}

/// A parameter a script takes. Its value reaches the script as the environment variable
/// `name` (as text: booleans are `true`/`false`, numbers as written).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScriptParameter {
    /// A letter, then letters, digits or `_` (at most 64): the environment variable's name.
    pub name: String,
    /// What the run form shows; the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub kind: ParameterKind,
    /// A run must give a value (unless there is a default).
    #[serde(default)]
    pub required: bool,
    /// Used when a run gives no value: a string, number or boolean as `kind` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// For `choice`: the allowed values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
}

/// What one version of a script holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScriptContent {
    pub command_type: ScriptKind,
    /// For `script`: the interpreter (else the agent's configured one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
    pub body: String,
    /// 1..=86400; default 300.
    #[serde(default = "default_timeout")]
    pub default_timeout_seconds: u64,
    #[serde(default = "any_os")]
    pub target_os: TargetOs,
    #[serde(default)]
    pub parameters: Vec<ScriptParameter>,
}

fn default_timeout() -> u64 {
    300
}

fn any_os() -> TargetOs {
    TargetOs::Any
}

/// A script as created, edited, exported and imported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScriptDefinition {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub category: String,
    #[serde(flatten)]
    pub content: ScriptContent,
}

/// Most bytes of a script body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most parameters of one script.
pub const MAX_PARAMETERS: usize = 32;
/// Most bytes of one parameter value.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Environment variables a parameter may not replace: the script's own surroundings.
const RESERVED_NAMES: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "SHELL",
    "TEMP",
    "TMP",
    "TMPDIR",
    "SYSTEMROOT",
    "WINDIR",
    "COMSPEC",
    "PATHEXT",
    "PSMODULEPATH",
    "USERPROFILE",
    "PWD",
    "IFS",
];

fn check_text(field: &str, value: &str, max_chars: usize) -> Result<(), String> {
    if value.chars().count() > max_chars || value.chars().any(|c| c.is_control()) {
        return Err(format!(
            "{field}: at most {max_chars} characters, no control characters"
        ));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || name.len() > 64 || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "parameters: name {name:?} must be a letter followed by letters, digits or _ (at most 64)"
        ));
    }
    let upper = name.to_ascii_uppercase();
    if RESERVED_NAMES.contains(&upper.as_str())
        || upper.starts_with("LD_")
        || upper.starts_with("DYLD_")
        || upper.starts_with("GURURMM_")
    {
        return Err(format!(
            "parameters: name {name:?} would replace an environment variable the script needs"
        ));
    }
    Ok(())
}

impl ScriptDefinition {
    /// Checks a definition from a technician or an import; the error names the field.
    pub fn check(&mut self) -> Result<(), String> {
        self.name = self.name.trim().to_owned();
        if self.name.is_empty() {
            return Err("name: must not be empty".into());
        }
        check_text("name", &self.name, 200)?;
        if self.description.len() > 10_000 || self.description.contains('\0') {
            return Err("description: at most 10000 bytes".into());
        }
        self.category = self.category.trim().to_owned();
        check_text("category", &self.category, 100)?;
        let c = &mut self.content;
        if c.body.trim().is_empty() {
            return Err("body: must not be empty".into());
        }
        if c.body.len() > MAX_BODY_BYTES || c.body.contains('\0') {
            return Err(format!("body: at most {MAX_BODY_BYTES} bytes, no NUL"));
        }
        if !(1..=86_400).contains(&c.default_timeout_seconds) {
            return Err("default_timeout_seconds: 1..=86400".into());
        }
        c.interpreter = c
            .interpreter
            .take()
            .map(|i| i.trim().to_owned())
            .filter(|i| !i.is_empty());
        if let Some(i) = &c.interpreter {
            check_text("interpreter", i, 255)?;
        }
        if c.parameters.len() > MAX_PARAMETERS {
            return Err(format!("parameters: at most {MAX_PARAMETERS}"));
        }
        let mut seen = std::collections::HashSet::new();
        for p in &c.parameters {
            check_name(&p.name)?;
            if !seen.insert(p.name.to_ascii_uppercase()) {
                return Err(format!("parameters: {:?} is declared twice", p.name));
            }
            if let Some(label) = &p.label {
                check_text("parameters: label", label, 200)?;
            }
            if p.kind == ParameterKind::Choice {
                if p.choices.is_empty() || p.choices.len() > 100 {
                    return Err(format!(
                        "parameters: {:?} is a choice: give 1 to 100 choices",
                        p.name
                    ));
                }
                for choice in &p.choices {
                    check_text("parameters: choice", choice, 200)?;
                }
            } else if !p.choices.is_empty() {
                return Err(format!(
                    "parameters: {:?} has choices but is not a choice",
                    p.name
                ));
            }
            if let Some(default) = &p.default {
                value_text(p, default)
                    .map_err(|e| format!("parameters: {:?} default: {e}", p.name))?;
            }
        }
        Ok(())
    }
}

/// A value given for `p` as the text the script receives.
fn value_text(p: &ScriptParameter, value: &Value) -> Result<String, String> {
    let text = match (p.kind, value) {
        (ParameterKind::String, Value::String(s)) => s.clone(),
        (ParameterKind::Number, Value::Number(n)) => n.to_string(),
        (ParameterKind::Number, Value::String(s))
            if s.trim().parse::<f64>().is_ok_and(f64::is_finite) =>
        {
            s.trim().to_owned()
        }
        (ParameterKind::Boolean, Value::Bool(b)) => b.to_string(),
        (ParameterKind::Boolean, Value::String(s)) if s == "true" || s == "false" => s.clone(),
        (ParameterKind::Choice, Value::String(s)) if p.choices.contains(s) => s.clone(),
        (ParameterKind::Choice, _) => {
            return Err(format!("must be one of {}", p.choices.join(", ")))
        }
        (kind, _) => {
            return Err(format!(
                "must be a {}",
                match kind {
                    ParameterKind::String => "string",
                    ParameterKind::Number => "number",
                    ParameterKind::Boolean => "boolean (true or false)",
                    ParameterKind::Choice => "choice",
                }
            ))
        }
    };
    if text.len() > MAX_VALUE_BYTES || text.contains('\0') {
        return Err(format!("at most {MAX_VALUE_BYTES} bytes, no NUL"));
    }
    Ok(text)
}

/// The environment a run passes to the script: each declared parameter with the value given,
/// or its default; an error names a missing, unknown or ill-typed parameter.
pub fn resolve_parameters(
    declared: &[ScriptParameter],
    given: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, String>, String> {
    if let Some(unknown) = given
        .keys()
        .find(|k| !declared.iter().any(|p| &p.name == *k))
    {
        return Err(format!(
            "parameters: this script has no parameter {unknown:?}"
        ));
    }
    let mut env = BTreeMap::new();
    for p in declared {
        let value = match given.get(&p.name).filter(|v| !v.is_null()) {
            Some(v) => Some(v),
            None => p.default.as_ref(),
        };
        match value {
            Some(v) => {
                let text = value_text(p, v).map_err(|e| format!("parameters: {}: {e}", p.name))?;
                env.insert(p.name.clone(), text);
            }
            None if p.required => {
                return Err(format!("parameters: {} is required", p.name));
            }
            None => {}
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param(name: &str, kind: ParameterKind) -> ScriptParameter {
        ScriptParameter {
            name: name.into(),
            label: None,
            kind,
            required: false,
            default: None,
            choices: Vec::new(),
        }
    }

    fn definition(parameters: Vec<ScriptParameter>) -> ScriptDefinition {
        ScriptDefinition {
            name: " Disk report ".into(),
            description: String::new(),
            category: "Maintenance".into(),
            content: ScriptContent {
                command_type: ScriptKind::Shell,
                interpreter: None,
                body: "df -h \"$MOUNT\"".into(),
                default_timeout_seconds: 60,
                target_os: TargetOs::Linux,
                parameters,
            },
        }
    }

    #[test]
    fn values_are_typed_defaulted_and_kept_literal() {
        let mut mount = param("MOUNT", ParameterKind::String);
        mount.required = true;
        let mut verbose = param("verbose", ParameterKind::Boolean);
        verbose.default = Some(json!(false));
        let mut level = param("level", ParameterKind::Choice);
        level.choices = vec!["low".into(), "high".into()];
        let count = param("count", ParameterKind::Number);
        let declared = vec![mount, verbose, level, count];
        let literal = "it's \"quoted\"; $(rm -rf /) `x`";
        let given: BTreeMap<String, Value> = [
            ("MOUNT".to_owned(), json!(literal)),
            ("level".to_owned(), json!("high")),
            ("count".to_owned(), json!(3)),
        ]
        .into();
        let env = resolve_parameters(&declared, &given).unwrap();
        assert_eq!(env["MOUNT"], literal);
        assert_eq!(env["verbose"], "false");
        assert_eq!(env["level"], "high");
        assert_eq!(env["count"], "3");

        let missing = resolve_parameters(&declared, &BTreeMap::new()).unwrap_err();
        assert!(missing.contains("MOUNT is required"), "{missing}");
        let mut wrong = given.clone();
        wrong.insert("level".into(), json!("medium"));
        assert!(resolve_parameters(&declared, &wrong)
            .unwrap_err()
            .contains("low, high"));
        let mut wrong = given.clone();
        wrong.insert("count".into(), json!("many"));
        assert!(resolve_parameters(&declared, &wrong)
            .unwrap_err()
            .contains("number"));
        let mut unknown = given;
        unknown.insert("PATH".into(), json!("/tmp"));
        assert!(resolve_parameters(&declared, &unknown)
            .unwrap_err()
            .contains("no parameter"));
    }

    #[test]
    fn definitions_are_checked_with_the_field_named() {
        let mut ok = definition(vec![param("MOUNT", ParameterKind::String)]);
        ok.check().unwrap();
        assert_eq!(ok.name, "Disk report");
        for (bad, field) in [
            (
                vec![param("PATH", ParameterKind::String)],
                "replace an environment variable",
            ),
            (
                vec![param("LD_PRELOAD", ParameterKind::String)],
                "replace an environment variable",
            ),
            (vec![param("1x", ParameterKind::String)], "must be a letter"),
            (
                vec![param("a-b", ParameterKind::String)],
                "must be a letter",
            ),
            (
                vec![
                    param("x", ParameterKind::String),
                    param("X", ParameterKind::Number),
                ],
                "declared twice",
            ),
            (
                vec![param("pick", ParameterKind::Choice)],
                "give 1 to 100 choices",
            ),
        ] {
            let error = definition(bad).check().unwrap_err();
            assert!(error.contains(field), "{error}");
        }
        let mut empty = definition(vec![]);
        empty.content.body = "  ".into();
        assert!(empty.check().unwrap_err().starts_with("body"));
        let mut bad_default = definition(vec![ScriptParameter {
            default: Some(json!("yes")),
            ..param("flag", ParameterKind::Boolean)
        }]);
        assert!(bad_default.check().unwrap_err().contains("default"));
    }
}
