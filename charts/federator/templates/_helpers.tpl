{{/*
Helpers of the federator chart. Every helper is prefixed with the chart name, names are cut to 63
characters (the DNS-1123 label limit), and helpers fail loudly on bad input instead of rendering
something the API server or the operator would reject later.
*/}}

{{/*
federator.name: the chart name, or nameOverride.
*/}}
{{- define "federator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
federator.fullname: the base name of every resource: fullnameOverride, else "<release>-<name>",
else the release name alone when it already contains the chart name.
*/}}
{{- define "federator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "federator.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
federator.componentName: "<fullname>-<suffix>", cut to 63 characters.
Call with (dict "context" $ "suffix" "kafka").
*/}}
{{- define "federator.componentName" -}}
{{- if not (and (hasKey . "context") .suffix) -}}
{{- fail "federator.componentName: call with (dict \"context\" $ \"suffix\" \"...\")" -}}
{{- end -}}
{{- printf "%s-%s" (include "federator.fullname" .context | trunc 50 | trimSuffix "-") .suffix | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
federator.chart: "<name>-<version>" for the helm.sh/chart label ("+" is not allowed in labels).
*/}}
{{- define "federator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
federator.selectorLabels: the labels the Deployment selects its pods by and the Service targets
(immutable once installed: never add to them).
*/}}
{{- define "federator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "federator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/component: operator
{{- end -}}

{{/*
federator.labels: the common labels of every resource of the chart (one block, never repeated
by hand).
*/}}
{{- define "federator.labels" -}}
{{ include "federator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: federator
helm.sh/chart: {{ include "federator.chart" . }}
{{- end -}}

{{/*
federator.serviceAccountName: the ServiceAccount the operator runs as.
*/}}
{{- define "federator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "federator.fullname" .) .Values.serviceAccount.name | trunc 63 | trimSuffix "-" -}}
{{- else if .Values.serviceAccount.name -}}
{{- .Values.serviceAccount.name -}}
{{- else -}}
{{- fail "serviceAccount.name is required when serviceAccount.create is false" -}}
{{- end -}}
{{- end -}}

{{/*
federator.image: "repository@digest" when a digest is set, else "repository:tag" (tag defaults
to the chart's appVersion).
*/}}
{{- define "federator.image" -}}
{{- $img := .Values.image -}}
{{- if not $img.repository -}}
{{- fail "image.repository must not be empty" -}}
{{- end -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (toString ($img.tag | default .Chart.AppVersion)) -}}
{{- end -}}
{{- end -}}

{{/*
federator.clusterWide: "true" when watchNamespaces is empty (ClusterRole mode), else "".
*/}}
{{- define "federator.clusterWide" -}}
{{- if not .Values.watchNamespaces -}}true{{- end -}}
{{- end -}}

{{/*
federator.kafkaOnlyNamespaces: JSON list of the Kafka clusters' namespaces that are not watched
namespaces (namespaced mode gives them the KafkaTopic-writing Role only). Fails on duplicate
cluster names, which the operator would refuse at start.
*/}}
{{- define "federator.kafkaOnlyNamespaces" -}}
{{- $seen := dict -}}
{{- $out := list -}}
{{- range .Values.kafkaClusters -}}
{{- if hasKey $seen .name -}}
{{- fail (printf "kafkaClusters: duplicate cluster name %q" .name) -}}
{{- end -}}
{{- $_ := set $seen .name true -}}
{{- if not (or (has .namespace $.Values.watchNamespaces) (has .namespace $out)) -}}
{{- $out = append $out .namespace -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
federator.servedNamespaces: JSON list of every namespace the operator watches in namespaced
mode: the watched namespaces, then the Kafka-only ones (kopf must see KafkaTopic events there to
follow topic health); [] in cluster-wide mode (all namespaces).
*/}}
{{- define "federator.servedNamespaces" -}}
{{- if include "federator.clusterWide" . -}}
[]
{{- else -}}
{{- $kafka := include "federator.kafkaOnlyNamespaces" . | fromJsonArray -}}
{{- concat (uniq .Values.watchNamespaces) $kafka | toJson -}}
{{- end -}}
{{- end -}}

{{/*
federator.settings: the operator's settings document (federator.core.settings.parse_settings
reads this shape from /etc/federator/settings.yaml).
*/}}
{{- define "federator.settings" -}}
{{- $clusters := list -}}
{{- range .Values.kafkaClusters -}}
{{- $clusters = append $clusters (dict "name" .name "strimziCluster" .strimziCluster "namespace" .namespace "bootstrapServers" .bootstrapServers "topicApiVersion" (.topicApiVersion | default "auto") "allowedNamespaces" (.allowedNamespaces | default (list)) "topicPrefix" (.topicPrefix | default "") "sharedTopics" (.sharedTopics | default (list))) -}}
{{- end -}}
{{- $op := .Values.operator -}}
{{- $settings := dict
    "kafkaClusters" $clusters
    "flink" (dict "defaultOperator" .Values.flink.defaultOperator "flinkVersion" .Values.flink.flinkVersion "supportedVersions" (.Values.flink.supportedVersions | default (list)))
    "operator" (dict
      "namespaces" (include "federator.servedNamespaces" . | fromJsonArray)
      "resyncSeconds" $op.resyncSeconds
      "statusDebounceSeconds" $op.statusDebounceSeconds
      "metricsPerApplication" ($op.metricsPerApplication | default false)
      "metricsPort" (int $op.metricsPort)
      "livenessPort" (int $op.livenessPort))
    "podSecurity" (dict
      "level" .Values.podSecurity.level
      "allowedServiceAccounts" .Values.podSecurity.allowedServiceAccounts)
    "impersonation" (dict
      "defaultServiceAccount" .Values.impersonation.defaultServiceAccount
      "requireServiceAccount" .Values.impersonation.requireServiceAccount)
    "limits" (dict
      "maxStreamlets" (int .Values.limits.maxStreamlets)
      "maxChildren" (int .Values.limits.maxChildren)) -}}
{{- toYaml $settings -}}
{{- end -}}

{{/*
federator.validate: cross-field checks the JSON schema cannot express. Included by the
Deployment, so every render runs it.
*/}}
{{- define "federator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.peering.enabled) -}}
{{- fail "replicaCount > 1 needs peering.enabled=true: without kopf peering every replica would reconcile every Application" -}}
{{- end -}}
{{- $_ := include "federator.kafkaOnlyNamespaces" . -}}{{- /* fails on duplicate cluster names */ -}}
{{- if eq (int .Values.operator.metricsPort) (int .Values.operator.livenessPort) -}}
{{- fail "operator.metricsPort and operator.livenessPort must differ" -}}
{{- end -}}
{{- end -}}

{{/*
federator.rbac.operatorRules: what the operator does in a namespace it serves (Role in
namespaced mode, ClusterRole in cluster-wide mode). Nothing else: no Secrets, no wildcards.
*/}}
{{- define "federator.rbac.operatorRules" -}}
# Applications: kopf lists and watches them, and patches them to add/remove its finalizer and
# its bookkeeping annotations (progress, last-handled configuration).
- apiGroups: [federator.io]
  resources: [applications]
  verbs: [get, list, watch, patch, update]
# The status subresource: phase, conditions and the children inventory are written there.
- apiGroups: [federator.io]
  resources: [applications/status]
  verbs: [get, patch, update]
# Children carry an ownerReference with blockOwnerDeletion=true to their Application; with the
# OwnerReferencesPermissionEnforcement admission plugin that needs update on the finalizers
# subresource of the owner.
- apiGroups: [federator.io]
  resources: [applications/finalizers]
  verbs: [update]
# The delegate kinds federator renders: server-side apply (patch; create when absent), read
# back for health, watched (label-filtered) so health follows the delegates, pruned (delete).
# One rule per delegate module (files/delegates.yaml, generated from federator/core/delegates).
{{- range (.Files.Get "files/delegates.yaml" | fromYaml).delegates }}
- apiGroups: [{{ .apiGroup | quote }}]
  resources: [{{ .resource }}]
  verbs: [{{ join ", " .verbs }}]
{{- end }}
# Kubernetes Events on Applications (federator's own, and kopf's on handler errors); both APIs.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create]
# Children in an Application's namespace are written as a ServiceAccount of that namespace
# (`impersonation` values), so the tenant's RBAC decides what federator creates for them.
# ServiceAccounts only: never users, groups or user extras, so federator can only ever act as
# an account of a namespace it serves, with that account's own groups. get: to tell an author
# whose writes are refused that the account they named does not exist.
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [impersonate, get]
{{- if .Values.peering.enabled }}
{{- if not (include "federator.clusterWide" .) }}
# kopf peering (namespaced mode): each replica keeps its record in the KopfPeering of every
# served namespace and watches the others' records.
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}
{{- end }}
{{- end -}}

{{/*
federator.rbac.kafkaRules: what the operator does in a Kafka cluster's namespace that is not a
watched namespace (namespaced mode): write KafkaTopics; kopf also watches there every kind it
watches in a served namespace, so reading those is needed, but nothing else is written.
*/}}
{{- define "federator.rbac.kafkaRules" -}}
# KafkaTopics are created in the Kafka cluster's namespace (Strimzi's topic operator watches one
# namespace): server-side apply, read back for health, watched, pruned under deletionPolicy Delete.
- apiGroups: [kafka.strimzi.io]
  resources: [kafkatopics]
  verbs: [get, list, watch, create, patch, update, delete]
# kopf serves this namespace too (to see KafkaTopic events), so it lists and watches every kind
# it handles here. Read only: Applications and streamlets are never written in this namespace.
- apiGroups: [federator.io]
  resources: [applications]
  verbs: [get, list, watch]
{{- range (.Files.Get "files/delegates.yaml" | fromYaml).delegates }}
{{- if ne .kind "KafkaTopic" }}
- apiGroups: [{{ .apiGroup | quote }}]
  resources: [{{ .resource }}]
  verbs: [{{ join ", " .readVerbs }}]
{{- end }}
{{- end }}
# kopf posts Events about what it handles in this namespace.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create]
{{- if .Values.peering.enabled }}
# kopf peering: this namespace's KopfPeering (see federator.rbac.operatorRules).
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}
{{- end -}}

{{/*
federator.shards: JSON list of the shards to deploy: "" (the default shard, which serves the
Applications without the federator.io/shard label) first, then `sharding.shards`. Fails on a
duplicate name.
*/}}
{{- define "federator.shards" -}}
{{- $out := list "" -}}
{{- range .Values.sharding.shards -}}
{{- if has . $out -}}
{{- fail (printf "sharding.shards: duplicate shard %q" .) -}}
{{- end -}}
{{- $out = append $out . -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
federator.shardName: the Deployment (and Service) name of a shard: the full name for the
default shard (unchanged from an unsharded install), "<fullname>-shard-<name>" otherwise.
Call with (dict "context" $ "shard" NAME).
*/}}
{{- define "federator.shardName" -}}
{{- if .shard -}}
{{- include "federator.componentName" (dict "context" .context "suffix" (printf "shard-%s" .shard)) -}}
{{- else -}}
{{- include "federator.fullname" .context -}}
{{- end -}}
{{- end -}}

{{/*
federator.shardSelectorLabels: a shard's immutable selector labels. The default shard's are
`federator.selectorLabels` (an unsharded install upgrades in place); a named shard's component
is "operator-shard-<name>", so no two Deployments select each other's pods.
*/}}
{{- define "federator.shardSelectorLabels" -}}
{{- if .shard -}}
app.kubernetes.io/name: {{ include "federator.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/component: {{ include "federator.shardComponent" .shard }}
{{- else -}}
{{ include "federator.selectorLabels" .context }}
{{- end -}}
{{- end -}}

{{/*
federator.shardLabels: `federator.labels` with a shard's selector labels.
*/}}
{{- define "federator.shardLabels" -}}
{{ include "federator.shardSelectorLabels" . }}
{{- range $line := splitList "\n" (include "federator.labels" .context) }}
{{- if not (hasPrefix "app.kubernetes.io/name:" $line | or (hasPrefix "app.kubernetes.io/instance:" $line) | or (hasPrefix "app.kubernetes.io/component:" $line)) }}
{{ $line }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
federator.peeringName: the kopf peering a shard's replicas meet in (one per shard: a single
peering for all shards would let only one process in the whole installation work).
*/}}
{{- define "federator.peeringName" -}}
{{- if .shard -}}
{{- printf "%s-%s" .context.Values.peering.name .shard | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- .context.Values.peering.name -}}
{{- end -}}
{{- end -}}

{{/*
federator.shardComponent: the app.kubernetes.io/component label of a shard's pods, given its
name ("" for the default shard: `operator`, as without sharding).
*/}}
{{- define "federator.shardComponent" -}}
{{- if . -}}
{{- printf "operator-shard-%s" . | trunc 63 | trimSuffix "-" -}}
{{- else -}}
operator
{{- end -}}
{{- end -}}
