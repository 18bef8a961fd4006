//! The container image recipe and the Kubernetes manifests, against the binary and against
//! each other.
//!
//! The configuration and policy shipped in `deploy/kubernetes/` are laid out the way the
//! Deployment's volume lays them out in the pod, and must pass the real `cosmogate check` and
//! their own policy cases. Every port, path, name and security setting that the manifests, the
//! `Dockerfile` and the configuration share is read from each of them and compared, never
//! written here a second time. The few constants below are requirements (which probe asks
//! which endpoint, what the restricted Pod Security Standard allows) or one outside fact (the
//! packages of the runtime base), each said where it is used. `kubectl kustomize` renders the
//! base when kubectl is installed, and the rendered objects go through the same checks.
//!
//! Everything runs offline: cargo with `--offline`, kubectl with a kubeconfig whose only
//! server is a refusing loopback port. Not run here, because this machine has no container
//! engine: the image build itself, and the manifests against a live API server's schemas.
//! docs/deployment.md says so.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cosmogate_server::AuditOutput;
use serde::Deserialize;
use serde_json::Value;

// --- the files ---

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deploy_dir() -> PathBuf {
    repo_root().join("deploy").join("kubernetes")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

fn toml_file(path: &Path) -> toml::Table {
    toml::from_str(&read(path)).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn yaml_documents(text: &str, origin: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| {
            Value::deserialize(document).unwrap_or_else(|err| panic!("{origin}: {err}"))
        })
        .filter(|document| !document.is_null())
        .collect()
}

fn text<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, found {value}"))
}

fn list<'a>(value: &'a Value, what: &str) -> &'a Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{what}: expected a list, found {value}"))
}

/// The value at a dotted path of map keys (`securityContext.seccompProfile.type`); fails when a
/// key is missing, so a misspelled key cannot read as an absent setting.
fn at<'a>(value: &'a Value, path: &str, what: &str) -> &'a Value {
    path.split('.').fold(value, |value, key| {
        value
            .as_object()
            .unwrap_or_else(|| panic!("{what}: expected a map holding {path}, found {value}"))
            .get(key)
            .unwrap_or_else(|| panic!("{what}: no {key} (of {path}) in {value}"))
    })
}

/// A boolean setting that may be left out, which means false; if given, a boolean. `object`
/// must be a map.
fn set_true(object: &Value, key: &str, what: &str) -> bool {
    let map = object
        .as_object()
        .unwrap_or_else(|| panic!("{what}: expected a map, found {object}"));
    match map.get(key) {
        None => false,
        Some(Value::Bool(set)) => *set,
        Some(other) => panic!("{what}: {key} is {other}, not a boolean"),
    }
}

fn number(value: &Value, what: &str) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: expected a number, found {value}"))
}

// --- the workspace ---

/// The workspace's package metadata, and which member builds which binary.
struct Workspace {
    version: String,
    rust_version: String,
    license: String,
    /// binary name -> package name, over every member.
    binaries: BTreeMap<String, String>,
}

impl Workspace {
    fn load() -> Workspace {
        let root = repo_root();
        let manifest = toml_file(&root.join("Cargo.toml"));
        let package = &manifest["workspace"]["package"];
        let field = |name: &str| {
            package[name]
                .as_str()
                .unwrap_or_else(|| panic!("workspace.package.{name}"))
                .to_owned()
        };
        let mut binaries = BTreeMap::new();
        for member in manifest["workspace"]["members"]
            .as_array()
            .expect("workspace.members")
        {
            let member = member.as_str().expect("a member path");
            let dirs: Vec<PathBuf> = match member.strip_suffix("/*") {
                Some(parent) => std::fs::read_dir(root.join(parent))
                    .expect("a member folder")
                    .map(|entry| entry.expect("an entry").path())
                    .filter(|dir| dir.join("Cargo.toml").is_file())
                    .collect(),
                None => vec![root.join(member)],
            };
            for dir in dirs {
                let manifest = toml_file(&dir.join("Cargo.toml"));
                let name = manifest["package"]["name"]
                    .as_str()
                    .expect("package.name")
                    .to_owned();
                if dir.join("src/main.rs").is_file() && manifest.get("bin").is_none() {
                    binaries.insert(name.clone(), name.clone());
                }
                for bin in manifest
                    .get("bin")
                    .and_then(|bins| bins.as_array())
                    .into_iter()
                    .flatten()
                {
                    let bin = bin["name"].as_str().expect("bin.name").to_owned();
                    binaries.insert(bin, name.clone());
                }
            }
        }
        Workspace {
            version: field("version"),
            rust_version: field("rust-version"),
            license: field("license"),
            binaries,
        }
    }
}

