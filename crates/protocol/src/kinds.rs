//! Closed sets of names the wire and the REST API carry as plain snake_case strings, as enums.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A name outside a closed set, e.g. `"sideways"` for a command status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
}

impl std::fmt::Display for UnknownName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown {} {:?}", self.what, self.name)
    }
}

impl std::error::Error for UnknownName {}

/// The state of a command, as stored by the server and shown by the REST API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    Pending,
    Running,
    Completed,
    Failed,
    TimedOut,
    Cancelled,
    /// A job's command still queued when the job's expiry passed (its agent stayed away).
    Expired,
}

impl CommandStatus {
    pub const ALL: [CommandStatus; 7] = [
        CommandStatus::Pending,
        CommandStatus::Running,
        CommandStatus::Completed,
        CommandStatus::Failed,
        CommandStatus::TimedOut,
        CommandStatus::Cancelled,
        CommandStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CommandStatus::Pending => crate::command_status::PENDING,
            CommandStatus::Running => crate::command_status::RUNNING,
            CommandStatus::Completed => crate::command_status::COMPLETED,
            CommandStatus::Failed => crate::command_status::FAILED,
            CommandStatus::TimedOut => crate::command_status::TIMED_OUT,
            CommandStatus::Cancelled => crate::command_status::CANCELLED,
            CommandStatus::Expired => crate::command_status::EXPIRED,
        }
    }

    /// Completed, failed, timed out or cancelled: nothing changes it any more.
    pub fn is_final(self) -> bool {
        !matches!(self, CommandStatus::Pending | CommandStatus::Running)
    }
}

impl std::str::FromStr for CommandStatus {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, UnknownName> {
        CommandStatus::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "command status",
                name: s.to_owned(),
            })
    }
}

impl std::fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for CommandStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What an agent's service watchdog saw. A name this build does not know is kept as
/// [`WatchdogEventKind::Other`], so a newer agent's events are stored, not dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WatchdogEventKind {
    Stopped,
    Restarted,
    RestartFailed,
    GaveUp,
    Other(String),
}

impl WatchdogEventKind {
    pub const KNOWN: [WatchdogEventKind; 4] = [
        WatchdogEventKind::Stopped,
        WatchdogEventKind::Restarted,
        WatchdogEventKind::RestartFailed,
        WatchdogEventKind::GaveUp,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            WatchdogEventKind::Stopped => crate::watchdog_event_kind::STOPPED,
            WatchdogEventKind::Restarted => crate::watchdog_event_kind::RESTARTED,
            WatchdogEventKind::RestartFailed => crate::watchdog_event_kind::RESTART_FAILED,
            WatchdogEventKind::GaveUp => crate::watchdog_event_kind::GAVE_UP,
            WatchdogEventKind::Other(name) => name,
        }
    }

    pub fn parse(name: &str) -> WatchdogEventKind {
        WatchdogEventKind::KNOWN
            .into_iter()
            .find(|k| k.as_str() == name)
            .unwrap_or_else(|| WatchdogEventKind::Other(name.to_owned()))
    }
}

impl std::fmt::Display for WatchdogEventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for WatchdogEventKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for WatchdogEventKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WatchdogEventKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(WatchdogEventKind::parse(&String::deserialize(
            deserializer,
        )?))
    }
}

#[cfg(feature = "utoipa")]
mod schema {
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::openapi::RefOr;

    fn string_schema(description: &str, names: &[&str], closed: bool) -> RefOr<Schema> {
        let builder = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
            .examples(names.iter().map(|n| serde_json::json!(n)));
        if closed {
            builder.enum_values(Some(names.iter().copied())).into()
        } else {
            builder.into()
        }
    }

    impl utoipa::PartialSchema for crate::CommandType {
        fn schema() -> RefOr<Schema> {
            let names: Vec<&str> = crate::CommandType::KNOWN
                .iter()
                .map(|k| k.as_str())
                .collect();
            string_schema("What runs the command", &names, true)
        }
    }
    impl utoipa::ToSchema for crate::CommandType {}

    impl utoipa::PartialSchema for super::WatchdogEventKind {
        fn schema() -> RefOr<Schema> {
            let names: Vec<&str> = super::WatchdogEventKind::KNOWN
                .iter()
                .map(|k| k.as_str())
                .collect();
            string_schema(
                "What the watchdog saw: one of the examples, or a newer agent's own name",
                &names,
                false,
            )
        }
    }
    impl utoipa::ToSchema for super::WatchdogEventKind {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_wire_strings() {
        for s in CommandStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(s.as_str().parse::<CommandStatus>().unwrap(), s);
        }
        assert!("sideways".parse::<CommandStatus>().is_err());
        assert_eq!(
            serde_json::from_str::<WatchdogEventKind>("\"gave_up\"").unwrap(),
            WatchdogEventKind::GaveUp
        );
        let odd: WatchdogEventKind = serde_json::from_str("\"melted\"").unwrap();
        assert_eq!(odd, WatchdogEventKind::Other("melted".into()));
        assert_eq!(serde_json::to_value(&odd).unwrap(), "melted");
    }
}
