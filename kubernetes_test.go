package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/reconcile-dev/reconcile/docker/dockertest"
	"github.com/reconcile-dev/reconcile/ghpoll"
	"github.com/reconcile-dev/reconcile/ghpoll/ghpolltest"
	"github.com/reconcile-dev/reconcile/k8s"
	"github.com/reconcile-dev/reconcile/k8s/k8stest"
	"github.com/reconcile-dev/reconcile/reconcile"
)

// These tests run passes against a real kube-apiserver (envtest): validation,
// AlreadyExists, label selectors, paging and RBAC are the server's.

func TestMain(m *testing.M) {
	code := m.Run()
	k8stest.Stop()
	dockertest.Stop()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func newNamespace(t *testing.T, cs kubernetes.Interface, prefix string) string {
	return k8stest.Namespace(t, cs, prefix)
}

// kubeWorld is a fake GitHub and a Kubernetes pool in its own namespace.
type kubeWorld struct {
	gh *ghpolltest.Server
	cs kubernetes.Interface
	ns string
	rc *reconcile.Reconciler
}

// newKubeWorld connects as cfg (an administrator, or a service account by impersonation).
func newKubeWorld(t *testing.T, cfg *rest.Config, ns string) *kubeWorld {
	t.Helper()
	return newKubeWorldWith(t, cfg, ns, "")
}

// newKubeWorldWith is newKubeWorld with more keys for its x64 pool (YAML, indented).
func newKubeWorldWith(t *testing.T, cfg *rest.Config, ns, poolKeys string) *kubeWorld {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gh := ghpolltest.NewServer(t)
	client, err := ghpoll.New(&http.Client{Transport: &oauth2.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "ghp_test"})}}, gh.APIURL)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := reconcile.Load([]byte(`
github: {repos: [octo-org/app]}
pools:
  - name: x64
    labels: [self-hosted, linux, x64]
    max_runners: 5
    kubernetes: {namespace: ` + ns + `, mode: dind}
` + poolKeys))
	if err != nil {
		t.Fatal(err)
	}
	conf.GitHub.APIURL = gh.APIURL
	if err := conf.Validate(); err != nil {
		t.Fatal(err)
	}
	backends, err := backendsFor(conf, k8s.Kind(func() (kubernetes.Interface, error) { return cs, nil }))
	if err != nil {
		t.Fatal(err)
	}
	return &kubeWorld{gh: gh, cs: cs, ns: ns, rc: &reconcile.Reconciler{Config: conf, GitHub: client, Budget: reconcile.DefaultBudget(), Backends: backends}}
}

func (w *kubeWorld) pass(t *testing.T) error {
	t.Helper()
	_, err := w.rc.RunOnce(context.Background())
	return err
}

// lifecycle: two jobs queue, a pass creates their runners, one runner's Job completes
// and GitHub drops its registration, and the next pass removes it.
func (w *kubeWorld) lifecycle(t *testing.T, admin kubernetes.Interface) error {
	t.Helper()
	w.gh.QueueJob("octo-org/app", "self-hosted", "x64")
	done := w.gh.QueueJob("octo-org/app", "self-hosted", "linux")
	if err := w.pass(t); err != nil {
		return err
	}
	name := reconcile.RunnerName("gha", "x64", done, 0)
	w.gh.SetJobStatus(done, "completed", name)
	w.gh.RemoveRunner(name)
	finishJob(t, admin, w.ns, name)
	return w.pass(t)
}

func finishJob(t *testing.T, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	ctx := context.Background()
	job, err := cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting job %s: %v", name, err)
	}
	now := metav1.Now()
	job.Status.StartTime, job.Status.CompletionTime, job.Status.Succeeded = &now, &now, 1
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	if _, err := cs.BatchV1().Jobs(ns).UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("completing job %s: %v", name, err)
	}
}