/// `(major, minor, patch)` of `1.95.0` or `1.88`.
fn version_triple(version: &str) -> (u64, u64, u64) {
    let mut parts = version.split('.').map(|part| {
        part.parse::<u64>()
            .unwrap_or_else(|_| panic!("version {version}"))
    });
    let major = parts.next().unwrap_or_else(|| panic!("version {version}"));
    (major, parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

// --- the Dockerfile ---

struct Instruction {
    keyword: String,
    args: String,
}

struct Stage {
    base: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

impl Stage {
    fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.instructions
            .iter()
            .filter(move |instruction| instruction.keyword == keyword)
            .map(|instruction| instruction.args.as_str())
    }

    fn only<'a>(&'a self, keyword: &'a str) -> &'a str {
        let found: Vec<&str> = self.all(keyword).collect();
        assert_eq!(found.len(), 1, "one {keyword} in stage {:?}", self.name);
        found[0]
    }

    /// `ARG NAME=default` of this stage.
    fn arg_default(&self, name: &str) -> Option<String> {
        self.all("ARG").find_map(|arg| {
            let (key, value) = arg.split_once('=')?;
            (key.trim() == name).then(|| value.trim().trim_matches('"').to_owned())
        })
    }

    /// `LABEL key="value" …`, with `${ARG}` replaced by the stage's defaults.
    fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        for args in self.all("LABEL") {
            let mut rest = args.trim();
            while !rest.is_empty() {
                let (key, after) = rest.split_once('=').expect("LABEL key=value");
                let (value, after) = match after.strip_prefix('"') {
                    Some(quoted) => {
                        let end = quoted.find('"').expect("a closing quote");
                        (&quoted[..end], &quoted[end + 1..])
                    }
                    None => after.split_once(' ').unwrap_or((after, "")),
                };
                let mut value = value.to_owned();
                while let Some(start) = value.find("${") {
                    let end = start + value[start..].find('}').expect("a closing brace");
                    let name = &value[start + 2..end];
                    let default = self
                        .arg_default(name)
                        .unwrap_or_else(|| panic!("LABEL uses ${{{name}}} without a default"));
                    value.replace_range(start..=end, &default);
                }
                labels.insert(key.trim().to_owned(), value);
                rest = after.trim();
            }
        }
        labels
    }
}

struct Dockerfile {
    stages: Vec<Stage>,
}

impl Dockerfile {
    fn load() -> Dockerfile {
        let text = read(&repo_root().join("Dockerfile"));
        let mut logical: Vec<String> = Vec::new();
        let mut pending = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            match trimmed.strip_suffix('\\') {
                Some(start) => {
                    pending.push_str(start);
                    pending.push(' ');
                }
                None => {
                    pending.push_str(trimmed);
                    logical.push(std::mem::take(&mut pending));
                }
            }
        }
        assert!(pending.is_empty(), "the Dockerfile ends in a continuation");
        let mut stages: Vec<Stage> = Vec::new();
        for line in logical {
            let (keyword, args) = line
                .split_once(char::is_whitespace)
                .expect("an instruction");
            let keyword = keyword.to_ascii_uppercase();
            let args = args.trim().to_owned();
            if keyword == "FROM" {
                let words: Vec<&str> = args.split_whitespace().collect();
                let name = match words[..] {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_owned()),
                    [_] => None,
                    _ => panic!("FROM {args}"),
                };
                stages.push(Stage {
                    base: words[0].to_owned(),
                    name,
                    instructions: Vec::new(),
                });
            } else {
                stages
                    .last_mut()
                    .expect("an instruction before FROM")
                    .instructions
                    .push(Instruction { keyword, args });
            }
        }
        Dockerfile { stages }
    }

    fn stage(&self, name: &str) -> &Stage {
        self.stages
            .iter()
            .find(|stage| stage.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no stage {name} in the Dockerfile"))
    }

    /// The image that is built by default: the last stage.
    fn runtime(&self) -> &Stage {
        self.stages.last().expect("a stage")
    }

    fn entrypoint(&self) -> Vec<String> {
        serde_json::from_str(self.runtime().only("ENTRYPOINT"))
            .expect("ENTRYPOINT in exec (JSON) form")
    }

    /// The file after `--config` in the ENTRYPOINT.
    fn config_path(&self) -> PathBuf {
        let entrypoint = self.entrypoint();
        let at = entrypoint
            .iter()
            .position(|arg| arg == "--config")
            .expect("the ENTRYPOINT names --config");
        PathBuf::from(&entrypoint[at + 1])
    }

    fn exposed(&self) -> BTreeSet<u16> {
        self.runtime()
            .all("EXPOSE")
            .flat_map(str::split_whitespace)
            .map(|port| {
                let port = port.strip_suffix("/tcp").unwrap_or(port);
                port.parse().unwrap_or_else(|_| panic!("EXPOSE {port}"))
            })
            .collect()
    }

    /// The runtime stage's `USER uid[:gid]`, numerically.
    fn user(&self) -> (u64, Option<u64>) {
        let user = self.runtime().only("USER");
        let (uid, gid) = match user.split_once(':') {
            Some((uid, gid)) => (uid, Some(gid)),
            None => (user, None),
        };
        let numeric = |id: &str| {
            id.parse::<u64>()
                .unwrap_or_else(|_| panic!("USER {user} must be numeric for runAsNonRoot"))
        };
        (numeric(uid), gid.map(numeric))
    }

    /// The binary the ENTRYPOINT runs, by file name.
    fn binary_name(&self) -> String {
        let entrypoint = self.entrypoint();
        Path::new(&entrypoint[0])
            .file_name()
            .expect("an executable path")
            .to_string_lossy()
            .into_owned()
    }
}

// --- the binary ---

/// The `cosmogate` binary of this checkout, as cargo builds it for this package's tests.
const COSMOGATE: &str = env!("CARGO_BIN_EXE_cosmogate");

fn cosmogate(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(COSMOGATE)
        .args(args)
        .output()
        .expect("run cosmogate")
}

fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

// --- the manifests ---

/// Kubernetes objects, as written in the files or as kustomize renders them.
struct Manifests {
    origin: &'static str,
    objects: Vec<Value>,
    /// The namespace the objects are deployed to.
    namespace: String,
}

fn kustomization() -> Value {
    let path = deploy_dir().join("kustomization.yaml");
    let mut documents = yaml_documents(&read(&path), "kustomization.yaml");
    assert_eq!(documents.len(), 1, "kustomization.yaml is one document");
    documents.remove(0)
}

/// The ConfigMaps kustomization.yaml generates: name, then file name -> contents.
fn generated_config_maps() -> Vec<(String, BTreeMap<String, String>)> {
    list(
        &kustomization()["configMapGenerator"],
        "kustomization.yaml configMapGenerator",
    )
    .iter()
    .map(|generator| {
        let name = text(&generator["name"], "configMapGenerator[].name").to_owned();
        let files = list(&generator["files"], "configMapGenerator[].files")
            .iter()
            .map(|file| {
                let file = text(file, "configMapGenerator[].files[]");
                assert!(!file.contains('='), "{file}: keys are the file names here");
                let key = Path::new(file)
                    .file_name()
                    .expect("a file name")
                    .to_string_lossy()
                    .into_owned();
                (key, read(&deploy_dir().join(file)))
            })
            .collect();
        (name, files)
    })
    .collect()
}

