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
Labels of the serving pods' template: the selector labels plus the stable ones. Not helm.sh/chart:
a chart version bump alone must not restart every (GPU) pod.
*/}}
{{- define "text-classifier.podLabels" -}}
{{ include "text-classifier.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: text-classifier
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- with .Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Label key that lets a pod through the NetworkPolicy when allowSameNamespace is false:
"<fullname>-client". A label name is at most 63 characters; a longer full name is cut and made unique
again with a hash of the whole name.
*/}}
{{- define "text-classifier.clientLabel" -}}
{{- $full := include "text-classifier.fullname" . -}}
{{- if le (len $full) 56 -}}
{{ $full }}-client
{{- else -}}
{{ $full | trunc 48 | trimSuffix "-" }}-{{ sha256sum $full | trunc 7 }}-client
{{- end -}}
{{- end }}

{{/*
Whether the training Job runs the evaluation gate (and so gets its ServiceAccount, Role and RoleBinding).
*/}}
{{- define "text-classifier.trainingGate" -}}
{{- if and .Values.training.enabled (ne .Values.training.promote.to "none") -}}true{{- end -}}
{{- end }}

{{/*
Name of the ServiceAccount, Role and RoleBinding of the training Job's evaluation gate.
*/}}
{{- define "text-classifier.trainingGateName" -}}
{{- printf "%s-training-gate" (include "text-classifier.fullname" . | trunc 49 | trimSuffix "-") -}}
{{- end }}

{{/*
Name of the training Job of this revision: "<fullname>-train-<revision>", the full name cut so that
the revision always survives (a Job name is also a label value: 63 characters at most). Each revision
gets its own Job, since a Job's pod template is immutable.
*/}}
{{- define "text-classifier.trainingJobName" -}}
{{- printf "%s-train-%d" (include "text-classifier.fullname" . | trunc 45 | trimSuffix "-") (int .Release.Revision) -}}
{{- end }}

{{/*
CPU limit of a container rounded up to whole CPUs ("500m" -> 1, "2" -> 2, 2.5 -> 3); 0 when unset.
*/}}
{{- define "text-classifier.cpuCeil" -}}
{{- $cpu := "" -}}
{{- with .limits }}{{ with .cpu }}{{ $cpu = toString . }}{{ end }}{{ end -}}
{{- if not $cpu -}}
0
{{- else if hasSuffix "m" $cpu -}}
{{- ceil (divf (trimSuffix "m" $cpu | float64) 1000) | int -}}
{{- else -}}
{{- ceil ($cpu | float64) | int -}}
{{- end -}}
{{- end }}

