package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/reconcile-dev/reconcile/k8s/k8stest"
	"github.com/reconcile-dev/reconcile/reconcile"
)

func TestMain(m *testing.M) {
	code := m.Run()
	k8stest.Stop()
	os.Exit(code)
}

// cluster returns a client of the real apiserver and a fresh namespace for one test.
func cluster(t *testing.T) (kubernetes.Interface, string) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(k8stest.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	return cs, k8stest.Namespace(t, cs, "runners")
}

func testConfig(t *testing.T, ns, section string) Config {
	t.Helper()
	c, err := ParseConfig(json.RawMessage(section), "pools[0].kubernetes")
	if err != nil {
		t.Fatalf("ParseConfig(%s) = %v", section, err)
	}
	c.Namespace = ns
	return c
}

func spec(name string, jobID int64) reconcile.RunnerSpec {
	repo := reconcile.Scope{Owner: "octo-org", Repo: "app"}
	return reconcile.RunnerSpec{Name: name, Pool: "x64", Scope: repo, Repo: repo, JobID: jobID,
		Labels: []string{"self-hosted", "x64"}, JITConfig: reconcile.Secret("jit-" + name + "-s3cr3t"), MaxLifetime: 6 * time.Hour}
}

func TestBackend_CreateMakesASuspendedFreeJobAndItsSecret(t *testing.T) {
	t.Parallel()
	cs, ns := cluster(t)
	ctx := context.Background()
	b := New(cs, "gha", testConfig(t, ns, `{}`))
	sp := spec("gha-x64-42", 42)
	if err := b.Create(ctx, sp); err != nil {
		t.Fatalf("Create() = %v, want nil", err)
	}
	job, err := cs.BatchV1().Jobs(ns).Get(ctx, sp.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting the job: %v", err)
	}
	wantLabels := map[string]string{LabelOwner: "gha", LabelPool: "x64", LabelJobID: "42", LabelRepo: "octo-org_app",
		"app.kubernetes.io/name": "github-runner", "app.kubernetes.io/managed-by": "reconcile"}
	if diff := cmp.Diff(wantLabels, job.Labels); diff != "" {
		t.Errorf("job labels mismatch (-want +got):\n%s", diff)
	}
	wantAnn := map[string]string{AnnotationScope: "octo-org/app", AnnotationRepo: "octo-org/app"} // the job id once, in its label
	if diff := cmp.Diff(wantAnn, job.Annotations); diff != "" {
		t.Errorf("job annotations mismatch (-want +got):\n%s", diff)
	}
	js := job.Spec
	pod := js.Template.Spec
	checks := []struct {
		what      string
		got, want any
	}{
		{"suspend", ptr.Deref(js.Suspend, true), false},
		{"backoffLimit", ptr.Deref(js.BackoffLimit, -1), int32(0)},
		{"ttlSecondsAfterFinished", ptr.Deref(js.TTLSecondsAfterFinished, -1), int32(300)},
		{"activeDeadlineSeconds", ptr.Deref(js.ActiveDeadlineSeconds, -1), int64(6 * 3600)},
		{"restartPolicy", pod.RestartPolicy, corev1.RestartPolicyNever},
		{"automountServiceAccountToken", ptr.Deref(pod.AutomountServiceAccountToken, true), false},
		{"runner image", pod.Containers[0].Image, DefaultImage},
		{"runner command", strings.Join(pod.Containers[0].Command, " "), "/home/runner/run.sh"},
		{"runAsNonRoot", ptr.Deref(pod.Containers[0].SecurityContext.RunAsNonRoot, false), true},
		{"runAsUser", ptr.Deref(pod.Containers[0].SecurityContext.RunAsUser, 0), int64(1001)},
		{"pod label", js.Template.Labels[LabelOwner], "gha"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("job %s = %v, want %v", c.what, c.got, c.want)
		}
	}
	wantEnv := corev1.EnvVar{Name: JITConfigEnv, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: sp.Name}, Key: "jitconfig"}}}
	if diff := cmp.Diff([]corev1.EnvVar{wantEnv}, pod.Containers[0].Env); diff != "" {
		t.Errorf("runner env mismatch (-want +got):\n%s", diff)
	}
	raw, _ := json.Marshal(job)
	if strings.Contains(string(raw), sp.JITConfig.Reveal()) {
		t.Error("the Job object contains the JIT configuration")
	}

	sec, err := cs.CoreV1().Secrets(ns).Get(ctx, sp.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting the secret: %v", err)
	}
	if got := string(sec.Data["jitconfig"]); got != sp.JITConfig.Reveal() {
		t.Errorf("secret holds %q, want the JIT configuration", got)
	}
	if len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].UID != job.UID || sec.OwnerReferences[0].Kind != "Job" {
		t.Errorf("secret owner references = %+v, want the job %s", sec.OwnerReferences, job.UID)
	}
}

