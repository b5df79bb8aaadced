package k8s

import (
	"maps"
	"slices"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// Labels and annotations that carry a runner's state on its Job. The owner label's
// value is the name prefix: what has it is this installation's.
const (
	LabelOwner = "reconcile.dev/owner"
	LabelPool  = "reconcile.dev/pool"
	LabelJobID = "reconcile.dev/job-id"
	// LabelRunID and LabelRepo carry the workflow run and the repository (RepoLabel),
	// on the Job and its pod, for cost tools that split by label.
	LabelRunID      = "reconcile.dev/run-id"
	LabelRepo       = "reconcile.dev/repo"
	AnnotationScope = "reconcile.dev/scope" // where the runner is registered: owner/repo or org
	AnnotationRepo  = "reconcile.dev/repo"  // the repository of the job it was made for
)

// ownership keeps a runner's Ownership in its Job's labels and annotations (the Job's
// name is the runner's).
var ownership = reconcile.OwnershipKeys{Owner: LabelOwner, Pool: LabelPool, JobID: LabelJobID, Scope: AnnotationScope, Repo: AnnotationRepo,
	RunID: LabelRunID, BillingRepo: LabelRepo, LabelValue: labelRune}

// labelRune is Kubernetes' rule for a label value's characters: alphanumerics, '-',
// '_' and '.' (the value's ends alphanumeric; reconcile.RepoLabel sees to that).
func labelRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}

// Names inside the pod.
const (
	RunnerContainer = "runner"
	DindContainer   = "dind"
	JITConfigEnv    = "ACTIONS_RUNNER_INPUT_JITCONFIG"
	jitConfigKey    = "jitconfig"
	runnerUID       = 1001 // the actions-runner image's user
	dockerGID       = 123  // and its docker group
	rootlessUID     = 1000 // docker:dind-rootless's user
	workVolume      = "work"
	dockerVolume    = "docker-socket"
	externalsVolume = "externals"
	runnerWorkDir   = "/home/runner/_work"
	// runnerExternals holds the runner's bundled tools (node for JavaScript actions);
	// the runner mounts it into a job container at /__e.
	runnerExternals = "/home/runner/externals"
	// ExternalsInit is the init container that copies the runner image's externals into
	// a volume the Docker daemon sees.
	ExternalsInit = "init-externals"
)

func runnerLabels(owner string, spec reconcile.RunnerSpec) map[string]string {
	labels, _ := ownership.Encode(reconcile.OwnershipOf(owner, spec))
	labels["app.kubernetes.io/name"] = "github-runner"
	labels["app.kubernetes.io/managed-by"] = "reconcile"
	return labels
}

func runnerAnnotations(spec reconcile.RunnerSpec) map[string]string {
	_, notes := ownership.Encode(reconcile.OwnershipOf("", spec))
	return notes
}

// buildSecret returns the Secret that holds a runner's JIT configuration. Its owner
// reference is set once the Job exists.
func buildSecret(namespace, owner string, spec reconcile.RunnerSpec) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        spec.Name,
			Namespace:   namespace,
			Labels:      runnerLabels(owner, spec),
			Annotations: runnerAnnotations(spec),
		},
		Type:      corev1.SecretTypeOpaque,
		Immutable: ptr.To(true),
		StringData: map[string]string{
			jitConfigKey: spec.JITConfig.Reveal(),
		},
	}
}

// buildJob returns the Job that runs one runner. It is created suspended, so that no
// pod starts before its Secret exists; the JIT configuration reaches the runner only
// through a secretKeyRef.
func buildJob(c Config, owner string, spec reconcile.RunnerSpec) *batchv1.Job {
	lbl, ann := runnerLabels(owner, spec), runnerAnnotations(spec)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: spec.Name, Namespace: c.Namespace, Labels: lbl, Annotations: ann},
		Spec: batchv1.JobSpec{
			Suspend:                 ptr.To(true),
			BackoffLimit:            ptr.To[int32](0), // a JIT configuration works once
			Parallelism:             ptr.To[int32](1),
			Completions:             ptr.To[int32](1),
			TTLSecondsAfterFinished: ptr.To(int32(c.TTLAfterFinished.Std().Seconds())),
			Template:                podTemplate(c, spec),
			// A pod the cluster took away (preempted by the scheduler, evicted, its node
			// drained, shut down or gone) carries the DisruptionTarget condition; this rule
			// fails the Job saying so, which is how the tool tells a preemption from a
			// runner that exited (see runnerOf).
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action:          batchv1.PodFailurePolicyActionFailJob,
				OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
			}}},
		},
	}
	if spec.MaxLifetime > 0 {
		job.Spec.ActiveDeadlineSeconds = ptr.To(int64(spec.MaxLifetime.Seconds()))
	}
	job.Spec.Template.Labels = merged(job.Spec.Template.Labels, lbl)
	job.Spec.Template.Annotations = merged(job.Spec.Template.Annotations, ann)
	return job
}