{{/*
TF Serving's thread-pool and REST flags, sized to the container's CPU limit (TensorFlow would size
them to the node's CPUs and get throttled by the limit).
*/}}
{{- define "text-classifier.tfServingThreadArgs" -}}
{{- $tf := .Values.tfServing -}}
{{- $cpus := include "text-classifier.cpuCeil" $tf.resources | int -}}
{{- $intra := $tf.threads.intraOp -}}
{{- $inter := $tf.threads.interOp -}}
{{- $rest := $tf.threads.restApi -}}
{{- if and (kindIs "invalid" $intra) (gt $cpus 0) }}{{ $intra = $cpus }}{{ end -}}
{{- if and (kindIs "invalid" $inter) (gt $cpus 0) }}{{ $inter = $cpus }}{{ end -}}
{{- if and (kindIs "invalid" $rest) (gt $cpus 0) }}{{ $rest = mul 4 $cpus }}{{ end -}}
{{- $timeout := $tf.restApiTimeoutMs -}}
{{- if kindIs "invalid" $timeout }}{{ $timeout = mulf .Values.sidecar.upstreamTimeoutS 1000 }}{{ end -}}
{{- if not (kindIs "invalid" $intra) }}
- --tensorflow_intra_op_parallelism={{ int $intra }}
{{- end }}
{{- if not (kindIs "invalid" $inter) }}
- --tensorflow_inter_op_parallelism={{ int $inter }}
{{- end }}
{{- if not (kindIs "invalid" $rest) }}
- --rest_api_num_threads={{ int $rest }}
{{- end }}
- --rest_api_timeout_in_ms={{ int $timeout }}
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
{{- if and .Values.training.enabled (ne .Values.training.promote.to "none") (not (int .Values.model.stableVersion)) -}}
{{- fail "training.promote.to canary or stable needs model.stableVersion: the gate compares the new version with the declared stable (with `latest N` every published version serves at once)" -}}
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
{{- if and .Values.autoscaling.enabled (kindIs "invalid" .Values.autoscaling.targetCPUUtilizationPercentage) (not .Values.autoscaling.podsMetric.enabled) (not .Values.autoscaling.metrics) -}}
{{- fail "autoscaling.enabled needs a metric: targetCPUUtilizationPercentage, podsMetric.enabled or autoscaling.metrics" -}}
{{- end -}}
{{- if and .Values.keda.enabled (eq (int .Values.keda.minReplicas) 0) (not .Values.keda.extraTriggers) -}}
{{- fail "keda.minReplicas=0 never scales up again: the chart's trigger counts requests on the pods themselves, and with no pod there are none. Keep minReplicas >= 1, or add a trigger that does not depend on the pods (keda.extraTriggers, e.g. the ingress controller's request rate or a queue)" -}}
{{- end -}}
{{- if and .Values.gpu.enabled (gt (int .Values.gpu.count) 1) -}}
{{- fail (printf "gpu.count=%v: TF Serving places the model's single-device graph on one GPU, so the other GPUs would sit idle. Use gpu.count=1 and add replicas (replicaCount or autoscaling) instead" .Values.gpu.count) -}}
{{- end -}}
{{- with .Values.strategy.rollingUpdate -}}
{{- if and (eq $.Values.strategy.type "RollingUpdate") (eq (toString (default 0 .maxSurge)) "0") (eq (toString (default 0 .maxUnavailable)) "0") -}}
{{- fail "strategy.rollingUpdate: maxSurge and maxUnavailable cannot both be 0 (nothing could ever be replaced)" -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.strategy.type "Recreate") .Values.strategy.rollingUpdate -}}
{{- fail "strategy.type=Recreate takes no rollingUpdate: set strategy.rollingUpdate to null" -}}
{{- end -}}
{{- $v := .Values.model.versions -}}
{{- if and $v.labels (not $v.specific) -}}
{{- fail "model.versions.labels needs model.versions.specific: a label names one of the listed versions" -}}
{{- end -}}
{{- $specific := list -}}
{{- range $v.specific }}{{ $specific = append $specific (toString (int .)) }}{{ end -}}
{{- range $label, $version := $v.labels -}}
{{- if not (has (toString (int $version)) $specific) -}}
{{- fail (printf "model.versions.labels.%s=%v is not in model.versions.specific" $label $version) -}}
{{- end -}}
{{- end -}}
{{- $m := .Values.model -}}
{{- if and $m.canary.version (not $m.stableVersion) -}}
{{- fail "model.canary.version needs model.stableVersion: a canary runs beside a declared stable version" -}}
{{- end -}}
{{- if and $m.stableVersion (eq (int $m.stableVersion) (int $m.canary.version)) -}}
{{- fail "model.canary.version must differ from model.stableVersion (0: no canary)" -}}
{{- end -}}
{{- if and $m.previousVersion (not $m.stableVersion) -}}
{{- fail "model.previousVersion needs model.stableVersion" -}}
{{- end -}}
{{- if and $m.stableVersion (eq (int $m.stableVersion) (int $m.previousVersion)) -}}
{{- fail "model.previousVersion must differ from model.stableVersion (0: none)" -}}
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
{{- with include "text-classifier.specificVersions" . }}
- name: MODEL_VERSIONS
  value: {{ . | quote }}
{{- end }}
- name: MODEL_LATEST
  value: {{ .Values.model.versions.latest | quote }}
{{- if $o.credentialsFile.secretName }}
{{- if eq $o.provider "s3" }}
# rclone's s3 backend reads the shared credentials file through the AWS SDK.
- name: AWS_SHARED_CREDENTIALS_FILE
  value: /etc/model-sync-credentials/credentials
{{- else }}
- name: RCLONE_CONFIG_STORE_SERVICE_ACCOUNT_FILE
  value: /etc/model-sync-credentials/credentials
{{- end }}
{{- end }}
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

