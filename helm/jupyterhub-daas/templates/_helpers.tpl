{{/* Names, labels and the few decisions several templates share. */}}

{{- define "daas.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Object names: <fullname>-<part>; 50 + 13 characters stay within a DNS label. */}}
{{- define "daas.hub.name" -}}{{ include "daas.fullname" . }}-hub{{- end -}}
{{- define "daas.proxy.name" -}}{{ include "daas.fullname" . }}-proxy{{- end -}}
{{- define "daas.proxyApi.name" -}}{{ include "daas.fullname" . }}-proxy-api{{- end -}}
{{- define "daas.proxyPublic.name" -}}{{ include "daas.fullname" . }}-proxy-public{{- end -}}
{{- define "daas.secret.name" -}}{{ include "daas.fullname" . }}-secret{{- end -}}
{{- define "daas.oidcSecret.name" -}}{{ include "daas.fullname" . }}-oidc{{- end -}}
{{- define "daas.serviceAccount.name" -}}{{ default (printf "%s-hub" (include "daas.fullname" .)) .Values.serviceAccount.name }}{{- end -}}

{{/* The people's pods' namespace. */}}
{{- define "daas.userNamespace" -}}{{ default .Release.Namespace .Values.kubernetes.namespace }}{{- end -}}

{{- define "daas.selectorLabels" -}}
app.kubernetes.io/name: {{ default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object; call with (dict "root" $ "component" "hub"). */}}
{{- define "daas.labels" -}}
{{ include "daas.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* What selects one component's pods; call with (dict "root" $ "component" "hub"). */}}
{{- define "daas.componentSelector" -}}
{{ include "daas.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "daas.image" -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}

{{/*
  A generated secret value that survives upgrades: the one the chart's Secret already holds (lookup
  finds it on a live cluster), else a new random one. Returns the base64 form for Secret.data.
  Call with (dict "root" $ "key" "proxy-token" "fresh" <a new value>).
*/}}
{{- define "daas.keptSecret" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace (include "daas.secret.name" .root) -}}
{{- $kept := dig "data" .key "" ($existing | default dict) -}}
{{- if $kept -}}{{ $kept }}{{- else -}}{{ .fresh | b64enc }}{{- end -}}
{{- end -}}

{{/*
  The PodDisruptionBudget API: policy/v1 where the cluster serves it (1.21+), policy/v1beta1 on 1.20.
  A live cluster lists kinds (policy/v1/PodDisruptionBudget); an offline render knows only the
  Kubernetes version it is given, so that decides when the kind list is silent.
*/}}
{{- define "daas.pdb.apiVersion" -}}
{{- if .Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget" -}}
policy/v1
{{- else if .Capabilities.APIVersions.Has "policy/v1beta1/PodDisruptionBudget" -}}
policy/v1beta1
{{- else if semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version -}}
policy/v1
{{- else -}}
policy/v1beta1
{{- end -}}
{{- end -}}

{{/*
  A peer in the release's namespace, seen from a policy in the people's namespace: a podSelector, with
  a namespaceSelector when the namespaces differ (the kubernetes.io/metadata.name label is set by
  Kubernetes 1.21+; on 1.20 the site labels the namespace). Call with (dict "root" $ "component" "hub"
  "from" <namespace of the policy>).
*/}}
{{- define "daas.peer" -}}
- podSelector:
    matchLabels:
      {{- include "daas.componentSelector" . | nindent 6 }}
  {{- if ne .from .root.Release.Namespace }}
  namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .root.Release.Namespace }}
  {{- end }}
{{- end -}}

{{/* The people's pods, seen from a policy in the release's namespace (see daas.peer). */}}
{{- define "daas.userPeer" -}}
- podSelector:
    matchLabels:
      {{- toYaml .Values.singleuser.podLabels | nindent 6 }}
  {{- if ne (include "daas.userNamespace" .) .Release.Namespace }}
  namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ include "daas.userNamespace" . }}
  {{- end }}
{{- end -}}

{{/* The services the chart knows: values key -> JupyterHub name (read with fromYaml). */}}
{{- define "daas.serviceNames" -}}
data: daas-data
dask: daas-dask
{{- end -}}

{{/*
  One of the release's Services as a pod of its namespace reaches it without cluster DNS:
  $(<NAME>_SERVICE_HOST):$(<NAME>_SERVICE_PORT). Kubernetes gives every pod these variables for each Service
  that exists when the pod is made (Helm makes Services before Deployments) and expands them in a container's
  command, args and env values. Call with the Service's name.
*/}}
{{- define "daas.serviceAddress" -}}
{{- $variable := . | upper | replace "-" "_" -}}
$({{ $variable }}_SERVICE_HOST):$({{ $variable }}_SERVICE_PORT)
{{- end -}}

