//! The test doubles of the switchover tests, where nothing real can run here: `nixos-rebuild`
//! (and the activation it ends in), Porkbun's DNS API, a federation tester. Each records what it
//! was asked, and tests can hold a call back (a gate) or make it fail.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

// ------------------------------------------------------ nixos-rebuild --

/// The `nixos-rebuild` stand-in, put first on nixflip's PATH. It reads its
/// directory from its own path (`STATE/bin/nixos-rebuild`).
pub const NIXOS_REBUILD: &str = r##"#!/usr/bin/env python3
# nixos-rebuild stand-in for the switchover tests (NixOS cannot be built or
# activated here). Each call is recorded in log.jsonl. The host's
# configuration is evaluated with the real `nix eval` (the parts the
# cluster module sets: PostgreSQL's settings and pg_hba, the role, Synapse,
# the standby set-up and password scripts); `build` stores it under store/
# named by its hash and links ./result to it, as nixos-rebuild leaves a
# result link; `switch` sends it over ssh (with NIX_SSHOPTS, as
# nixos-rebuild does) to the host's activation stand-in,
# `nixflip-test-activate`, and records whether it had been built before.
# A test holds a call back with gates/ACTION-HOST (the call waits while the
# file exists, after touching ACTION-HOST.reached) or makes it fail with
# gates/ACTION-HOST.fail.
import hashlib, json, os, shlex, subprocess, sys, time

state = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
args = sys.argv[1:]
if not args:
    sys.exit("nixos-rebuild stand-in: no action")
action = args.pop(0)
flake = target = build_host = None
sudo = False
nix_args = []
i = 0
while i < len(args):
    a = args[i]
    if a == "--flake":
        flake = args[i + 1]; i += 2
    elif a == "--target-host":
        target = args[i + 1]; i += 2
    elif a == "--build-host":
        build_host = args[i + 1]; i += 2
    elif a in ("--use-remote-sudo", "--sudo"):
        sudo = True; i += 1
    elif a == "--override-input":
        nix_args += args[i:i + 3]; i += 3
    else:
        nix_args.append(a); i += 1
if flake is None or "#" not in flake:
    sys.exit("nixos-rebuild stand-in: --flake REF#ATTR is required")
ref, attr = flake.split("#", 1)
host = attr.split("|")[0]
entry = {"action": action, "host": host, "flake": ref, "attr": attr, "target": target,
         "buildHost": build_host, "sudo": sudo, "nixArgs": nix_args,
         "sshopts": os.environ.get("NIX_SSHOPTS"), "cwd": os.getcwd(), "started": time.time()}

def log(result):
    entry["result"] = result
    entry["ended"] = time.time()
    with open(os.path.join(state, "log.jsonl"), "a") as f:
        f.write(json.dumps(entry) + "\n")

gate = os.path.join(state, "gates", "%s-%s" % (action, host))
if os.path.exists(gate + ".fail"):
    log("failed (injected)")
    sys.exit("error: nixos-rebuild %s of %s failed (injected by the test)" % (action, host))
if os.path.exists(gate):
    open(gate + ".reached", "w").close()
    while os.path.exists(gate):
        time.sleep(0.02)

apply = """cs: let
  c = cs.%s;
  p = c.config.services.postgresql;
  s = c.config.systemd.services;
  m = c.config.hectic.generic.matrix-cluster;
in {
  inherit (p) settings authentication dataDir;
  role = m.role;
  synapse = m.effectiveSynapse;
  passwordScript = s.matrix-cluster-replication-password.script or null;
  setupScript = s.matrix-cluster-standby-setup.script or null;
}""" % json.dumps(attr)
out = subprocess.run(["nix", "--extra-experimental-features", "nix-command flakes", "eval",
                      "--json", ref + "#nixosConfigurations", "--apply", apply] + nix_args,
                     capture_output=True, text=True)
if out.returncode != 0:
    log("evaluation failed")
    sys.stderr.write(out.stderr)
    sys.exit(1)
