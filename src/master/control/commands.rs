//! The control commands: gunicorn's names, words and reply shapes (`parse`, pure), and what
//! each does to the arbiter (`Arbiter::control_command`), plus `show requests` and
//! `dump stacks`, which gunicorn lacks.
//!
//! Like gunicorn's handlers, commands that act through a signal (reload, reopen, shutdown)
//! send it to the master itself: the next turn of the loop handles it exactly as if it came
//! from `kill`, after this reply has gone out.

use pyo3::prelude::*;
use serde_json::{json, Map, Value};

use super::protocol::Request;
use super::{requests, stacks, Answer};
use crate::master::heartbeat::{self, now_ms, state};
use crate::master::{kill, Arbiter};
use crate::settings::registry::Value as SettingValue;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Show {
    All,
    Workers,
    Dirty,
    Config,
    Stats,
    Listeners,
    Requests,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Show(Show),
    WorkerAdd(i64),
    WorkerRemove(i64),
    WorkerKill(i64),
    DirtyAdd(i64),
    DirtyRemove(i64),
    Reload,
    Reopen,
    /// The mode as given: `quick` means INT, anything else TERM (gunicorn's rule).
    Shutdown(String),
    Help,
    DumpStacks(Option<i64>),
}

/// The command words as gunicorn's server reads them: `shlex.split(command) + args`, the first
/// word and the target case-insensitive. Errors carry gunicorn's wording.
pub fn parse(req: &Request) -> Result<Command, String> {
    let command = req.command.trim();
    if command.is_empty() {
        return Err("Empty command".into());
    }
    let mut parts = crate::settings::shlex::split(command).map_err(invalid)?;
    parts.extend(req.args.iter().cloned());
    let word = |i: usize| parts.get(i).map(|w| w.to_lowercase());
    let count = |i: usize| parts.get(i).map(|w| py_int(w)).transpose();
    let Some(cmd) = word(0) else {
        return Err("Empty command".into());
    };
    Ok(match cmd.as_str() {
        "show" => Command::Show(match word(1).as_deref() {
            None => {
                return Err(invalid(
                    "Missing show target (all|workers|dirty|config|stats|listeners|requests)",
                ))
            }
            Some("all") => Show::All,
            Some("workers") => Show::Workers,
            Some("dirty") => Show::Dirty,
            Some("config") => Show::Config,
            Some("stats") => Show::Stats,
            Some("listeners") => Show::Listeners,
            Some("requests") => Show::Requests,
            Some(other) => return Err(invalid(format!("Unknown show target: {other}"))),
        }),
        "worker" => match word(1).as_deref() {
            None => return Err(invalid("Missing worker action (add|remove|kill)")),
            Some("add") => Command::WorkerAdd(count(2)?.unwrap_or(1)),
            Some("remove") => Command::WorkerRemove(count(2)?.unwrap_or(1)),
            Some("kill") => match count(2)? {
                Some(pid) => Command::WorkerKill(pid),
                None => return Err(invalid("Missing PID for worker kill")),
            },
            Some(other) => return Err(invalid(format!("Unknown worker action: {other}"))),
        },
        "dirty" => match word(1).as_deref() {
            None => return Err(invalid("Missing dirty action (add|remove)")),
            Some("add") => Command::DirtyAdd(count(2)?.unwrap_or(1)),
            Some("remove") => Command::DirtyRemove(count(2)?.unwrap_or(1)),
            Some(other) => return Err(invalid(format!("Unknown dirty action: {other}"))),
        },
        "dump" => match word(1).as_deref() {
            Some("stacks") => Command::DumpStacks(count(2)?),
            None => return Err(invalid("Missing dump target (stacks)")),
            Some(other) => return Err(invalid(format!("Unknown dump target: {other}"))),
        },
        "reload" => Command::Reload,
        "reopen" => Command::Reopen,
        "shutdown" => Command::Shutdown(parts.get(1).cloned().unwrap_or_else(|| "graceful".into())),
        "help" => Command::Help,
        other => return Err(invalid(format!("Unknown command: {other}"))),
    })
}

/// gunicorn reports a ValueError as `Invalid argument: ...`.
fn invalid(msg: impl std::fmt::Display) -> String {
    format!("Invalid argument: {msg}")
}

/// Python's `int(word)`, with its error message.
fn py_int(word: &str) -> Result<i64, String> {
    word.trim()
        .replace('_', "")
        .parse::<i64>()
        .map_err(|_| invalid(format!("invalid literal for int() with base 10: '{word}'")))
}