func TestKubernetes_PassCreatesRunnersAndRemovesFinishedOnes(t *testing.T) {
	admin := k8stest.Config(t)
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w := newKubeWorld(t, admin, newNamespace(t, cs, "runners"))
	j1 := w.gh.QueueJob("octo-org/app", "self-hosted", "x64")
	j2 := w.gh.QueueJob("octo-org/app", "self-hosted", "linux")
	if err := w.pass(t); err != nil {
		t.Fatalf("first pass: %v", err)
	}
	jobs, err := cs.BatchV1().Jobs(w.ns).List(ctx, metav1.ListOptions{LabelSelector: k8s.LabelOwner + "=gha"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range jobs.Items {
		names = append(names, j.Name)
	}
	want := []string{reconcile.RunnerName("gha", "x64", j1, 0), reconcile.RunnerName("gha", "x64", j2, 0)}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("jobs %v, want %v", names, want)
	}
	regs := w.gh.Runners()
	for _, j := range jobs.Items {
		raw, _ := json.Marshal(j)
		for _, r := range regs {
			if strings.Contains(string(raw), r.JITConfig) {
				t.Errorf("job %s contains the JIT configuration of %s", j.Name, r.Name)
			}
		}
		env := j.Spec.Template.Spec.Containers[0].Env
		i := slices.IndexFunc(env, func(e corev1.EnvVar) bool { return e.Name == k8s.JITConfigEnv })
		if i < 0 || env[i].ValueFrom == nil || env[i].ValueFrom.SecretKeyRef.Name != j.Name {
			t.Errorf("job %s: %s is not a secretKeyRef to its own Secret: %+v", j.Name, k8s.JITConfigEnv, env)
		}
		sec, err := cs.CoreV1().Secrets(w.ns).Get(ctx, j.Name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("secret of job %s: %v", j.Name, err)
			continue
		}
		r := regs[slices.IndexFunc(regs, func(r ghpolltest.Runner) bool { return r.Name == j.Name })]
		if string(sec.Data["jitconfig"]) != r.JITConfig {
			t.Errorf("secret %s does not hold the JIT configuration GitHub issued for it", j.Name)
		}
	}

	// The second pass finds them booting, and creates nothing more.
	if err := w.pass(t); err != nil {
		t.Fatalf("second pass: %v", err)
	}
	if n := w.gh.JITCount(); n != 2 {
		t.Errorf("%d JIT configurations after two passes, want 2", n)
	}

	// One runner ran its job; its Job completed.
	done := want[0]
	finishJob(t, cs, w.ns, done)
	w.gh.RemoveRunner(done)
	if err := w.pass(t); err != nil {
		t.Fatalf("third pass: %v", err)
	}
	if _, err := cs.BatchV1().Jobs(w.ns).Get(ctx, done, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("completed job after a pass: %v, want NotFound", err)
	}
	if _, err := cs.CoreV1().Secrets(w.ns).Get(ctx, done, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("secret of the completed job after a pass: %v, want NotFound", err)
	}
	if _, err := cs.BatchV1().Jobs(w.ns).Get(ctx, want[1], metav1.GetOptions{}); err != nil {
		t.Errorf("the other runner's job: %v, want it kept", err)
	}
}

// manifests renders manifests/kubernetes as `kubectl apply -k` would.
func manifests(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	return kustomized(t, "manifests/kubernetes")
}

// kustomized renders a kustomization directory as `kubectl apply -k` would.
func kustomized(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range rm.Resources() {
		// Through JSON, so that numbers are what unstructured objects expect.
		raw, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

func manifestRole(t *testing.T) rbacv1.Role {
	t.Helper()
	for _, u := range manifests(t) {
		if u.GetKind() == "Role" && u.GetNamespace() == "github-runners" {
			var role rbacv1.Role
			raw, _ := json.Marshal(u.Object)
			if err := json.Unmarshal(raw, &role); err != nil {
				t.Fatal(err)
			}
			return role
		}
	}
	t.Fatal("manifests/kubernetes has no Role in github-runners")
	return rbacv1.Role{}
}

// The manifests' Role is enough for the tool's whole lifecycle, and every verb in it
// is needed: a pass run as the ServiceAccount fails with Forbidden without any one.
// waitForRBAC waits until the apiserver's authorizer has seen a Role and RoleBinding
// just made for user: it answers from informer caches, so a request made at once may
// be refused. It asks, as an administrator, for the first verb the rules grant.
func waitForRBAC(t *testing.T, cs kubernetes.Interface, user, ns string, rules []rbacv1.PolicyRule) {
	t.Helper()
	i := slices.IndexFunc(rules, func(r rbacv1.PolicyRule) bool { return len(r.Verbs) > 0 && len(r.Resources) > 0 })
	if i < 0 {
		return
	}
	attrs := &authorizationv1.ResourceAttributes{Namespace: ns, Verb: rules[i].Verbs[0], Resource: rules[i].Resources[0]}
	if len(rules[i].APIGroups) > 0 {
		attrs.Group = rules[i].APIGroups[0]
	}
	if len(rules[i].ResourceNames) > 0 {
		attrs.Name = rules[i].ResourceNames[0]
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: attrs}}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got, err := cs.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Allowed {
			return
		}
	}
	t.Fatalf("the apiserver never granted %s %s to %s", attrs.Verb, attrs.Resource, user)
}

func TestKubernetes_ManifestRoleIsEnoughAndEveryVerbIsNeeded(t *testing.T) {
	admin := k8stest.Config(t)
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	role := manifestRole(t)
	run := func(t *testing.T, rules []rbacv1.PolicyRule) error {
		ctx := context.Background()
		runners := newNamespace(t, cs, "runners")
		tool := newNamespace(t, cs, "reconcile")
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reconcile", Namespace: tool}}
		if _, err := cs.CoreV1().ServiceAccounts(tool).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		r := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: runners}, Rules: rules}
		if _, err := cs.RbacV1().Roles(runners).Create(ctx, r, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "reconcile", Namespace: runners},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reconcile", Namespace: tool}},
		}
		if _, err := cs.RbacV1().RoleBindings(runners).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		user := "system:serviceaccount:" + tool + ":reconcile"
		waitForRBAC(t, cs, user, runners, rules)
		as := rest.CopyConfig(admin)
		as.Impersonate = rest.ImpersonationConfig{UserName: user}
		return newKubeWorld(t, as, runners).lifecycle(t, cs)
	}
	t.Run("the role as shipped", func(t *testing.T) {
		if err := run(t, role.Rules); err != nil {
			t.Fatalf("lifecycle as the service account: %v", err)
		}
	})
	for i, rule := range role.Rules {
		for _, verb := range rule.Verbs {
			t.Run(fmt.Sprintf("without %s %s", verb, rule.Resources[0]), func(t *testing.T) {
				rules := make([]rbacv1.PolicyRule, len(role.Rules))
				for j := range role.Rules {
					rules[j] = *role.Rules[j].DeepCopy()
				}
				rules[i].Verbs = slices.DeleteFunc(rules[i].Verbs, func(v string) bool { return v == verb })
				err := run(t, rules)
				if !apierrors.IsForbidden(err) {
					t.Fatalf("lifecycle without %s on %s = %v, want the server's Forbidden", verb, rule.Resources[0], err)
				}
			})
		}
	}
}