system = out.stdout
digest = hashlib.sha256(system.encode()).hexdigest()[:32]
store = os.path.join(state, "store")
os.makedirs(store, exist_ok=True)
path = os.path.join(store, digest + ".json")
entry["system"] = digest
if action == "build":
    with open(path, "w") as f:
        f.write(system)
    if os.path.lexists("result"):
        os.remove("result")
    os.symlink(path, "result")
    # Recorded before anything is printed: a caller that died leaves a pipe
    # nobody reads.
    log("built")
    print("building the system configuration... %s" % path)
    sys.exit(0)
if action not in ("switch", "test", "boot"):
    log("unsupported")
    sys.exit("nixos-rebuild stand-in: unsupported action %s" % action)
entry["prebuilt"] = os.path.exists(path)
ssh = ["ssh"] + shlex.split(os.environ.get("NIX_SSHOPTS", "")) + ["--", target, "nixflip-test-activate"]
r = subprocess.run(ssh, input=system, capture_output=True, text=True)
log("ok" if r.returncode == 0 else "activation failed (%d)" % r.returncode)
sys.stdout.write(r.stdout)
sys.stderr.write(r.stderr)
sys.exit(r.returncode)
"##;

/// The activation stand-in of a test host (`bin/nixflip-test-activate`):
/// what `switch-to-configuration` does for the cluster module's units. It
/// reads the host's own paths from `activate.json` beside its `bin/`.
pub const ACTIVATE: &str = r##"#!/usr/bin/env python3
# Activation stand-in of a test host (switch-to-configuration cannot run
# here): applies the configuration the nixos-rebuild stand-in evaluated, as
# the cluster module's units do on NixOS. postgresql.conf and pg_hba.conf are
# written from the evaluated settings (this host's paths, address, port and
# socket in place of the evaluated ones); a standby runs the module's
# matrix-cluster-standby-setup script, then PostgreSQL starts (or restarts
# when its configuration changed); a primary's PostgreSQL reloads a changed
# configuration (or starts), then the matrix-cluster-replication-password
# script runs; Synapse's stand-in runs where the module enables Synapse and
# is stopped elsewhere.
import json, os, subprocess, sys

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(here)
host = json.load(open(os.path.join(here, "activate.json")))
cfg = json.load(sys.stdin)

def moved(text):
    for old, new in host["paths"]:
        text = text.replace(old, new)
    return text.replace(cfg["dataDir"], host["data"])

def systemctl(*args):
    subprocess.run([host["systemctl"]] + list(args), check=True)

def active(unit):
    r = subprocess.run([host["systemctl"], "is-active", unit], capture_output=True, text=True)
    return r.stdout.strip() == "active"

def quote(s):
    return "'" + s.replace("'", "''") + "'"

def render(settings):
    overrides = [tuple(o) for o in host["overrides"]]
    names = set(k for k, _ in overrides)
    lines = ["# evaluated services.postgresql.settings"]
    for k, v in settings.items():
        if k in names:
            continue
        if isinstance(v, bool):
            r = "on" if v else "off"
        elif isinstance(v, (int, float)):
            r = str(v)
        else:
            r = quote(v)
        lines.append("%s = %s" % (k, r))
    lines.append("# this host's address, port and socket")
    for k, v in overrides:
        lines.append("%s = %s" % (k, quote(v)))
    return "\n".join(lines) + "\n"

def write_if_changed(path, text):
    old = open(path).read() if os.path.exists(path) else None
    if old == text:
        return False
    with open(path, "w") as f:
        f.write(text)
    return True

settings = {k: (moved(v) if isinstance(v, str) else v) for k, v in cfg["settings"].items()}
data = host["data"]
conf = render(settings)
hba = cfg["authentication"] + "local all postgres peer\n"
# The generation's copies, which the systemctl stand-in puts in place
# before every start, as NixOS's postgresql unit links its configuration
# into the data directory in its preStart.
os.makedirs(os.path.join(here, "conf"), exist_ok=True)
for name, text in (("postgresql.conf", conf), ("pg_hba.conf", hba)):
    with open(os.path.join(here, "conf", name), "w") as f:
        f.write(text)
changed = write_if_changed(os.path.join(data, "postgresql.conf"), conf)
changed |= write_if_changed(os.path.join(data, "pg_hba.conf"), hba)
if not cfg["synapse"]:
    systemctl("stop", "matrix-synapse")