/// gunicorn's `help` table, with ferricorn's additions.
fn help() -> Value {
    json!({"commands": {
        "show all": "Show all processes (arbiter, web workers, dirty workers)",
        "show workers": "List HTTP workers with their status",
        "show dirty": "List dirty workers and apps",
        "show config": "Show current effective configuration",
        "show stats": "Show server statistics",
        "show listeners": "Show bound sockets",
        "show requests": "List requests in progress: worker, method, path, age",
        "worker add [N]": "Spawn N workers (default 1)",
        "worker remove [N]": "Remove N workers (default 1)",
        "worker kill <PID>": "Gracefully terminate specific worker",
        "dirty add [N]": "Spawn N dirty workers (default 1)",
        "dirty remove [N]": "Remove N dirty workers (default 1)",
        "dump stacks [PID]": "Python stacks of every thread of a worker (default: all)",
        "reload": "Graceful reload (HUP)",
        "reopen": "Reopen log files (USR1)",
        "shutdown [graceful|quick]": "Shutdown server (TERM/INT)",
        "help": "Show this help message",
    }})
}

/// The settings `show config` reports (gunicorn's list).
const CONFIG_KEYS: &[&str] = &[
    "bind",
    "workers",
    "worker_class",
    "threads",
    "timeout",
    "graceful_timeout",
    "keepalive",
    "max_requests",
    "max_requests_jitter",
    "worker_connections",
    "preload_app",
    "daemon",
    "pidfile",
    "proc_name",
    "reload",
    "dirty_workers",
    "dirty_apps",
    "dirty_timeout",
    "control_socket",
    "control_socket_disable",
];

fn setting_json(v: &SettingValue) -> Value {
    match v {
        SettingValue::None => Value::Null,
        SettingValue::Bool(b) => json!(b),
        SettingValue::Int(i) => json!(i),
        SettingValue::Str(s) | SettingValue::Object(s) => json!(s),
        SettingValue::List(l) => json!(l),
    }
}

/// Seconds with gunicorn's two decimals.
fn secs(ms: u64) -> f64 {
    (ms as f64 / 10.0).round() / 100.0
}

impl Arbiter {
    /// Runs one request from the control socket.
    pub(in crate::master) fn control_command(&mut self, py: Python<'_>, req: &Request) -> Answer {
        let cmd = match parse(req) {
            Ok(c) => c,
            Err(e) => return Answer::Done(Err(e)),
        };
        Answer::Done(Ok(match cmd {
            Command::Show(Show::Workers) => {
                let workers = self.workers_json("");
                json!({"count": workers.len(), "workers": workers})
            }
            Command::Show(Show::All) => self.show_all(),
            Command::Show(Show::Dirty) => self.show_dirty(),
            Command::Show(Show::Config) => self.show_config(),
            Command::Show(Show::Stats) => self.show_stats(),
            Command::Show(Show::Listeners) => self.show_listeners(),
            Command::Show(Show::Requests) => self.show_requests(),
            Command::WorkerAdd(n) => {
                let old = self.wanted;
                let new = (old + n.max(1) as usize).min(heartbeat::MAX_SLOTS);
                self.set_wanted(py, new);
                json!({"added": new - old, "previous": old, "total": new})
            }
            Command::WorkerRemove(n) => {
                let old = self.wanted;
                let new = old.saturating_sub(n.max(1) as usize).max(1);
                self.set_wanted(py, new);
                json!({"removed": old - new, "previous": old, "total": new})
            }
            Command::WorkerKill(pid) => match i32::try_from(pid)
                .ok()
                .filter(|p| self.workers.contains_key(p))
            {
                Some(pid) => {
                    self.terminate(pid);
                    json!({"success": true, "killed": pid})
                }
                None => json!({"success": false, "error": format!("Worker {pid} not found")}),
            },
            Command::DirtyAdd(n) => self.dirty_manage("add", n.max(1)),
            Command::DirtyRemove(n) => self.dirty_manage("remove", n.max(1)),
            Command::Reload => {
                kill(self.pid, libc::SIGHUP);
                json!({"status": "reloading"})
            }
            Command::Reopen => {
                kill(self.pid, libc::SIGUSR1);
                json!({"status": "reopening"})
            }
            Command::Shutdown(mode) => {
                let sig = if mode == "quick" {
                    libc::SIGINT
                } else {
                    libc::SIGTERM
                };
                kill(self.pid, sig);
                json!({"status": "shutting_down", "mode": mode})
            }
            Command::Help => help(),
            Command::DumpStacks(pid) => {
                let pids: Vec<i32> = match pid {
                    None => self.workers.keys().copied().collect(),
                    Some(p) => match i32::try_from(p)
                        .ok()
                        .filter(|p| self.workers.contains_key(p))
                    {
                        Some(p) => vec![p],
                        None => return Answer::Done(Err(format!("Worker {p} not found"))),
                    },
                };
                return Answer::Later(stacks::Dump::start(&pids));
            }
        }))
    }