// Every manifest is one the apiserver accepts: namespaces are created, the rest
// dry-run created on the server.
func TestKubernetes_EveryManifestIsAccepted(t *testing.T) {
	admin := k8stest.Config(t)
	cl, err := client.New(admin, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	objs := manifests(t)
	raw, err := os.ReadFile("manifests/kubernetes/secret.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var secret map[string]any
	if err := sigsyaml.Unmarshal(raw, &secret); err != nil {
		t.Fatal(err)
	}
	objs = append(objs, &unstructured.Unstructured{Object: secret})
	kinds := map[string]bool{}
	ctx := context.Background()
	for _, u := range objs {
		kinds[u.GetKind()] = true
		if u.GetKind() == "Namespace" {
			if err := cl.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Errorf("creating namespace %s: %v", u.GetName(), err)
			}
		}
	}
	for _, u := range objs {
		if u.GetKind() == "Namespace" {
			continue
		}
		if err := cl.Create(ctx, u.DeepCopy(), client.DryRunAll); err != nil {
			t.Errorf("server-side dry-run of %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
	}
	for _, k := range []string{"Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "CronJob", "Secret"} {
		if !kinds[k] {
			t.Errorf("manifests lack a %s", k)
		}
	}
	// The example configuration is one the tool accepts.
	for _, u := range objs {
		if u.GetKind() != "ConfigMap" {
			continue
		}
		data, _, _ := unstructured.NestedString(u.Object, "data", "config.yaml")
		cfg, err := reconcile.Load([]byte(data))
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil {
			_, err = backendsFor(cfg, k8s.Kind(func() (kubernetes.Interface, error) { return nil, errors.New("unused") }))
		}
		if err != nil && !strings.Contains(err.Error(), "unused") {
			t.Errorf("the example configuration is refused: %v", err)
		}
	}
}

// The CronJob keeps its GitHub request cache in a ConfigMap, with the manifests' Role.
func TestKubernetes_CacheConfigMapWithTheManifestRole(t *testing.T) {
	admin := k8stest.Config(t)
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tool := newNamespace(t, cs, "reconcile")
	var role rbacv1.Role
	for _, u := range manifests(t) {
		if u.GetKind() == "Role" && u.GetName() == "reconcile-cache" {
			raw, _ := json.Marshal(u.Object)
			if err := json.Unmarshal(raw, &role); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(role.Rules) == 0 {
		t.Fatal("manifests/kubernetes has no reconcile-cache Role")
	}
	role.Namespace, role.ResourceVersion = tool, ""
	if _, err := cs.RbacV1().Roles(tool).Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reconcile-cache", Namespace: tool},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "reconcile-cache"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reconcile", Namespace: tool}},
	}
	if _, err := cs.RbacV1().RoleBindings(tool).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForRBAC(t, cs, "system:serviceaccount:"+tool+":reconcile", tool, role.Rules)
	as := rest.CopyConfig(admin)
	as.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + tool + ":reconcile"}
	sa, err := kubernetes.NewForConfig(as)
	if err != nil {
		t.Fatal(err)
	}
	store := k8s.ConfigMapStore{Client: sa, Namespace: tool, Name: "reconcile-cache"}
	if data, err := store.Load(ctx); err != nil || data != nil {
		t.Fatalf("Load() before any save = %q, %v; want nothing", data, err)
	}
	for _, payload := range []string{"first", "second"} { // create, then update
		if err := store.Save(ctx, []byte(payload)); err != nil {
			t.Fatalf("Save(%s) as the service account: %v", payload, err)
		}
		data, err := store.Load(ctx)
		if err != nil || string(data) != payload {
			t.Fatalf("Load() = %q, %v; want %q", data, err, payload)
		}
	}
	// The record overlapping passes share (the minute's GitHub points), beside it: every
	// update of several at once is kept.
	shared := store.Shared("points")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				if err := shared.Update(ctx, func(old []byte) []byte {
					n, _ := strconv.Atoi(string(old))
					return []byte(strconv.Itoa(n + 1))
				}); err != nil {
					t.Errorf("Update() as the service account: %v", err)
				}
			}
		})
	}
	wg.Wait()
	var final string
	if err := shared.Update(ctx, func(old []byte) []byte { final = string(old); return old }); err != nil || final != "20" {
		t.Errorf("after 20 updates from 4 goroutines the record is %q, %v; want 20", final, err)
	}
	// The pause `reconcile down` sets and `reconcile up` lifts, beside it; reading a
	// record never set creates nothing.
	pause := store.Shared(reconcile.PauseRecord)
	if _, paused, err := reconcile.ReadPause(ctx, pause); err != nil || paused {
		t.Errorf("ReadPause() before any = %v, %v; want not paused", paused, err)
	}
	if _, err := cs.CoreV1().ConfigMaps(tool).Get(ctx, "reconcile-cache.pause", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("reading the pause made its ConfigMap: %v", err)
	}
	if err := reconcile.SetPause(ctx, pause, reconcile.Pause{Since: time.Now(), By: "reconcile down"}); err != nil {
		t.Errorf("SetPause() as the service account: %v", err)
	}
	if p, paused, err := reconcile.ReadPause(ctx, pause); err != nil || !paused || p.By != "reconcile down" {
		t.Errorf("ReadPause() after SetPause = %+v, %v, %v", p, paused, err)
	}
	if _, lifted, err := reconcile.LiftPause(ctx, pause); err != nil || !lifted {
		t.Errorf("LiftPause() as the service account: %v, %v", lifted, err)
	}
	other := k8s.ConfigMapStore{Client: sa, Namespace: tool, Name: "something-else"}
	if _, err := other.Load(ctx); !apierrors.IsForbidden(err) {
		t.Errorf("reading another ConfigMap: %v, want Forbidden", err)
	}
}