{{/*
A model syncer container: $ctx.name, $ctx.mode ("once": the init container, "loop": the native
sidecar), $ctx.top the root context.
*/}}
{{- define "text-classifier.syncerContainer" -}}
{{- $top := .top -}}
{{- $o := $top.Values.model.objectStorage -}}
- name: {{ .name }}
  image: {{ include "text-classifier.image" (dict "image" $o.syncer.image "tag" $o.syncer.image.tag) }}
  imagePullPolicy: {{ $o.syncer.image.pullPolicy }}
  {{- if eq .mode "loop" }}
  restartPolicy: Always
  {{- end }}
  command: ["/bin/sh", "/etc/model-sync/model-sync.sh", {{ .mode | quote }}]
  env:
    {{- include "text-classifier.syncerEnv" $top | nindent 4 }}
    {{- with $o.syncer.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if or $o.credentialsSecret $o.syncer.extraEnvFrom }}
  envFrom:
    {{- with $o.credentialsSecret }}
    - secretRef:
        name: {{ . }}
    {{- end }}
    {{- with $o.syncer.extraEnvFrom }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  securityContext:
    {{- toYaml $top.Values.containerSecurityContext | nindent 4 }}
  resources:
    {{- toYaml $o.syncer.resources | nindent 4 }}
  volumeMounts:
    - name: models
      mountPath: /models
    - name: model-sync-script
      mountPath: /etc/model-sync
      readOnly: true
    - name: tmp
      mountPath: /tmp
      subPath: {{ .name }}
    {{- if $o.credentialsFile.secretName }}
    - name: object-storage-credentials
      mountPath: /etc/model-sync-credentials
      readOnly: true
    {{- end }}
    {{- with $o.syncer.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/*
Checksum of the data of the objects a template renders ($ctx.template, e.g. "/configmap.yaml"):
their content only, not their labels, so a chart version bump alone does not roll the pods.
*/}}
{{- define "text-classifier.dataChecksum" -}}
{{- $top := .top -}}
{{- $data := list -}}
{{- $omit := default list .omit -}}
{{- range (include (print $top.Template.BasePath .template) $top | splitList "\n---\n") -}}
{{- $doc := fromYaml . -}}
{{- $d := deepCopy (default dict (get $doc "data")) -}}
{{- range $omit }}{{ $_ := unset $d . }}{{ end -}}
{{- $data = append $data (dict "data" $d "stringData" (get $doc "stringData")) -}}
{{- end -}}
{{- toJson $data | sha256sum -}}
{{- end }}

{{/*
Model lifecycle: the versions TF Serving loads with a `specific` policy, space-separated; empty: the
latest policy. model.stableVersion (and model.canary.version) declare them, else model.versions.specific.
*/}}
{{- define "text-classifier.specificVersions" -}}
{{- $m := .Values.model -}}
{{- if $m.stableVersion -}}
{{- $l := list (int $m.stableVersion) -}}
{{- if $m.canary.version }}{{ $l = append $l (int $m.canary.version) }}{{ end -}}
{{- if $m.previousVersion }}{{ $l = append $l (int $m.previousVersion) }}{{ end -}}
{{- join " " ($l | toStrings | uniq) -}}
{{- else if kindIs "slice" $m.versions.specific -}}
{{- join " " ($m.versions.specific | toStrings) -}}
{{- end -}}
{{- end }}

{{/*
Model lifecycle: version labels, label -> version (model.stableVersion/canary.version, else
model.versions.labels).
*/}}
{{- define "text-classifier.versionLabels" -}}
{{- $m := .Values.model -}}
{{- if $m.stableVersion -}}
{{- $l := dict "stable" (int $m.stableVersion) -}}
{{- if $m.canary.version }}{{ $_ := set $l "canary" (int $m.canary.version) }}{{ end -}}
{{- if $m.previousVersion }}{{ $_ := set $l "previous" (int $m.previousVersion) }}{{ end -}}
{{- toJson $l -}}
{{- else -}}
{{- toJson (default dict $m.versions.labels) -}}
{{- end -}}
{{- end }}
