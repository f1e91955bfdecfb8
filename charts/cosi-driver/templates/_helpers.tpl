{{/* Names */}}
{{- define "cosi-driver.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cosi-driver.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cosi-driver.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cosi-driver.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "cosi-driver.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cosi-driver.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: driver
{{- end -}}

{{- define "cosi-driver.labels" -}}
{{ include "cosi-driver.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: container-object-storage-interface
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* An image reference: repository, then @digest or :tag. */}}
{{- define "cosi-driver.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .default) -}}
{{- end -}}
{{- end -}}

{{/* Where a referenced Secret's keys appear in the driver container. */}}
{{- define "cosi-driver.secretPath" -}}
{{- printf "/etc/cosi-driver/secrets/%s/%s" .name .key -}}
{{- end -}}

{{/*
The backends value as JSON. Empty is refused: a chart that picked a backend itself would leave a
production install quietly serving a development store.
*/}}
{{- define "cosi-driver.backends" -}}
{{- if .Values.backends -}}
{{- toJson .Values.backends -}}
{{- else -}}
{{- fail "the backends value is empty: this chart picks no storage for you. Name at least one backend; to try the driver out on a scratch cluster: --set backends.local.type=filesystem (development only: buckets are directories in the pod's volume). Each backend's settings and a production example: docs/deploy.md" -}}
{{- end -}}
{{- end -}}

{{/*
Every Secret the configuration refers to, as a sorted JSON list of names: the backends'
{secretKeyRef} settings and the master key.
*/}}
{{- define "cosi-driver.secretNames" -}}
{{- $names := list -}}
{{- range $name, $backend := (include "cosi-driver.backends" . | fromJson) -}}
{{- range $key, $value := ($backend.config | default dict) -}}
{{- if and (kindIs "map" $value) (hasKey $value "secretKeyRef") -}}
{{- $names = append $names $value.secretKeyRef.name -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- with .Values.masterKey.secretKeyRef.name -}}
{{- $names = append $names . -}}
{{- end -}}
{{- $names | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/*
The driver's config.yaml. Secret references become {file: <path>} of the mounted Secret. Problems
JSON Schema cannot express fail here, at template time, with the fix.
*/}}
{{- define "cosi-driver.config" -}}
{{- $backends := dict -}}
{{- $defaults := list -}}
{{- range $name, $backend := (include "cosi-driver.backends" . | fromJson) -}}
{{- $config := dict -}}
{{- range $key, $value := ($backend.config | default dict) -}}
{{- if and (kindIs "map" $value) (hasKey $value "secretKeyRef") -}}
{{- $_ := set $config $key (dict "file" (include "cosi-driver.secretPath" $value.secretKeyRef)) -}}
{{- else -}}
{{- $_ := set $config $key $value -}}
{{- end -}}
{{- end -}}
{{- $entry := dict "type" $backend.type "config" $config -}}
{{- if $backend.default -}}
{{- $_ := set $entry "default" true -}}
{{- $defaults = append $defaults $name -}}
{{- end -}}
{{- if and (eq $backend.type "filesystem") (gt (int $.Values.replicaCount) 1) -}}
{{- fail (printf "backends.%s: type filesystem keeps its buckets in one pod's volume; replicaCount must be 1 (it is %d)" $name (int $.Values.replicaCount)) -}}
{{- end -}}
{{- if and (eq $backend.type "ceph-rgw") (not $.Values.masterKey.secretKeyRef.name) -}}
{{- fail (printf "backends.%s: type ceph-rgw derives credentials from the master key; set masterKey.secretKeyRef to a Secret key of at least 32 bytes" $name) -}}
{{- end -}}
{{- $_ := set $backends $name $entry -}}
{{- end -}}
{{- if and (gt (len $backends) 1) (ne (len $defaults) 1) -}}
{{- fail (printf "backends: %d of %d backends are marked default: true; mark exactly one" (len $defaults) (len $backends)) -}}
{{- end -}}
{{- $document := dict "backends" $backends -}}
{{- if ne .Values.state.type "file" -}}
{{- $_ := set $document "state" (dict "type" .Values.state.type "config" (.Values.state.config | default dict)) -}}
{{- end -}}
{{- toYaml $document -}}
{{- end -}}

{{/*
The sidecar image for sidecar.api. v0.2.2 speaks only v1alpha1, and no release of the v1alpha2
sidecar exists, so pairing v1alpha2 with the default tag fails here with the fix.
*/}}
{{- define "cosi-driver.sidecarImage" -}}
{{- $image := .Values.sidecar.image -}}
{{- if and (eq .Values.sidecar.api "v1alpha2") (not $image.digest) (eq (toString $image.tag) "v0.2.2") -}}
{{- fail "sidecar.api=v1alpha2: the v0.2.2 sidecar speaks only COSI v1alpha1; set sidecar.image.tag (or digest) to the v1alpha2 sidecar build you run" -}}
{{- end -}}
{{- include "cosi-driver.image" (dict "image" $image "default" "v0.2.2") -}}
{{- end -}}
