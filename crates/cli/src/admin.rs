//! `tiffin admin …`: the admin API from the command line (tenants, keys, quotas, priority,
//! reservations, jobs, queues, agents, the queue report). Prints tables, or the server's JSON
//! answers with `--json`.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};

#[derive(Args)]
pub struct AdminArgs {
    /// The Tiffin API.
    #[arg(long, env = "TIFFIN_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The admin key; default: <data-dir>/admin.key as written by `tiffin up`.
    #[arg(long, env = "TIFFIN_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// A file (mode 0600) holding the admin key; wins over --admin-key / TIFFIN_ADMIN_KEY.
    #[arg(long, env = "TIFFIN_ADMIN_KEY_FILE", value_name = "FILE")]
    admin_key_file: Option<PathBuf>,
    #[command(flatten)]
    ca: crate::tls::CaArgs,
    /// Where `tiffin up` keeps its admin key.
    #[arg(long, env = "TIFFIN_DATA_DIR", default_value = "./tiffin-data")]
    data_dir: PathBuf,
    /// Print the server's JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Args, Default)]
struct Settings {
    /// Sessions that may run at once.
    #[arg(long)]
    concurrent_proofs: Option<i64>,
    /// Longest session, in millions of cycles.
    #[arg(long)]
    exec_cycle_limit: Option<i64>,
    /// Total cycles the tenant may use.
    #[arg(long)]
    cycle_budget: Option<i64>,
    /// Fair-share weight (> 0): 2 gets twice the share of 1.
    #[arg(long)]
    priority: Option<f64>,
    /// Bytes of inputs, uploaded receipts and images the tenant may store, e.g. `50GiB`.
    #[arg(long)]
    storage_quota: Option<String>,
    /// Reserved concurrent tasks of a worker kind, e.g. `--reserve prove=2` (repeatable).
    #[arg(long, value_name = "KIND=N")]
    reserve: Vec<String>,
}

impl Settings {
    fn to_json(&self) -> Result<Map<String, Value>> {
        let mut m = Map::new();
        if let Some(v) = self.concurrent_proofs {
            m.insert("concurrent_proofs".into(), json!(v));
        }
        if let Some(v) = self.exec_cycle_limit {
            m.insert("exec_cycle_limit".into(), json!(v));
        }
        if let Some(v) = self.cycle_budget {
            m.insert("cycle_budget".into(), json!(v));
        }
        if let Some(v) = self.priority {
            m.insert("priority".into(), json!(v));
        }
        if let Some(v) = &self.storage_quota {
            let bytes = tiffin_storage::parse_byte_size(v)
                .with_context(|| format!("--storage-quota {v}"))?;
            m.insert("storage_quota".into(), json!(bytes));
        }
        if !self.reserve.is_empty() {
            let mut r = Map::new();
            for item in &self.reserve {
                let (kind, n) =
                    item.split_once('=').context("--reserve takes KIND=N, e.g. prove=2")?;
                let n: i32 =
                    n.parse().with_context(|| format!("--reserve {item}: N is not a number"))?;
                r.insert(kind.to_string(), json!(n));
            }
            m.insert("reservations".into(), Value::Object(r));
        }
        Ok(m)
    }
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a tenant (prints its first API key).
    CreateTenant {
        name: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// List tenants.
    Tenants,
    /// Show a tenant with its quotas, priority, reservations and keys.
    Tenant { name: String },
    /// Change a tenant's quotas, priority or reservations.
    SetTenant {
        name: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// Delete a tenant and its keys.
    DeleteTenant { name: String },
    /// Create another API key for a tenant.
    CreateKey {
        tenant: String,
        #[arg(long)]
        label: Option<String>,
    },
    /// Revoke a key by its id (see `tiffin admin tenant NAME`).
    RevokeKey { id: String },
    /// List jobs.
    Jobs {
        #[arg(long)]
        tenant: Option<String>,
        /// running, succeeded, failed, cancelled or timed_out.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show a job with its task counts.
    Job { id: String },
    /// Cancel a job.
    Cancel { id: String },
    /// Run a failed job again from its execute step.
    Retry { id: String },
    /// Queue depth per (tenant, worker kind).
    Queues,
    /// Registered agents: host, version, cores, memory, GPU, max po2, alive or dead, leases.
    Agents,
    /// Per worker kind: queued and running tasks, oldest wait, cycles waiting, mean task time,
    /// and the agents needed to drain the queue within --target-secs (an autoscaling signal).
    QueueReport {
        /// Drain the queue within this many seconds.
        #[arg(long, default_value_t = 300)]
        target_secs: u64,
    },
}

pub fn run(args: AdminArgs) -> Result<()> {
    let given =
        crate::secret::from_file_or(args.admin_key_file.as_deref(), args.admin_key.as_deref())?;
    let key = match given {
        Some(k) => k,
        None => std::fs::read_to_string(args.data_dir.join("admin.key"))
            .map(|s| s.trim().to_string())
            .context("no --admin-key / TIFFIN_ADMIN_KEY, and no admin.key in --data-dir")?,
    };
    let (method, path, body): (Method, String, Option<Value>) = match &args.command {
        AdminCommand::CreateTenant { name, settings } => {
            let mut m = settings.to_json()?;
            m.insert("name".into(), json!(name));
            (Method::POST, "/admin/tenants".into(), Some(Value::Object(m)))
        }
        AdminCommand::Tenants => (Method::GET, "/admin/tenants".into(), None),
        AdminCommand::Tenant { name } => (Method::GET, format!("/admin/tenants/{name}"), None),
        AdminCommand::SetTenant { name, settings } => (
            Method::PATCH,
            format!("/admin/tenants/{name}"),
            Some(Value::Object(settings.to_json()?)),
        ),
        AdminCommand::DeleteTenant { name } => {
            (Method::DELETE, format!("/admin/tenants/{name}"), None)
        }
        AdminCommand::CreateKey { tenant, label } => {
            (Method::POST, format!("/admin/tenants/{tenant}/keys"), Some(json!({ "label": label })))
        }
        AdminCommand::RevokeKey { id } => (Method::DELETE, format!("/admin/keys/{id}"), None),
        AdminCommand::Jobs { tenant, state, limit } => {
            let mut q = format!("/admin/jobs?limit={limit}");
            if let Some(t) = tenant {
                q.push_str(&format!("&tenant={t}"));
            }
            if let Some(s) = state {
                q.push_str(&format!("&state={s}"));
            }
            (Method::GET, q, None)
        }
        AdminCommand::Job { id } => (Method::GET, format!("/admin/jobs/{id}"), None),
        AdminCommand::Cancel { id } => (Method::POST, format!("/admin/jobs/{id}/cancel"), None),
        AdminCommand::Retry { id } => (Method::POST, format!("/admin/jobs/{id}/retry"), None),
        AdminCommand::Queues => (Method::GET, "/admin/queues".into(), None),
        AdminCommand::Agents => (Method::GET, "/admin/agents".into(), None),
        AdminCommand::QueueReport { target_secs } => {
            (Method::GET, format!("/admin/queue-report?target_secs={target_secs}"), None)
        }
    };
    tokio::runtime::Runtime::new()?.block_on(async move {
        let url = format!("{}{path}", args.url.trim_end_matches('/'));
        let client = tiffin_tls::reqwest_client(args.ca.path())?.build()?;
        let mut req = client.request(method, &url).header("x-admin-key", key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.with_context(|| format!("calling {url}"))?;
        let status = res.status();
        let text = res.text().await?;
        if !status.is_success() {
            bail!("{status}: {text}");
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(v) if args.json => println!("{}", serde_json::to_string_pretty(&v)?),
            Ok(v) => print!("{}", crate::table::render(&v)),
            Err(_) if text.is_empty() => println!("ok"),
            Err(_) => println!("{text}"),
        }
        Ok(())
    })
}