// memStore is a cache store in memory.
type memStore struct{ data []byte }

func (m *memStore) Load(context.Context) ([]byte, error)      { return m.data, nil }
func (m *memStore) Save(_ context.Context, data []byte) error { m.data = data; return nil }

// moved loads the notes from one store and saves them to another: a cache moved into
// a ConfigMap.
type moved struct {
	from *memStore
	to   k8s.ConfigMapStore
}

func (m moved) Load(ctx context.Context) ([]byte, error)    { return m.from.Load(ctx) }
func (m moved) Save(ctx context.Context, data []byte) error { return m.to.Save(ctx, data) }
func (m moved) Limit() int                                  { return m.to.Limit() }
func (m moved) Shared(name string) reconcile.Shared         { return m.to.Shared(name) }

// storedCache is what the cache of an organisation of n repositories looks like once
// stored: each repository's probe page and registrations page with api.github.com's
// weak 64-hex-digit ETags (hashes: they do not compress), and its polling state.
func storedCache(t *testing.T, n int, now time.Time) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(n), 11))
	pages, repos := map[string]any{}, map[string]any{}
	for i := range n {
		repo := fmt.Sprintf("big-org/repo%05d", i)
		used := now.Add(-time.Duration(n-i) * time.Second).Format(time.RFC3339Nano)
		for _, key := range []string{"probe:" + repo + "#1", "runners:" + repo + "#1"} {
			pages[key] = map[string]any{"etag": fmt.Sprintf(`W/"%016x%016x%016x%016x"`, rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()),
				"items": json.RawMessage(`[]`), "used": used}
		}
		repos[repo] = map[string]any{"polled": used, "swept": used}
	}
	raw, err := json.Marshal(map[string]any{"version": 4, "parts": map[string]any{"github": map[string]any{"pages": pages, "repos": repos}}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	return buf.Bytes()
}

// readStoredCache decodes a stored cache, in the format storedCache writes.
func readStoredCache(t *testing.T, data []byte) (c struct{ Pages, Repos map[string]json.RawMessage }) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Version int `json:"version"`
		Parts   struct {
			GitHub struct {
				Pages map[string]json.RawMessage `json:"pages"`
				Repos map[string]json.RawMessage `json:"repos"`
			} `json:"github"`
		} `json:"parts"`
	}
	if err := json.NewDecoder(zr).Decode(&env); err != nil || env.Version != 4 {
		t.Fatalf("stored cache: version %d, %v; want version 4", env.Version, err)
	}
	c.Pages, c.Repos = env.Parts.GitHub.Pages, env.Parts.GitHub.Repos
	return c
}

