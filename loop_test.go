package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/reconcile-dev/reconcile/k8s/k8stest"
)

// The loop on Kubernetes (manifests/kubernetes/loop), as its README overlay makes it:
// the base with the component, rendered as `kubectl apply -k` would, has no CronJob
// and a Deployment of one replica that Recreates, with readiness and liveness on
// /healthz at the port --metrics-addr serves, the same ServiceAccount, and a metrics
// Service that selects its pod. The real apiserver accepts every object, and the
// Deployment and Service are created for real in a namespace of their own.
func TestKubernetes_LoopDeploymentIsAcceptedWithItsProbes(t *testing.T) {
	admin := k8stest.Config(t)
	base, err := filepath.Abs("manifests/kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	overlay := t.TempDir()
	rel, err := filepath.Rel(overlay, base) // kustomize takes relative paths only
	if err != nil {
		t.Fatal(err)
	}
	kust := "resources: [" + rel + "]\ncomponents: [" + filepath.Join(rel, "loop") + "]\n"
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kust), 0o600); err != nil {
		t.Fatal(err)
	}
	objs := kustomized(t, overlay)
	// The other way the README gives: the base's own `components: [loop]`, uncommented.
	if uncommented := kindsOf(kustomized(t, uncommentLoop(t, base))); !slices.Equal(uncommented, kindsOf(objs)) {
		t.Errorf("with components: [loop] uncommented: %v, want the overlay's %v", uncommented, kindsOf(objs))
	}
	var deploy appsv1.Deployment
	var svc corev1.Service
	for _, u := range objs {
		switch u.GetKind() {
		case "CronJob":
			t.Errorf("the loop keeps the CronJob %s: two would run passes", u.GetName())
		case "Deployment":
			fromUnstructured(t, u, &deploy)
		case "Service":
			fromUnstructured(t, u, &svc)
		}
	}
	spec := deploy.Spec
	if spec.Replicas == nil || *spec.Replicas != 1 || spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || len(spec.Template.Spec.Containers) != 1 {
		t.Fatalf("deployment %+v: want one replica, Recreate, one container", spec)
	}
	c := spec.Template.Spec.Containers[0]
	i := slices.IndexFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--metrics-addr=:") })
	if i < 0 || slices.Contains(c.Args, "--once") {
		t.Fatalf("args %v: want the loop (no --once) serving --metrics-addr", c.Args)
	}
	port := strings.TrimPrefix(c.Args[i], "--metrics-addr=:")
	if len(c.Ports) != 1 || itoa(int64(c.Ports[0].ContainerPort)) != port {
		t.Errorf("container ports %v, want the --metrics-addr port %s", c.Ports, port)
	}
	for what, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port != intstr.FromString(c.Ports[0].Name) {
			t.Errorf("%s probe %+v: want GET /healthz on port %s", what, p, c.Ports[0].Name)
		}
	}
	if spec.Template.Spec.ServiceAccountName != manifestRoleSubject(t, objs) {
		t.Errorf("service account %q, want the RoleBinding's", spec.Template.Spec.ServiceAccountName)
	}
	if !equalMaps(svc.Spec.Selector, spec.Template.Labels) || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort != intstr.FromString("metrics") {
		t.Errorf("service %+v does not reach the pod's metrics port", svc.Spec)
	}

	cl, err := client.New(admin, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, u := range objs {
		if u.GetKind() == "Namespace" {
			if err := cl.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			continue
		}
		if err := cl.Create(ctx, u.DeepCopy(), client.DryRunAll); err != nil {
			t.Errorf("server-side dry-run of %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, cs, "loop")
	deploy.Namespace, svc.Namespace = ns, ns
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, &deploy, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the Deployment: %v", err)
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the Service: %v", err)
	}
	got, err := cs.AppsV1().Deployments(ns).Get(ctx, "reconcile", metav1.GetOptions{})
	if err != nil || got.Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("the Deployment as stored: %v", err)
	}
}

func fromUnstructured(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// manifestRoleSubject is the ServiceAccount the manifests' RoleBinding binds.
func manifestRoleSubject(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() == "RoleBinding" && u.GetName() == "reconcile" {
			subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
			if len(subjects) == 1 {
				return subjects[0].(map[string]any)["name"].(string)
			}
		}
	}
	t.Fatal("no RoleBinding reconcile with one subject")
	return ""
}

// uncommentLoop copies the base with its `# components: [loop]` line uncommented.
func uncommentLoop(t *testing.T, base string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(base)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kustomization.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\n# components: [loop]\n") {
		t.Fatal("manifests/kubernetes/kustomization.yaml has no '# components: [loop]' line")
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), "\n# components: [loop]\n", "\ncomponents: [loop]\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func kindsOf(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, u := range objs {
		out = append(out, u.GetKind()+" "+u.GetName())
	}
	slices.Sort(out)
	return out
}