func TestBackend_CreatingTheSameRunnerTwiceIsSuccess(t *testing.T) {
	t.Parallel()
	cs, ns := cluster(t)
	b := New(cs, "gha", testConfig(t, ns, `{}`))
	sp := spec("gha-x64-7", 7)
	for i := range 2 {
		if err := b.Create(context.Background(), sp); err != nil {
			t.Fatalf("Create() #%d = %v, want nil", i+1, err)
		}
	}
	rs, err := b.List(context.Background())
	if err != nil || len(rs) != 1 {
		t.Fatalf("List() = %v, %v; want one runner", rs, err)
	}
}

func TestBackend_ListReadsEveryPageAndOnlyOurs(t *testing.T) {
	t.Parallel()
	cs, ns := cluster(t)
	ctx := context.Background()
	b := New(cs, "gha", testConfig(t, ns, `{}`))
	b.PageSize = 3
	for i := range 8 {
		if err := b.Create(ctx, spec(fmt.Sprintf("gha-x64-%d", 100+i), int64(100+i))); err != nil {
			t.Fatal(err)
		}
	}
	// Jobs of another installation, and not of this tool at all.
	other := New(cs, "other", testConfig(t, ns, `{}`))
	if err := other.Create(ctx, spec("other-x64-1", 1)); err != nil {
		t.Fatal(err)
	}
	plain := buildJob(testConfig(t, ns, `{}`), "gha", spec("plain", 2))
	plain.Labels = map[string]string{"app": "something-else"} // empty labels would be copied from the pod template
	if _, err := cs.BatchV1().Jobs(ns).Create(ctx, plain, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs, err := b.List(ctx)
	if err != nil {
		t.Fatalf("List() = %v", err)
	}
	if len(rs) != 8 {
		t.Fatalf("List() returned %d runners, want 8 (pages of 3)", len(rs))
	}
	want := reconcile.Runner{Name: "gha-x64-100", Pool: "x64", Scope: reconcile.Scope{Owner: "octo-org", Repo: "app"},
		Repo: reconcile.Scope{Owner: "octo-org", Repo: "app"}, JobID: 100, Phase: reconcile.PhaseActive}
	got := rs[0]
	if got.CreatedAt.IsZero() || time.Since(got.CreatedAt) > time.Minute {
		t.Errorf("runner created at %v, want about now", got.CreatedAt)
	}
	got.CreatedAt = time.Time{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List()[0] mismatch (-want +got):\n%s", diff)
	}
}

// finish sets a Job's terminal conditions through the status subresource, as the Job
// controller does.
func finish(t *testing.T, cs kubernetes.Interface, ns, name string, cond batchv1.JobConditionType) {
	t.Helper()
	ctx := context.Background()
	job, err := cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	job.Status.StartTime = &now
	interim := batchv1.JobFailureTarget
	if cond == batchv1.JobComplete {
		interim = batchv1.JobSuccessCriteriaMet
		job.Status.CompletionTime = &now
		job.Status.Succeeded = 1
	} else {
		job.Status.Failed = 1
	}
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: interim, Status: corev1.ConditionTrue, LastProbeTime: now, LastTransitionTime: now, Reason: "Test"},
		{Type: cond, Status: corev1.ConditionTrue, LastProbeTime: now, LastTransitionTime: now, Reason: "Test"},
	}
	if _, err := cs.BatchV1().Jobs(ns).UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("setting %s on job %s: %v", cond, name, err)
	}
}

