package k8s

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// What each mode changes in the pod, and that the apiserver accepts the result.
func TestBuildJob_Modes(t *testing.T) {
	t.Parallel()
	cs, ns := cluster(t)
	type shape struct {
		HostUsers      *bool
		Inits          []string // init containers, in order
		Sidecars       []string // native sidecars: init containers that keep running
		SidecarUser    *int64
		Privileged     bool
		DockerHost     string
		RunnerMounts   []string
		SupplementalGs []int64
	}
	tests := []struct {
		mode Mode
		want shape
	}{
		{ModeStandard, shape{}},
		{ModeUserns, shape{HostUsers: ptr.To(false)}},
		{ModeDind, shape{Inits: []string{"init-externals", "dind"}, Sidecars: []string{"dind=docker:dind"}, Privileged: true,
			DockerHost:   "unix:///var/run/docker-socket/docker.sock",
			RunnerMounts: []string{"/home/runner/_work", "/var/run/docker-socket", "/home/runner/externals"}}},
		{ModeDindRootless, shape{Inits: []string{"init-externals", "dind"}, Sidecars: []string{"dind=docker:dind-rootless"}, SidecarUser: ptr.To[int64](1000), Privileged: true,
			DockerHost:     "unix:///var/run/docker-socket/docker.sock",
			RunnerMounts:   []string{"/home/runner/_work", "/var/run/docker-socket", "/home/runner/externals"},
			SupplementalGs: []int64{1000}}},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			t.Parallel()
			c := testConfig(t, ns, `{"mode":"`+string(tt.mode)+`"}`)
			job := buildJob(c, "gha", spec("gha-x64-"+strings.ReplaceAll(string(tt.mode), "-", ""), 1))
			created, err := cs.BatchV1().Jobs(ns).Create(context.Background(), job, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("apiserver refused the %s job: %v", tt.mode, err)
			}
			pod := created.Spec.Template.Spec
			var got shape
			got.HostUsers = pod.HostUsers
			for _, ic := range pod.InitContainers {
				got.Inits = append(got.Inits, ic.Name)
				if ptr.Deref(ic.RestartPolicy, "") == corev1.ContainerRestartPolicyAlways {
					got.Sidecars = append(got.Sidecars, ic.Name+"="+ic.Image)
					got.Privileged = ptr.Deref(ic.SecurityContext.Privileged, false)
					got.SidecarUser = ic.SecurityContext.RunAsUser
				}
			}
			runner := pod.Containers[0]
			for _, e := range runner.Env {
				if e.Name == "DOCKER_HOST" {
					got.DockerHost = e.Value
				}
			}
			for _, m := range runner.VolumeMounts {
				got.RunnerMounts = append(got.RunnerMounts, m.MountPath)
			}
			got.SupplementalGs = pod.SecurityContext.SupplementalGroups
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mode %s mismatch (-want +got):\n%s", tt.mode, diff)
			}
			// Whatever the mode, the runner itself stays unprivileged.
			sc := runner.SecurityContext
			if !ptr.Deref(sc.RunAsNonRoot, false) || ptr.Deref(sc.AllowPrivilegeEscalation, true) || ptr.Deref(sc.Privileged, false) {
				t.Errorf("runner security context %+v, want non-root without privilege", sc)
			}
		})
	}
}

// Docker resolves a job container's bind mounts on the daemon's filesystem: the runner
// asks for /home/runner/_work as /__w and /home/runner/externals as /__e (the runner's
// container hooks; actions-runner-controller's dind chart lays the pod out the same
// way). Each path must be the same volume in the runner's container and the daemon's,
// the externals volume must be filled from the runner image before the daemon starts,
// and the daemon must answer before the runner starts (a startup probe on a native
// sidecar holds the main containers back).
func TestBuildJob_DindJobContainersSeeTheRunnersFiles(t *testing.T) {
	t.Parallel()
	for _, mode := range []Mode{ModeDind, ModeDindRootless} {
		c, err := ParseConfig(json.RawMessage(`{"mode":"`+string(mode)+`","image":"registry.example/runner:2.330"}`), "kubernetes")
		if err != nil {
			t.Fatal(err)
		}
		pod := buildJob(c, "gha", spec("gha-x64-1", 1)).Spec.Template.Spec
		container := func(name string) corev1.Container {
			for _, ct := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
				if ct.Name == name {
					return ct
				}
			}
			t.Fatalf("%s: no container %s", mode, name)
			return corev1.Container{}
		}
		runner, dind, init := container(RunnerContainer), container(DindContainer), container(ExternalsInit)
		for _, p := range []string{"/home/runner/_work/octo-repo/octo-repo", "/home/runner/externals/node20/bin/node"} {
			rv, dv := volumeAt(runner, p), volumeAt(dind, p)
			if rv == "" || rv != dv {
				t.Errorf("%s: %s is volume %q in the runner and %q in the daemon, want the same volume", mode, p, rv, dv)
			}
		}
		ext := volumeAt(dind, "/home/runner/externals/node20")
		if init.Image != c.Image || !slices.Contains(init.Command, "/home/runner/externals/.") || !slices.ContainsFunc(init.VolumeMounts, func(m corev1.VolumeMount) bool {
			return m.Name == ext && slices.Contains(init.Command, m.MountPath+"/")
		}) {
			t.Errorf("%s: init container %+v does not copy the runner image's externals into volume %q", mode, init, ext)
		}
		if slices.IndexFunc(pod.InitContainers, func(c corev1.Container) bool { return c.Name == ExternalsInit }) >
			slices.IndexFunc(pod.InitContainers, func(c corev1.Container) bool { return c.Name == DindContainer }) {
			t.Errorf("%s: the externals are copied after the daemon starts", mode)
		}
		probe := dind.StartupProbe
		if probe == nil || probe.Exec == nil || !slices.Equal(probe.Exec.Command, []string{"docker", "--host", "unix:///var/run/docker-socket/docker.sock", "info"}) {
			t.Errorf("%s: daemon startup probe %+v, want docker info on the runner's DOCKER_HOST", mode, probe)
		}
	}
}