    /// Live workers, oldest first, as gunicorn's `show workers` lists them (`kind` adds
    /// `show all`'s "type").
    fn workers_json(&self, kind: &str) -> Vec<Value> {
        let now = now_ms();
        let mut ws: Vec<_> = self.workers.iter().collect();
        ws.sort_by_key(|(_, w)| w.age);
        ws.into_iter()
            .map(|(&pid, w)| {
                let slot = self.heartbeats.slot(w.slot);
                let beat = slot.last_beat();
                let mut m = Map::new();
                m.insert("pid".into(), json!(pid));
                if !kind.is_empty() {
                    m.insert("type".into(), json!(kind));
                }
                m.insert("age".into(), json!(w.age));
                m.insert("booted".into(), json!(slot.state() != state::BOOTING));
                if kind.is_empty() {
                    m.insert("aborted".into(), json!(w.aborted_at.is_some()));
                }
                m.insert(
                    "last_heartbeat".into(),
                    if beat == 0 {
                        Value::Null
                    } else {
                        json!(secs(now.saturating_sub(beat)))
                    },
                );
                Value::Object(m)
            })
            .collect()
    }

    fn show_all(&self) -> Value {
        let web = self.workers_json("web");
        let dirty = self.show_dirty();
        let dirty_workers = dirty["workers"].as_array().cloned().unwrap_or_default();
        json!({
            "arbiter": {"pid": self.pid, "type": "arbiter", "role": "master"},
            "web_worker_count": web.len(),
            "web_workers": web,
            "dirty_arbiter": if dirty["enabled"] == json!(true) {
                json!({"pid": dirty["pid"], "type": "dirty_arbiter", "role": "dirty master"})
            } else {
                Value::Null
            },
            "dirty_worker_count": dirty_workers.len(),
            "dirty_workers": dirty_workers,
        })
    }

    /// `show dirty`, in gunicorn's shape; ferricorn has no separate dirty arbiter process, so
    /// `pid` is the master's (it supervises the pool itself).
    fn show_dirty(&self) -> Value {
        let Some(status) = self.dirty_status() else {
            return json!({"enabled": false, "pid": null, "workers": [], "apps": []});
        };
        let workers: Vec<Value> = status
            .workers
            .iter()
            .map(|w| {
                json!({
                    "pid": w.pid,
                    "age": w.rank,
                    "apps": w.apps,
                    "booted": w.ready,
                    "stopping": w.stopping,
                    "busy_ms": w.busy_ms,
                })
            })
            .collect();
        let apps: Vec<Value> = status
            .apps
            .iter()
            .map(|(path, limit)| {
                let pids: Vec<i32> = status
                    .workers
                    .iter()
                    .filter(|w| !w.stopping && w.apps.iter().any(|a| a == path))
                    .map(|w| w.pid)
                    .collect();
                json!({
                    "import_path": path,
                    "worker_count": limit,
                    "current_workers": pids.len(),
                    "worker_pids": pids,
                })
            })
            .collect();
        json!({
            "enabled": true,
            "pid": std::process::id(),
            "workers": workers,
            "apps": apps,
            "target_workers": status.wanted,
            "min_workers": status.min_workers,
            "restarts": status.restarts,
            "timeouts": status.timeouts,
        })
    }

    /// `dirty add|remove N`, answered as gunicorn's dirty arbiter answers its MANAGE message.
    fn dirty_manage(&mut self, op: &str, count: i64) -> Value {
        let n = usize::try_from(count.max(1)).unwrap_or(1);
        let before = self.dirty_status().map(|s| s.wanted);
        let after = if op == "add" {
            self.add_dirty_workers(n)
        } else {
            self.remove_dirty_workers(n)
        };
        let (Some(before), Some(after)) = (before, after) else {
            return json!({"success": false, "error": "Dirty arbiter not running"});
        };
        let changed = after.abs_diff(before);
        let mut reply = json!({
            "success": true,
            "operation": op,
            "requested": n,
            "target_workers": after,
        });
        reply[if op == "add" { "spawned" } else { "removed" }] = json!(changed);
        if changed == 0 && op == "remove" {
            reply["reason"] = json!("the dirty apps' :N specs need every remaining worker");
        }
        reply
    }

    fn show_config(&self) -> Value {
        let mut m = Map::new();
        for &key in CONFIG_KEYS {
            if let Some(v) = self.opts.values.get(key) {
                m.insert(key.into(), setting_json(v));
            }
        }
        Value::Object(m)
    }

