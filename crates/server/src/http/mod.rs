//! The HTTP surface. Every API route is declared once in [`api_routes`]: its summary, who may
//! call it ([`Access`]), its body, answer and errors. The router (with the access check as a
//! layer on each route) and the OpenAPI document are both built from that table, so neither
//! can drift from it.

mod agents;
mod alerts;
pub mod auth;
mod clients;
mod commands;
pub mod dashboard;
mod downloads;
pub mod error;
mod events;
pub mod extract;
mod jobs;
mod legacy;
pub mod notifications;
mod oidc;
mod policies;
mod releases;
mod schedules;
mod scripts;
pub(crate) use jobs::{prepare as prepare_job, started as job_started};
pub use scripts::add_starter_scripts;
pub mod security;
mod settings;
mod two_factor;
pub mod types;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use serde_json::{json, Map, Value};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, ToSchema};

use error::ApiError;
use types::*;

use crate::auth::Role;
use crate::state::AppState;

/// Who may call a route. Checked by the layer [`router`] puts on each route before its
/// handler runs; handlers never check roles themselves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    /// No credentials needed.
    Anyone,
    /// Any signed-in user (viewers included): reading.
    Viewer,
    /// Technicians and admins: changing things and running commands.
    Technician,
    /// Admins only: managing users.
    Admin,
    /// An agent's own `grmm_` key (legacy HTTP agents).
    AgentKey,
}

impl Access {
    /// The least role a user needs; `None` for routes users do not sign in for.
    pub fn required_role(self) -> Option<Role> {
        match self {
            Access::Viewer => Some(Role::Viewer),
            Access::Technician => Some(Role::Technician),
            Access::Admin => Some(Role::Admin),
            Access::Anyone | Access::AgentKey => None,
        }
    }
}

type Schemas = Vec<(String, RefOr<Schema>)>;

/// One operation: method, path, access, summary and handler, plus what the OpenAPI document
/// says about its body, answers and errors. Build with [`route`] and the methods below.
pub struct ApiRoute {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub access: Access,
    /// Also accept a single-use ticket as `?ticket=` (EventSource cannot send headers; the
    /// long-lived JWT never goes into a URL).
    pub ticket_in_query: bool,
    /// Open to a user who still has to set up the second factor the server requires.
    pub before_two_factor: bool,
    handler: MethodRouter<AppState>,
    body: Option<(Value, bool)>,
    success: (u16, Option<(&'static str, Value)>),
    errors: Vec<u16>,
    params: Vec<Value>,
    links: Vec<(&'static str, &'static str)>,
    body_links: Vec<(&'static str, Value)>,
    schemas: Schemas,
}

fn to_value<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).expect("OpenAPI parts serialize")
}

fn schema_ref<T: ToSchema>(schemas: &mut Schemas) -> Value {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
    json!({"$ref": format!("#/components/schemas/{}", T::name())})
}

pub fn route(
    method: &'static str,
    path: &'static str,
    access: Access,
    summary: &'static str,
    handler: MethodRouter<AppState>,
) -> ApiRoute {
    ApiRoute {
        method,
        path,
        summary,
        access,
        ticket_in_query: false,
        before_two_factor: false,
        handler,
        body: None,
        success: (200, None),
        errors: Vec::new(),
        params: Vec::new(),
        links: Vec::new(),
        body_links: Vec::new(),
        schemas: Vec::new(),
    }
}

impl ApiRoute {
    /// A required JSON body of type `T`.
    pub fn body<T: ToSchema>(mut self) -> Self {
        self.body = Some((schema_ref::<T>(&mut self.schemas), true));
        self
    }

    /// A JSON body of type `T` that may be left empty.
    pub fn optional_body<T: ToSchema>(mut self) -> Self {
        self.body = Some((schema_ref::<T>(&mut self.schemas), false));
        self
    }

    /// 200 with a `T`.
    pub fn ok<T: ToSchema>(mut self) -> Self {
        let schema = schema_ref::<T>(&mut self.schemas);
        self.success = (200, Some(("application/json", schema)));
        self
    }

    /// 200 with a list of `T`.
    pub fn ok_list<T: ToSchema>(mut self) -> Self {
        let item = schema_ref::<T>(&mut self.schemas);
        self.success = (
            200,
            Some(("application/json", json!({"type": "array", "items": item}))),
        );
        self
    }

    /// 201 with the created `T`.
    pub fn created<T: ToSchema>(mut self) -> Self {
        let schema = schema_ref::<T>(&mut self.schemas);
        self.success = (201, Some(("application/json", schema)));
        self
    }

    /// 302 to another site (`Location`), no body.
    pub fn redirect(mut self) -> Self {
        self.success = (302, None);
        self
    }

    /// 204, no body.
    pub fn no_content(mut self) -> Self {
        self.success = (204, None);
        self
    }

    /// 200 with a body of another media type.
    pub fn ok_as(mut self, content_type: &'static str, schema: Value) -> Self {
        self.success = (200, Some((content_type, schema)));
        self
    }

    /// The error statuses the handler itself answers (auth, 400 for bad input, 404 for an
    /// unknown `{id}`, 413 and 503 are added from the rest of the route).
    pub fn errors(mut self, statuses: &[u16]) -> Self {
        self.errors.extend_from_slice(statuses);
        self
    }

    /// Query parameters from `Q`.
    pub fn query<Q: IntoParams>(mut self) -> Self {
        let params = Q::into_params(|| Some(ParameterIn::Query));
        self.params.extend(params.into_iter().map(to_value));
        self
    }