// volumeAt returns the volume that holds path in a container: the mount with the
// longest mountPath that contains it.
func volumeAt(c corev1.Container, path string) string {
	best, vol := "", ""
	for _, m := range c.VolumeMounts {
		if (path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")) && len(m.MountPath) > len(best) {
			best, vol = m.MountPath, m.Name
		}
	}
	return vol
}

// The pool's pod_template is the base; what the tool controls wins.
func TestBuildJob_PodTemplateMerge(t *testing.T) {
	t.Parallel()
	cs, ns := cluster(t)
	c := testConfig(t, ns, `{
	  "image": "registry.example/runner:2.330",
	  "pod_template": {
	    "metadata": {"labels": {"team": "infra", "reconcile.dev/owner": "spoofed"}, "annotations": {"cost-center": "42"}},
	    "spec": {
	      "nodeSelector": {"kubernetes.io/arch": "arm64"},
	      "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
	      "automountServiceAccountToken": true,
	      "containers": [
	        {"name": "runner", "image": "ignored", "command": ["/bin/sh"],
	         "resources": {"requests": {"cpu": "2", "memory": "4Gi"}},
	         "env": [{"name": "RUNNER_FEATURE", "value": "on"}, {"name": "ACTIONS_RUNNER_INPUT_JITCONFIG", "value": "leak"}]},
	        {"name": "cache", "image": "registry.example/cache:1"}
	      ]
	    }
	  }
	}`)
	job := buildJob(c, "gha", spec("gha-x64-5", 5))
	created, err := cs.BatchV1().Jobs(ns).Create(context.Background(), job, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("apiserver refused the merged job: %v", err)
	}
	tpl := created.Spec.Template
	pod := tpl.Spec
	if tpl.Labels["team"] != "infra" || tpl.Labels[LabelOwner] != "gha" || tpl.Annotations["cost-center"] != "42" {
		t.Errorf("pod metadata = %v %v, want the template's plus the tool's, the tool's winning", tpl.Labels, tpl.Annotations)
	}
	if pod.NodeSelector["kubernetes.io/arch"] != "arm64" || len(pod.Tolerations) != 1 {
		t.Errorf("node selection lost: %v %v", pod.NodeSelector, pod.Tolerations)
	}
	if ptr.Deref(pod.AutomountServiceAccountToken, true) {
		t.Error("automountServiceAccountToken was left on")
	}
	var names []string
	for _, ct := range pod.Containers {
		names = append(names, ct.Name)
	}
	if diff := cmp.Diff([]string{"runner", "cache"}, names); diff != "" {
		t.Errorf("containers mismatch (-want +got):\n%s", diff)
	}
	runner := pod.Containers[0]
	if runner.Image != "registry.example/runner:2.330" || strings.Join(runner.Command, " ") != "/home/runner/run.sh" {
		t.Errorf("runner image/command = %s %v, want the pool's image and run.sh", runner.Image, runner.Command)
	}
	if !runner.Resources.Requests.Cpu().Equal(resource.MustParse("2")) {
		t.Errorf("runner resources = %v, want the template's", runner.Resources)
	}
	var env []string
	for _, e := range runner.Env {
		v := e.Value
		if e.ValueFrom != nil {
			v = "secretKeyRef:" + e.ValueFrom.SecretKeyRef.Name
		}
		env = append(env, e.Name+"="+v)
	}
	want := []string{"RUNNER_FEATURE=on", "ACTIONS_RUNNER_INPUT_JITCONFIG=secretKeyRef:gha-x64-5"}
	if diff := cmp.Diff(want, env); diff != "" {
		t.Errorf("runner env mismatch (-want +got):\n%s", diff)
	}
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig(json.RawMessage(`{}`), "pools[0].kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Namespace: DefaultNamespace, Image: DefaultImage, Mode: ModeStandard, TTLAfterFinished: 300_000_000_000, DindImage: DefaultDindImage}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("ParseConfig({}) mismatch (-want +got):\n%s", diff)
	}
	bad := []struct{ section, want string }{
		{`{"namespce": "x"}`, "pools[0].kubernetes.namespce: unknown key"},
		{`{"namespace": "Runners"}`, "pools[0].kubernetes.namespace"},
		{`{"mode": "vm"}`, "pools[0].kubernetes.mode"},
		{`{"ttl_after_finished": "later"}`, "pools[0].kubernetes.ttl_after_finished"},
		{`{"pod_template": {"spec": {"containers": [{"name": "runner", "resourcez": {}}]}}}`, "pools[0].kubernetes.pod_template.spec.containers[0].resourcez: unknown key"},
		{`{"pod_template": {"spec": {"restartPolicy": "Always"}}}`, "pools[0].kubernetes.pod_template.spec.restartPolicy"},
		{`{"pod_template": {"spec": {"containers": [{"name": "sidecar"}]}}}`, "pools[0].kubernetes.pod_template.spec.containers[0].image is missing"},
		{`{"pod_template": {"spec": {"containers": [{"name": "runner", "resources": {"requests": {"cpu": "lots"}}}]}}}`, "pools[0].kubernetes"},
	}
	for _, b := range bad {
		if _, err := ParseConfig(json.RawMessage(b.section), "pools[0].kubernetes"); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("ParseConfig(%s) = %v, want an error containing %q", b.section, err, b.want)
		}
	}
}