// A ConfigMap holds at most 1 MiB (the apiserver refuses more, as envtest's does). The
// cache of 5,000 repositories fits; a larger one is trimmed to fit, the pages used
// longest ago first, instead of failing every save and starting every pass cold.
func TestKubernetes_CacheConfigMapStaysWithinTheObjectLimit(t *testing.T) {
	cs, err := kubernetes.NewForConfig(k8stest.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := newNamespace(t, cs, "cache")
	now := time.Now()
	for _, tt := range []struct {
		repos   int
		trimmed bool
	}{{5000, false}, {25000, true}} {
		src := &memStore{data: storedCache(t, tt.repos, now)}
		gh, err := ghpoll.NewWithOptions(http.DefaultClient, "https://api.github.com/", ghpoll.Options{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		store := k8s.ConfigMapStore{Client: cs, Namespace: ns, Name: fmt.Sprintf("cache-%d", tt.repos)}
		notes, err := reconcile.OpenNotes(ctx, moved{src, store})
		if err != nil {
			t.Fatal(err)
		}
		if err := gh.KeepIn(notes); err != nil {
			t.Fatal(err)
		}
		if tt.trimmed {
			// Stored whole, it is more than the apiserver takes.
			if err := store.Save(ctx, src.data); err == nil || !strings.Contains(err.Error(), "1048576") {
				t.Fatalf("Save of %d bytes = %v, want the apiserver's size limit", len(src.data), err)
			}
		}
		dropped, err := notes.Save(ctx)
		if err != nil {
			t.Fatalf("%d repositories: Save() = %v", tt.repos, err)
		}
		if (dropped > 0) != tt.trimmed {
			t.Errorf("%d repositories (%d bytes whole): %d pages dropped, want trimmed %v", tt.repos, len(src.data), dropped, tt.trimmed)
		}
		data, err := store.Load(ctx)
		if err != nil || len(data) > k8s.MaxCacheSize {
			t.Fatalf("Load() = %d bytes, %v; want at most %d", len(data), err, k8s.MaxCacheSize)
		}
		back := readStoredCache(t, data)
		if len(back.Repos) != tt.repos {
			t.Errorf("%d repositories' polling state stored, want %d", len(back.Repos), tt.repos)
		}
		last := fmt.Sprintf("probe:big-org/repo%05d#1", tt.repos-1)
		if _, ok := back.Pages[last]; !ok {
			t.Errorf("the page used last (%s) was dropped", last)
		}
		t.Logf("%d repositories: %d bytes whole, %d stored, %d of %d pages dropped", tt.repos, len(src.data), len(data), dropped, 2*tt.repos)
	}
}

// disruptPod plays the scheduler and the Job controller for a runner's pod taken
// away mid-job: the pod gets the DisruptionTarget condition (PreemptionByScheduler)
// and fails, and the Job's pod failure policy fails the Job, saying so.
func disruptPod(t *testing.T, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	ctx := context.Background()
	job, err := cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting job %s: %v", name, err)
	}
	if p := job.Spec.PodFailurePolicy; p == nil || len(p.Rules) == 0 || p.Rules[0].Action != batchv1.PodFailurePolicyActionFailJob {
		t.Fatalf("job %s: pod failure policy %+v, want DisruptionTarget to fail the Job", name, p)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name + "-x1", Namespace: ns, Labels: job.Spec.Template.Labels},
		Spec: *job.Spec.Template.Spec.DeepCopy()}
	pod, err = cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating the runner's pod: %v", err)
	}
	now := metav1.Now()
	pod.Status.Phase = corev1.PodFailed
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: "PreemptionByScheduler", Message: "Preempted in order to admit critical pod", LastTransitionTime: now}}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("marking the pod disrupted: %v", err)
	}
	msg := fmt.Sprintf("Pod %s/%s has condition DisruptionTarget matching FailJob rule at index 0", ns, pod.Name)
	job.Status.StartTime, job.Status.Failed = &now, 1
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonPodFailurePolicy, Message: msg, LastTransitionTime: now},
		{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonPodFailurePolicy, Message: msg, LastTransitionTime: now},
	}
	if _, err := cs.BatchV1().Jobs(ns).UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("failing job %s: %v", name, err)
	}
}