    fn show_stats(&self) -> Value {
        let uptime = self
            .ctl
            .started
            .elapsed()
            .map(|d| (d.as_secs_f64() * 100.0).round() / 100.0)
            .ok();
        json!({
            "uptime": uptime,
            "pid": self.pid,
            "workers_current": self.workers.len(),
            "workers_target": self.wanted,
            "workers_spawned": self.spawned,
            "workers_killed": self.ctl.killed + self.timeouts,
            "reloads": self.ctl.reloads,
            "dirty_arbiter_pid": null,
        })
    }

    fn show_listeners(&self) -> Value {
        use std::os::fd::{AsFd, AsRawFd};
        let listeners: Vec<Value> = self
            .listeners
            .iter()
            .map(|l| {
                let kind = match l {
                    crate::net::Listener::Unix(_) => "unix",
                    crate::net::Listener::Tcp(t) => match t.local_addr() {
                        Ok(a) if a.is_ipv6() => "tcp6",
                        _ => "tcp",
                    },
                };
                json!({"address": l.url(), "fd": l.as_fd().as_raw_fd(), "type": kind})
            })
            .collect();
        json!({"count": listeners.len(), "listeners": listeners})
    }

    /// ferricorn's `show requests`: every request in an app now, oldest first.
    fn show_requests(&self) -> Value {
        let Some(table) = requests::table() else {
            return json!({"count": 0, "requests": [], "untracked": 0});
        };
        let now = requests::now_ms();
        let mut all = Vec::new();
        let mut untracked = 0;
        for (&pid, w) in &self.workers {
            let (reqs, more) = table.slot(w.slot).snapshot(now);
            untracked += more;
            all.extend(reqs.into_iter().map(|r| (pid, r)));
        }
        all.sort_by_key(|(_, r)| std::cmp::Reverse(r.age_ms));
        let requests: Vec<Value> = all
            .into_iter()
            .map(|(pid, r)| {
                json!({
                    "pid": pid,
                    "method": r.method,
                    "path": r.path,
                    "truncated": r.truncated,
                    "age": r.age_ms as f64 / 1000.0,
                })
            })
            .collect();
        json!({"count": requests.len(), "requests": requests, "untracked": untracked})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(command: &str, args: &[&str]) -> Request {
        Request {
            id: json!(1),
            command: command.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn gunicorn_command_words_parse() {
        assert_eq!(
            parse(&req("show workers", &[])),
            Ok(Command::Show(Show::Workers))
        );
        assert_eq!(
            parse(&req("SHOW Stats", &[])),
            Ok(Command::Show(Show::Stats))
        );
        assert_eq!(parse(&req("worker add", &[])), Ok(Command::WorkerAdd(1)));
        assert_eq!(parse(&req("worker add 3", &[])), Ok(Command::WorkerAdd(3)));
        // gunicornc sends the numbers as part of the command line, other clients as args
        assert_eq!(
            parse(&req("worker remove", &["2"])),
            Ok(Command::WorkerRemove(2))
        );
        assert_eq!(
            parse(&req("worker kill 123", &[])),
            Ok(Command::WorkerKill(123))
        );
        assert_eq!(
            parse(&req("shutdown", &[])),
            Ok(Command::Shutdown("graceful".into()))
        );
        assert_eq!(
            parse(&req("shutdown quick", &[])),
            Ok(Command::Shutdown("quick".into()))
        );
        assert_eq!(
            parse(&req("dump stacks", &[])),
            Ok(Command::DumpStacks(None))
        );
        assert_eq!(
            parse(&req("dump stacks 9", &[])),
            Ok(Command::DumpStacks(Some(9)))
        );
        assert_eq!(
            parse(&req("show requests", &[])),
            Ok(Command::Show(Show::Requests))
        );
    }

    #[test]
    fn bad_commands_get_gunicorns_messages() {
        assert_eq!(parse(&req("  ", &[])), Err("Empty command".into()));
        assert_eq!(
            parse(&req("frobnicate", &[])),
            Err("Invalid argument: Unknown command: frobnicate".into())
        );
        assert_eq!(
            parse(&req("worker kill", &[])),
            Err("Invalid argument: Missing PID for worker kill".into())
        );
        assert_eq!(
            parse(&req("worker add x", &[])),
            Err("Invalid argument: invalid literal for int() with base 10: 'x'".into())
        );
        assert_eq!(
            parse(&req("show 'unclosed", &[])),
            Err("Invalid argument: No closing quotation".into())
        );
        assert!(parse(&req("show", &[]))
            .unwrap_err()
            .contains("Missing show target"));
    }
}
