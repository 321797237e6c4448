{{- define "orbit-operator.labels" -}}
app.kubernetes.io/name: orbit-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: orbit-rs
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