    /// The created object's id (at `pointer` in the answer, e.g. `/id`) fills the `{id}` of
    /// every operation on `path`: an OpenAPI link, so clients and fuzzers can follow it.
    pub fn link(mut self, path: &'static str, pointer: &'static str) -> Self {
        self.links.push((path, pointer));
        self
    }

    /// A link to the operation `operation_id` whose body is built from this answer, e.g.
    /// `{"client_id": "$response.body#/id"}` from a created client to a new site.
    pub fn link_body(mut self, operation_id: &'static str, body: Value) -> Self {
        self.body_links.push((operation_id, body));
        self
    }

    pub fn ticket_in_query(mut self) -> Self {
        self.ticket_in_query = true;
        self
    }

    /// Open to a signed-in user who has not yet set up the second factor the server requires
    /// (`require_two_factor`); every other user route refuses them with 403 until they have.
    pub fn before_two_factor(mut self) -> Self {
        self.before_two_factor = true;
        self
    }

    /// `get_clients_id` for `GET /api/clients/{id}`.
    pub fn operation_id(&self) -> String {
        let path = self.path.trim_start_matches("/api/");
        format!("{}_{}", self.method.to_lowercase(), path)
            .replace(['/', '-'], "_")
            .replace(['{', '}'], "")
    }
}

#[rustfmt::skip]
pub fn api_routes() -> Vec<ApiRoute> {
    use Access::*;
    vec![
        route("POST", "/api/auth/login", Anyone,
            "Sign in with email and password; returns a JWT for a new session, valid 24 h",
            post(auth::login))
            .body::<LoginRequest>().ok::<LoginResponse>().errors(&[400, 401, 403, 429]),
        route("POST", "/api/auth/register", Anyone,
            "Self-registration (disabled unless configured); creates a technician",
            post(auth::register))
            .body::<NewUserRequest>().created::<User>().errors(&[400, 403, 409]),
        route("GET", "/api/auth/status", Anyone,
            "Whether the server still needs its first administrator, and how to create one",
            get(auth::status))
            .ok::<AuthStatus>(),
        route("GET", "/api/auth/providers", Anyone,
            "Sign-in providers besides the password: single sign-on (OpenID Connect) when configured",
            get(oidc::providers))
            .ok::<AuthProviders>(),
        route("GET", "/api/auth/oidc/login", Anyone,
            "Start single sign-on: redirects (302) to the provider; 404 when not configured",
            get(oidc::login))
            .redirect().errors(&[404, 429, 503]),
        route("GET", "/api/auth/oidc/callback", Anyone,
            "The provider returns here; redirects (302) to the dashboard with a one-time code",
            get(oidc::callback))
            .query::<OidcCallbackQuery>().redirect().errors(&[400, 403, 404, 503]),
        route("POST", "/api/auth/oidc/exchange", Anyone,
            "Exchange the one-time code from the single sign-on redirect for a session (valid 60 s, once)",
            post(oidc::exchange))
            .body::<OidcExchangeRequest>().ok::<LoginResponse>().errors(&[400, 403, 404]),
        route("GET", "/api/auth/me", Viewer, "The signed-in user", get(auth::me))
            .ok::<User>().before_two_factor(),
        route("POST", "/api/auth/logout", Viewer, "Sign out: ends this session on the server",
            post(auth::logout))
            .no_content().before_two_factor(),
        route("POST", "/api/auth/password", Viewer,
            "Change your own password; ends all your sessions and answers a new one",
            post(auth::change_password))
            .body::<ChangePasswordRequest>().ok::<LoginResponse>().errors(&[429]),
        route("GET", "/api/auth/sessions", Viewer, "Your live sessions; `current` marks this one",
            get(auth::list_sessions))
            .ok_list::<Session>(),
        route("DELETE", "/api/auth/sessions/{id}", Viewer, "End one of your own sessions",
            delete(auth::end_session))
            .no_content(),
        route("POST", "/api/auth/event-ticket", Viewer,
            "A single-use ticket for GET /api/events?ticket=, valid about 30 s",
            post(auth::event_ticket))
            .ok::<EventTicket>(),
        route("GET", "/api/auth/two-factor", Viewer,
            "The signed-in user's two-factor sign-in: on or not, required or not, recovery codes left",
            get(two_factor::status))
            .ok::<TwoFactorStatus>().before_two_factor(),
        route("POST", "/api/auth/two-factor/setup", Viewer,
            "Start setting up two-factor sign-in: a new TOTP secret, pending until confirmed",
            post(two_factor::setup))
            .ok::<TwoFactorSetup>().errors(&[409]).before_two_factor(),
        route("POST", "/api/auth/two-factor/confirm", Viewer,
            "Confirm the pending secret with a code: two-factor sign-in is on; the recovery codes are shown this once",
            post(two_factor::confirm))
            .body::<TwoFactorCode>().ok::<RecoveryCodes>().errors(&[409]).before_two_factor(),
        route("POST", "/api/auth/two-factor/disable", Viewer,
            "Turn two-factor sign-in off, with a current code or a recovery code",
            post(two_factor::disable))
            .body::<TwoFactorCode>().ok::<TwoFactorStatus>().errors(&[409]),
        route("GET", "/api/users", Admin, "List users", get(auth::list_users))
            .ok_list::<User>(),
        route("POST", "/api/users", Admin, "Create a user", post(auth::add_user))
            .body::<NewUserRequest>().created::<User>().errors(&[400, 409])
            .link("/api/users/{id}", "/id"),
        route("DELETE", "/api/users/{id}", Admin,
            "Delete a user (not yourself); their sessions end", delete(auth::delete_user))
            .no_content().errors(&[400]),
        route("PUT", "/api/users/{id}", Admin,
            "Change a user's role, reset their password, disable or enable them; their sessions end",
            put(auth::update_user))
            .body::<UpdateUserRequest>().ok::<User>(),
        route("DELETE", "/api/users/{id}/two-factor", Admin,
            "Turn a user's two-factor sign-in off (a lost device and lost recovery codes)",
            delete(two_factor::reset_for_user))
            .no_content(),
        route("GET", "/api/settings", Admin, "Settings administrators change at run time",
            get(settings::get))
            .ok::<ServerSettings>(),
        route("PUT", "/api/settings", Admin,
            "Change settings: require_two_factor (every user must sign in with a second factor)",
            put(settings::update))
            .body::<ServerSettingsUpdate>().ok::<ServerSettings>().errors(&[409]),
        route("GET", "/api/clients", Viewer, "List clients", get(clients::list_clients))
            .ok_list::<Client>(),
        route("POST", "/api/clients", Technician, "Create a client",
            post(clients::create_client))
            .body::<ClientBody>().created::<Client>()
            .link("/api/clients/{id}", "/id").link("/api/clients/{id}/sites", "/id")
            .link_body("post_sites", json!({"client_id": "$response.body#/id", "name": "Main office"})),
        route("GET", "/api/clients/{id}", Viewer, "A client", get(clients::get_client))
            .ok::<Client>(),
        route("PUT", "/api/clients/{id}", Technician, "Update a client",
            put(clients::update_client))
            .body::<ClientBody>().ok::<Client>(),
        route("DELETE", "/api/clients/{id}", Technician,
            "Delete a client and its sites (agents become unassigned)",
            delete(clients::delete_client))
            .no_content(),
        route("GET", "/api/clients/{id}/sites", Viewer, "A client's sites",
            get(clients::client_sites))
            .ok_list::<Site>(),
        route("GET", "/api/sites", Viewer, "List sites", get(clients::list_sites))
            .ok_list::<Site>(),
        route("POST", "/api/sites", Technician, "Create a site with a new site code",
            post(clients::create_site))
            .body::<NewSiteBody>().created::<Site>()
            .link("/api/sites/{id}", "/id").link("/api/sites/{id}/regenerate-key", "/id"),
        route("GET", "/api/sites/{id}", Viewer, "A site", get(clients::get_site))
            .ok::<Site>(),
        route("PUT", "/api/sites/{id}", Technician, "Update a site", put(clients::update_site))
            .body::<SiteBody>().ok::<Site>(),
        route("DELETE", "/api/sites/{id}", Technician,
            "Delete a site (its agents become unassigned)", delete(clients::delete_site))
            .no_content(),
        route("POST", "/api/sites/{id}/regenerate-key", Technician,
            "Replace the site's enrollment code", post(clients::regenerate_code))
            .ok::<Site>(),
        route("POST", "/api/sites/{id}/tokens", Technician,
            "Create an enrollment token for the site; its secret is shown once",
            post(clients::create_token))
            .body::<NewTokenBody>().created::<NewEnrollmentToken>(),
        route("GET", "/api/sites/{id}/tokens", Technician,
            "The site's enrollment tokens, without their secrets", get(clients::list_tokens))
            .ok_list::<EnrollmentToken>(),
        route("DELETE", "/api/sites/{id}/tokens/{token_id}", Technician,
            "Revoke an enrollment token", delete(clients::revoke_token))
            .no_content(),
        route("GET", "/api/agents", Viewer, "List agents", get(agents::list))
            .query::<AgentListQuery>().ok_list::<Agent>(),
        route("POST", "/api/agents", Technician,
            "Register an agent; its grmm_ key is shown once", post(agents::register))
            .body::<RegisterAgentBody>().created::<RegisteredAgent>()
            .link("/api/agents/{id}", "/agent/id").link("/api/agents/{id}/move", "/agent/id")
            .link("/api/agents/{id}/state", "/agent/id")
            .link("/api/agents/{id}/command", "/agent/id")
            .link("/api/agents/{id}/metrics", "/agent/id")
            .link("/api/agents/{id}/watchdog-events", "/agent/id"),
        route("GET", "/api/agents/stats", Viewer,
            "Fleet counts: total, online, offline, by OS, by version", get(agents::stats))
            .ok::<AgentStats>(),
        route("GET", "/api/agents/unassigned", Viewer, "Agents with no site",
            get(agents::unassigned))
            .ok_list::<Agent>(),
        route("GET", "/api/agents/versions", Viewer,
            "The fleet's versions: approved agents counted by version, os and arch",
            get(releases::versions))
            .ok_list::<VersionCount>(),
        route("GET", "/api/agents/{id}", Viewer, "An agent, with its newest update",
            get(agents::get)).ok::<Agent>(),
        route("GET", "/api/agents/{id}/updates", Viewer, "The agent's updates, newest first",
            get(releases::agent_updates))
            .ok_list::<AgentUpdate>(),
        route("POST", "/api/agents/{id}/update", Technician,
            "Update this agent to a published version; an older one is a downgrade, which only this allows",
            post(releases::request_update))
            .body::<AgentUpdateBody>().created::<AgentUpdate>().errors(&[409]),
        route("POST", "/api/agents/{id}/update/retry", Technician,
            "Try the agent's last failed or rolled-back update again (never retried by itself)",
            post(releases::retry_update))
            .created::<AgentUpdate>().errors(&[409]),
        route("GET", "/api/releases", Viewer,
            "Published agent builds, newest first per os and arch",
            get(releases::list))
            .ok_list::<Release>(),
        route("GET", "/api/rollouts", Viewer,
            "Rollout targets per os and arch, with their progress",
            get(releases::rollouts))
            .ok_list::<Rollout>(),
        route("PUT", "/api/rollouts/{os}/{arch}", Admin,
            "Set the target version of an os and arch and who gets it (all, sites, clients or a percentage); paused stops new updates",
            put(releases::set_rollout))
            .body::<RolloutBody>().ok::<Rollout>(),
        route("DELETE", "/api/agents/{id}", Technician, "Delete an agent", delete(agents::delete))
            .no_content(),
        route("POST", "/api/agents/{id}/move", Technician,
            "Move an agent to a site, or unassign it with null", post(agents::move_to_site))
            .body::<MoveBody>().ok::<Agent>(),
        route("POST", "/api/agents/{id}/approve", Technician,
            "Approve a record waiting for approval; it takes the place of the agent it claims to be",
            post(agents::approve))
            .ok::<Agent>().errors(&[409]),
        route("POST", "/api/agents/{id}/reject", Technician,
            "Reject a record waiting for approval; it is removed and its key dies",
            post(agents::reject))
            .ok::<Agent>().errors(&[409]),
        route("GET", "/api/agents/{id}/state", Viewer, "Latest network state and metrics",
            get(agents::agent_state))
            .ok::<AgentState>(),
        route("POST", "/api/agents/{id}/command", Technician,
            "Send a command; it runs at once if the agent is connected",
            post(agents::send_command))
            .body::<CommandBody>().created::<Command>().errors(&[409, 429])
            .link("/api/commands/{id}", "/id").link("/api/commands/{id}/cancel", "/id"),
        route("GET", "/api/agents/{id}/metrics", Viewer,
            "Metrics history; long ranges are downsampled", get(agents::metrics))
            .query::<MetricsQuery>().ok::<MetricsHistory>(),
        route("GET", "/api/agents/{id}/watchdog-events", Viewer,
            "Watchdog events, newest first", get(agents::watchdog_events))
            .ok_list::<WatchdogEvent>(),
        route("GET", "/api/agents/{id}/policy", Viewer,
            "The agent's effective policy: the merge by precedence (agent over site over client over fleet), where each setting came from, and whether the agent applied it",
            get(policies::agent_policy))
            .ok::<EffectivePolicy>(),
        route("GET", "/api/scripts", Viewer, "The script library, by name", get(scripts::list_scripts))
            .query::<ScriptListQuery>().ok_list::<Script>(),
        route("POST", "/api/scripts", Technician,
            "Save a script (version 1); parameters reach it as environment variables",
            post(scripts::create_script))
            .body::<crate::scripts::ScriptDefinition>().created::<Script>().errors(&[409])
            .link("/api/scripts/{id}", "/id").link("/api/scripts/{id}/versions", "/id"),
        route("GET", "/api/scripts/export", Viewer,
            "Every script's current version, as a file import takes", get(scripts::export))
            .ok::<ScriptExport>(),
        route("POST", "/api/scripts/import", Technician,
            "Add the scripts of an export: new names are created, known ones get a new version when changed",
            post(scripts::import))
            .body::<ScriptExport>().ok::<ScriptImported>(),
        route("GET", "/api/scripts/{id}", Viewer, "A script with its current version", get(scripts::get_script))
            .ok::<Script>(),
        route("PUT", "/api/scripts/{id}", Technician,
            "Edit a script: saved as its next version", put(scripts::update_script))
            .body::<crate::scripts::ScriptDefinition>().ok::<Script>().errors(&[409]),
        route("DELETE", "/api/scripts/{id}", Technician, "Delete a script and its versions",
            delete(scripts::delete_script))
            .no_content(),
        route("GET", "/api/scripts/{id}/versions", Viewer, "Every version of a script, newest first",
            get(scripts::versions))
            .ok_list::<ScriptVersion>(),
        route("GET", "/api/jobs", Viewer, "Jobs, newest first, with their progress", get(jobs::list_jobs))
            .query::<JobListQuery>().ok_list::<Job>(),
        route("POST", "/api/jobs", Technician,
            "Run a saved script (with parameters) or a command on many agents: one command per agent",
            post(jobs::create))
            .body::<JobBody>().created::<Job>().errors(&[404, 429])
            .link("/api/jobs/{id}", "/id").link("/api/jobs/{id}/agents", "/id"),
        route("GET", "/api/jobs/{id}", Viewer, "A job with its progress", get(jobs::get))
            .ok::<Job>(),
        route("GET", "/api/jobs/{id}/agents", Viewer, "Each agent's command in a job", get(jobs::agents))
            .ok_list::<JobAgent>(),
        route("POST", "/api/jobs/{id}/cancel", Technician,
            "Cancel a job's queued commands (running ones finish or time out)", post(jobs::cancel))
            .ok::<Job>().errors(&[409]),
        route("POST", "/api/jobs/{id}/rerun", Technician,
            "Run the job again on the agents where it failed, timed out or expired",
            post(jobs::rerun))
            .created::<Job>().errors(&[409, 429]),
        route("GET", "/api/schedules", Viewer, "Schedules with their next run", get(schedules::list))
            .ok_list::<Schedule>(),
        route("POST", "/api/schedules", Technician,
            "Schedule a job once (run_at) or on a cron expression in a time zone; each run is a job",
            post(schedules::create))
            .body::<ScheduleBody>().created::<Schedule>().errors(&[404])
            .link("/api/schedules/{id}", "/id"),
        route("GET", "/api/schedules/{id}", Viewer, "A schedule", get(schedules::get))
            .ok::<Schedule>(),
        route("PUT", "/api/schedules/{id}", Technician,
            "Replace a schedule (pause or resume it with paused); its next run is worked out from now",
            put(schedules::update))
            .body::<ScheduleBody>().ok::<Schedule>().errors(&[404]),
        route("DELETE", "/api/schedules/{id}", Technician, "Delete a schedule (its jobs stay)",
            delete(schedules::delete))
            .no_content(),
        route("GET", "/api/policies", Viewer, "List policies", get(policies::list_policies))
            .ok_list::<NamedPolicy>(),
        route("POST", "/api/policies", Technician,
            "Create a policy (a named set of agent settings; unset ones inherit)",
            post(policies::create_policy))
            .body::<NamedPolicyBody>().created::<NamedPolicy>().errors(&[409])
            .link("/api/policies/{id}", "/id")
            .link_body("post_policy_assignments", json!({"policy_id": "$response.body#/id", "scope": {"kind": "fleet"}})),
        route("GET", "/api/policies/{id}", Viewer, "A policy", get(policies::get_policy))
            .ok::<NamedPolicy>(),
        route("PUT", "/api/policies/{id}", Technician,
            "Replace a policy's name, description and settings; its version goes up and affected agents get it at once",
            put(policies::update_policy))
            .body::<NamedPolicyBody>().ok::<NamedPolicy>().errors(&[409]),
        route("DELETE", "/api/policies/{id}", Technician,
            "Delete a policy and its assignments; affected agents get their new policy at once",
            delete(policies::delete_policy))
            .no_content(),
        route("GET", "/api/policy-assignments", Viewer,
            "Which policy applies to which scope (fleet, client, site, agent)",
            get(policies::list_assignments))
            .ok_list::<PolicyAssignment>(),
        route("POST", "/api/policy-assignments", Technician,
            "Assign a policy to a scope (one policy per scope); affected agents get it at once",
            post(policies::create_assignment))
            .body::<PolicyAssignmentBody>().created::<PolicyAssignment>().errors(&[409])
            .link("/api/policy-assignments/{id}", "/id"),
        route("DELETE", "/api/policy-assignments/{id}", Technician,
            "Remove an assignment; affected agents get their new policy at once",
            delete(policies::delete_assignment))
            .no_content(),
        route("GET", "/api/commands", Viewer, "Recent commands, newest first",
            get(commands::list))
            .query::<CommandListQuery>().ok_list::<Command>(),
        route("GET", "/api/commands/{id}", Viewer, "A command's status and result",
            get(commands::get))
            .ok::<Command>(),
        route("POST", "/api/commands/{id}/cancel", Technician,
            "Cancel a pending or running command", post(commands::cancel))
            .ok::<Command>().errors(&[409]),
        route("GET", "/api/alert-rules", Viewer, "Alert rules", get(alerts::list_of::<crate::alerting::rules::AlertRule>))
            .ok_list::<crate::alerting::rules::AlertRule>(),
        route("POST", "/api/alert-rules", Technician,
            "Create an alert rule: cpu, memory or disk above a threshold for a duration, offline for a duration, a watchdog that gave up, a failed command",
            post(alerts::create_of::<crate::alerting::rules::AlertRule>))
            .body::<crate::alerting::rules::AlertRuleBody>()
            .created::<crate::alerting::rules::AlertRule>()
            .link("/api/alert-rules/{id}", "/id"),
        route("GET", "/api/alert-rules/{id}", Viewer, "An alert rule", get(alerts::get_of::<crate::alerting::rules::AlertRule>))
            .ok::<crate::alerting::rules::AlertRule>(),
        route("PUT", "/api/alert-rules/{id}", Technician,
            "Replace an alert rule; switched off, its unresolved alerts resolve",
            put(alerts::update_of::<crate::alerting::rules::AlertRule>))
            .body::<crate::alerting::rules::AlertRuleBody>()
            .ok::<crate::alerting::rules::AlertRule>(),
        route("DELETE", "/api/alert-rules/{id}", Technician,
            "Delete an alert rule; its unresolved alerts resolve (history is kept)",
            delete(alerts::delete_of::<crate::alerting::rules::AlertRule>))
            .no_content(),
        route("GET", "/api/alerts", Viewer, "Alerts, newest first, filtered and paged",
            get(alerts::list))
            .query::<alerts::AlertListQuery>().ok_list::<alerts::Alert>(),
        route("GET", "/api/alerts/summary", Viewer,
            "Unresolved alerts: open ones by severity, and how many are acknowledged",
            get(alerts::summary))
            .ok::<alerts::AlertSummary>(),
        route("GET", "/api/alerts/{id}", Viewer, "An alert", get(alerts::get))
            .ok::<alerts::Alert>(),
        route("POST", "/api/alerts/{id}/acknowledge", Technician,
            "Acknowledge an open alert, with an optional note", post(alerts::acknowledge))
            .body::<alerts::AlertNoteBody>().ok::<alerts::Alert>().errors(&[409]),
        route("POST", "/api/alerts/{id}/resolve", Technician,
            "Resolve an open or acknowledged alert by hand, with an optional note",
            post(alerts::resolve))
            .body::<alerts::AlertNoteBody>().ok::<alerts::Alert>().errors(&[409]),
        route("GET", "/api/maintenance-windows", Viewer,
            "Maintenance windows: while one covers an agent, no alert opens for it",
            get(alerts::list_of::<crate::alerting::maintenance::MaintenanceWindow>))
            .ok_list::<crate::alerting::maintenance::MaintenanceWindow>(),
        route("POST", "/api/maintenance-windows", Technician,
            "Create a maintenance window on an agent, a site or a client: one-off or weekly",
            post(alerts::create_of::<crate::alerting::maintenance::MaintenanceWindow>))
            .body::<crate::alerting::maintenance::MaintenanceWindowBody>()
            .created::<crate::alerting::maintenance::MaintenanceWindow>()
            .link("/api/maintenance-windows/{id}", "/id"),
        route("GET", "/api/maintenance-windows/{id}", Viewer, "A maintenance window",
            get(alerts::get_of::<crate::alerting::maintenance::MaintenanceWindow>))
            .ok::<crate::alerting::maintenance::MaintenanceWindow>(),
        route("PUT", "/api/maintenance-windows/{id}", Technician, "Replace a maintenance window",
            put(alerts::update_of::<crate::alerting::maintenance::MaintenanceWindow>))
            .body::<crate::alerting::maintenance::MaintenanceWindowBody>()
            .ok::<crate::alerting::maintenance::MaintenanceWindow>(),
        route("DELETE", "/api/maintenance-windows/{id}", Technician,
            "Delete a maintenance window", delete(alerts::delete_of::<crate::alerting::maintenance::MaintenanceWindow>))
            .no_content(),
        route("GET", "/api/metrics/summary", Viewer,
            "Fleet-wide metrics summary over the last 15 minutes", get(metrics_summary))
            .ok::<MetricsSummary>(),
        route("GET", "/api/notification-channels", Viewer,
            "Notification channels (webhook, slack, teams, email); secrets are never shown, URLs in full to admins only",
            get(notifications::list_channels))
            .ok_list::<notifications::NotificationChannel>(),
        route("POST", "/api/notification-channels", Admin,
            "Create a notification channel; a webhook needs a signing secret (write-only)",
            post(notifications::create_channel))
            .body::<notifications::ChannelBody>().created::<notifications::NotificationChannel>()
            .link("/api/notification-channels/{id}", "/id")
            .link("/api/notification-channels/{id}/test", "/id")
            .link_body("post_notification_routes", json!({"channel_id": "$response.body#/id", "min_severity": "warning", "scope": {"kind": "fleet"}})),
        route("GET", "/api/notification-channels/{id}", Viewer, "A notification channel",
            get(notifications::get_channel))
            .ok::<notifications::NotificationChannel>(),
        route("PUT", "/api/notification-channels/{id}", Admin,
            "Change a notification channel; a secret left out is kept",
            put(notifications::update_channel))
            .body::<notifications::ChannelBody>().ok::<notifications::NotificationChannel>(),
        route("DELETE", "/api/notification-channels/{id}", Admin,
            "Delete a notification channel with its routes and deliveries",
            delete(notifications::delete_channel))
            .no_content(),
        route("POST", "/api/notification-channels/{id}/test", Technician,
            "Send test: queues a test notification to the channel through the delivery queue; answers the delivery",
            post(notifications::test_channel))
            .created::<notifications::NotificationDelivery>()
            .link("/api/notification-deliveries/{id}", "/id"),
        route("GET", "/api/notification-routes", Viewer,
            "Notification routes: which severities of which scope go to which channel",
            get(notifications::list_routes))
            .ok_list::<notifications::NotificationRoute>(),
        route("POST", "/api/notification-routes", Admin,
            "Route alerts of a severity and above, on a scope, to a channel",
            post(notifications::create_route))
            .body::<notifications::RouteBody>().created::<notifications::NotificationRoute>()
            .link("/api/notification-routes/{id}", "/id"),
        route("GET", "/api/notification-routes/{id}", Viewer, "A notification route",
            get(notifications::get_route))
            .ok::<notifications::NotificationRoute>(),
        route("PUT", "/api/notification-routes/{id}", Admin, "Change a notification route",
            put(notifications::update_route))
            .body::<notifications::RouteBody>().ok::<notifications::NotificationRoute>(),
        route("DELETE", "/api/notification-routes/{id}", Admin, "Delete a notification route",
            delete(notifications::delete_route))
            .no_content(),
        route("GET", "/api/notification-deliveries", Viewer,
            "Notification deliveries, newest first, each with its attempts and their answers",
            get(notifications::list_deliveries))
            .query::<notifications::DeliveryQuery>().ok_list::<notifications::NotificationDelivery>(),
        route("GET", "/api/notification-deliveries/{id}", Viewer,
            "A notification delivery with its attempts", get(notifications::get_delivery))
            .ok::<notifications::NotificationDelivery>(),
        route("GET", "/api/events", Viewer,
            "Server-sent events: agent_status, command_updated, command_output, job_updated, agent_update, alert", get(events::stream))
            .ticket_in_query().query::<EventsQuery>()
            .ok_as("text/event-stream", json!({"type": "string"})),
        route("POST", "/api/agent/register-legacy", Anyone,
            "Legacy agent enrolls with a site code", post(legacy::register))
            .body::<gururmm_protocol::legacy::RegisterRequest>()
            .created::<gururmm_protocol::legacy::RegisterResponse>().errors(&[400, 401, 429]),
        route("POST", "/api/agent/heartbeat", AgentKey,
            "Legacy heartbeat with optional reports; returns pending commands, now running",
            post(legacy::heartbeat))
            .optional_body::<gururmm_protocol::legacy::HeartbeatRequest>()
            .ok::<gururmm_protocol::legacy::HeartbeatResponse>(),
        route("POST", "/api/agent/command-result", AgentKey,
            "Legacy agent submits a command result", post(legacy::command_result))
            .body::<gururmm_protocol::CommandResult>()
            .ok::<gururmm_protocol::legacy::CommandResultAck>().errors(&[404]),
        route("GET", "/api/health", Anyone,
            "Liveness: the process answers (from memory, never waits on the database)", get(health))
            .ok::<Health>(),
        route("GET", "/api/ready", Anyone,
            "Readiness: the database answers and its migrations are current (503 with the reason otherwise)",
            get(ready))
            .ok::<Readiness>().errors(&[503]),
        route("GET", "/api/openapi.json", Anyone, "This document", get(openapi_json))
            .ok_as("application/json", json!({"type": "object"})),
    ]
}

async fn metrics_summary(
    State(state): State<AppState>,
) -> error::ApiResult<axum::Json<MetricsSummary>> {
    let summary = state.store.metrics_summary(15 * 60 * 1000).await?;
    Ok(axum::Json(MetricsSummary::new(
        summary,
        state.hub.connected_count(),
    )))
}

/// Liveness: answers at once, whatever the database does (a restart would not fix an
/// outage; readiness says whether to send traffic here).
async fn health() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".into(),
    })
}