impl Manifests {
    /// The resources kustomization.yaml lists, and the ConfigMaps its generator makes, as
    /// written: no namespace, no name hash, the image as named in the Deployment.
    fn as_written() -> Manifests {
        let kustomization = kustomization();
        let mut objects = Vec::new();
        for resource in list(&kustomization["resources"], "kustomization.yaml resources") {
            let resource = text(resource, "resources[]");
            objects.extend(yaml_documents(
                &read(&deploy_dir().join(resource)),
                resource,
            ));
        }
        for (name, files) in generated_config_maps() {
            objects.push(serde_json::json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": { "name": name },
                "data": files,
            }));
        }
        Manifests {
            origin: "deploy/kubernetes as written",
            objects,
            namespace: text(&kustomization["namespace"], "kustomization.yaml namespace").to_owned(),
        }
    }

    /// `kubectl kustomize deploy/kubernetes`; `None`, with the reason printed, when kubectl is
    /// not installed, and a failure then when `CI` is set. Its kubeconfig names only a refusing
    /// loopback port, so nothing leaves the machine even where kubectl (a version dispatcher)
    /// asks a server for its version.
    fn rendered() -> Option<Manifests> {
        // Bound and never listening: connections to it are refused, and no other process can
        // be handed the port meanwhile.
        let refusing = tokio::net::TcpSocket::new_v4().expect("a socket");
        refusing
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("a loopback port");
        let refusing = refusing.local_addr().expect("its address");
        let scratch = tempfile::tempdir().expect("tempdir");
        let kubeconfig = scratch.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: none\n  cluster:\n    \
                 server: https://{}\ncontexts:\n- name: none\n  context:\n    cluster: none\n\
                 current-context: none\nusers: []\n",
                refusing
            ),
        )
        .expect("write kubeconfig");
        let output = Command::new("kubectl")
            .arg("kustomize")
            .arg(deploy_dir())
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", scratch.path())
            .output();
        let output = match output {
            Ok(output) => output,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "kubectl is not installed, and CI is set: CI must render the kustomization"
                );
                eprintln!("skipped: kubectl is not installed, so kustomize is not rendered");
                return None;
            }
            Err(err) => panic!("run kubectl: {err}"),
        };
        assert!(
            output.status.success(),
            "kubectl kustomize: {}",
            describe(&output)
        );
        let objects = yaml_documents(
            &String::from_utf8(output.stdout).expect("UTF-8"),
            "kubectl kustomize",
        );
        let namespace = text(&kustomization()["namespace"], "namespace").to_owned();
        Some(Manifests {
            origin: "kubectl kustomize deploy/kubernetes",
            objects,
            namespace,
        })
    }

    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|object| object["kind"] == kind)
            .collect()
    }

    fn one(&self, kind: &str) -> &Value {
        let found = self.of_kind(kind);
        assert_eq!(found.len(), 1, "{}: one {kind}", self.origin);
        found[0]
    }

    fn named(&self, kind: &str, name: &str) -> Option<&Value> {
        self.of_kind(kind)
            .into_iter()
            .find(|object| object["metadata"]["name"] == name)
    }
}

fn pod_template(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]
}

fn the_container(deployment: &Value) -> &Value {
    let containers = list(
        &pod_template(deployment)["spec"]["containers"],
        "Deployment containers",
    );
    assert_eq!(containers.len(), 1, "one container, cosmogate");
    &containers[0]
}

/// The container's ports by name.
fn container_ports(container: &Value) -> BTreeMap<String, u16> {
    list(&container["ports"], "container ports")
        .iter()
        .map(|port| {
            let number = u16::try_from(number(&port["containerPort"], "containerPort"))
                .expect("a port number");
            (text(&port["name"], "port name").to_owned(), number)
        })
        .collect()
}

/// A port given by number or by the name of a container port.
fn resolve_port(port: &Value, container: &Value) -> u16 {
    match port {
        Value::String(name) => *container_ports(container)
            .get(name)
            .unwrap_or_else(|| panic!("no container port named {name}")),
        other => u16::try_from(number(other, "port")).expect("a port number"),
    }
}

/// Whether every label of `selector` is on `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let selector = selector
        .as_object()
        .unwrap_or_else(|| panic!("a selector map, found {selector}"));
    !selector.is_empty()
        && selector
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
}

// --- the pod's configuration directory ---

/// The configuration directory as the pod sees it, rebuilt in a temporary folder from the
/// Deployment's volume: the ConfigMap's files, and for a `kubernetes.io/tls` Secret (which is
/// not shipped) a fresh self-signed certificate and key under the Secret's key names.
struct Staged {
    _dir: tempfile::TempDir,
    root: PathBuf,
    /// The ENTRYPOINT's `--config` file, inside the folder.
    config: PathBuf,
    /// Every file the volume projects, relative to the mount.
    files: BTreeSet<String>,
}

