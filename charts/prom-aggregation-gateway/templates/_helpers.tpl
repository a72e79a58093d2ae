{{/* Names, labels and the gateway's arguments, shared by the templates. */}}

{{- define "pag.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pag.fullname" -}}
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

{{- define "pag.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "pag.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pag.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pag.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "pag.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "pag.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pag.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "pag.authSecretName" -}}
{{- default (printf "%s-auth" (include "pag.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{- define "pag.authEnabled" -}}
{{- if or .Values.auth.existingSecret .Values.auth.users }}true{{ end }}
{{- end }}

{{/* Where probes and monitors go: the lifecycle port when there is one. */}}
{{- define "pag.probePort" -}}
{{- if .Values.controller.lifecyclePort }}lifecycle{{ else }}http{{ end }}
{{- end }}

{{- define "pag.scheme" -}}
{{- if .Values.tls.enabled }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{/* The gateway's flags, each quoted: values come from users. */}}
{{- define "pag.args" -}}
{{- $c := .Values.controller }}
{{- $cfg := $c.config }}
- {{ printf "--listen=0.0.0.0:%v" ($c.apiPort) | quote }}
{{- if $c.grpcPort }}
- {{ printf "--grpc-listen=0.0.0.0:%v" ($c.grpcPort) | quote }}
{{- end }}
{{- if $c.lifecyclePort }}
- {{ printf "--lifecycle-listen=0.0.0.0:%v" ($c.lifecyclePort) | quote }}
{{- end }}
- {{ printf "--gauge-mode=%v" ($cfg.gaugeMode) | quote }}
- {{ printf "--max-series=%v" (int64 $cfg.maxSeries) | quote }}
- {{ printf "--max-series-per-push=%v" (int64 $cfg.maxSeriesPerPush) | quote }}
- {{ printf "--max-body-bytes=%v" ($cfg.maxBodyBytes) | quote }}
- {{ printf "--max-in-flight=%v" (int64 $cfg.maxInFlight) | quote }}
- {{ printf "--request-timeout=%v" ($cfg.requestTimeout) | quote }}
- {{ printf "--cors=%v" ($cfg.cors) | quote }}
- {{ printf "--log-format=%v" ($cfg.logFormat) | quote }}
- {{ printf "--shutdown-timeout=%v" ($c.shutdownTimeout) | quote }}
{{- with $cfg.seriesTtl }}
- {{ printf "--series-ttl=%v" (.) | quote }}
{{- end }}
{{- range $cfg.dropLabels }}
- {{ printf "--drop-label=%v" (.) | quote }}
{{- end }}
{{- if or .Values.rules.list .Values.rules.existingConfigMap }}
- --rules=/etc/prom-aggregation-gateway/rules/rules.yml
- {{ printf "--rules-check-interval=%v" (.Values.rules.checkInterval) | quote }}
{{- end }}
{{- with .Values.remoteWrite.targets }}
- --remote-write-config=/etc/prom-aggregation-gateway/remote-write/config/remote-write.yml
- {{ printf "--remote-write-interval=%v" ($.Values.remoteWrite.interval) | quote }}
- {{ printf "--remote-write-max-samples-per-send=%v" (int64 $.Values.remoteWrite.maxSamplesPerSend) | quote }}
- {{ printf "--replica-label=%v" ($.Values.remoteWrite.replicaLabel) | quote }}
{{- end }}
{{- if .Values.persistence.enabled }}
- --persistence-file=/var/lib/prom-aggregation-gateway/aggregate.snap
- {{ printf "--persistence-interval=%v" (.Values.persistence.interval) | quote }}
{{- end }}
{{- if .Values.tls.enabled }}
- --tls-cert=/etc/prom-aggregation-gateway/tls/tls.crt
- --tls-key=/etc/prom-aggregation-gateway/tls/tls.key
{{- if .Values.tls.clientCA }}
- --tls-client-ca=/etc/prom-aggregation-gateway/tls/ca.crt
{{- end }}
{{- end }}
{{- range $c.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/* Refuse settings that cannot work, at render time. */}}
{{- define "pag.validate" -}}
{{- if .Values.persistence.enabled }}
{{- if or (ne .Values.controller.type "Deployment") .Values.autoscaling.enabled (gt (int .Values.controller.replicaCount) 1) }}
{{- fail "persistence.enabled needs a single-replica Deployment (one snapshot writer per volume): set controller.type=Deployment, controller.replicaCount=1, autoscaling.enabled=false" }}
{{- end }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) }}
{{- fail "tls.enabled needs tls.secretName (a kubernetes.io/tls Secret)" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (ne .Values.controller.type "Deployment") }}
{{- fail "autoscaling.enabled needs controller.type=Deployment" }}
{{- end }}
{{- end }}

{{/* The container's environment: credentials from the Secret, OTLP, then
     the user's (controller.env as a map, controller.extraEnv as EnvVars). */}}
{{- define "pag.env" -}}
{{- if include "pag.authEnabled" . }}
- name: PAG_AUTH_USERS
  valueFrom:
    secretKeyRef:
      name: {{ include "pag.authSecretName" . }}
      key: auth-users
- name: PAG_ADMIN_USERS
  valueFrom:
    secretKeyRef:
      name: {{ include "pag.authSecretName" . }}
      key: admin-users
      optional: true
{{- end }}
{{- if .Values.remoteWrite.targets }}
{{- /* Each pod's replica label value: its name, unique among the pods. */}}
- name: PAG_REPLICA
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}
{{- with .Values.otlp.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ $.Values.otlp.serviceName | quote }}
{{- end }}
{{- range $key, $value := .Values.controller.env }}
{{- if not (kindIs "invalid" $value) }}
- name: {{ $key | quote }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- with .Values.controller.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The --remote-write-config file of remoteWrite.targets: secrets as the
     files of each target's volume (remote-write/<index>/). */}}
{{- define "pag.remoteWriteFile" -}}
{{- $targets := list }}
{{- range $i, $t := .Values.remoteWrite.targets }}
{{- $dir := printf "/etc/prom-aggregation-gateway/remote-write/%d" $i }}
{{- $out := dict "url" $t.url }}
{{- with $t.name }}{{ $_ := set $out "name" . }}{{ end }}
{{- with $t.protocol }}{{ $_ := set $out "protocol" (toString .) }}{{ end }}
{{- with $t.headers }}{{ $_ := set $out "headers" . }}{{ end }}
{{- with $t.timeout }}{{ $_ := set $out "timeout" . }}{{ end }}
{{- with $t.basicAuth }}
{{- $_ := set $out "basic_auth" (dict "username" .username "password_file" (printf "%s/password" $dir)) }}
{{- end }}
{{- with $t.bearerTokenSecret }}
{{- $_ := set $out "bearer_token_file" (printf "%s/token" $dir) }}
{{- end }}
{{- with $t.tls }}
{{- $tls := dict "ca_file" (printf "%s/ca.crt" $dir) }}
{{- if .clientCert }}
{{- $_ := set $tls "cert_file" (printf "%s/tls.crt" $dir) }}
{{- $_ := set $tls "key_file" (printf "%s/tls.key" $dir) }}
{{- end }}
{{- $_ := set $out "tls" $tls }}
{{- end }}
{{- $targets = append $targets $out }}
{{- end }}
{{- dict "targets" $targets | toYaml }}
{{- end }}

{{/* Whether a remote-write target needs a volume of secrets. */}}
{{- define "pag.remoteWriteSecrets" -}}
{{- if or .basicAuth .bearerTokenSecret .tls }}yes{{ end }}
{{- end }}