async fn ready(State(state): State<AppState>) -> Response {
    if *state.shutdown.borrow() {
        return ApiError::Unavailable("shutting down".into()).into_response();
    }
    // Bounded like every request: the pool's acquire timeout, and the same again for the query.
    let check = tokio::time::timeout(
        state.config.database_timeout() * 2,
        state.store.missing_migrations(),
    )
    .await;
    match check {
        Ok(Ok(missing)) if missing.is_empty() => axum::Json(Readiness {
            status: "ready".into(),
            database: "ok".into(),
            migrations: "current".into(),
        })
        .into_response(),
        Ok(Ok(missing)) => ApiError::Unavailable(format!(
            "database migrations not applied: {missing:?} (run `gururmm-server migrate`)"
        ))
        .into_response(),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "readiness: database check failed");
            ApiError::Unavailable("the database is unavailable".into()).into_response()
        }
        Err(_) => {
            ApiError::Unavailable("the database did not answer in time".into()).into_response()
        }
    }
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "Success",
        201 => "Created",
        204 => "Done; no content",
        302 => "Redirect: see Location",
        400 => "Bad input: malformed JSON, a wrong field, a NUL byte in text",
        401 => "Missing, invalid or expired credentials",
        403 => "Signed in, but the role does not allow this (or the server requires a second factor not yet set up)",
        404 => "No such object",
        409 => "Conflicts with the current state",
        413 => "Body too large",
        429 => "Too many requests; see Retry-After",
        503 => "The database is unavailable or busy",
        _ => "Error",
    }
}