fn stage(manifests: &Manifests, docker: &Dockerfile) -> Staged {
    let deployment = manifests.one("Deployment");
    let container = the_container(deployment);
    let config_path = docker.config_path();
    let mount = list(&container["volumeMounts"], "volumeMounts")
        .iter()
        .find(|mount| config_path.starts_with(text(&mount["mountPath"], "mountPath")))
        .unwrap_or_else(|| {
            panic!(
                "{}: the ENTRYPOINT's --config {} is under no volume mount",
                manifests.origin,
                config_path.display()
            )
        });
    let mount_path = text(&mount["mountPath"], "mountPath");
    let volume_name = text(&mount["name"], "volumeMount name");
    let volume = list(&pod_template(deployment)["spec"]["volumes"], "volumes")
        .iter()
        .find(|volume| volume["name"] == volume_name)
        .unwrap_or_else(|| panic!("no volume {volume_name}"));
    let sources: Vec<&Value> = match (&volume["projected"], &volume["configMap"]) {
        (Value::Object(projected), _) => list(&projected["sources"], "projected sources")
            .iter()
            .collect(),
        (_, Value::Object(_)) => vec![volume],
        _ => panic!("the configuration volume {volume_name} is neither projected nor a ConfigMap"),
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = BTreeSet::new();
    let mut tls_items: Vec<&Value> = Vec::new();
    let mut write = |path: &str, contents: &[u8]| {
        assert!(
            files.insert(path.to_owned()),
            "{path} is projected twice into {mount_path}"
        );
        let target = dir.path().join(path);
        std::fs::create_dir_all(target.parent().expect("a parent")).expect("mkdir");
        std::fs::write(target, contents).expect("write");
    };
    for source in sources {
        if let Value::Object(_) = &source["configMap"] {
            let name = text(&source["configMap"]["name"], "configMap name");
            let config_map = manifests
                .named("ConfigMap", name)
                .unwrap_or_else(|| panic!("{}: no ConfigMap {name}", manifests.origin));
            let data = config_map["data"].as_object().expect("ConfigMap data");
            let items = &source["configMap"]["items"];
            let pairs: Vec<(&str, &str)> = match items {
                Value::Array(items) => items
                    .iter()
                    .map(|item| (text(&item["key"], "key"), text(&item["path"], "path")))
                    .collect(),
                _ => data
                    .keys()
                    .map(|key| (key.as_str(), key.as_str()))
                    .collect(),
            };
            let projected: BTreeSet<&str> = pairs.iter().map(|(key, _)| *key).collect();
            let present: BTreeSet<&str> = data.keys().map(String::as_str).collect();
            assert_eq!(
                projected, present,
                "{}: the volume projects exactly the keys of ConfigMap {name}",
                manifests.origin
            );
            for (key, path) in pairs {
                write(path, text(&data[key], key).as_bytes());
            }
        } else if let Value::Object(_) = &source["secret"] {
            let items = list(&source["secret"]["items"], "secret items");
            let keys: BTreeSet<&str> = items.iter().map(|item| text(&item["key"], "key")).collect();
            assert_eq!(
                keys,
                BTreeSet::from(["tls.crt", "tls.key"]),
                "the only Secret is a kubernetes.io/tls one"
            );
            tls_items.extend(items);
        } else {
            panic!("a projected source this test does not know: {source}");
        }
    }
    let relative = config_path
        .strip_prefix(mount_path)
        .expect("under the mount");
    if !tls_items.is_empty() {
        // Signed, as policy_tools.rs does, for the host clients reach: the public URL's.
        let config = toml_file(&dir.path().join(relative));
        let public_url = config["listen"]["public_url"]
            .as_str()
            .expect("listen.public_url");
        let host = url::Url::parse(public_url)
            .unwrap_or_else(|err| panic!("listen.public_url {public_url}: {err}"))
            .host_str()
            .expect("a host")
            .to_owned();
        let cert = rcgen::generate_simple_self_signed(vec![host]).expect("a certificate");
        for item in tls_items {
            let path = text(&item["path"], "path");
            match text(&item["key"], "key") {
                "tls.crt" => write(path, cert.cert.pem().as_bytes()),
                _ => write(path, cert.signing_key.serialize_pem().as_bytes()),
            }
        }
    }
    let root = dir.path().to_path_buf();
    Staged {
        config: root.join(relative),
        root,
        _dir: dir,
        files,
    }
}

/// `kind` of `[upstream.credential]`, read as plain TOML.
fn credential_kind(config: &Path) -> String {
    toml_file(config)["upstream"]["credential"]["kind"]
        .as_str()
        .expect("upstream.credential.kind")
        .to_owned()
}

/// Both views of the manifests: as written, and as kustomize renders them when kubectl is
/// there.
fn every_view() -> Vec<Manifests> {
    let mut views = vec![Manifests::as_written()];
    views.extend(Manifests::rendered());
    views
}

// --- the tests ---

#[test]
fn the_shipped_configuration_passes_cosmogate_check_as_the_pod_sees_it() {
    let docker = Dockerfile::load();
    for manifests in every_view() {
        let staged = stage(&manifests, &docker);
        let output = cosmogate(&[
            "check".as_ref(),
            "--config".as_ref(),
            staged.config.as_ref(),
        ]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{}: {}",
            manifests.origin,
            describe(&output)
        );
        assert!(
            stdout.contains("configuration and policy are valid"),
            "{}: {stdout}",
            manifests.origin
        );
        assert!(
            stderr.trim().is_empty(),
            "{}: check warned: {stderr}",
            manifests.origin
        );
    }
}

#[test]
fn the_shipped_policy_passes_its_cases() {
    let staged = stage(&Manifests::as_written(), &Dockerfile::load());
    let cases = deploy_dir().join("policy-tests.toml");
    let count = toml_file(&cases)["cases"]
        .as_array()
        .expect("[[cases]]")
        .len();
    let output = cosmogate(&[
        "policy".as_ref(),
        "test".as_ref(),
        "--config".as_ref(),
        staged.config.as_ref(),
        cases.as_ref(),
    ]);
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = format!("policy test: {count} passed, 0 failed");
    assert!(
        stdout.lines().any(|line| line.trim_end() == summary),
        "every one of the {count} cases ran and passed ({summary}): {stdout}"
    );
}

/// The checks every view of the manifests must pass.
fn agrees_with_the_configuration_and_the_dockerfile(manifests: &Manifests, docker: &Dockerfile) {
    let origin = manifests.origin;
    let staged = stage(manifests, docker);
    let config = cosmogate_server::Config::load(&staged.config)
        .unwrap_or_else(|err| panic!("{origin}: {err}"))
        .config;
    let listen = config.listen.address;
    let admin: SocketAddr = config
        .admin
        .address
        .unwrap_or_else(|| panic!("{origin}: no [admin] listener, so no probes"));
    for (what, address) in [("listen", listen), ("admin", admin)] {
        assert!(
            address.ip().is_unspecified(),
            "{origin}: {what}.address {address} must take the pod IP's traffic (the Service, \
             the kubelet's probes)"
        );
    }

    let deployment = manifests.one("Deployment");
    let template = pod_template(deployment);
    let labels = &template["metadata"]["labels"];
    let spec = &template["spec"];
    let container = the_container(deployment);
    assert!(
        selects(&deployment["spec"]["selector"]["matchLabels"], labels),
        "{origin}: the Deployment selects its own pods"
    );

    // Ports: the container, the image and the configuration name the same two.
    let ports = container_ports(container);
    let declared: BTreeSet<u16> = ports.values().copied().collect();
    let configured = BTreeSet::from([listen.port(), admin.port()]);
    assert_eq!(
        declared, configured,
        "{origin}: container ports = the configured listeners"
    );
    assert_eq!(
        docker.exposed(),
        configured,
        "Dockerfile EXPOSE = the configured listeners"
    );

    // Probes: on the admin listener, at paths the admin router serves.
    let routes = admin_routes();
    for (probe, path) in [
        ("startupProbe", None),
        ("livenessProbe", Some("/healthz")),
        ("readinessProbe", Some("/readyz")),
    ] {
        let get = at(container, &format!("{probe}.httpGet"), origin);
        let probe_path = text(at(get, "path", probe), probe);
        assert!(
            routes.contains(probe_path),
            "{origin}: {probe} {probe_path} is not an admin route ({routes:?})"
        );
        if let Some(path) = path {
            assert_eq!(probe_path, path, "{origin}: {probe}");
        }
        assert_eq!(
            resolve_port(at(get, "port", probe), container),
            admin.port(),
            "{origin}: {probe} asks the admin listener"
        );
        assert!(
            get.get("scheme").is_none_or(|scheme| scheme == "HTTP"),
            "{origin}: the admin listener is plain HTTP"
        );
    }

    // The Service: the data listener, on the port and host of the public URL.
    let service = manifests.one("Service");
    assert!(
        selects(&service["spec"]["selector"], labels),
        "{origin}: the Service selects the pods"
    );
    let service_ports = list(&service["spec"]["ports"], "Service ports");
    assert_eq!(
        service_ports.len(),
        1,
        "{origin}: the Service publishes one port"
    );
    let service_port = &service_ports[0];
    assert_eq!(
        resolve_port(&service_port["targetPort"], container),
        listen.port(),
        "{origin}: the Service forwards to the data listener"
    );
    let public_url = config
        .listen
        .public_url
        .as_ref()
        .unwrap_or_else(|| panic!("{origin}: listen.public_url is needed behind a Service"));
    assert_eq!(
        Some(number(&service_port["port"], "Service port")),
        public_url.port_or_known_default().map(u64::from),
        "{origin}: the Service port is the public URL's ({public_url})"
    );
    let service_name = text(&service["metadata"]["name"], "Service name");
    let in_cluster = format!("{service_name}.{}.svc", manifests.namespace);
    let host = public_url.host_str().expect("a host");
    assert!(
        host == in_cluster || host == format!("{in_cluster}.cluster.local"),
        "{origin}: public_url host {host} is the Service's cluster name {in_cluster}"
    );

    // The configuration directory: mounted read-only where the ENTRYPOINT looks, holding every
    // file the configuration names.
    let config_path = docker.config_path();
    let mounts = list(&container["volumeMounts"], "volumeMounts");
    let mount = mounts
        .iter()
        .find(|mount| config_path.starts_with(text(&mount["mountPath"], "mountPath")))
        .expect("a mount");
    assert_eq!(
        Path::new(text(&mount["mountPath"], "mountPath")),
        config_path.parent().expect("a folder"),
        "{origin}: the mount is the ENTRYPOINT's configuration folder"
    );
    assert_eq!(
        mount["readOnly"], true,
        "{origin}: configuration mounted read-only"
    );
    let mut named = vec![config.policy.file.clone()];
    named.extend(config.listen.tls_cert_file.clone());
    named.extend(config.listen.tls_key_file.clone());
    for file in &named {
        let relative = file.strip_prefix(&staged.root).unwrap_or_else(|_| {
            panic!(
                "{origin}: {} is outside the configuration volume",
                file.display()
            )
        });
        assert!(
            staged
                .files
                .contains(&relative.to_string_lossy().into_owned()),
            "{origin}: {} is not projected by the volume",
            relative.display()
        );
    }
    let unused: Vec<&String> = staged
        .files
        .iter()
        .filter(|file| {
            let path = staged.root.join(file);
            path != staged.config && !named.contains(&path)
        })
        .collect();
    assert!(
        unused.is_empty(),
        "{origin}: projected but never read: {unused:?}"
    );

    // The audit stream needs no writable filesystem: standard output, or a file on a writable
    // volume.
    if let AuditOutput::File(path) = &config.audit.output {
        let writable = mounts.iter().any(|mount| {
            mount["readOnly"] != true && path.starts_with(text(&mount["mountPath"], "mountPath"))
        });
        assert!(
            writable,
            "{origin}: audit file {} is on no writable volume",
            path.display()
        );
    }

    // cosmogate's own identity: the ServiceAccount, and workload identity exactly when the
    // configuration asks for it.
    let account = manifests.one("ServiceAccount");
    assert_eq!(
        spec["serviceAccountName"], account["metadata"]["name"],
        "{origin}: the pod runs as the shipped ServiceAccount"
    );
    let workload_identity = credential_kind(&staged.config) == "workload_identity";
    assert_eq!(
        labels["azure.workload.identity/use"] == "true",
        workload_identity,
        "{origin}: the pod carries azure.workload.identity/use: \"true\" (a string) exactly \
         when the credential is workload_identity"
    );
    if workload_identity {
        let client_id = text(
            &account["metadata"]["annotations"]["azure.workload.identity/client-id"],
            "the ServiceAccount's azure.workload.identity/client-id annotation",
        );
        let groups: Vec<usize> = client_id.split('-').map(str::len).collect();
        assert!(
            groups == [8, 4, 4, 4, 12]
                && client_id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'),
            "{origin}: client-id {client_id} is a GUID"
        );
    }
    assert_eq!(
        spec["automountServiceAccountToken"], false,
        "{origin}: cosmogate never calls the Kubernetes API"
    );

    // The restricted Pod Security Standard, and the image's user.
    let (uid, gid) = docker.user();
    let pod_security = at(spec, "securityContext", origin);
    assert_ne!(uid, 0, "the image's USER is not root");
    assert_eq!(
        at(pod_security, "runAsNonRoot", origin),
        true,
        "{origin}: runAsNonRoot"
    );
    assert_eq!(
        at(pod_security, "runAsUser", origin).as_u64(),
        Some(uid),
        "{origin}: the pod's user is the image's"
    );
    if let Some(gid) = gid {
        assert_eq!(
            at(pod_security, "runAsGroup", origin).as_u64(),
            Some(gid),
            "{origin}: runAsGroup"
        );
    }
    assert_eq!(
        at(pod_security, "seccompProfile.type", origin),
        "RuntimeDefault",
        "{origin}: seccomp"
    );
    let security = at(container, "securityContext", origin);
    for (key, expected) in [
        ("allowPrivilegeEscalation", false),
        ("readOnlyRootFilesystem", true),
        ("runAsNonRoot", true),
    ] {
        assert_eq!(at(security, key, origin), expected, "{origin}: {key}");
    }
    let capabilities = at(security, "capabilities", origin);
    assert_eq!(
        at(capabilities, "drop", origin),
        &serde_json::json!(["ALL"]),
        "{origin}: every capability dropped"
    );
    assert!(
        capabilities.get("add").is_none_or(Value::is_null),
        "{origin}: none added"
    );
    assert!(
        !set_true(security, "privileged", origin),
        "{origin}: not privileged"
    );
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        assert!(!set_true(spec, host, origin), "{origin}: {host}");
    }
    let restricted_volumes = [
        "configMap",
        "secret",
        "projected",
        "emptyDir",
        "downwardAPI",
        "csi",
        "ephemeral",
        "persistentVolumeClaim",
    ];
    for volume in list(&spec["volumes"], "volumes") {
        let kinds: Vec<&String> = volume
            .as_object()
            .expect("a volume")
            .keys()
            .filter(|key| *key != "name")
            .collect();
        assert!(
            kinds
                .iter()
                .all(|kind| restricted_volumes.contains(&kind.as_str())),
            "{origin}: volume type {kinds:?} is not allowed by the restricted standard"
        );
    }
    let namespace = manifests.one("Namespace");
    assert_eq!(
        namespace["metadata"]["name"], manifests.namespace,
        "{origin}: the Namespace is the one the objects go to"
    );
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted",
        "{origin}: the namespace enforces the restricted standard"
    );

    // Availability: the budget selects the pods and leaves at least one serving.
    let budget = manifests.one("PodDisruptionBudget");
    assert!(
        selects(&budget["spec"]["selector"]["matchLabels"], labels),
        "{origin}: the PodDisruptionBudget selects the pods"
    );
    let replicas = number(&deployment["spec"]["replicas"], "replicas");
    let max_unavailable = number(&budget["spec"]["maxUnavailable"], "maxUnavailable");
    assert!(
        replicas > max_unavailable,
        "{origin}: {replicas} replicas, {max_unavailable} may be disrupted"
    );

    // The network policy admits both listeners, by ports the container has.
    let policy = manifests.one("NetworkPolicy");
    assert!(
        selects(&policy["spec"]["podSelector"]["matchLabels"], labels),
        "{origin}: the NetworkPolicy selects the pods"
    );
    let admitted: BTreeSet<u16> = list(&policy["spec"]["ingress"], "ingress")
        .iter()
        .flat_map(|rule| list(&rule["ports"], "ingress ports"))
        .map(|port| resolve_port(&port["port"], container))
        .collect();
    assert_eq!(
        admitted, configured,
        "{origin}: the NetworkPolicy admits exactly the two listeners"
    );

    // Resources: requests and limits for both, requests within limits.
    let resources = &container["resources"];
    for resource in ["cpu", "memory"] {
        let request = quantity(text_or_number(&resources["requests"][resource]));
        let limit = quantity(text_or_number(&resources["limits"][resource]));
        assert!(
            request > 0.0 && request <= limit,
            "{origin}: {resource} request {request} within limit {limit}"
        );
    }
}

