package gce

import (
	"context"
	"maps"
	"os"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/reconcile-dev/reconcile/gce/gcetest"
	"github.com/reconcile-dev/reconcile/reconcile"
)

// rolePath is the custom role the README's IAM section ships.
const rolePath = "../manifests/gce/role.yaml"

// readRole returns the permissions of the role file, as `gcloud iam roles create
// --file` reads it (title, description, stage, includedPermissions).
func readRole(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var role struct {
		Title       string   `json:"title"`
		Description string   `json:"description"`
		Stage       string   `json:"stage"`
		Permissions []string `json:"includedPermissions"`
	}
	if err := yaml.UnmarshalStrict(b, &role); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if role.Title == "" || role.Stage == "" || len(role.Permissions) == 0 {
		t.Fatalf("%s: want title, stage and includedPermissions", path)
	}
	return role.Permissions
}

// needed returns the permissions the called Compute methods need (gcetest.Permissions,
// from Compute's IAM permissions reference).
func needed(t *testing.T, called map[string]int) []string {
	t.Helper()
	set := map[string]bool{}
	for m := range called {
		perms, ok := gcetest.Permissions[m]
		if !ok {
			t.Fatalf("method %s has no permissions in gcetest.Permissions", m)
		}
		for _, p := range perms {
			set[p] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// missing returns what need has that role lacks.
func missing(role, need []string) []string {
	var out []string
	for _, p := range need {
		if !slices.Contains(role, p) {
			out = append(out, p)
		}
	}
	return out
}

// Every Compute method the backend calls (each a route of the fake, which records it),
// driven once each: New without zones (regions.get), Create (instances.insert and
// zoneOperations.wait), List with a stopped instance (instances.aggregatedList and
// globalOperations.aggregatedList), Delete (instances.delete). The role file must grant
// each one's permissions and nothing more; and the check bites: the file less any one
// of them fails it.
func TestRole_CoversEveryMethodTheBackendCalls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := gcetest.NewServer(t, "my-project", "us-central1", zones...)
	cfg, err := ParseConfig([]byte(`{"project": "my-project", "region": "us-central1", "instance_template": "gha-arm64"}`), "pools[0].gce")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Endpoint = fake.Endpoint
	b := newBackendWith(t, cfg)
	sp := spec("gha-arm64-42")
	if err := b.Create(ctx, sp); err != nil {
		t.Fatalf("Create() = %v", err)
	}
	fake.SetStatus(sp.Name, "TERMINATED")
	runners, err := b.List(ctx)
	if err != nil || len(runners) != 1 {
		t.Fatalf("List() = %v, %v; want the one runner", runners, err)
	}
	if err := b.Delete(ctx, runners[0]); err != nil {
		t.Fatalf("Delete() = %v", err)
	}
	called := fake.Methods()
	for _, m := range []string{"compute.regions.get", "compute.instances.insert", "compute.zoneOperations.wait",
		"compute.instances.aggregatedList", "compute.globalOperations.aggregatedList", "compute.instances.delete"} {
		if called[m] == 0 {
			t.Errorf("the backend never called %s: the test no longer drives every method", m)
		}
	}
	role := readRole(t, rolePath)
	need := needed(t, called)
	if m := missing(role, need); len(m) > 0 {
		t.Errorf("%s lacks %v, which the backend's calls need", rolePath, m)
	}
	if extra := missing(need, role); len(extra) > 0 {
		t.Errorf("%s grants %v, which no call of the backend needs: least privilege", rolePath, extra)
	}
	for _, p := range need {
		if m := missing(slices.DeleteFunc(slices.Clone(role), func(q string) bool { return q == p }), need); !slices.Equal(m, []string{p}) {
			t.Errorf("the role less %s: missing %v, want [%s]: the check does not bite", p, m, p)
		}
	}
}

// A role that lacks a permission: Compute answers 403 naming it, and the backend says
// it is a permission, and which.
func TestBackend_MissingPermissionIsClassified(t *testing.T) {
	t.Parallel()
	b, fake := newBackend(t, `{"project": "my-project", "region": "us-central1", "zones": ["us-central1-a"], "instance_template": "gha-arm64"}`)
	fake.Deny("compute.instances.create", true)
	err := b.Create(context.Background(), spec("gha-arm64-42"))
	if reconcile.ClassOf(err) != reconcile.FailPermission || reconcile.PermissionOf(err) != "compute.instances.create" {
		t.Errorf("Create() = %v (class %q, permission %q), want permission compute.instances.create", err, reconcile.ClassOf(err), reconcile.PermissionOf(err))
	}
}
