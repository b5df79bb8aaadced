package k8s

import (
	"context"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// DefaultPageSize is how many Jobs one list request asks for.
const DefaultPageSize = 100

// Backend runs one pool's runners as Jobs in one namespace.
type Backend struct {
	client kubernetes.Interface
	cfg    Config
	owner  string
	// PageSize is how many Jobs one list request asks for.
	PageSize int64
}

var _ reconcile.Backend = (*Backend)(nil)

// Options implements reconcile.Backend: a Kubernetes pool makes its runners one way.
func (b *Backend) Options(string) []string { return nil }

// Describe implements reconcile.Backend.
func (b *Backend) Describe() (where, check string) {
	return "Kubernetes namespace " + b.cfg.Namespace, "check KUBECONFIG (or the pod's service account), " +
		"that the namespace exists, and that its Role grants manifests/kubernetes/role.yaml"
}

// classify says what kind of failure an apiserver's answer was (reconcile.PlatformError).
// A ResourceQuota refuses an object past it at admission with 403 Forbidden and a
// message that starts "exceeded quota" (k8s.io/apiserver's resourcequota admission
// plugin; the Job controller tells it from RBAC's 403 by the same words); any other 403
// is RBAC's, for what the call (verb and resource) needed; 422 and a missing namespace
// are the configuration's.
func classify(err error, need string) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota"):
		return reconcile.Classify(reconcile.FailQuota, err)
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return reconcile.DeniedPermission(need, err)
	case apierrors.IsInvalid(err), apierrors.IsNotFound(err):
		return reconcile.Classify(reconcile.FailInvalid, err)
	}
	return err
}

// New returns a backend that creates Jobs as cfg says and manages those whose owner
// label is owner (the name prefix).
func New(client kubernetes.Interface, owner string, cfg Config) *Backend {
	return &Backend{client: client, cfg: cfg, owner: owner, PageSize: DefaultPageSize}
}

// List returns the runners of every Job in the namespace with this tool's owner label,
// from every page. A listing that fails part-way is an error, never a partial list.
func (b *Backend) List(ctx context.Context) ([]reconcile.Runner, error) {
	sel := labels.SelectorFromSet(labels.Set{LabelOwner: b.owner}).String()
	var out []reconcile.Runner
	opts := metav1.ListOptions{LabelSelector: sel, Limit: b.PageSize}
	for {
		page, err := b.client.BatchV1().Jobs(b.cfg.Namespace).List(ctx, opts)
		if err != nil {
			return nil, classify(fmt.Errorf("listing jobs in namespace %s: %w", b.cfg.Namespace, err), "list jobs.batch")
		}
		for i := range page.Items {
			out = append(out, runnerOf(&page.Items[i]))
		}
		if page.Continue == "" {
			return out, nil
		}
		opts.Continue = page.Continue
	}
}

// runnerOf reads a runner's state back from its Job.
func runnerOf(j *batchv1.Job) reconcile.Runner {
	o := ownership.Decode(j.Labels, j.Annotations)
	r := reconcile.Runner{
		Name:      j.Name,
		Pool:      o.Pool,
		Scope:     o.Scope,
		Repo:      o.Repo,
		JobID:     o.JobID,
		CreatedAt: j.CreationTimestamp.Time,
		Phase:     reconcile.PhaseActive,
	}
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobFailed, batchv1.JobFailureTarget, batchv1.JobSuccessCriteriaMet:
			r.Phase = reconcile.PhaseFinished
		}
		if disrupted(c) && r.PreemptedAt.IsZero() {
			r.PreemptedAt = c.LastTransitionTime.Time
		}
	}
	return r
}

// Source: Kubernetes' Job controller (pkg/controller/job/pod_failure_policy.go) writes
// "Pod %s/%s has condition %v matching %v rule at index %d" as the message of the
// Failed condition, reason PodFailurePolicy; "Pod disruption conditions" in the
// Kubernetes docs lists who sets DisruptionTarget (scheduler preemption, eviction,
// taint manager, node shutdown, pod GC of a deleted node).
//
// disrupted reports whether a Job condition is the pod failure policy's verdict on a
// pod the cluster took away: the Job controller fails the Job with reason
// PodFailurePolicy and a message naming the DisruptionTarget condition it matched
// ("Pod ns/name has condition DisruptionTarget matching FailJob rule at index 0").
func disrupted(c batchv1.JobCondition) bool {
	return (c.Type == batchv1.JobFailed || c.Type == batchv1.JobFailureTarget) &&
		c.Reason == batchv1.JobReasonPodFailurePolicy && strings.Contains(c.Message, string(corev1.DisruptionTarget))
}