func TestBackend_CompleteOrFailedJobIsFinished(t *testing.T) {
	t.Parallel()
	cs, ns := cluster(t)
	ctx := context.Background()
	b := New(cs, "gha", testConfig(t, ns, `{}`))
	for _, n := range []string{"gha-x64-1", "gha-x64-2", "gha-x64-3"} {
		if err := b.Create(ctx, spec(n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	finish(t, cs, ns, "gha-x64-1", batchv1.JobComplete)
	finish(t, cs, ns, "gha-x64-2", batchv1.JobFailed)
	rs, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]reconcile.Phase{}
	for _, r := range rs {
		got[r.Name] = r.Phase
	}
	want := map[string]reconcile.Phase{"gha-x64-1": reconcile.PhaseFinished, "gha-x64-2": reconcile.PhaseFinished, "gha-x64-3": reconcile.PhaseActive}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("phases mismatch (-want +got):\n%s", diff)
	}
}

func TestBackend_DeleteRemovesJobAndSecretAndIsIdempotent(t *testing.T) {
	t.Parallel()
	cs, ns := cluster(t)
	ctx := context.Background()
	b := New(cs, "gha", testConfig(t, ns, `{}`))
	sp := spec("gha-x64-9", 9)
	if err := b.Create(ctx, sp); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := b.Delete(ctx, reconcile.Runner{Name: sp.Name}); err != nil {
			t.Fatalf("Delete() #%d = %v, want nil", i+1, err)
		}
	}
	// The job goes away in the background; its secret is gone at once.
	if _, err := cs.CoreV1().Secrets(ns).Get(ctx, sp.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("secret after Delete: %v, want NotFound", err)
	}
	if job, err := cs.BatchV1().Jobs(ns).Get(ctx, sp.Name, metav1.GetOptions{}); err == nil && job.DeletionTimestamp == nil {
		t.Errorf("job after Delete still exists and is not being deleted")
	}
}

func TestBackend_DeleteRemovesAnOrphanedSecret(t *testing.T) {
	t.Parallel()
	cs, ns := cluster(t)
	ctx := context.Background()
	b := New(cs, "gha", testConfig(t, ns, `{}`))
	sp := spec("gha-x64-10", 10)
	if err := b.Create(ctx, sp); err != nil {
		t.Fatal(err)
	}
	// Someone removed the Job alone (the TTL controller, a person); no garbage collector runs here.
	if err := cs.BatchV1().Jobs(ns).Delete(ctx, sp.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, reconcile.Runner{Name: sp.Name}); err != nil {
		t.Fatalf("Delete() = %v, want nil", err)
	}
	if _, err := cs.CoreV1().Secrets(ns).Get(ctx, sp.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("orphaned secret after Delete: %v, want NotFound", err)
	}
}

func TestBackend_FailedCreateLeavesNothing(t *testing.T) {
	t.Parallel()
	cs, ns := cluster(t)
	ctx := context.Background()
	b := New(cs, "gha", testConfig(t, ns, `{}`))
	sp := spec("gha-x64-11", 11)
	sp.JITConfig = reconcile.Secret(strings.Repeat("x", 1<<20+1)) // larger than a Secret may be
	if err := b.Create(ctx, sp); err == nil {
		t.Fatal("Create() = nil, want the apiserver's refusal of the secret")
	}
	if _, err := cs.BatchV1().Jobs(ns).Get(ctx, sp.Name, metav1.GetOptions{}); err == nil {
		job, _ := cs.BatchV1().Jobs(ns).Get(ctx, sp.Name, metav1.GetOptions{})
		if job.DeletionTimestamp == nil {
			t.Error("the suspended job of a failed create is left behind")
		}
	}
}
