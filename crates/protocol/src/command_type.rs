use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What kind of command to run. On the wire this is a plain snake_case string
/// (`"shell"`, `"powershell"`, ...), never a tagged object: the original system's worst defect
/// was a server sending a string while the agent expected an enum of another shape.
///
/// A name this build does not know parses into [`CommandType::Other`], which the agent answers
/// with a failed result naming it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CommandType {
    Shell,
    Powershell,
    Python,
    Script,
    ClaudeTask,
    Other(String),
}

impl CommandType {
    /// The command types this protocol version defines.
    pub const KNOWN: [CommandType; 5] = [
        CommandType::Shell,
        CommandType::Powershell,
        CommandType::Python,
        CommandType::Script,
        CommandType::ClaudeTask,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            CommandType::Shell => "shell",
            CommandType::Powershell => "powershell",
            CommandType::Python => "python",
            CommandType::Script => "script",
            CommandType::ClaudeTask => "claude_task",
            CommandType::Other(name) => name,
        }
    }

    pub fn parse(name: &str) -> CommandType {
        match name {
            "shell" => CommandType::Shell,
            "powershell" => CommandType::Powershell,
            "python" => CommandType::Python,
            "script" => CommandType::Script,
            "claude_task" => CommandType::ClaudeTask,
            other => CommandType::Other(other.to_owned()),
        }
    }

    pub fn is_known(&self) -> bool {
        !matches!(self, CommandType::Other(_))
    }
}

impl std::fmt::Display for CommandType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CommandType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CommandType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(CommandType::parse(&name))
    }
}