// Create starts a runner: a suspended Job, the Secret with its JIT configuration
// (owned by the Job, so that the cluster removes it with the Job), then the Job
// unsuspended, so that no pod starts before its Secret exists. Nil if a Job of that
// name already exists. A create that fails part-way removes what it made.
func (b *Backend) Create(ctx context.Context, spec reconcile.RunnerSpec) error {
	jobs := b.client.BatchV1().Jobs(b.cfg.Namespace)
	job, err := jobs.Create(ctx, buildJob(b.cfg, b.owner, spec), metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return classify(fmt.Errorf("creating job %s/%s: %w", b.cfg.Namespace, spec.Name, err), "create jobs.batch")
	}
	secret := buildSecret(b.cfg.Namespace, b.owner, spec)
	secret.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: "batch/v1",
		Kind:       "Job",
		Name:       job.Name,
		UID:        job.UID,
		Controller: ptr.To(true),
	}}
	_, err = b.client.CoreV1().Secrets(b.cfg.Namespace).Create(ctx, secret, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Left by a Job of the same name that is gone: its configuration is stale.
		err = b.replaceSecret(ctx, secret)
	}
	if err != nil {
		return b.undo(ctx, spec.Name, classify(fmt.Errorf("creating secret %s/%s: %w", b.cfg.Namespace, spec.Name, err), "create secrets"))
	}
	patch := []byte(`{"spec":{"suspend":false}}`)
	if _, err := jobs.Patch(ctx, job.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return b.undo(ctx, spec.Name, fmt.Errorf("starting job %s/%s: %w", b.cfg.Namespace, spec.Name, err))
	}
	return nil
}

// CheckCreate implements reconcile.Checker: the runner's Job and Secret, created with
// the apiserver's dry run (validated, admitted, quota and RBAC checked, not stored).
func (b *Backend) CheckCreate(ctx context.Context, spec reconcile.RunnerSpec) error {
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	_, err := b.client.BatchV1().Jobs(b.cfg.Namespace).Create(ctx, buildJob(b.cfg, b.owner, spec), dry)
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return classify(fmt.Errorf("creating job %s/%s (dry run): %w", b.cfg.Namespace, spec.Name, err), "create jobs.batch")
	}
	_, err = b.client.CoreV1().Secrets(b.cfg.Namespace).Create(ctx, buildSecret(b.cfg.Namespace, b.owner, spec), dry)
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return classify(fmt.Errorf("creating secret %s/%s (dry run): %w", b.cfg.Namespace, spec.Name, err), "create secrets")
	}
	return nil
}

func (b *Backend) replaceSecret(ctx context.Context, secret *corev1.Secret) error {
	secrets := b.client.CoreV1().Secrets(b.cfg.Namespace)
	if err := secrets.Delete(ctx, secret.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	_, err := secrets.Create(ctx, secret, metav1.CreateOptions{})
	return err
}

// undo removes a half-made runner (reconcile.UndoCreate).
func (b *Backend) undo(ctx context.Context, name string, cause error) error {
	return reconcile.UndoCreate(ctx, cause, func(ctx context.Context) error { return b.delete(ctx, name) })
}

// Delete removes a runner's Job, its pods (background propagation) and its Secret.
// Nil if they are already gone.
func (b *Backend) Delete(ctx context.Context, r reconcile.Runner) error {
	return b.delete(ctx, r.Name)
}

func (b *Backend) delete(ctx context.Context, name string) error {
	err := b.client.BatchV1().Jobs(b.cfg.Namespace).Delete(ctx, name,
		metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting job %s/%s: %w", b.cfg.Namespace, name, err)
	}
	// The garbage collector removes an owned Secret with its Job; removing it here as
	// well covers a Secret whose Job is already gone and a cluster whose collector lags.
	err = b.client.CoreV1().Secrets(b.cfg.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting secret %s/%s: %w", b.cfg.Namespace, name, err)
	}
	return nil
}
