//! The Kubernetes example (`deploy/kubernetes/`): every manifest passes the
//! Kubernetes API schemas (kubernetes-validate from PyPI, strict, offline:
//! it ships the schemas), the doorward config in each ConfigMap passes
//! `doorward check`, and the pods are what the README promises: non-root,
//! read-only root filesystems, the app on loopback, doorward's probes on
//! its real health and readiness paths, and only doorward's port exposed.

use std::path::{Path, PathBuf};
use std::process::Command;

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes");
const PYENV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/pyenv/bin");
/// Where the manifests mount doorward's Secret.
const SECRETS: &str = "/run/secrets/doorward/";

fn manifests() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![PathBuf::from(DEPLOY)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                found.push(path);
            }
        }
    }
    found.sort();
    assert!(found.len() >= 9, "the example's manifests: {found:?}");
    found
}

/// A tool from the test venv; missing is a failure that says how to get it.
fn pyenv_tool(name: &str) -> PathBuf {
    let path = Path::new(PYENV).join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/test.sh (it installs tests/peers/kubernetes/requirements.txt into target/pyenv)",
        path.display()
    );
    path
}

fn validate(files: &[PathBuf], version: &str) -> std::process::Output {
    Command::new(pyenv_tool("kubernetes-validate"))
        .args(["--strict", "--kubernetes-version", version])
        .args(files)
        .output()
        .expect("run kubernetes-validate")
}

#[test]
fn every_manifest_passes_the_kubernetes_schemas_strictly() {
    let files = manifests();
    for version in ["1.30.0", "1.37.0"] {
        let output = validate(&files, version);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "Kubernetes {version}:\n{text}");
        for file in &files {
            assert!(
                text.contains(&format!("{} passed", file.display())),
                "{} not validated:\n{text}",
                file.display()
            );
        }
    }
    // The validator does refuse: a misspelt field fails strict validation.
    let deployment = std::fs::read_to_string(Path::new(DEPLOY).join("sidecar/deployment.yaml")).expect("read");
    let dir = tempfile::tempdir().expect("dir");
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, deployment.replace("  replicas: 1", "  replica: 1")).expect("write");
    let output = validate(&[broken], "1.37.0");
    assert!(!output.status.success(), "a misspelt field must fail");
}

/// The `doorward.toml` block of a ConfigMap manifest.
fn embedded_config(manifest: &str) -> String {
    let mut lines = manifest.lines().skip_while(|l| l.trim() != "doorward.toml: |").skip(1);
    let mut out = String::new();
    for line in lines.by_ref() {
        if !line.is_empty() && !line.starts_with("    ") {
            break;
        }
        out.push_str(line.strip_prefix("    ").unwrap_or(line));
        out.push('\n');
    }
    assert!(out.contains("[server]"), "no doorward.toml in:\n{manifest}");
    out
}

fn keygen(args: &[&str]) -> Vec<u8> {
    let output = Command::new(env!("CARGO_BIN_EXE_doorward"))
        .arg("keygen")
        .args(args)
        .output()
        .expect("run doorward keygen");
    assert!(output.status.success());
    output.stdout
}

#[test]
fn the_configmaps_pass_doorward_check_with_their_secrets_as_files() {
    for variant in ["sidecar", "replicas"] {
        let manifest = std::fs::read_to_string(Path::new(DEPLOY).join(variant).join("configmap.yaml")).expect("read");
        let config = embedded_config(&manifest);
        // The Secret's files, made as the README says, in a directory
        // standing for the mount.
        let secrets = tempfile::tempdir().expect("dir");
        let write = |name: &str, bytes: &[u8]| std::fs::write(secrets.path().join(name), bytes).expect("write");
        write("session-key", &keygen(&[]));
        write("assertion-key.pem", &keygen(&["--signing"]));
        write("client-secret", b"a-client-secret-from-the-idp");
        write("db-password", b"a-database-password");
        write("db-ca.pem", b"");
        let mount = format!("{}/", secrets.path().display());
        let config = config.replace(SECRETS, &mount);
        let file = crate::support::write_config(&config);
        let output = Command::new(env!("CARGO_BIN_EXE_doorward"))
            .args(["check", "-c"])
            .arg(file.path())
            .output()
            .expect("run doorward check");
        assert!(
            output.status.success(),
            "{variant}: {}\n{config}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Reads every manifest with PyYAML and checks what the README promises.
const POD_CHECKS: &str = r#"
import sys, yaml
docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]
deployments = [d for d in docs if d["kind"] == "Deployment"]
services = [d for d in docs if d["kind"] == "Service"]
assert len(deployments) == 2 and len(services) == 2, [d["kind"] for d in docs]
assert sorted(d["spec"]["replicas"] for d in deployments) == [1, 2]
for d in deployments:
    pod = d["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True, "non-root"
    assert pod["automountServiceAccountToken"] is False
    names = [c["name"] for c in pod["containers"]]
    assert names == ["app", "doorward"], names
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
    app, doorward = pod["containers"]
    assert "ports" not in app, "the app exposes no port"
    assert "127.0.0.1" in app["command"], "the app listens on loopback"
    assert doorward["livenessProbe"]["httpGet"]["path"] == "/_doorward/healthz"
    assert doorward["readinessProbe"]["httpGet"]["path"] == "/_doorward/readyz"
    mounts = {m["mountPath"]: m for m in doorward["volumeMounts"]}
    assert mounts["/run/secrets/doorward"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/run/secrets/doorward"]["name"]]["secret"]["secretName"] == "doorward-secrets"
    assert volumes[mounts["/etc/doorward"]["name"]]["configMap"]["name"] == "doorward-config"
    http = [p for p in doorward["ports"] if p["name"] == "http"]
    assert http == [{"name": "http", "containerPort": 4180}], doorward["ports"]
for s in services:
    assert [p["targetPort"] for p in s["spec"]["ports"]] == ["http"], "only doorward's port"
print("ok")
"#;

#[test]
fn the_pods_run_locked_down_with_the_app_behind_doorward() {
    let output = Command::new(pyenv_tool("python3"))
        .args(["-c", POD_CHECKS])
        .args(manifests())
        .output()
        .expect("run python");
    assert!(
        output.status.success() && output.stdout.starts_with(b"ok"),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