impl ApiRoute {
    fn operation(&self, by_path: &[(String, String)]) -> Value {
        let mut params: Vec<Value> = self
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(self.params.iter().cloned());

        let mut errors = self.errors.clone();
        match self.access {
            Access::Anyone => {}
            Access::AgentKey => errors.push(401),
            // 403 also when the server requires a second factor the user has not set up.
            Access::Viewer if self.before_two_factor => errors.push(401),
            Access::Viewer | Access::Technician | Access::Admin => errors.extend([401, 403]),
        }
        if self.body.is_some() || !self.params.is_empty() {
            errors.push(400);
        }
        if self.body.is_some() {
            errors.push(413);
        }
        if self.path.contains('{') {
            errors.extend([400, 404]);
        }
        if self.access != Access::Anyone {
            errors.push(503);
        }
        errors.sort_unstable();
        errors.dedup();

        let mut responses = Map::new();
        let (status, content) = &self.success;
        let mut ok = json!({"description": status_text(*status)});
        if let Some((media, schema)) = content {
            ok["content"] = json!({ *media: {"schema": schema} });
        }
        let mut links = Map::new();
        for (path, pointer) in &self.links {
            for (target_path, op_id) in by_path {
                if target_path == path {
                    links.insert(
                        op_id.clone(),
                        json!({"operationId": op_id, "parameters": {"id": format!("$response.body#{pointer}")}}),
                    );
                }
            }
        }
        for (op_id, body) in &self.body_links {
            links.insert(
                (*op_id).to_owned(),
                json!({"operationId": op_id, "requestBody": body}),
            );
        }
        if !links.is_empty() {
            ok["links"] = Value::Object(links);
        }
        responses.insert(status.to_string(), ok);
        for e in errors {
            responses.insert(
                e.to_string(),
                json!({"description": status_text(e), "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
            );
        }

        let security = match self.access {
            Access::Anyone => json!([]),
            Access::Viewer | Access::Technician | Access::Admin if self.ticket_in_query => {
                json!([{"bearerJwt": []}, {"eventTicket": []}])
            }
            Access::Viewer | Access::Technician | Access::Admin => json!([{"bearerJwt": []}]),
            Access::AgentKey => json!([{"agentKey": []}]),
        };
        let required_role = match (self.access, self.access.required_role()) {
            (_, Some(role)) => role.as_str(),
            (Access::AgentKey, None) => "agent",
            _ => "anyone",
        };
        let mut op = json!({
            "operationId": self.operation_id(),
            "summary": self.summary,
            "x-required-role": required_role,
            "security": security,
            "parameters": params,
            "responses": responses,
        });
        if let Some((schema, required)) = &self.body {
            op["requestBody"] = json!({
                "required": required,
                "content": {"application/json": {"schema": schema}}
            });
        }
        op
    }
}

/// OpenAPI 3.1 document built from [`api_routes`].
pub fn openapi() -> Value {
    let routes = api_routes();
    let by_path: Vec<(String, String)> = routes
        .iter()
        .map(|r| (r.path.to_owned(), r.operation_id()))
        .collect();
    let mut paths = Map::new();
    let mut schemas: std::collections::BTreeMap<String, Value> = Default::default();
    let mut error_schemas = Vec::new();
    schema_ref::<Error>(&mut error_schemas);
    for r in &routes {
        for (name, schema) in r.schemas.iter().chain(&error_schemas) {
            let schema = to_value(schema);
            if let Some(other) = schemas.insert(name.clone(), schema.clone()) {
                // Two types under one name would make one of them silently wrong.
                assert_eq!(other, schema, "two API types are named {name}");
            }
        }
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        entry[r.method.to_lowercase()] = r.operation(&by_path);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "GuruRMM API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "x-required-role on each operation names the least role it needs: anyone, viewer, technician, admin, or agent (a grmm_ agent key)."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "eventTicket": {"type": "apiKey", "in": "query", "name": "ticket", "description": "a single-use ticket from POST /api/auth/event-ticket, for EventSource"},
                "agentKey": {"type": "http", "scheme": "bearer", "description": "the agent's grmm_ key"}
            },
            "schemas": schemas,
        }
    })
}