// podTemplate merges the pool's pod_template with what the tool controls:
//   - the template is the base: its metadata, volumes, node selection, tolerations,
//     affinity, service account, image pull secrets and extra containers stay;
//   - the tool sets restartPolicy Never, automountServiceAccountToken false and
//     enableServiceLinks false, and adds its labels and annotations;
//   - a template container named "runner" is the base of the runner container: its
//     resources, env, volumeMounts and the like stay; the tool sets its image (the
//     pool's image), command and JIT variable (replacing any of the same name),
//     and forces runAsNonRoot and allowPrivilegeEscalation false;
//   - a pod or runner securityContext in the template is kept; without one the tool's
//     default applies (non-root uid 1001, docker group 123, RuntimeDefault seccomp,
//     no capabilities);
//   - then the mode adds its sidecar, volumes, DOCKER_HOST or hostUsers.
func podTemplate(c Config, spec reconcile.RunnerSpec) corev1.PodTemplateSpec {
	var pt corev1.PodTemplateSpec
	if c.PodTemplate != nil {
		pt = *c.PodTemplate.DeepCopy()
	}
	ps := &pt.Spec
	ps.RestartPolicy = corev1.RestartPolicyNever
	ps.AutomountServiceAccountToken = ptr.To(false)
	ps.EnableServiceLinks = ptr.To(false)
	if ps.SecurityContext == nil {
		ps.SecurityContext = &corev1.PodSecurityContext{
			FSGroup:        ptr.To[int64](dockerGID),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}
	}

	i := slices.IndexFunc(ps.Containers, func(ct corev1.Container) bool { return ct.Name == RunnerContainer })
	if i < 0 {
		ps.Containers = append([]corev1.Container{{Name: RunnerContainer}}, ps.Containers...)
		i = 0
	}
	rc := &ps.Containers[i]
	rc.Image = c.Image
	rc.Command = []string{"/home/runner/run.sh"}
	rc.Args = nil
	rc.Env = slices.DeleteFunc(rc.Env, func(e corev1.EnvVar) bool { return e.Name == JITConfigEnv })
	rc.Env = append(rc.Env, corev1.EnvVar{Name: JITConfigEnv, ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: spec.Name},
			Key:                  jitConfigKey,
		},
	}})
	if rc.SecurityContext == nil {
		rc.SecurityContext = &corev1.SecurityContext{
			RunAsUser:    ptr.To[int64](runnerUID),
			RunAsGroup:   ptr.To[int64](runnerUID),
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		}
	}
	rc.SecurityContext.RunAsNonRoot = ptr.To(true)
	rc.SecurityContext.AllowPrivilegeEscalation = ptr.To(false)

	switch c.Mode {
	case ModeDind:
		addDind(ps, rc, c, false)
	case ModeDindRootless:
		addDind(ps, rc, c, true)
	case ModeUserns:
		ps.HostUsers = ptr.To(false)
	}
	return pt
}

// addDind adds a Docker daemon as a native sidecar (an init container that keeps
// running), so that the pod, and the Job, finish when the runner does.
//
// The daemon resolves a job container's bind mounts on its own filesystem: the runner
// asks for /home/runner/_work as /__w and /home/runner/externals as /__e, so both
// paths must hold the same files in the daemon's container as in the runner's. The
// work directory is a volume both mount; the externals come with the runner image, so
// an init container copies them into a volume both mount at the runner's path (what
// actions-runner-controller's gha-runner-scale-set chart does). The daemon has a
// startup probe (docker info): Kubernetes starts the runner only once a native
// sidecar's startup probe has passed, so no job meets a daemon that is not up yet.
func addDind(ps *corev1.PodSpec, rc *corev1.Container, c Config, rootless bool) {
	ps.Volumes = append(ps.Volumes,
		corev1.Volume{Name: workVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: dockerVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: externalsVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	)
	socketDir, host := "/var/run/docker-socket", "unix:///var/run/docker-socket/docker.sock"
	copyExternals := corev1.Container{
		Name:         ExternalsInit,
		Image:        c.Image,
		Command:      []string{"cp", "-a", runnerExternals + "/.", "/externals/"},
		VolumeMounts: []corev1.VolumeMount{{Name: externalsVolume, MountPath: "/externals"}},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](runnerUID),
			RunAsGroup:               ptr.To[int64](runnerUID),
			RunAsNonRoot:             ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
	sidecar := corev1.Container{
		Name:          DindContainer,
		Image:         c.DindImage,
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		Env:           []corev1.EnvVar{{Name: "DOCKER_TLS_CERTDIR", Value: ""}},
		VolumeMounts: []corev1.VolumeMount{
			{Name: workVolume, MountPath: runnerWorkDir},
			{Name: dockerVolume, MountPath: socketDir},
			{Name: externalsVolume, MountPath: runnerExternals, ReadOnly: true},
		},
		StartupProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"docker", "--host", host, "info"}}},
			PeriodSeconds:    2,
			FailureThreshold: 60, // two minutes for the daemon to answer
		},
	}
	if rootless {
		// The rootless daemon runs as uid 1000 in a user namespace of its own; it still
		// needs a privileged container to make that namespace. Its socket belongs to
		// group 1000, which the runner joins.
		ps.SecurityContext.SupplementalGroups = append(ps.SecurityContext.SupplementalGroups, rootlessUID)
		sidecar.Args = []string{"dockerd", "--host=" + host}
		sidecar.SecurityContext = &corev1.SecurityContext{
			Privileged:   ptr.To(true),
			RunAsUser:    ptr.To[int64](rootlessUID),
			RunAsGroup:   ptr.To[int64](rootlessUID),
			RunAsNonRoot: ptr.To(true),
		}
	} else {
		sidecar.Args = []string{"dockerd", "--host=" + host, "--group=" + strconv.Itoa(dockerGID)}
		sidecar.SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	}
	ps.InitContainers = append(ps.InitContainers, copyExternals, sidecar)
	rc.Env = append(rc.Env, corev1.EnvVar{Name: "DOCKER_HOST", Value: host})
	rc.VolumeMounts = append(rc.VolumeMounts,
		corev1.VolumeMount{Name: workVolume, MountPath: runnerWorkDir},
		corev1.VolumeMount{Name: dockerVolume, MountPath: socketDir},
		corev1.VolumeMount{Name: externalsVolume, MountPath: runnerExternals}, // the copy: the same files
	)
}

// merged returns base with extra laid over it.
func merged(base, extra map[string]string) map[string]string {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, extra)
	return out
}
