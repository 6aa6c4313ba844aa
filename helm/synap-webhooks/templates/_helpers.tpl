{{/* The chart name, truncated to fit Kubernetes names. */}}
{{- define "synap.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every resource name. */}}
{{- define "synap.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "synap.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "synap.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: synap-webhooks
{{- end }}

{{/* Selector labels of one stage; call with (dict "root" $ "stage" "ingest"). */}}
{{- define "synap.selectorLabels" -}}
app.kubernetes.io/name: {{ include "synap.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .stage }}
{{- end }}

{{- define "synap.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "synap.secretName" -}}
{{- default (printf "%s-secrets" (include "synap.fullname" .)) .Values.existingSecret }}
{{- end }}

{{/* The Secret's encryption keys: `encryption-keys` (a list, the first seals) or
     `encryption-key`. Never generated: a render that cannot see the cluster (`helm template`,
     GitOps) would make a new key on every run, and every stored secret would become unreadable.
     So the render fails unless the keys are given or an existing Secret holds them. */}}
{{- define "synap.encryptionKeys" -}}
{{- $s := .Values.secrets }}
{{- $keys := $s.encryptionKeys | default list }}
{{- if .Values.existingSecret }}
{{- if or $s.encryptionKey $keys }}
{{- fail (printf "existingSecret is set (%s): put the encryption keys in that Secret (key encryption-key, or encryption-keys as [\"new\", \"old\"]); secrets.encryptionKey and secrets.encryptionKeys would be ignored" .Values.existingSecret) }}
{{- end }}
{{- else if and $s.encryptionKey $keys }}
{{- fail "set secrets.encryptionKey or secrets.encryptionKeys, not both: encryptionKey is the one-key form of encryptionKeys" }}
{{- else if $keys }}
encryption-keys: {{ toJson $keys | quote }}
{{- else if $s.encryptionKey }}
encryption-key: {{ $s.encryptionKey | quote }}
{{- else }}
{{- fail (printf "secrets.encryptionKey or secrets.encryptionKeys is required (or existingSecret naming a Secret that holds them). The chart never generates the key: a render that cannot read the cluster (helm template, GitOps) would replace it, and every stored secret would become unreadable. New install: openssl rand -base64 32. A release whose key an earlier chart generated: pass that key, kubectl get secret %s -o jsonpath='{.data.encryption-key}' | base64 -d" (include "synap.secretName" .)) }}
{{- end }}
{{- end }}

{{- define "synap.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "synap.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* synap.toml: the configuration every stage reads. */}}
{{- define "synap.configToml" -}}
{{- $config := deepCopy .Values.config }}
{{- $telemetry := default dict $config.telemetry }}
{{- $_ := set $telemetry "listen_addr" (printf "0.0.0.0:%v" .Values.metrics.port) }}
{{- $_ := set $config "telemetry" $telemetry }}
{{- $control := default dict $config.control }}
{{- $_ := set $control "listen_addr" (printf "0.0.0.0:%v" .Values.control.service.port) }}
{{- with .Values.control.tls }}
{{- if .secretName }}
{{- $_ := set $control "tls_cert_file" "/etc/synap/control-tls/tls.crt" }}
{{- $_ := set $control "tls_key_file" "/etc/synap/control-tls/tls.key" }}
{{- with .clientCaKey }}
{{- $_ := set $control "tls_client_ca_file" (printf "/etc/synap/control-tls/%s" .) }}
{{- end }}
{{- end }}
{{- $_ := set $control "allow_plaintext" (and (not .secretName) .allowPlaintext) }}
{{- end }}
{{- $_ := set $config "control" $control }}
{{- $portal := default dict $config.portal }}
{{- $_ := set $portal "listen_addr" (printf "0.0.0.0:%v" .Values.control.service.portalPort) }}
{{- $_ := set $config "portal" $portal }}
{{- range $section, $keys := $config }}
[{{ $section }}]
{{- range $key, $value := $keys }}
{{- if not (kindIs "map" $value) }}
{{ toJson $key }} = {{ include "synap.tomlValue" $value }}
{{- end }}
{{- end }}
{{- range $key, $value := $keys }}
{{- if kindIs "map" $value }}
[{{ $section }}.{{ toJson $key }}]
{{- range $k, $v := $value }}
{{ toJson $k }} = {{ include "synap.tomlValue" $v }}
{{- end }}
{{- end }}
{{- end }}
{{ end }}
{{- end }}

{{/* One TOML value. Helm reads every YAML number as a float; whole ones are written as
     integers, which the services' integer keys require. */}}
{{- define "synap.tomlValue" -}}
{{- if kindIs "float64" . }}
{{- if eq . (float64 (int64 .)) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else if kindIs "slice" . }}
{{- $items := list }}
{{- range . }}{{ $items = append $items (include "synap.tomlValue" .) }}{{ end }}
{{- printf "[%s]" (join ", " $items) }}
{{- else }}
{{- toJson . }}
{{- end }}
{{- end }}

{{/* Environment of every container: the secrets, by key, and the operator's extras. */}}
{{- define "synap.env" -}}
- name: SYNAP_CONFIG
  value: /etc/synap/synap.toml
- name: SYNAP_DATABASE__URL
  valueFrom:
    secretKeyRef: { name: {{ include "synap.secretName" . }}, key: database-url }
- name: SYNAP_ENCRYPTION__KEY
  valueFrom:
    secretKeyRef: { name: {{ include "synap.secretName" . }}, key: encryption-key, optional: true }
- name: SYNAP_ENCRYPTION__KEYS
  valueFrom:
    secretKeyRef: { name: {{ include "synap.secretName" . }}, key: encryption-keys, optional: true }
- name: SYNAP_CONTROL__ADMIN_TOKEN
  valueFrom:
    secretKeyRef: { name: {{ include "synap.secretName" . }}, key: admin-token }
- name: SYNAP_KAFKA__SASL_USERNAME
  valueFrom:
    secretKeyRef: { name: {{ include "synap.secretName" . }}, key: kafka-sasl-username, optional: true }
- name: SYNAP_KAFKA__SASL_PASSWORD
  valueFrom:
    secretKeyRef: { name: {{ include "synap.secretName" . }}, key: kafka-sasl-password, optional: true }
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "synap.volumeMounts" -}}
- name: config
  mountPath: /etc/synap/synap.toml
  subPath: synap.toml
  readOnly: true
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The consumer topics and group of a Kafka stage, for KEDA. */}}
{{- define "synap.kedaTopic" -}}
{{- $prefix := .root.Values.config.kafka.topic_prefix }}
{{- if eq .stage "ingest" }}{{ printf "%sinbound" $prefix }}
{{- else if eq .stage "sender" }}{{ printf "%sdeliveries" $prefix }}
{{- end }}
{{- end }}

{{/* Whether control serves the web portal (config.portal.public_url is set). */}}
{{- define "synap.portalEnabled" -}}
{{- if and .Values.config.portal .Values.config.portal.public_url }}true{{ end }}
{{- end }}