if cfg["role"] == "standby":
    # Kept for the systemctl stand-in, which runs the unit again on request.
    with open(os.path.join(here, "matrix-cluster-standby-setup.sh"), "w") as f:
        f.write(moved(cfg["setupScript"]))
    subprocess.run(["bash", "-e", "-c", moved(cfg["setupScript"])], check=True)
    if active("postgresql"):
        if changed:
            systemctl("restart", "postgresql")
    else:
        systemctl("start", "postgresql")
else:
    if active("postgresql"):
        if changed:
            subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(host["pgBin"], "pg_ctl"),
                            "reload", "-D", data], check=True, capture_output=True)
    else:
        systemctl("start", "postgresql")
    subprocess.run(["runuser", "-u", "postgres", "--", "env",
                    "PATH=%s:/usr/sbin:/usr/bin:/sbin:/bin" % host["pgBin"],
                    "PGHOST=" + host["socketDir"], "PGPORT=" + str(host["port"]),
                    "bash", "-e", "-c", moved(cfg["passwordScript"])],
                   check=True, cwd=here)
if cfg["synapse"]:
    systemctl("start", "matrix-synapse")
with open(os.path.join(here, "activate.log"), "a") as f:
    f.write(json.dumps({"role": cfg["role"], "synapse": cfg["synapse"], "changed": changed}) + "\n")
"##;

// --------------------------------------------------------- HTTP server --

/// One request as a double saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub body: String,
}

/// A small HTTP/1.1 server on 127.0.0.1, one thread per connection (a
/// double may hold a request back).
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

type Handler = Arc<dyn Fn(&Request) -> (u16, String) + Send + Sync>;

