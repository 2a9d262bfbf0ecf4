//! Handing an agent its queued commands. Each transport supplies a [`CommandSink`]: the
//! WebSocket writes a frame, a legacy poll collects the commands into its HTTP answer.

use gururmm_protocol::command_status::RUNNING;
use gururmm_protocol::Command;

use crate::events::Event;
use crate::state::AppState;

/// Where commands go to reach the agent.
pub(crate) trait CommandSink {
    /// Takes one command; an error means the transport failed and the command did not go.
    async fn send_command(&mut self, command: Command) -> Result<(), String>;
}

/// A legacy poll: the commands go out in the HTTP answer.
impl CommandSink for Vec<Command> {
    async fn send_command(&mut self, command: Command) -> Result<(), String> {
        self.push(command);
        Ok(())
    }
}

/// Sends every pending command of the agent, oldest first. The commands are claimed first
/// (pending -> running in one statement, so two paths never both send one); those a failed
/// send kept back are pending again for next time, and then this returns false.
pub(crate) async fn hand_out(
    state: &AppState,
    agent_id: &str,
    sink: &mut impl CommandSink,
) -> bool {
    let claimed = match state.store.claim_pending(agent_id).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(agent_id, error = %e, "cannot claim pending commands");
            return true;
        }
    };
    for (sent, command) in claimed.iter().enumerate() {
        if let Err(e) = sink.send_command(command.to_wire()).await {
            tracing::warn!(agent_id, command_id = %command.id, error = %e, "command send failed; it and the rest stay pending");
            let unsent: Vec<String> = claimed[sent..].iter().map(|c| c.id.clone()).collect();
            if let Err(e) = state.store.release_unsent(&unsent).await {
                tracing::error!(agent_id, error = %e, "cannot give back unsent commands; they time out");
            }
            return false;
        }
        state.publish(Event::CommandUpdated {
            id: command.id.clone(),
            agent_id: agent_id.to_owned(),
            status: RUNNING.into(),
        });
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::db::{NewAgent, NewCommand};

    /// Accepts `ok` sends, then fails every one, like a socket whose peer vanished.
    struct FlakySink {
        ok: usize,
        sent: Vec<String>,
    }

    impl CommandSink for FlakySink {
        async fn send_command(&mut self, command: gururmm_protocol::Command) -> Result<(), String> {
            if self.sent.len() < self.ok {
                self.sent.push(command.id);
                Ok(())
            } else {
                Err("connection reset".into())
            }
        }
    }

    #[tokio::test]
    async fn a_failed_send_leaves_the_command_pending_for_redelivery() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::Config {
            data_dir: dir.path().to_owned(),
            ..Default::default()
        };
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let state = crate::build_state(config, rx).await.unwrap();
        let agent = state
            .store
            .insert_agent(NewAgent {
                site_id: None,
                hostname: "h",
                device_id: None,
                os_type: None,
                os_version: None,
                arch: None,
                version: None,
                api_key_hash: "x",
                capabilities: None,
            })
            .await
            .unwrap();
        let mut ids = Vec::new();
        for _ in 0..3 {
            let c = state
                .store
                .insert_command(
                    NewCommand {
                        agent_id: &agent,
                        command_type: "shell",
                        command: "true",
                        interpreter: None,
                        working_directory: None,
                        context_files: None,
                        timeout_seconds: 5,
                        elevated: false,
                        created_by: None,
                    },
                    crate::db::Actor::SYSTEM,
                )
                .await
                .unwrap();
            ids.push(c.id);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut flaky = FlakySink {
            ok: 1,
            sent: vec![],
        };
        assert!(!hand_out(&state, &agent, &mut flaky).await);
        let status = |id: &str| {
            let store = state.store.clone();
            let id = id.to_owned();
            async move { store.command(&id).await.unwrap().unwrap().status }
        };
        assert_eq!(status(&ids[0]).await, "running");
        assert_eq!(status(&ids[1]).await, "pending");
        assert_eq!(status(&ids[2]).await, "pending");

        // The next connection gets exactly the two that did not go out, in order.
        let mut healthy = FlakySink {
            ok: 10,
            sent: vec![],
        };
        assert!(hand_out(&state, &agent, &mut healthy).await);
        assert_eq!(healthy.sent, ids[1..].to_vec());
        assert_eq!(status(&ids[2]).await, "running");
    }
}
