package main

import (
	"context"
	"strings"
	"testing"

	dockerclient "github.com/moby/moby/client"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/docker"
	"github.com/reconcile-dev/reconcile/docker/dockertest"
	"github.com/reconcile-dev/reconcile/gce"
	"github.com/reconcile-dev/reconcile/k8s"
	"github.com/reconcile-dev/reconcile/k8s/k8stest"
	"github.com/reconcile-dev/reconcile/reconcile"
)

// Billing labels: every runner carries its job's repository and workflow run as labels
// its platform accepts, so that a bill can be split by them. The repository here has
// everything a label refuses: capitals, dots, an underscore, and 91 characters.
var longRepo = reconcile.Scope{Owner: "Octo.Org", Repo: "My_Repo.With.Dots-and-a-very-long-name-that-goes-past-sixty-three-characters"}

func billingSpec(name, pool string, labels ...string) reconcile.RunnerSpec {
	return reconcile.RunnerSpec{Name: name, Pool: pool, Scope: longRepo, Repo: longRepo, JobID: 4242, RunID: 777, Labels: labels, JITConfig: "eyJqaXQiOiJ0ZXN0In0="}
}

// wantRepoLabel is what a repository label must be everywhere: at most 63 characters,
// the repository's name readable in it, and distinct from the same name's shorter
// neighbour.
func checkRepoLabel(t *testing.T, where, v string) {
	t.Helper()
	other := reconcile.RepoLabel(reconcile.Scope{Owner: longRepo.Owner, Repo: longRepo.Repo + "-2"}, nil)
	if len(v) == 0 || len(v) > 63 || !strings.HasPrefix(v, "octo") || v == other {
		t.Errorf("%s: repository label %q: want at most 63 characters, starting with the owner, distinct from %q", where, v, other)
	}
}

func TestLabels_GCEInstanceCarriesTheRepositoryAndRunWithinGCEsRules(t *testing.T) {
	w := newGCEWorld(t)
	conf, err := reconcile.Load([]byte("github: {repos: [octo-org/app]}\npools:" + w.arm64Pool()))
	if err != nil {
		t.Fatal(err)
	}
	backends, err := backendsFor(conf, gce.Kind())
	if err != nil {
		t.Fatal(err)
	}
	// The fake refuses, as GCE does, a label outside GCE's requirements.
	if err := backends["arm64"].Create(context.Background(), billingSpec("gha-arm64-4242", "arm64", "self-hosted", "ARM64")); err != nil {
		t.Fatalf("Create() = %v", err)
	}
	in := w.compute.Instances()
	if len(in) != 1 || in[0].Labels[gce.LabelRunID] != "777" {
		t.Fatalf("instances %+v, want one labelled with run 777", in)
	}
	checkRepoLabel(t, "GCE", in[0].Labels[gce.LabelRepo])
	t.Logf("GCE: %s=%s", gce.LabelRepo, in[0].Labels[gce.LabelRepo])
}

func TestLabels_KubernetesJobAndPodCarryTheRepositoryAndRun(t *testing.T) {
	admin := k8stest.Config(t)
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, cs, "labels")
	w := newKubeWorld(t, admin, ns)
	// The real apiserver refuses a label value outside Kubernetes' syntax.
	if err := w.rc.Backends["x64"].Create(context.Background(), billingSpec("gha-x64-4242", "x64", "self-hosted", "x64")); err != nil {
		t.Fatalf("Create() = %v", err)
	}
	job, err := cs.BatchV1().Jobs(ns).Get(context.Background(), "gha-x64-4242", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for where, labels := range map[string]map[string]string{"Job": job.Labels, "pod": job.Spec.Template.Labels} {
		v := labels[k8s.LabelRepo]
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 || labels[k8s.LabelRunID] != "777" {
			t.Errorf("%s labels %v: repository %q (%v), want a valid value and run 777", where, labels, v, errs)
		}
		checkRepoLabel(t, "Kubernetes "+where, v)
	}
}

func TestLabels_DockerContainerCarriesTheRepositoryAndRun(t *testing.T) {
	dockertest.Images(t)
	conf, err := reconcile.Load([]byte(`github: {repos: [octo-org/app]}
name_prefix: dklabel
pools:
  - name: x64
    labels: [self-hosted, linux, x64]
    max_runners: 1
    docker: {host: ` + dockertest.Host(t) + `, image: ` + dockertest.RunnerImage + `, pull: never, cpus: 1, memory: 128m}
`))
	if err != nil {
		t.Fatal(err)
	}
	conf.NamePrefix = "dklabel"
	backends, err := backendsFor(conf, docker.Kind())
	if err != nil {
		t.Fatal(err)
	}
	b := backends["x64"]
	ctx := context.Background()
	if err := b.Create(ctx, billingSpec("dklabel-x64-4242", "x64", "self-hosted", "x64")); err != nil {
		t.Fatalf("Create() = %v", err)
	}
	t.Cleanup(func() {
		runners, _ := b.List(ctx)
		for _, r := range runners {
			_ = b.Delete(ctx, r)
		}
	})
	cli := dockertest.Client(t)
	got, err := cli.ContainerInspect(ctx, "dklabel-x64-4242", dockerclient.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l := got.Container.Config.Labels; l[docker.LabelRunID] != "777" || l[docker.LabelRepo] != longRepo.String() {
		t.Errorf("container labels %v: want run 777 and the repository %s as it is", l, longRepo)
	}
}