impl Server {
    pub fn start(handler: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Handler = Arc::new(handler);
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let handler = Arc::clone(&handler);
                std::thread::spawn(move || serve(stream, &*handler));
            }
        });
        Server { addr, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn serve(stream: TcpStream, handler: &(dyn Fn(&Request) -> (u16, String) + Send + Sync)) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(read) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request = Request {
        method,
        target,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let (status, answer) = handler(&request);
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Double\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

/// Hold a double's answers back while set: the request waits (after
/// setting `reached`) until it is cleared.
#[derive(Default)]
pub struct Hold {
    pub on: AtomicBool,
    pub reached: AtomicBool,
}

impl Hold {
    /// Hold requests back from now on.
    pub fn set(&self) {
        self.on.store(true, Ordering::SeqCst);
    }

    /// Let held requests go on.
    pub fn release(&self) {
        self.on.store(false, Ordering::SeqCst);
    }

    pub fn reached(&self) -> bool {
        self.reached.load(Ordering::SeqCst)
    }

    fn wait(&self) {
        if self.on.load(Ordering::SeqCst) {
            self.reached.store(true, Ordering::SeqCst);
            while self.on.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

// ----------------------------------------------------------- Porkbun --

/// The API keys the Porkbun double accepts (distinctive, so that finding
/// one in any output means it leaked).
pub const API_KEY: &str = "pk1_nixflipTEST0a1b2c3d";
pub const SECRET_KEY: &str = "sk1_nixflipTEST9f8e7d6c";

/// What the Porkbun double holds and saw.
pub struct DnsState {
    /// The record `matrix.example.org A`.
    pub content: String,
    pub ttl: u64,
    /// Every request: path and JSON body.
    pub requests: Vec<(String, Value)>,
    /// Answer edits with this error.
    pub fail_edit: Option<String>,
}

/// Porkbun's JSON API (v3), for the zone `example.org`: one A record
/// `matrix`, read with `retrieveByNameType` and changed with
/// `editByNameType`, keys in the body; `{"status": "ERROR", "message": …}`
/// for a wrong key or path.
pub struct Porkbun {
    pub server: Server,
    pub state: Arc<Mutex<DnsState>>,
    pub hold_read: Arc<Hold>,
    pub hold_edit: Arc<Hold>,
}

impl Porkbun {
    pub fn start(content: &str, ttl: u64) -> Porkbun {
        let state = Arc::new(Mutex::new(DnsState {
            content: content.into(),
            ttl,
            requests: Vec::new(),
            fail_edit: None,
        }));
        let hold_read = Arc::new(Hold::default());
        let hold_edit = Arc::new(Hold::default());
        let (s, r, e) = (
            Arc::clone(&state),
            Arc::clone(&hold_read),
            Arc::clone(&hold_edit),
        );
        let server = Server::start(move |req| porkbun(req, &s, &r, &e));
        Porkbun {
            server,
            state,
            hold_read,
            hold_edit,
        }
    }

    pub fn api_url(&self) -> String {
        format!("{}/api/json/v3", self.server.url())
    }

    pub fn content(&self) -> String {
        self.state.lock().expect("dns state").content.clone()
    }

    pub fn requests(&self) -> Vec<(String, Value)> {
        self.state.lock().expect("dns state").requests.clone()
    }
}

fn porkbun(
    req: &Request,
    state: &Mutex<DnsState>,
    hold_read: &Hold,
    hold_edit: &Hold,
) -> (u16, String) {
    let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
    if let Ok(mut s) = state.lock() {
        s.requests.push((req.target.clone(), body.clone()));
    }
    let error = |status: u16, message: &str| {
        (
            status,
            json!({"status": "ERROR", "message": message}).to_string(),
        )
    };
    if req.method != "POST" {
        return error(405, "Use POST.");
    }
    if body["apikey"] != API_KEY || body["secretapikey"] != SECRET_KEY {
        return error(400, "Invalid API key. (002)");
    }
    let path = req.target.as_str();
    if path == "/api/json/v3/dns/retrieveByNameType/example.org/A/matrix" {
        hold_read.wait();
        let s = state.lock().expect("dns state");
        return (
            200,
            json!({"status": "SUCCESS", "cloudflare": "enabled", "records": [{
                "id": "106926659", "name": "matrix.example.org", "type": "A",
                "content": s.content, "ttl": s.ttl.to_string(), "prio": "0", "notes": ""
            }]})
            .to_string(),
        );
    }
    if path == "/api/json/v3/dns/editByNameType/example.org/A/matrix" {
        hold_edit.wait();
        let mut s = state.lock().expect("dns state");
        if let Some(message) = s.fail_edit.clone() {
            return error(400, &message);
        }
        let Some(content) = body["content"].as_str() else {
            return error(400, "Content is required.");
        };
        s.content = content.to_string();
        if let Some(ttl) = body["ttl"].as_str().and_then(|t| t.parse().ok()) {
            s.ttl = ttl;
        }
        return (200, json!({"status": "SUCCESS"}).to_string());
    }
    error(400, "Invalid domain or record.")
}

// ------------------------------------------------ federation tester --

/// A federation tester: `GET /api/report?server_name=NAME` answers a
/// report with `FederationOK` (true unless `ok` is cleared).
pub struct Tester {
    pub server: Server,
    pub ok: Arc<AtomicBool>,
    pub hold: Arc<Hold>,
    pub asked: Arc<Mutex<Vec<String>>>,
}

impl Tester {
    pub fn start() -> Tester {
        let ok = Arc::new(AtomicBool::new(true));
        let hold = Arc::new(Hold::default());
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (o, h, a) = (Arc::clone(&ok), Arc::clone(&hold), Arc::clone(&asked));
        let server = Server::start(move |req| {
            h.wait();
            if let Ok(mut list) = a.lock() {
                list.push(req.target.clone());
            }
            let server = req
                .target
                .split_once("server_name=")
                .map(|(_, n)| n.to_string())
                .unwrap_or_default();
            let fine = o.load(Ordering::SeqCst);
            (
                200,
                json!({
                    "FederationOK": fine,
                    "WellKnownResult": {"m.server": ""},
                    "ConnectionReports": BTreeMap::<String, Value>::new(),
                    "Version": {"name": "Synapse", "version": "1.x"},
                    "server_name": server,
                })
                .to_string(),
            )
        });
        Tester {
            server,
            ok,
            hold,
            asked,
        }
    }

    pub fn url(&self) -> String {
        format!(
            "{}/api/report?server_name={{server_name}}",
            self.server.url()
        )
    }
}