async fn openapi_json() -> axum::Json<Value> {
    axum::Json(openapi())
}

/// Checks the caller against the route's [`Access`] and hands the handler who it is (an
/// [`extract::AuthUser`] or an [`extract::AgentKey`] in the request's extensions).
/// `rules`: the route's `ticket_in_query` and `before_two_factor`.
async fn authorize(
    state: AppState,
    access: Access,
    rules: (bool, bool),
    mut req: Request,
    next: Next,
) -> Response {
    match check_access(&state, access, rules, &mut req).await {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn check_access(
    state: &AppState,
    access: Access,
    (ticket_in_query, before_two_factor): (bool, bool),
    req: &mut Request,
) -> Result<(), ApiError> {
    extract::reject_nul_in_uri(req.uri())?;
    let (mut parts, body) = std::mem::take(req).into_parts();
    let outcome = async {
        match access {
            Access::Anyone => Ok(()),
            Access::AgentKey => {
                let agent = extract::agent_from_parts(state, &parts).await?;
                parts.extensions.insert(agent);
                Ok(())
            }
            Access::Viewer | Access::Technician | Access::Admin => {
                let ticket = ticket_in_query
                    .then(|| extract::query_ticket(&parts))
                    .flatten();
                let user = match (extract::bearer(&parts), ticket) {
                    (Some(token), _) => extract::user_from_token(state, token).await?,
                    (None, Some(ticket)) => {
                        let hash = crate::sign_in::ticket_hash(&ticket);
                        let sid = state.store.redeem_event_ticket(&hash).await?.ok_or_else(|| {
                            ApiError::Unauthorized(
                                "unknown, used or expired ticket; get a new one".into(),
                            )
                        })?;
                        extract::user_from_session(state, &sid).await?
                    }
                    (None, None) => {
                        return Err(ApiError::Unauthorized(
                            "sign in first: missing Authorization: Bearer token".into(),
                        ))
                    }
                };
                match access {
                    Access::Technician if user.role < Role::Technician => {
                        return Err(ApiError::Forbidden(
                            "viewers cannot change or run anything".into(),
                        ))
                    }
                    Access::Admin if user.role != Role::Admin => {
                        return Err(ApiError::Forbidden("this needs the admin role".into()))
                    }
                    _ => {}
                }
                // A single sign-on session had its second factor at the provider.
                if !user.two_factor
                    && !user.via_sso
                    && !before_two_factor
                    && state.two_factor_required().await?
                {
                    return Err(ApiError::Forbidden(
                        "this server requires two-factor sign-in: set it up on your account page first"
                            .into(),
                    ));
                }
                parts.extensions.insert(user);
                Ok(())
            }
        }
    }
    .await;
    *req = Request::from_parts(parts, body);
    outcome
}

pub fn router(state: AppState) -> Router {
    // Several methods share a path: merge them into one method router per path.
    let mut by_path: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for r in api_routes() {
        let (access, layer_state) = (r.access, state.clone());
        let rules = (r.ticket_in_query, r.before_two_factor);
        let handler = r.handler.route_layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                authorize(layer_state.clone(), access, rules, req, next)
            },
        ));
        match by_path.iter_mut().find(|(p, _)| *p == r.path) {
            Some((_, existing)) => *existing = std::mem::take(existing).merge(handler),
            None => by_path.push((r.path, handler)),
        }
    }
    let mut api = Router::new();
    for (path, handler) in by_path {
        api = api.route(path, handler);
    }
    let cors = cors_layer(&state.config.cors_origins);
    let downloads_dir = state.config.downloads_dir();
    let downloads = Router::new()
        .fallback_service(ServeDir::new(&downloads_dir))
        .layer(axum::middleware::from_fn_with_state(
            downloads_dir,
            downloads::etag,
        ));
    Router::new()
        .merge(api)
        .route("/ws", get(crate::hub::ws_handler))
        .nest_service("/downloads", downloads)
        .fallback(fallback)
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(json!({"error": "method not allowed on this path"})),
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.max_body_bytes,
        ))
        .layer(cors)
        .layer(axum::middleware::from_fn(security::headers))
        // Spans name the path only: a query string could carry a ticket.
        // No log line per failed response: `ApiError` logs internal errors with their cause,
        // and refusals under load (503 on a full socket cap) are logged once a minute where
        // they happen; a reconnect storm must not write a line per refused socket.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
                })
                .on_failure(()),
        )
        // Per route template (not per path), with its status and duration; off the record
        // unless `metrics_listen` is set.
        .layer(axum::middleware::from_fn(crate::telemetry::track_http))
        .with_state(state)
}

fn cors_layer(origins: &[String]) -> CorsLayer {
    // None configured: no CORS headers at all, so browsers allow same-origin only.
    let allowed: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
}

/// Unknown `/api` paths get a JSON 404; everything else is the dashboard.
async fn fallback(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path();
    if path.starts_with("/api/") || path == "/api" {
        return ApiError::NotFound(format!("no API endpoint {path}")).into_response();
    }
    dashboard::serve(&state.config, req).await
}