// A pool with min_idle 2 and no jobs ends a pass with 2 runner Jobs, idle once online;
// a job takes one, and the next pass restores 2 idle.
func TestKubernetes_WarmPoolKeepsTwoIdle(t *testing.T) {
	admin := k8stest.Config(t)
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	w := newKubeWorldWith(t, admin, newNamespace(t, cs, "warm"), "    min_idle: 2\n    warm_repos: [octo-org/app]\n")
	jobs := func() (out []string) {
		list, err := cs.BatchV1().Jobs(w.ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range list.Items {
			out = append(out, j.Name)
		}
		return out
	}
	if err := w.pass(t); err != nil {
		t.Fatal(err)
	}
	warm := jobs()
	if len(warm) != 2 || !reconcile.IsWarmName("gha", warm[0]) || !reconcile.IsWarmName("gha", warm[1]) {
		t.Fatalf("jobs %v, want 2 warm runners", warm)
	}
	for _, n := range warm {
		w.gh.SetRunner(n, true, false)
	}
	if err := w.pass(t); err != nil || len(jobs()) != 2 {
		t.Fatalf("pass: %v, jobs %v; want the 2 idle ones kept", err, jobs())
	}
	job := w.gh.QueueJob("octo-org/app", "self-hosted", "x64")
	w.gh.SetJobStatus(job, "in_progress", warm[0])
	w.gh.SetRunner(warm[0], true, true)
	if err := w.pass(t); err != nil {
		t.Fatal(err)
	}
	if now := jobs(); len(now) != 3 {
		t.Fatalf("jobs %v, want a third: 2 idle beside the busy one", now)
	}
}

// A runner pod taken away mid-job (a preempted Spot node, an eviction): GitHub fails
// the job; the pass re-runs it and deletes the runner's Job; the next pass serves the
// re-run job. A runner whose Job completed (the runner exited) is not a preemption.
func TestKubernetes_DisruptedRunnerPodsJobIsRerun(t *testing.T) {
	admin := k8stest.Config(t)
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	w := newKubeWorld(t, admin, newNamespace(t, cs, "preempt"))
	job := w.gh.QueueJob("octo-org/app", "self-hosted", "x64")
	done := w.gh.QueueJob("octo-org/app", "self-hosted", "x64")
	if err := w.pass(t); err != nil {
		t.Fatal(err)
	}
	run, _ := w.gh.Job(job)
	name, doneName := reconcile.RunnerName("gha", "x64", job, 0), reconcile.RunnerName("gha", "x64", done, 0)
	for id, n := range map[int64]string{job: name, done: doneName} {
		w.gh.SetJobStatus(id, "in_progress", n)
	}
	disruptPod(t, cs, w.ns, name)
	w.gh.LoseRunner(job)
	w.gh.RemoveRunner(name)
	w.gh.FailStep(done) // ended on its own, and its runner exited
	w.gh.RemoveRunner(doneName)
	finishJob(t, cs, w.ns, doneName)
	if err := w.pass(t); err != nil {
		t.Fatal(err)
	}
	jobs := w.gh.Jobs(run.RunID)
	if len(jobs) != 2 || jobs[1].Attempt != 2 || jobs[1].Status != "queued" {
		t.Fatalf("jobs of the run %+v; want the preempted job queued again in attempt 2", jobs)
	}
	doneRun, _ := w.gh.Job(done)
	if n := len(w.gh.Jobs(doneRun.RunID)); n != 1 {
		t.Errorf("the job that failed on its own has %d jobs in its run, want 1: not re-run", n)
	}
	if err := w.pass(t); err != nil {
		t.Fatal(err)
	}
	want := reconcile.RunnerName("gha", "x64", jobs[1].ID, 0)
	if _, err := cs.BatchV1().Jobs(w.ns).Get(context.Background(), want, metav1.GetOptions{}); err != nil {
		t.Errorf("no runner for the re-run job: %v", err)
	}
}

// setJobQuota sets the namespace's ResourceQuota on Jobs to n, spec and status: the
// test apiserver runs no quota controller, so the status is set as that controller
// would (used: 0), or admission would let every Job through.
func setJobQuota(t *testing.T, cs kubernetes.Interface, ns string, n int) {
	t.Helper()
	ctx := context.Background()
	hard := corev1.ResourceList{"count/jobs.batch": resource.MustParse(strconv.Itoa(n))}
	q, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, "jobs", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		q, err = cs.CoreV1().ResourceQuotas(ns).Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "jobs"},
			Spec: corev1.ResourceQuotaSpec{Hard: hard}}, metav1.CreateOptions{})
	} else if err == nil {
		q.Spec.Hard = hard
		q, err = cs.CoreV1().ResourceQuotas(ns).Update(ctx, q, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	q.Status = corev1.ResourceQuotaStatus{Hard: hard, Used: corev1.ResourceList{"count/jobs.batch": resource.MustParse("0")}}
	if _, err := cs.CoreV1().ResourceQuotas(ns).UpdateStatus(ctx, q, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitForQuotaAdmission creates a probe Job until the apiserver's quota admission
// answers as the quota now says (its informer sees an update a moment later): refused,
// 403 "exceeded quota", or admitted. An admitted probe is deleted.
func waitForQuotaAdmission(t *testing.T, cs kubernetes.Interface, ns string, refused bool) {
	t.Helper()
	ctx := context.Background()
	probe := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"}, Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
	background := metav1.DeletePropagationBackground
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		job, err := cs.BatchV1().Jobs(ns).Create(ctx, probe, metav1.CreateOptions{})
		if err == nil {
			if err := cs.BatchV1().Jobs(ns).Delete(ctx, job.Name, metav1.DeleteOptions{PropagationPolicy: &background}); err != nil {
				t.Fatal(err)
			}
		}
		switch {
		case refused && apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota"), !refused && err == nil:
			return
		case err != nil && !apierrors.IsForbidden(err):
			t.Fatal(err)
		case time.Now().After(deadline):
			t.Fatalf("the apiserver's quota admission did not come to refuse=%v within 30s: last answer %v", refused, err)
		}
	}
}

// A namespace whose ResourceQuota allows no more Jobs: the real apiserver refuses each
// at admission (403, "exceeded quota"). Ten queued jobs and three passes, each a new
// Reconciler on the same GitHub client and its cache (as --once processes sharing
// --cache): at most one registration a pass, none left behind, no pass fails; once
// the quota is raised, every job has a runner within two passes.
func TestKubernetes_ResourceQuotaExceededCostsAProbeAPass(t *testing.T) {
	admin := k8stest.Config(t)
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w := newKubeWorld(t, admin, newNamespace(t, cs, "quota"))
	w.rc.Config.Pools[0].MaxRunners = 10
	setJobQuota(t, cs, w.ns, 0)
	waitForQuotaAdmission(t, cs, w.ns, true)
	var want []string
	for range 10 {
		want = append(want, reconcile.RunnerName("gha", "x64", w.gh.QueueJob("octo-org/app", "self-hosted", "x64"), 0))
	}
	slices.Sort(want)
	backoff := reconcile.Backoff{Initial: 2 * time.Second, Max: 2 * time.Second}
	process := func() (reconcile.Summary, error) {
		rc := *w.rc // a new process: nothing kept but what the GitHub client's cache holds
		rc.Backoff = backoff
		return (&rc).RunOnce(ctx)
	}
	for pass := 1; pass <= 3; pass++ {
		sum, err := process()
		if err != nil {
			t.Fatalf("pass %d: %v, want nil: a quota is not the tool failing", pass, err)
		}
		if len(sum.Warnings) != 1 || !strings.Contains(sum.Warnings[0], "pool x64: quota exceeded") {
			t.Errorf("pass %d: warnings %q, want one naming the pool and the quota", pass, sum.Warnings)
		}
	}
	if n := w.gh.JITCount(); n < 1 || n > 3 {
		t.Errorf("%d JIT registrations in three passes, want 1 to 3", n)
	}
	if regs := w.gh.Runners(); len(regs) != 0 {
		t.Errorf("registrations left behind: %+v", regs)
	}
	setJobQuota(t, cs, w.ns, 20)
	waitForQuotaAdmission(t, cs, w.ns, false)
	time.Sleep(backoff.Initial)
	var names []string
	for pass := 1; pass <= 2 && len(names) < len(want); pass++ {
		if _, err := process(); err != nil {
			t.Fatalf("quota raised, pass %d: %v", pass, err)
		}
		jobs, err := cs.BatchV1().Jobs(w.ns).List(ctx, metav1.ListOptions{LabelSelector: k8s.LabelOwner + "=gha"})
		if err != nil {
			t.Fatal(err)
		}
		names = names[:0]
		for _, j := range jobs.Items {
			names = append(names, j.Name)
		}
		slices.Sort(names)
	}
	if !slices.Equal(names, want) {
		t.Errorf("quota raised: jobs %v after two passes, want one for each of the 10", names)
	}
}

// Looking first finds what the real pass would meet on the cluster: a dry run creates
// the runner's Job and Secret with the apiserver's own dry run (admission, quota,
// RBAC, the namespace), stores nothing, and fails naming what the create would meet.
func TestKubernetes_ADryRunFindsWhatTheCreateWouldMeet(t *testing.T) {
	admin := k8stest.Config(t)
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, cs, "check")
	dryRun := func(w *kubeWorld) error {
		t.Helper()
		w.rc.DryRun, w.rc.CheckCreates = true, true
		w.gh.QueueJob("octo-org/app", "self-hosted", "x64")
		return w.pass(t)
	}
	if err := dryRun(newKubeWorld(t, admin, ns)); err != nil {
		t.Errorf("a dry run a real pass would carry out: %v", err)
	}
	setJobQuota(t, cs, ns, 0)
	waitForQuotaAdmission(t, cs, ns, true)
	if err := dryRun(newKubeWorld(t, admin, ns)); err == nil || !strings.Contains(err.Error(), "a real pass would fail to create its runners") ||
		!strings.Contains(err.Error(), "exceeded quota") {
		t.Errorf("a dry run in a namespace whose quota allows no Job: %v", err)
	}
	if err := dryRun(newKubeWorld(t, admin, "no-such-namespace")); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("a dry run into a namespace that does not exist: %v", err)
	}
	for _, n := range []string{ns, "no-such-namespace"} {
		if jobs, _ := cs.BatchV1().Jobs(n).List(context.Background(), metav1.ListOptions{}); len(jobs.Items) != 0 {
			t.Errorf("the dry runs stored %d Jobs in %s", len(jobs.Items), n)
		}
	}
}
