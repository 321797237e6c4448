{{/*
Chart name (the app.kubernetes.io/name label): orbit-rs.
*/}}
{{- define "orbit-rs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name of the objects. The deployment docs install with release name
"orbit-rs" and name the objects orbit-server, orbit-server-headless,
orbit-server-metrics and orbit-server-secrets: that release name (or "orbit")
gives exactly those names. Truncated to 52 characters, the limit of a
StatefulSet name.
*/}}
{{- define "orbit-rs.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else if has .Release.Name (list "orbit-rs" "orbit") -}}
orbit-server
{{- else if contains "orbit-server" .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-orbit-server" .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "orbit-rs.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "orbit-rs.selectorLabels" -}}
app.kubernetes.io/name: {{ include "orbit-rs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end -}}

{{- define "orbit-rs.labels" -}}
helm.sh/chart: {{ include "orbit-rs.chart" . }}
{{ include "orbit-rs.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: orbit-rs
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- /*
Labels of the pod template: without the chart version and app version, so a
chart-only upgrade does not change the template and restart every storage pod
(the image tag, which does change the template, says which version runs).
*/ -}}
{{- define "orbit-rs.podLabels" -}}
{{ include "orbit-rs.selectorLabels" . }}
app.kubernetes.io/part-of: orbit-rs
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "orbit-rs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "orbit-rs.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "orbit-rs.secretName" -}}
{{- default (printf "%s-secrets" (include "orbit-rs.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "orbit-rs.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The value of an entry of orbitServer.env, or "" when there is none.
Usage: include "orbit-rs.userEnv" (list . "ORBIT_S3_BUCKET")
*/}}
{{- define "orbit-rs.userEnv" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- range $root.Values.orbitServer.env -}}
{{- if and (eq .name $name) (hasKey . "value") -}}{{ .value }}{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The backend: ORBIT_PERSISTENCE_BACKEND from orbitServer.env (the deployment
docs' way) or else persistence.backend; anything else than the seven names fails.
*/}}
{{- define "orbit-rs.backend" -}}
{{- $b := include "orbit-rs.userEnv" (list . "ORBIT_PERSISTENCE_BACKEND") | default .Values.persistence.backend -}}
{{- if not (has $b (list "memory" "cow_btree" "lsm_tree" "rocksdb" "s3" "azure" "gcp")) -}}
{{- fail (printf "persistence.backend (or ORBIT_PERSISTENCE_BACKEND in orbitServer.env) is %q: expected memory, cow_btree, lsm_tree, rocksdb, s3, azure or gcp" $b) -}}
{{- end -}}
{{- $b -}}
{{- end -}}

{{/* "true" when the pod mounts the GCP service-account key from the Secret. */}}
{{- define "orbit-rs.gcpKeyFile" -}}
{{- if and (eq (include "orbit-rs.backend" .) "gcp") .Values.persistence.gcp.credentialsPath (ne .Values.secrets.backendCredentials "none") -}}true{{- end -}}
{{- end -}}

{{- define "orbit-rs.isLocalBackend" -}}
{{- if has (include "orbit-rs.backend" .) (list "memory" "cow_btree" "lsm_tree" "rocksdb") -}}true{{- end -}}
{{- end -}}

{{/*
"StatefulSet" for a local backend with persistence.enabled, else "Deployment".
*/}}
{{- define "orbit-rs.workloadKind" -}}
{{- if and .Values.persistence.enabled (include "orbit-rs.isLocalBackend" .) -}}StatefulSet{{- else -}}Deployment{{- end -}}
{{- end -}}

{{/* The values key of a backend's table. */}}
{{- define "orbit-rs.backendValuesKey" -}}
{{- get (dict "memory" "memory" "cow_btree" "cowBtree" "lsm_tree" "lsmTree" "rocksdb" "rocksdb" "s3" "s3" "azure" "azure" "gcp" "gcp") . -}}
{{- end -}}

{{/* A scalar as a TOML value (strings quoted; numbers and booleans as they are). */}}
{{- define "orbit-rs.toml" -}}
{{- toJson . -}}
{{- end -}}

{{/*
Checks that stop a release that could not work: several independent stores
behind one Service, a cloud backend without its bucket, a plugin without files.
*/}}
{{- define "orbit-rs.validate" -}}
{{- $backend := include "orbit-rs.backend" . -}}
{{- if and (include "orbit-rs.isLocalBackend" .) (gt (int .Values.orbitServer.replicaCount) 1) (not .Values.orbitServer.allowIndependentReplicas) -}}
{{- fail (printf "orbitServer.replicaCount=%d with the local backend %s: each replica would be an independent store behind one Service, so clients would see different data depending on the pod they reach. Set orbitServer.replicaCount=1, or orbitServer.allowIndependentReplicas=true if your clients address pods one by one through the headless Service." (int .Values.orbitServer.replicaCount) $backend) -}}
{{- end -}}
{{- $p := .Values.persistence -}}
{{- if and $p.existingClaim (eq (include "orbit-rs.workloadKind" .) "StatefulSet") (gt (int .Values.orbitServer.replicaCount) 1) -}}
{{- fail (printf "persistence.existingClaim=%s with orbitServer.replicaCount=%d: every pod would mount the same claim. Use existingClaim with one replica, or leave it empty for one claim per pod." $p.existingClaim (int .Values.orbitServer.replicaCount)) -}}
{{- end -}}
{{- if and (eq $backend "s3") (not $p.s3.bucket) (not (include "orbit-rs.userEnv" (list . "ORBIT_S3_BUCKET"))) -}}
{{- fail "the s3 backend needs persistence.s3.bucket (or ORBIT_S3_BUCKET in orbitServer.env)" -}}
{{- end -}}
{{- if and (eq $backend "azure") (not $p.azure.accountName) (not (include "orbit-rs.userEnv" (list . "ORBIT_AZURE_ACCOUNT_NAME"))) -}}
{{- fail "the azure backend needs persistence.azure.accountName (or ORBIT_AZURE_ACCOUNT_NAME in orbitServer.env)" -}}
{{- end -}}
{{- if and (eq $backend "azure") (not $p.azure.containerName) (not (include "orbit-rs.userEnv" (list . "ORBIT_AZURE_CONTAINER_NAME"))) -}}
{{- fail "the azure backend needs persistence.azure.containerName (or ORBIT_AZURE_CONTAINER_NAME in orbitServer.env)" -}}
{{- end -}}
{{- if and (eq $backend "gcp") (not $p.gcp.bucketName) (not (include "orbit-rs.userEnv" (list . "ORBIT_GCP_BUCKET_NAME"))) -}}
{{- fail "the gcp backend needs persistence.gcp.bucketName (or ORBIT_GCP_BUCKET_NAME in orbitServer.env)" -}}
{{- end -}}
{{- with .Values.orbitServer.updateStrategy -}}
{{- $kind := include "orbit-rs.workloadKind" $ -}}
{{- $ru := .rollingUpdate | default dict -}}
{{- if eq $kind "StatefulSet" -}}
{{- if or (eq (toString .type) "Recreate") (hasKey $ru "maxSurge") -}}
{{- fail "orbitServer.updateStrategy: this release runs a StatefulSet (type RollingUpdate or OnDelete; rollingUpdate.partition, rollingUpdate.maxUnavailable); Recreate and maxSurge are Deployment settings" -}}
{{- end -}}
{{- else if or (eq (toString .type) "OnDelete") (hasKey $ru "partition") -}}
{{- fail "orbitServer.updateStrategy: this release runs a Deployment (type RollingUpdate or Recreate; rollingUpdate.maxSurge, rollingUpdate.maxUnavailable); OnDelete and partition are StatefulSet settings" -}}
{{- end -}}
{{- end -}}
{{- if and (eq $backend "gcp") (eq .Values.secrets.backendCredentials "none") $p.gcp.credentialsPath -}}
{{- fail "secrets.backendCredentials=none with the gcp backend: no key file is mounted, so also set persistence.gcp.credentialsPath to \"\" (the server then uses the pod's Workload Identity)" -}}
{{- end -}}
{{- if and .Values.service.loadBalancerSourceRanges (ne .Values.service.type "LoadBalancer") -}}
{{- fail (printf "service.loadBalancerSourceRanges is set but service.type is %s: the ranges restrict only a LoadBalancer Service (use networkPolicy for in-cluster clients)" .Values.service.type) -}}
{{- end -}}
{{- $pl := .Values.plugins -}}
{{- if and (or $pl.selector $pl.translator $pl.health) (not (include "orbit-rs.pluginsVolume" .)) -}}
{{- range list $pl.selector $pl.translator $pl.health -}}
{{- if and . (not (hasPrefix "/" .)) -}}
{{- fail (printf "plugins: %q is a file name in the plugins volume, but no source is set: give plugins.existingConfigMap, plugins.binaryData or plugins.volume (or an absolute path)" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled (eq (toString .Values.podDisruptionBudget.maxUnavailable) "<nil>") (eq (toString .Values.podDisruptionBudget.minAvailable) "<nil>") -}}
{{- fail "podDisruptionBudget: set maxUnavailable or minAvailable" -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled (ne (toString .Values.podDisruptionBudget.maxUnavailable) "<nil>") (ne (toString .Values.podDisruptionBudget.minAvailable) "<nil>") -}}
{{- fail "podDisruptionBudget: set only one of maxUnavailable and minAvailable (the other to null)" -}}
{{- end -}}
{{- end -}}

{{/* The plugins volume source as YAML, or "" when no plugin files are configured. */}}
{{- define "orbit-rs.pluginsVolume" -}}
{{- $pl := .Values.plugins -}}
{{- if $pl.volume -}}
{{- toYaml $pl.volume -}}
{{- else if $pl.existingConfigMap -}}
configMap:
  name: {{ $pl.existingConfigMap }}
{{- else if $pl.binaryData -}}
configMap:
  name: {{ include "orbit-rs.fullname" . }}-plugins
{{- end -}}
{{- end -}}

{{/* A plugin file name as a path: absolute as given, else under mountPath. */}}
{{- define "orbit-rs.pluginPath" -}}
{{- $root := index . 0 -}}
{{- $file := index . 1 -}}
{{- if hasPrefix "/" $file -}}{{ $file }}{{- else -}}{{ printf "%s/%s" (trimSuffix "/" $root.Values.plugins.mountPath) $file }}{{- end -}}
{{- end -}}

{{/*
The container's environment: pod identity, the configuration file, the backend,
the credentials of the chosen backend (secretKeyRefs, required unless
secrets.backendCredentials says otherwise) and the API token; then
orbitServer.env, whose entries replace the chart's of the same name.
*/}}
{{- define "orbit-rs.env" -}}
{{- $backend := include "orbit-rs.backend" . -}}
{{- $secret := include "orbit-rs.secretName" . -}}
{{- $keys := .Values.secrets.keys -}}
{{- $env := list
  (dict "name" "POD_NAME" "valueFrom" (dict "fieldRef" (dict "fieldPath" "metadata.name")))
  (dict "name" "POD_NAMESPACE" "valueFrom" (dict "fieldRef" (dict "fieldPath" "metadata.namespace")))
  (dict "name" "POD_IP" "valueFrom" (dict "fieldRef" (dict "fieldPath" "status.podIP")))
  (dict "name" "NODE_NAME" "valueFrom" (dict "fieldRef" (dict "fieldPath" "spec.nodeName")))
  (dict "name" "RUST_LOG" "value" .Values.orbitServer.logLevel)
  (dict "name" "ORBIT_CONFIG_FILE" "value" "/etc/orbit/orbit.toml")
  (dict "name" "ORBIT_PERSISTENCE_BACKEND" "value" $backend)
-}}
{{- $tok := .Values.secrets.apiToken -}}
{{- if ne $tok "none" -}}
{{- $env = append $env (dict "name" "ORBIT_API_TOKEN" "valueFrom" (dict "secretKeyRef" (dict "name" $secret "key" $keys.apiToken "optional" (eq $tok "optional")))) -}}
{{- end -}}
{{- $cred := .Values.secrets.backendCredentials -}}
{{- $optional := eq $cred "optional" -}}
{{- if eq $cred "none" -}}
{{- else if eq $backend "s3" -}}
{{- $env = append $env (dict "name" "ORBIT_S3_ACCESS_KEY_ID" "valueFrom" (dict "secretKeyRef" (dict "name" $secret "key" $keys.s3AccessKeyId "optional" $optional))) -}}
{{- $env = append $env (dict "name" "ORBIT_S3_SECRET_ACCESS_KEY" "valueFrom" (dict "secretKeyRef" (dict "name" $secret "key" $keys.s3SecretAccessKey "optional" $optional))) -}}
{{- else if eq $backend "azure" -}}
{{- $env = append $env (dict "name" "ORBIT_AZURE_ACCOUNT_KEY" "valueFrom" (dict "secretKeyRef" (dict "name" $secret "key" $keys.azureAccountKey "optional" $optional))) -}}
{{- end -}}
{{- $user := dict -}}
{{- range .Values.orbitServer.env -}}
{{- $_ := set $user .name true -}}
{{- end -}}
{{- range $env -}}
{{- if not (hasKey $user .name) }}
- {{ toYaml . | indent 2 | trim }}
{{- end -}}
{{- end -}}
{{- range .Values.orbitServer.env }}
- {{ toYaml . | indent 2 | trim }}
{{- end -}}
{{- end -}}

{{/*
The pod template shared by the StatefulSet and the Deployment.
*/}}
{{- define "orbit-rs.podTemplate" -}}
{{- $backend := include "orbit-rs.backend" . -}}
{{- $o := .Values.orbitServer -}}
{{- $pluginsVolume := include "orbit-rs.pluginsVolume" . -}}
metadata:
  labels:
    {{- include "orbit-rs.podLabels" . | nindent 4 }}
    {{- with $o.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    kubectl.kubernetes.io/default-container: orbit-server
    {{- if .Values.metrics.scrapeAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ .Values.orbitServer.ports.metrics | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- /* Checksums of the ConfigMaps' contents only (not their labels, which carry the chart version). */}}
    checksum/config: {{ (include (print $.Template.BasePath "/configmap.yaml") . | fromYaml).data | toYaml | sha256sum }}
    {{- if .Values.plugins.binaryData }}
    checksum/plugins: {{ (include (print $.Template.BasePath "/plugins-configmap.yaml") . | fromYaml).binaryData | toYaml | sha256sum }}
    {{- end }}
    {{- /* Secrets are read by reference: change rolloutToken to restart the pods after rotating one. */}}
    {{- with $o.rolloutToken }}
    orbit-rs/rollout-token: {{ . | quote }}
    {{- end }}
    {{- with $o.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "orbit-rs.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
  {{- /* Service links would inject ORBIT_SERVER_* variables, unknown ORBIT_* settings to the server. */}}
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ $o.terminationGracePeriodSeconds }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $o.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $o.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $o.affinity }}
  affinity:
    {{- toYaml $o.affinity | nindent 4 }}
  {{- else if eq $o.podAntiAffinity "soft" }}
  affinity:
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 100
          podAffinityTerm:
            topologyKey: kubernetes.io/hostname
            labelSelector:
              matchLabels:
                {{- include "orbit-rs.selectorLabels" . | nindent 16 }}
  {{- else if eq $o.podAntiAffinity "hard" }}
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "orbit-rs.selectorLabels" . | nindent 14 }}
  {{- end }}
  {{- with $o.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $o.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- $spread := $o.topologySpreadConstraints | default list }}
  {{- if $o.zoneSpread }}
  {{- $spread = append $spread (dict "maxSkew" 1 "topologyKey" "topology.kubernetes.io/zone" "whenUnsatisfiable" "ScheduleAnyway" "labelSelector" (dict "matchLabels" (include "orbit-rs.selectorLabels" . | fromYaml))) }}
  {{- end }}
  {{- with $spread }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: orbit-server
      image: {{ include "orbit-rs.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["serve"]
      ports:
        - name: health
          containerPort: {{ $o.ports.http }}
          protocol: TCP
        - name: metrics
          containerPort: {{ $o.ports.metrics }}
          protocol: TCP
      env:
        {{- include "orbit-rs.env" . | trim | nindent 8 }}
      {{- with $o.envFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $o.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $o.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      startupProbe:
        httpGet:
          path: /health/startup
          port: health
        {{- toYaml $o.startupProbe | nindent 8 }}
      livenessProbe:
        httpGet:
          path: /health
          port: health
        {{- toYaml $o.livenessProbe | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /health/ready
          port: health
        {{- toYaml $o.readinessProbe | nindent 8 }}
      {{- if gt (int $o.preStopSleepSeconds) 0 }}
      lifecycle:
        preStop:
          sleep:
            seconds: {{ $o.preStopSleepSeconds }}
      {{- end }}
      volumeMounts:
        - name: data
          mountPath: /app/data
        - name: config
          mountPath: /etc/orbit
          readOnly: true
        {{- if include "orbit-rs.gcpKeyFile" . }}
        - name: gcp-credentials
          mountPath: {{ dir .Values.persistence.gcp.credentialsPath }}
          readOnly: true
        {{- end }}
        {{- if $pluginsVolume }}
        - name: plugins
          mountPath: {{ .Values.plugins.mountPath }}
          readOnly: true
        {{- end }}
        {{- with $o.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    {{- with $o.extraContainers }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  volumes:
    {{- if eq (include "orbit-rs.workloadKind" .) "Deployment" }}
    - name: data
      {{- with .Values.persistence.emptyDirSizeLimit }}
      emptyDir:
        sizeLimit: {{ . }}
      {{- else }}
      emptyDir: {}
      {{- end }}
    {{- else if .Values.persistence.existingClaim }}
    - name: data
      persistentVolumeClaim:
        claimName: {{ .Values.persistence.existingClaim }}
    {{- end }}
    - name: config
      configMap:
        name: {{ include "orbit-rs.fullname" . }}-config
    {{- if include "orbit-rs.gcpKeyFile" . }}
    - name: gcp-credentials
      secret:
        secretName: {{ include "orbit-rs.secretName" . }}
        optional: {{ eq .Values.secrets.backendCredentials "optional" }}
        defaultMode: 0440
        items:
          - key: {{ .Values.secrets.keys.gcpServiceAccountKey }}
            path: {{ base .Values.persistence.gcp.credentialsPath }}
    {{- end }}
    {{- if $pluginsVolume }}
    - name: plugins
      {{- $pluginsVolume | nindent 6 }}
    {{- end }}
    {{- with $o.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/*
The StatefulSet's volumeClaimTemplates as a YAML list ("" with
persistence.existingClaim). Part of the fields Kubernetes never lets change:
see orbit-rs.upgradeGuard.
*/}}
{{- define "orbit-rs.volumeClaimTemplates" -}}
{{- if not .Values.persistence.existingClaim -}}
- metadata:
    name: data
    labels:
      {{- include "orbit-rs.selectorLabels" . | nindent 6 }}
    {{- with .Values.persistence.annotations }}
    annotations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
  spec:
    accessModes:
      - {{ .Values.persistence.accessMode }}
    {{- with .Values.persistence.storageClass }}
    storageClassName: {{ if eq . "-" }}""{{ else }}{{ . }}{{ end }}
    {{- end }}
    resources:
      requests:
        storage: {{ .Values.persistence.size }}
{{- end -}}
{{- end -}}

{{/*
Upgrade guard. A StatefulSet's selector, serviceName, podManagementPolicy and
volumeClaimTemplates, and a Deployment's selector, cannot change: `helm upgrade`
would stop half-way with "spec: Forbidden". Before that happens, compare what
this release renders with the object in the cluster (lookup; empty under
`helm template`, `helm lint` and client-side dry runs) or with
upgradeGuard.previous (a copy of the object, for GitOps tools that render
offline and for the chart's upgrade test), and fail with what to do.
Only the fields the chart sets are compared, so the defaults the API server
adds (volumeMode, status, ...) do not count as a change.
*/}}
{{- define "orbit-rs.upgradeGuard" -}}
{{- if .Values.upgradeGuard.enabled -}}
{{- $kind := include "orbit-rs.workloadKind" . -}}
{{- $name := include "orbit-rs.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $prev := .Values.upgradeGuard.previous | default dict -}}
{{- if not $prev -}}
{{- $prev = lookup "apps/v1" $kind $ns $name | default dict -}}
{{- end -}}
{{- if and $prev (eq (get $prev "kind" | default $kind) $kind) -}}
{{- $ps := get $prev "spec" | default dict -}}
{{- $changes := list -}}
{{- $sel := dict "matchLabels" (include "orbit-rs.selectorLabels" . | fromYaml) -}}
{{- if not (deepEqual (dig "selector" "matchLabels" dict $ps) $sel.matchLabels) -}}
{{- $changes = append $changes (printf "spec.selector (nameOverride): %s -> %s" (dig "selector" "matchLabels" dict $ps | toJson) ($sel.matchLabels | toJson)) -}}
{{- end -}}
{{- if eq $kind "StatefulSet" -}}
{{- $svc := printf "%s-headless" $name -}}
{{- if ne (get $ps "serviceName" | default "" | toString) $svc -}}
{{- $changes = append $changes (printf "spec.serviceName: %s -> %s" (get $ps "serviceName" | default "" | toString) $svc) -}}
{{- end -}}
{{- if ne (get $ps "podManagementPolicy" | default "OrderedReady" | toString) "Parallel" -}}
{{- $changes = append $changes (printf "spec.podManagementPolicy: %s -> Parallel" (get $ps "podManagementPolicy" | default "OrderedReady" | toString)) -}}
{{- end -}}
{{- $cur := dict -}}
{{- range (include "orbit-rs.volumeClaimTemplates" . | fromYamlArray) -}}
{{- $_ := set $cur .metadata.name . -}}
{{- end -}}
{{- $old := dict -}}
{{- range (get $ps "volumeClaimTemplates" | default list) -}}
{{- $_ := set $old (dig "metadata" "name" "" .) . -}}
{{- end -}}
{{- range $n := concat (keys $old) (keys $cur) | uniq | sortAlpha -}}
{{- $o := get $old $n -}}
{{- $c := get $cur $n -}}
{{- if not $o -}}
{{- $changes = append $changes (printf "volumeClaimTemplates: claim template %q added (persistence.existingClaim unset)" $n) -}}
{{- else if not $c -}}
{{- $changes = append $changes (printf "volumeClaimTemplates: claim template %q removed (persistence.existingClaim set)" $n) -}}
{{- else -}}
{{- $was := dig "spec" "resources" "requests" "storage" "" $o | toString -}}
{{- $now := dig "spec" "resources" "requests" "storage" "" $c | toString -}}
{{- if ne $was $now -}}
{{- $changes = append $changes (printf "persistence.size: %s -> %s" $was $now) -}}
{{- end -}}
{{- $was = dig "spec" "storageClassName" "<default>" $o | toString -}}
{{- $now = dig "spec" "storageClassName" "<default>" $c | toString -}}
{{- if ne $was $now -}}
{{- $changes = append $changes (printf "persistence.storageClass: %q -> %q" $was $now) -}}
{{- end -}}
{{- if not (deepEqual (dig "spec" "accessModes" list $o) (dig "spec" "accessModes" list $c)) -}}
{{- $changes = append $changes (printf "persistence.accessMode: %s -> %s" (dig "spec" "accessModes" list $o | toJson) (dig "spec" "accessModes" list $c | toJson)) -}}
{{- end -}}
{{- if not (deepEqual (dig "metadata" "annotations" dict $o) (dig "metadata" "annotations" dict $c)) -}}
{{- $changes = append $changes (printf "persistence.annotations: %s -> %s" (dig "metadata" "annotations" dict $o | toJson) (dig "metadata" "annotations" dict $c | toJson)) -}}
{{- end -}}
{{- if not (deepEqual (dig "metadata" "labels" dict $o) (dig "metadata" "labels" dict $c)) -}}
{{- $changes = append $changes (printf "claim labels (nameOverride): %s -> %s" (dig "metadata" "labels" dict $o | toJson) (dig "metadata" "labels" dict $c | toJson)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $changes -}}
{{- $msg := printf "UPGRADE REFUSED: these changes touch fields of %s %s/%s that Kubernetes does not allow to change, so `helm upgrade` would fail half-way:\n  - %s\n" $kind $ns $name (join "\n  - " $changes) -}}
{{- if eq $kind "StatefulSet" -}}
{{- $msg = printf "%sTo apply them (docs/deployment.md, \"Changing the volume claims\"):\n  1. resize: if the StorageClass has allowVolumeExpansion, patch every claim, e.g.\n     kubectl -n %s patch pvc data-%s-0 -p '{\"spec\":{\"resources\":{\"requests\":{\"storage\":\"%s\"}}}}'\n     (storageClass, accessMode and annotations apply only to claims created later)\n  2. kubectl -n %s delete statefulset %s --cascade=orphan   (pods and claims stay)\n  3. run the same helm upgrade again; the new StatefulSet adopts the pods and claims\n     (after a selector change, also delete the old pods one by one: they keep their claims)\nor keep the previous values. upgradeGuard.enabled=false skips this check." $msg $ns $name (toString .Values.persistence.size) $ns $name -}}
{{- else -}}
{{- $msg = printf "%sTo apply them: kubectl -n %s delete deployment %s, then run the same helm upgrade again (the pods are recreated; a Deployment keeps no data). upgradeGuard.enabled=false skips this check." $msg $ns $name -}}
{{- end -}}
{{- fail $msg -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
