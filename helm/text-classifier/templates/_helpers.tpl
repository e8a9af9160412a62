{{/*
Chart name, truncated to 63 characters (DNS label limit).
*/}}
{{- define "text-classifier.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, truncated to 63 characters. If the release name contains the chart
name it is used as is.
*/}}
{{- define "text-classifier.fullname" -}}
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

{{/*
Chart name and version, as used by the helm.sh/chart label.
*/}}
{{- define "text-classifier.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "text-classifier.labels" -}}
helm.sh/chart: {{ include "text-classifier.chart" . }}
{{ include "text-classifier.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: text-classifier
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of the serving pods (component "server": the test pod and the training Job have
their own component and are not selected by the Service, PDB, HPA or NetworkPolicy).
*/}}
{{- define "text-classifier.selectorLabels" -}}
app.kubernetes.io/name: {{ include "text-classifier.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/*
Labels for objects of another component: $ctx.top is the root context, $ctx.component the name.
*/}}
{{- define "text-classifier.componentLabels" -}}
{{- $top := .top -}}
helm.sh/chart: {{ include "text-classifier.chart" $top }}
app.kubernetes.io/name: {{ include "text-classifier.name" $top }}
app.kubernetes.io/instance: {{ $top.Release.Name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/version: {{ $top.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $top.Release.Service }}
app.kubernetes.io/part-of: text-classifier
{{- with $top.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Name of the ServiceAccount.
*/}}
{{- define "text-classifier.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "text-classifier.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Label that lets a pod through the NetworkPolicy when allowSameNamespace is false.
*/}}
{{- define "text-classifier.clientLabel" -}}
{{ include "text-classifier.fullname" . }}-client
{{- end }}

{{/*
Image reference from {repository, tag, digest}: the digest wins over the tag.
Call with (dict "image" .Values.x.image "tag" "<default tag>").
*/}}
{{- define "text-classifier.image" -}}
{{- $img := .image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .tag $img.tag) -}}
{{- end -}}
{{- end }}

{{- define "text-classifier.sidecarImage" -}}
{{- include "text-classifier.image" (dict "image" .Values.sidecar.image "tag" .Chart.AppVersion) -}}
{{- end }}

{{- define "text-classifier.trainerImage" -}}
{{- include "text-classifier.image" (dict "image" .Values.training.image "tag" .Chart.AppVersion) -}}
{{- end }}

{{- define "text-classifier.tfServingImage" -}}
{{- $i := .Values.tfServing.image -}}
{{- $tag := ternary $i.gpuTag $i.tag .Values.gpu.enabled -}}
{{- include "text-classifier.image" (dict "image" (dict "repository" $i.repository "digest" $i.digest "tag" $tag) "tag" $tag) -}}
{{- end }}

{{/*
Whether TF Serving batching is on: explicit value, or on with GPU.
*/}}
{{- define "text-classifier.batchingEnabled" -}}
{{- if kindIs "invalid" .Values.tfServing.batching.enabled -}}
{{- ternary "true" "false" .Values.gpu.enabled -}}
{{- else -}}
{{- ternary "true" "false" .Values.tfServing.batching.enabled -}}
{{- end -}}
{{- end }}

{{/*
Name of the model PVC.
*/}}
{{- define "text-classifier.pvcName" -}}
{{- if .Values.model.pvc.existingClaim -}}
{{- .Values.model.pvc.existingClaim -}}
{{- else -}}
{{- printf "%s-models" (include "text-classifier.fullname" .) -}}
{{- end -}}
{{- end }}

{{/*
Name of the API-key Secret and the key in it.
*/}}
{{- define "text-classifier.authSecretName" -}}
{{- default (printf "%s-api-keys" (include "text-classifier.fullname" .)) .Values.auth.existingSecret -}}
{{- end }}

{{- define "text-classifier.authSecretKey" -}}
{{- ternary .Values.auth.existingSecretKey "api-keys" (ne .Values.auth.existingSecret "") -}}
{{- end }}

{{/*
terminationGracePeriodSeconds: preStop delay + sidecar drain + 10 s for TF Serving to exit.
*/}}
{{- define "text-classifier.minGracePeriod" -}}
{{- add .Values.preStopDelaySeconds .Values.sidecar.shutdownGraceS 10 -}}
{{- end }}

{{- define "text-classifier.terminationGracePeriod" -}}
{{- $min := include "text-classifier.minGracePeriod" . | int -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- $min -}}
{{- else if lt (int .Values.terminationGracePeriodSeconds) $min -}}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be >= preStopDelaySeconds + sidecar.shutdownGraceS + 10 = %d" .Values.terminationGracePeriodSeconds $min) -}}
{{- else -}}
{{- .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end }}

{{/*
Checks across values that a JSON schema cannot express; included by the Deployment.
*/}}
{{- define "text-classifier.validate" -}}
{{- if and .Values.autoscaling.enabled .Values.keda.enabled -}}
{{- fail "autoscaling.enabled and keda.enabled are mutually exclusive: KEDA creates its own HPA" -}}
{{- end -}}
{{- if and .Values.training.enabled (ne .Values.model.source "pvc") -}}
{{- fail "training.enabled needs model.source=pvc: the Job writes new versions to the model PVC" -}}
{{- end -}}
{{- if and (eq .Values.model.source "objectStorage") (not .Values.model.objectStorage.bucket) -}}
{{- fail "model.source=objectStorage needs model.objectStorage.bucket" -}}
{{- end -}}
{{- if and (eq .Values.model.source "pvc") (not .Values.model.pvc.create) (not .Values.model.pvc.existingClaim) -}}
{{- fail "model.pvc.create=false needs model.pvc.existingClaim" -}}
{{- end -}}
{{- if and .Values.auth.enabled (not .Values.auth.existingSecret) (not .Values.auth.apiKeys) -}}
{{- fail "auth.enabled needs auth.existingSecret or at least one key in auth.apiKeys" -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- fail "autoscaling.minReplicas must be <= autoscaling.maxReplicas" -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (kindIs "invalid" .Values.autoscaling.targetCPUUtilizationPercentage) (not .Values.autoscaling.podsMetric.enabled) -}}
{{- fail "autoscaling.enabled needs a metric: targetCPUUtilizationPercentage or podsMetric.enabled" -}}
{{- end -}}
{{- end }}

{{/*
Volume holding the models (/models in every container).
*/}}
{{- define "text-classifier.modelVolume" -}}
- name: models
{{- if eq .Values.model.source "pvc" }}
  persistentVolumeClaim:
    claimName: {{ include "text-classifier.pvcName" . }}
    readOnly: true
{{- else }}
  emptyDir:
    sizeLimit: {{ .Values.model.emptyDirSizeLimit }}
{{- end }}
{{- end }}

{{/*
Environment of the object-storage syncer (rclone configured by environment: remote "store").
*/}}
{{- define "text-classifier.syncerEnv" -}}
{{- $o := .Values.model.objectStorage -}}
- name: MODEL_NAME
  value: {{ .Values.model.name | quote }}
- name: MODEL_BUCKET
  value: {{ $o.bucket | quote }}
- name: MODEL_PREFIX
  value: {{ $o.prefix | quote }}
- name: MODEL_ROOT
  value: /models
- name: SYNC_INTERVAL_SECONDS
  value: {{ $o.syncIntervalSeconds | quote }}
- name: HOME
  value: /tmp
- name: RCLONE_CONFIG
  value: /tmp/rclone.conf
- name: RCLONE_CONFIG_STORE_ENV_AUTH
  value: "true"
{{- if eq $o.provider "s3" }}
- name: RCLONE_CONFIG_STORE_TYPE
  value: s3
- name: RCLONE_CONFIG_STORE_PROVIDER
  value: {{ ternary "Other" "AWS" (ne $o.endpoint "") | quote }}
{{- with $o.region }}
- name: RCLONE_CONFIG_STORE_REGION
  value: {{ . | quote }}
{{- end }}
{{- with $o.endpoint }}
- name: RCLONE_CONFIG_STORE_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- else }}
- name: RCLONE_CONFIG_STORE_TYPE
  value: google cloud storage
- name: RCLONE_CONFIG_STORE_BUCKET_POLICY_ONLY
  value: "true"
{{- end }}
{{- end }}

{{/*
Resources of a container plus the GPU resource when $ctx.gpu is true.
*/}}
{{- define "text-classifier.resources" -}}
{{- $res := deepCopy .resources -}}
{{- if .gpu -}}
{{- $g := .top.Values.gpu -}}
{{- $req := default (dict) $res.requests -}}
{{- $lim := default (dict) $res.limits -}}
{{- $_ := set $req $g.resourceName (int $g.count) -}}
{{- $_ := set $lim $g.resourceName (int $g.count) -}}
{{- $_ := set $res "requests" $req -}}
{{- $_ := set $res "limits" $lim -}}
{{- end -}}
{{- toYaml $res -}}
{{- end }}

{{/*
GPU-pool scheduling: nodeSelector and tolerations merged with the global ones.
*/}}
{{- define "text-classifier.scheduling" -}}
{{- $top := .top -}}
{{- $nodeSelector := deepCopy $top.Values.nodeSelector -}}
{{- $tolerations := $top.Values.tolerations -}}
{{- if .gpu -}}
{{- $nodeSelector = merge $nodeSelector $top.Values.gpu.nodeSelector -}}
{{- $tolerations = concat $top.Values.gpu.tolerations $top.Values.tolerations -}}
{{- end -}}
{{- with $nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