fn text_or_number(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        other => panic!("a quantity, found {other}"),
    }
}

/// A Kubernetes quantity (`500m`, `2`, `128Mi`, `1G`) in base units.
fn quantity(text: String) -> f64 {
    let suffixes = [
        ("Ki", 1024f64),
        ("Mi", 1024f64 * 1024.0),
        ("Gi", 1024f64 * 1024.0 * 1024.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("m", 1e-3),
    ];
    for (suffix, scale) in suffixes {
        if let Some(number) = text.strip_suffix(suffix) {
            return number.parse::<f64>().expect("a quantity") * scale;
        }
    }
    text.parse().unwrap_or_else(|_| panic!("quantity {text}"))
}

/// The paths the admin listener routes, read from its router.
fn admin_routes() -> BTreeSet<String> {
    let source = read(&repo_root().join("crates/server/src/admin.rs"));
    let routes: BTreeSet<String> = source
        .match_indices(".route(\"")
        .map(|(at, call)| {
            let rest = &source[at + call.len()..];
            rest[..rest.find('"').expect("a closing quote")].to_owned()
        })
        .collect();
    assert!(!routes.is_empty(), "no routes found in admin.rs");
    routes
}

#[test]
fn the_manifests_as_written_agree_with_the_configuration_and_the_dockerfile() {
    agrees_with_the_configuration_and_the_dockerfile(&Manifests::as_written(), &Dockerfile::load());
}

#[test]
fn kustomize_renders_the_base_offline_and_the_rendered_objects_agree_too() {
    let Some(rendered) = Manifests::rendered() else {
        return;
    };
    let docker = Dockerfile::load();
    agrees_with_the_configuration_and_the_dockerfile(&rendered, &docker);

    let written = Manifests::as_written();
    for object in &written.objects {
        let kind = text(&object["kind"], "kind");
        let name = text(&object["metadata"]["name"], "name");
        let found = rendered.of_kind(kind).into_iter().any(|candidate| {
            let rendered_name = text(&candidate["metadata"]["name"], "name");
            // Generated ConfigMaps carry a hash of their contents.
            rendered_name == name
                || (kind == "ConfigMap"
                    && rendered_name
                        .strip_prefix(name)
                        .is_some_and(|hash| hash.starts_with('-')))
        });
        assert!(found, "{kind} {name} is rendered");
        if kind != "Namespace" {
            let namespaced = rendered
                .of_kind(kind)
                .into_iter()
                .all(|candidate| candidate["metadata"]["namespace"] == written.namespace);
            assert!(namespaced, "{kind} {name} goes to {}", written.namespace);
        }
    }
    assert_eq!(
        rendered.objects.len(),
        written.objects.len(),
        "kustomize adds no objects"
    );

    // The ConfigMap holds the files byte for byte.
    for (name, files) in generated_config_maps() {
        let config_map = rendered
            .of_kind("ConfigMap")
            .into_iter()
            .find(|candidate| {
                text(&candidate["metadata"]["name"], "name").starts_with(&format!("{name}-"))
            })
            .expect("the generated ConfigMap");
        assert_eq!(
            config_map["data"],
            serde_json::json!(files),
            "ConfigMap {name} holds the files as written"
        );
    }

    // The image is the one the Dockerfile labels, at the workspace's version.
    let workspace = Workspace::load();
    let image = text(
        &the_container(rendered.one("Deployment"))["image"],
        "rendered image",
    );
    let (_, tag) = image.rsplit_once(':').expect("a tagged image");
    assert_eq!(tag, workspace.version, "image tag = workspace version");
}

#[test]
fn the_kustomization_image_is_the_workspace_version_and_the_dockerfile_labels_it() {
    let workspace = Workspace::load();
    let written = Manifests::as_written();
    let image = text(
        &the_container(written.one("Deployment"))["image"],
        "Deployment image",
    );
    let kustomization = kustomization();
    let images = list(&kustomization["images"], "kustomization.yaml images");
    let entry = images
        .iter()
        .find(|entry| entry["name"] == image)
        .unwrap_or_else(|| panic!("kustomization.yaml sets no tag for image {image}"));
    assert_eq!(text(&entry["newTag"], "newTag"), workspace.version);

    let docker = Dockerfile::load();
    let labels = docker.runtime().labels();
    assert_eq!(
        labels["org.opencontainers.image.version"], workspace.version,
        "the image's version label defaults to the workspace version"
    );
    assert_eq!(
        labels["org.opencontainers.image.licenses"],
        workspace.license
    );
    assert_eq!(
        labels["org.opencontainers.image.title"],
        docker.binary_name()
    );
    assert_eq!(
        labels["org.opencontainers.image.base.name"],
        docker.runtime().base,
        "the base.name label is the runtime stage's base"
    );
}

#[test]
fn the_dockerfile_builds_the_binary_ci_builds_with_a_toolchain_it_accepts() {
    let docker = Dockerfile::load();
    let workspace = Workspace::load();
    let bin = docker.binary_name();
    let package = &workspace.binaries[&bin];
    assert_eq!(
        Path::new(COSMOGATE)
            .file_stem()
            .and_then(|name| name.to_str()),
        Some(bin.as_str()),
        "the ENTRYPOINT runs the binary these tests run"
    );

    // The builder: the official Rust image at a version the workspace accepts.
    let builder = docker.stage("builder");
    let (image, tag) = builder
        .base
        .rsplit_once(':')
        .expect("a tagged builder image");
    assert!(
        image == "rust" || image.ends_with("/rust"),
        "the builder is the official Rust image, not {image}"
    );
    let toolchain = tag.split('-').next().expect("a version");
    assert_eq!(
        toolchain.split('.').count(),
        3,
        "the builder pins a full toolchain version, not {tag}"
    );
    assert!(
        version_triple(toolchain) >= version_triple(&workspace.rust_version),
        "builder toolchain {toolchain} is older than rust-version {}",
        workspace.rust_version
    );
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned()))
        .arg("--version")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    if !rustc.starts_with(&format!("rustc {toolchain} ")) {
        eprintln!("note: the image builds with Rust {toolchain}; this machine has {rustc}");
    }

    // The build command: the release profile, the lockfile as committed, the one binary.
    let build = builder
        .all("RUN")
        .find(|run| run.contains("cargo build"))
        .expect("a RUN with cargo build");
    let words: Vec<&str> = build.split_whitespace().collect();
    let after = |flag: &str| {
        words
            .iter()
            .position(|word| *word == flag)
            .map(|at| words[at + 1])
    };
    assert!(words.contains(&"--locked"), "cargo build --locked: {build}");
    assert!(
        words.contains(&"--release"),
        "cargo build --release: {build}"
    );
    assert_eq!(
        after("-p"),
        Some(package.as_str()),
        "the package that builds {bin}"
    );
    assert_eq!(
        after("--bin"),
        Some(bin.as_str()),
        "the ENTRYPOINT's binary"
    );
    assert!(
        build.contains(&format!("target/release/{bin}")),
        "the release binary leaves the builder"
    );

    // The runtime: the binary copied from the builder to where the ENTRYPOINT runs it.
    let entrypoint = docker.entrypoint();
    let copied = docker
        .runtime()
        .all("COPY")
        .filter_map(|copy| copy.strip_prefix("--from=builder "))
        .map(|copy| {
            let parts: Vec<&str> = copy.split_whitespace().collect();
            parts[parts.len() - 1].to_owned()
        })
        .collect::<Vec<_>>();
    assert_eq!(
        copied,
        [entrypoint[0].clone()],
        "the runtime stage copies exactly the ENTRYPOINT's binary from the builder"
    );
    assert_eq!(
        entrypoint[1..3],
        ["serve".to_owned(), "--config".to_owned()],
        "the ENTRYPOINT serves with a configuration file"
    );
    assert!(
        docker.config_path().is_absolute(),
        "a fixed configuration path"
    );
}

// --- the build context ---

/// One `.dockerignore` rule.
struct Rule {
    exclude: bool,
    segments: Vec<String>,
}

fn dockerignore() -> Vec<Rule> {
    read(&repo_root().join(".dockerignore"))
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (exclude, pattern) = match line.strip_prefix('!') {
                Some(pattern) => (false, pattern),
                None => (true, line),
            };
            let pattern = pattern.trim_matches('/');
            Rule {
                exclude,
                segments: pattern.split('/').map(str::to_owned).collect(),
            }
        })
        .collect()
}

/// Glob of one path segment: `*` any run of characters, `?` one.
fn segment_matches(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            segment_matches(&pattern[1..], name)
                || (!name.is_empty() && segment_matches(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => segment_matches(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => segment_matches(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// A pattern against a whole path; `**` spans any number of segments.
fn path_matches(pattern: &[String], path: &[&str]) -> bool {
    match pattern.first().map(String::as_str) {
        None => path.is_empty(),
        Some("**") => (0..=path.len()).any(|skip| path_matches(&pattern[1..], &path[skip..])),
        Some(segment) => {
            !path.is_empty()
                && segment_matches(segment.as_bytes(), path[0].as_bytes())
                && path_matches(&pattern[1..], &path[1..])
        }
    }
}

/// Whether the build context leaves `path` out, as Docker decides: the last rule that matches
/// the path or one of its parent folders wins.
fn excluded(rules: &[Rule], path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    let mut decision = false;
    for rule in rules {
        if (1..=segments.len()).any(|end| path_matches(&rule.segments, &segments[..end])) {
            decision = rule.exclude;
        }
    }
    decision
}

/// Every file below `dir`, relative to the repository root.
fn files_below(dir: &Path, out: &mut Vec<String>) {
    let root = repo_root();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files_below(&path, out);
        } else {
            let relative = path.strip_prefix(&root).expect("inside the repository");
            out.push(relative.to_string_lossy().into_owned());
        }
    }
}

#[test]
fn the_build_context_holds_a_workspace_cargo_can_load_and_nothing_else() {
    let root = repo_root();
    let rules = dockerignore();
    for left_out in [
        "target/release/cosmogate",
        ".git/HEAD",
        "bench/results/README.md",
        "tests/rig/node_modules/x/package.json",
        "tests/.venv/bin/python",
        "docs/deployment.md",
        "deploy/kubernetes/cosmogate.toml",
        "crates/server/target/debug/x",
        "crates/server/node_modules/x",
    ] {
        assert!(
            excluded(&rules, left_out),
            "{left_out} is sent to the builder"
        );
    }

    // Rebuild the builder's /src from its COPY instructions, through .dockerignore.
    let docker = Dockerfile::load();
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut copied = 0;
    for copy in docker.stage("builder").all("COPY") {
        assert!(!copy.starts_with("--"), "COPY flags in the builder: {copy}");
        let words: Vec<&str> = copy.split_whitespace().collect();
        let (destination, sources) = words.split_last().expect("COPY <src>… <dest>");
        for source in sources {
            let source = source.trim_end_matches('/');
            let path = root.join(source);
            assert!(path.exists(), "COPY {source}: no such file");
            assert!(
                !excluded(&rules, source),
                "COPY {source} is left out by .dockerignore"
            );
            let mut files = Vec::new();
            if path.is_dir() {
                files_below(&path, &mut files);
            } else {
                files.push(source.to_owned());
            }
            for file in files.iter().filter(|file| !excluded(&rules, file)) {
                let below = if path.is_dir() {
                    Path::new(file)
                        .strip_prefix(source)
                        .expect("below the source")
                } else {
                    Path::new(file).file_name().expect("a file name").as_ref()
                };
                let target = scratch.path().join(destination).join(below);
                std::fs::create_dir_all(target.parent().expect("a parent")).expect("mkdir");
                std::fs::copy(root.join(file), target).expect("copy");
                copied += 1;
            }
        }
    }
    assert!(copied > 0, "the builder copies something");

    // cargo reads that tree as the whole workspace, against the committed lockfile.
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--locked", "--offline", "--format-version", "1"])
        .arg("--manifest-path")
        .arg(scratch.path().join("Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(output.status.success(), "{}", describe(&output));
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata JSON");
    let bin = docker.binary_name();
    let builds_it = list(&metadata["packages"], "packages")
        .iter()
        .any(|package| {
            package["name"] == Workspace::load().binaries[&bin].as_str()
                && list(&package["targets"], "targets").iter().any(|target| {
                    target["name"] == bin.as_str() && target["kind"] == serde_json::json!(["bin"])
                })
        });
    assert!(builds_it, "the copied workspace has the {bin} binary");
}

// --- the runtime base ---

/// The library packages of `gcr.io/distroless/cc-debian12`, from the distroless project's own
/// definition (base/config.bzl: libc6, libssl3; cc/config.bzl: libgcc-s1, gcc-12-base,
/// libstdc++6, libgomp1). The image itself cannot be pulled here, so this list is that
/// project's word, not something this test observed.
const DISTROLESS_CC_DEBIAN12: [&str; 6] = [
    "libc6",
    "libssl3",
    "libgcc-s1",
    "gcc-12-base",
    "libstdc++6",
    "libgomp1",
];

fn os_release(field: &str) -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix('=')?;
        Some(value.trim_matches('"').to_owned())
    })
}

#[test]
fn the_runtime_base_has_every_library_the_binary_links() {
    let docker = Dockerfile::load();
    let runtime = &docker.runtime().base;
    let release = runtime
        .strip_prefix("gcr.io/distroless/cc-debian")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| {
            panic!("this test knows the packages of distroless cc only, not {runtime}")
        });
    assert_eq!(release, "12", "update DISTROLESS_CC_DEBIAN12 for {runtime}");
    if os_release("ID").as_deref() != Some("debian")
        || os_release("VERSION_ID").as_deref() != Some(release)
    {
        eprintln!("skipped: the libraries are looked up with dpkg on Debian {release} only");
        return;
    }
    // Built here on the runtime's Debian release, so what it links is what the image's binary
    // links, and the builder must be that release too.
    let codename = os_release("VERSION_CODENAME").expect("a codename");
    assert!(
        docker
            .stage("builder")
            .base
            .ends_with(&format!("-{codename}")),
        "the builder is Debian {release} ({codename}), as the runtime"
    );

    let output = match Command::new("ldd").arg(COSMOGATE).output() {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: no ldd");
            return;
        }
        Err(err) => panic!("run ldd: {err}"),
    };
    assert!(output.status.success(), "ldd: {}", describe(&output));
    let listing = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut packages = BTreeSet::new();
    for line in listing.lines().map(str::trim) {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or `/lib64/ld-linux… (0x…)`
        let path = line.split_once("=> ").map_or(line, |(_, path)| path);
        let path = path.split(" (").next().expect("a path");
        if !path.starts_with('/') {
            assert!(line.starts_with("linux-vdso"), "unresolved: {line}");
            continue;
        }
        let owner = Command::new("dpkg")
            .args(["-S", path])
            .output()
            .expect("dpkg -S");
        assert!(
            owner.status.success(),
            "no package owns {path}: {}",
            describe(&owner)
        );
        let owner = String::from_utf8_lossy(&owner.stdout).into_owned();
        let package = owner.split([':', ',']).next().expect("a package").trim();
        packages.insert(package.to_owned());
    }
    assert!(!packages.is_empty(), "ldd listed nothing: {listing}");
    let missing: Vec<&String> = packages
        .iter()
        .filter(|package| !DISTROLESS_CC_DEBIAN12.contains(&package.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{runtime} lacks {missing:?}, which the binary links:\n{listing}"
    );
}

// --- shutdown ---

/// `const NAME: Duration = Duration::from_secs(N);` in a source file of the server.
fn seconds_constant(file: &str, name: &str) -> u64 {
    let source = read(&repo_root().join(file));
    let needle = format!("const {name}: Duration = Duration::from_secs(");
    let at = source
        .find(&needle)
        .unwrap_or_else(|| panic!("{file} no longer defines {name} in seconds"));
    let rest = &source[at + needle.len()..];
    rest[..rest.find(')').expect("a closing parenthesis")]
        .parse()
        .unwrap_or_else(|_| panic!("{name} in {file}"))
}

#[test]
fn the_termination_grace_period_covers_the_drain_and_the_last_audit_records() {
    let drain = seconds_constant("crates/server/src/serve.rs", "DRAIN_TIMEOUT");
    let flush = seconds_constant("crates/server/src/audit/sink.rs", "FLUSH_TIMEOUT");
    let written = Manifests::as_written();
    let deployment = written.one("Deployment");
    let spec = &pod_template(deployment)["spec"];
    let grace = number(&spec["terminationGracePeriodSeconds"], "grace period");
    let pre_stop = &the_container(deployment)["lifecycle"]["preStop"];
    let sleep = match &pre_stop["sleep"]["seconds"] {
        Value::Null => {
            assert!(pre_stop.is_null(), "a preStop other than sleep: {pre_stop}");
            0
        }
        seconds => number(seconds, "preStop sleep"),
    };
    assert!(
        grace > sleep + drain + flush,
        "terminationGracePeriodSeconds {grace} must exceed preStop {sleep} s + drain {drain} s + \
         audit flush {flush} s, or the kubelet kills cosmogate with records unwritten"
    );
}

// --- the documentation ---

#[test]
fn the_deployment_guide_names_the_federated_subject_of_the_shipped_service_account() {
    let written = Manifests::as_written();
    let account = text(
        &written.one("ServiceAccount")["metadata"]["name"],
        "ServiceAccount name",
    );
    let subject = format!("system:serviceaccount:{}:{account}", written.namespace);
    for doc in ["docs/deployment.md", "docs/deployment-identity.md"] {
        assert!(
            read(&repo_root().join(doc)).contains(&subject),
            "{doc} does not name the federated credential's subject {subject}"
        );
    }
}
