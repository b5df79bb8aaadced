package gce

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/reconcile-dev/reconcile/gce/gcetest"
	"github.com/reconcile-dev/reconcile/reconcile"
)

var zones = []string{"us-central1-a", "us-central1-b", "us-central1-f"}

func newBackend(t *testing.T, section string) (*Backend, *gcetest.Server) {
	t.Helper()
	fake := gcetest.NewServer(t, "my-project", "us-central1", zones...)
	cfg, err := ParseConfig(json.RawMessage(section), "pools[0].gce")
	if err != nil {
		t.Fatalf("ParseConfig(%s) = %v", section, err)
	}
	cfg.Endpoint = fake.Endpoint
	return newBackendWith(t, cfg), fake
}

func newBackendWith(t *testing.T, cfg Config) *Backend {
	t.Helper()
	b, err := New(context.Background(), cfg, "gha", option.WithoutAuthentication())
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func spec(name string) reconcile.RunnerSpec {
	repo := reconcile.Scope{Owner: "octo-org", Repo: "app"}
	return reconcile.RunnerSpec{Name: name, Pool: "arm64", Scope: repo, Repo: repo, JobID: 42,
		Labels: []string{"self-hosted", "ARM64"}, JITConfig: reconcile.Secret("jit-" + name + "-s3cr3t")}
}

func TestBackend_CreateInsertsFromTheTemplateInTheNamedZone(t *testing.T) {
	t.Parallel()
	b, fake := newBackend(t, `{"project": "my-project", "region": "us-central1", "instance_template": "gha-arm64"}`)
	sp := spec("gha-arm64-42")
	if err := b.Create(context.Background(), sp); err != nil {
		t.Fatalf("Create() = %v, want nil", err)
	}
	got := fake.Instances()
	if len(got) != 1 {
		t.Fatalf("instances = %+v, want one", got)
	}
	in := got[0]
	want := gcetest.Instance{
		Name:     sp.Name,
		Zone:     b.zoneOrder(b.cfg, sp.Name)[0],
		Status:   "RUNNING",
		Labels:   map[string]string{LabelOwner: "gha", LabelPool: "arm64", LabelJobID: "42", LabelTemplate: "gha-arm64", LabelRepo: "octo-org_app"},
		Metadata: map[string]string{MetadataJIT: sp.JITConfig.Reveal(), MetadataScope: "octo-org/app", MetadataRepo: "octo-org/app"},
		Template: "projects/my-project/regions/us-central1/instanceTemplates/gha-arm64",
	}
	in.Created = time.Time{}
	if diff := cmp.Diff(want, in); diff != "" {
		t.Errorf("instance mismatch (-want +got):\n%s", diff)
	}
	// The JIT configuration travels only in its metadata item: not in a URL, a label
	// or the name.
	for _, r := range fake.Requests() {
		if strings.Contains(r, sp.JITConfig.Reveal()) {
			t.Errorf("request %q carries the JIT configuration", r)
		}
	}
}

func TestBackend_ZoneIsChosenByNameAndSpreads(t *testing.T) {
	t.Parallel()
	b, _ := newBackend(t, `{"project": "my-project", "region": "us-central1", "instance_template": "t"}`)
	first := map[string]int{}
	for i := range 60 {
		name := reconcile.RunnerName("gha", "arm64", int64(1000+i), 0)
		order := b.zoneOrder(b.cfg, name)
		if diff := cmp.Diff(order, b.zoneOrder(b.cfg, name)); diff != "" {
			t.Fatalf("zoneOrder(%s) changed between calls", name)
		}
		if len(order) != 3 {
			t.Fatalf("zoneOrder(%s) = %v, want every zone once", name, order)
		}
		first[order[0]]++
	}
	if len(first) != 3 {
		t.Errorf("first zones over 60 names: %v, want all three used", first)
	}
}

func TestBackend_CapacityErrorsMoveToTheNextZone(t *testing.T) {
	t.Parallel()
	for _, f := range []struct {
		name string
		fail gcetest.Failure
	}{{"as an HTTP error", gcetest.FailHTTP}, {"as an operation error", gcetest.FailOperation}} {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			b, fake := newBackend(t, `{"project": "my-project", "region": "us-central1", "instance_template": "t"}`)
			sp := spec("gha-arm64-7")
			order := b.zoneOrder(b.cfg, sp.Name)
			fake.FailZone(order[0], f.fail)
			if err := b.Create(context.Background(), sp); err != nil {
				t.Fatalf("Create() = %v, want nil", err)
			}
			got := fake.Instances()
			if len(got) != 1 || got[0].Zone != order[1] {
				t.Errorf("instances %+v, want one in %s", got, order[1])
			}
		})
	}
}

// A zone that does not offer the template's machine type answers 400 "does not exist in
// zone" (see gcetest.FailNoMachineType): the create moves on, and the zone is left out
// of every later create, of this backend and of one that shares its memo.
func TestBackend_ZoneWithoutTheMachineTypeIsSkippedAndRemembered(t *testing.T) {
	t.Parallel()
	const section = `{"project": "my-project", "region": "us-central1", "instance_template": "t"}`
	b, fake := newBackend(t, section)
	m, _ := reconcile.OpenNotes(context.Background(), nil) // the --cache, in memory
	b.UseMemo(m)
	sp := spec("gha-arm64-7")
	lacking := b.zoneOrder(b.cfg, sp.Name)[0]
	fake.FailZone(lacking, gcetest.FailNoMachineType)
	if err := b.Create(context.Background(), sp); err != nil {
		t.Fatalf("Create() = %v, want nil: another zone offers it", err)
	}
	inserts := func() (n int) {
		for _, r := range fake.Requests() {
			if strings.HasPrefix(r, "POST ") && strings.Contains(r, "/zones/"+lacking+"/instances") {
				n++
			}
		}
		return n
	}
	for i := range 30 {
		name := reconcile.RunnerName("gha", "arm64", int64(100+i), 0)
		if slices.Contains(b.zoneOrder(b.cfg, name), lacking) {
			t.Fatalf("zoneOrder(%s) = %v, want %s left out", name, b.zoneOrder(b.cfg, name), lacking)
		}
		if err := b.Create(context.Background(), spec(name)); err != nil {
			t.Fatalf("Create(%s) = %v", name, err)
		}
	}
	if n := inserts(); n != 1 {
		t.Errorf("%d inserts into %s, want 1: the one that found it lacking", n, lacking)
	}
	// A new process with the same memo (the --cache) knows it from the start.
	next, _ := newBackend(t, section)
	next.UseMemo(m)
	if order := next.zoneOrder(next.cfg, sp.Name); slices.Contains(order, lacking) || len(order) != len(zones)-1 {
		t.Errorf("zoneOrder after UseMemo = %v, want every zone but %s", order, lacking)
	}
}

// Only the zone the message names counts: a 400 about something else is an error.
func TestIsNotOffered(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"machine type", &googleapi.Error{Code: 400, Message: "Invalid value for field 'resource.machineType': 'zones/us-central1-b/machineTypes/t2a-standard-4'. Machine type with name 't2a-standard-4' does not exist in zone 'us-central1-b'.",
			Errors: []googleapi.ErrorItem{{Reason: "invalid"}}}, true},
		{"accelerator", &googleapi.Error{Code: 400, Message: "Invalid value for field 'resource.guestAccelerators[0].acceleratorType': 'projects/p/zones/us-central1-b/acceleratorTypes/nvidia-l4'. The resource 'projects/p/zones/us-central1-b/acceleratorTypes/nvidia-l4' was not found"}, true},
		{"CPU platform", &googleapi.Error{Code: 400, Message: "Invalid value for field 'resource.minCpuPlatform': 'Intel Sapphire Rapids'. The requested CPU platform is not available in zone 'us-central1-b'."}, true},
		{"another zone named", &googleapi.Error{Code: 400, Message: "Machine type with name 't2a-standard-4' does not exist in zone 'us-central1-a'."}, false},
		{"a bad label", &googleapi.Error{Code: 400, Message: "Invalid value for field 'resource.labels': 'X'"}, false},
		{"an instance not found", &googleapi.Error{Code: 404, Message: "The resource 'projects/p/zones/us-central1-b/instances/x' was not found"}, false},
		{"stockout", &googleapi.Error{Code: 503, Message: "The zone 'projects/p/zones/us-central1-b' does not have enough resources available to fulfill the request."}, false},
	} {
		if got := isNotOffered(tt.err, "us-central1-b"); got != tt.want {
			t.Errorf("%s: isNotOffered() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestBackend_NoCapacityAnywhereFailsNamingTheZones(t *testing.T) {
	t.Parallel()
	b, fake := newBackend(t, `{"project": "my-project", "region": "us-central1", "instance_template": "t"}`)
	fake.FailZone("us-central1-a", gcetest.FailHTTP)
	fake.FailZone("us-central1-b", gcetest.FailOperation)
	fake.FailZone("us-central1-f", gcetest.FailHTTP)
	sp := spec("gha-arm64-8")
	err := b.Create(context.Background(), sp)
	if err == nil {
		t.Fatal("Create() = nil, want an error")
	}
	for _, z := range zones {
		if !strings.Contains(err.Error(), z) {
			t.Errorf("Create() = %v, want it to name zone %s", err, z)
		}
	}
	if strings.Contains(err.Error(), sp.JITConfig.Reveal()) {
		t.Error("the error carries the JIT configuration")
	}
	if n := len(fake.Instances()); n != 0 {
		t.Errorf("%d instances left, want none", n)
	}
}

func TestBackend_CreateOfAnExistingInstanceIsSuccess(t *testing.T) {
	t.Parallel()
	b, fake := newBackend(t, `{"project": "my-project", "region": "us-central1", "instance_template": "t"}`)
	sp := spec("gha-arm64-9")
	for i := range 2 {
		if err := b.Create(context.Background(), sp); err != nil {
			t.Fatalf("Create() #%d = %v, want nil", i+1, err)
		}
	}
	if n := len(fake.Instances()); n != 1 {
		t.Errorf("%d instances, want 1", n)
	}
}

func TestBackend_ListReadsEveryPageAndMapsPhases(t *testing.T) {
	t.Parallel()
	b, fake := newBackend(t, `{"project": "my-project", "region": "us-central1", "instance_template": "t"}`)
	b.PageSize = 2
	created := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	statuses := map[string]reconcile.Phase{
		"PROVISIONING": reconcile.PhaseActive, "STAGING": reconcile.PhaseActive, "RUNNING": reconcile.PhaseActive,
		"STOPPING": reconcile.PhaseFinished, "STOPPED": reconcile.PhaseFinished, "SUSPENDED": reconcile.PhaseFinished,
		"TERMINATED": reconcile.PhaseFinished,
	}
	i := 0
	for status := range statuses {
		i++
		fake.Put(gcetest.Instance{Name: "gha-arm64-" + strings.ToLower(status), Zone: zones[i%3], Status: status, Created: created,
			Labels:   map[string]string{LabelOwner: "gha", LabelPool: "arm64", LabelJobID: "5"},
			Metadata: map[string]string{MetadataScope: "octo-org", MetadataRepo: "octo-org/app"}})
	}
	fake.Put(gcetest.Instance{Name: "other-1", Zone: zones[0], Status: "RUNNING", Labels: map[string]string{LabelOwner: "other"}})
	fake.Put(gcetest.Instance{Name: "db-1", Zone: zones[0], Status: "RUNNING"})
	rs, err := b.List(context.Background())
	if err != nil {
		t.Fatalf("List() = %v", err)
	}
	if len(rs) != len(statuses) {
		t.Fatalf("List() returned %d runners, want %d (pages of 2)", len(rs), len(statuses))
	}
	for _, r := range rs {
		status := strings.ToUpper(strings.TrimPrefix(r.Name, "gha-arm64-"))
		if r.Phase != statuses[status] {
			t.Errorf("%s: phase %v, want %v", status, r.Phase, statuses[status])
		}
		if !r.CreatedAt.Equal(created) || r.Pool != "arm64" || r.JobID != 5 || r.Location == "" ||
			r.Scope != (reconcile.Scope{Owner: "octo-org"}) || r.Repo != (reconcile.Scope{Owner: "octo-org", Repo: "app"}) {
			t.Errorf("runner %+v not read back whole", r)
		}
	}
}

func TestBackend_DeleteIsIdempotent(t *testing.T) {
	t.Parallel()
	b, fake := newBackend(t, `{"project": "my-project", "region": "us-central1", "instance_template": "t"}`)
	fake.Put(gcetest.Instance{Name: "gha-arm64-1", Zone: "us-central1-b", Status: "TERMINATED", Labels: map[string]string{LabelOwner: "gha"}})
	r := reconcile.Runner{Name: "gha-arm64-1", Location: "us-central1-b"}
	for i := range 2 {
		if err := b.Delete(context.Background(), r); err != nil {
			t.Fatalf("Delete() #%d = %v, want nil", i+1, err)
		}
	}
	if n := len(fake.Instances()); n != 0 {
		t.Errorf("%d instances after Delete, want 0", n)
	}
}

// Not parallel: it points the process's metadata client at a fake.
func TestNew_ProjectAndZonesFromTheMetadataServer(t *testing.T) {
	md := gcetest.NewMetadata(t, "meta-project", "123456", "us-central1-b")
	t.Setenv("GCE_METADATA_HOST", md.Host)
	fake := gcetest.NewServer(t, "meta-project", "us-central1", zones...)
	cfg, err := ParseConfig(json.RawMessage(`{"instance_template": "t", "endpoint": "`+fake.Endpoint+`"}`), "pools[0].gce")
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(context.Background(), cfg, "gha", option.WithoutAuthentication())
	if err != nil {
		t.Fatalf("New() = %v, want nil", err)
	}
	defer b.Close()
	got := b.Config()
	if got.Project != "meta-project" || got.Region != "us-central1" {
		t.Errorf("project, region = %q, %q; want meta-project, us-central1", got.Project, got.Region)
	}
	if diff := cmp.Diff(zones, got.Zones); diff != "" {
		t.Errorf("zones mismatch (-want +got):\n%s", diff)
	}
}

func TestParseConfig_Rejects(t *testing.T) {
	t.Parallel()
	tests := []struct{ section, want string }{
		{`{}`, "pools[0].gce.instance_template is missing"},
		{`{"instance_template": "t", "zone": "us-central1-a"}`, "pools[0].gce.zone: unknown key"},
		{`{"instance_template": "T_1"}`, "pools[0].gce.instance_template"},
		{`{"instance_template": "global/instanceTemplates/t"}`, "pools[0].gce.instance_template"},
		{`{"instance_template": "t", "region": "us-central1-a"}`, "pools[0].gce.region"},
		{`{"instance_template": "t", "zones": ["us-central1"]}`, "pools[0].gce.zones[0]"},
		{`{"instance_template": "t", "region": "europe-west1", "zones": ["us-central1-a"]}`, "pools[0].gce.zones[0]"},
		{`{"instance_template": "t", "project": "My Project"}`, "pools[0].gce.project"},
		{`{"instance_template": "t", "endpoint": "compute.internal"}`, "pools[0].gce.endpoint"},
	}
	for _, tt := range tests {
		if _, err := ParseConfig(json.RawMessage(tt.section), "pools[0].gce"); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseConfig(%s) = %v, want an error containing %q", tt.section, err, tt.want)
		}
	}
	c, err := ParseConfig(json.RawMessage(`{"instance_template": "projects/p/regions/r/instanceTemplates/t"}`), "pools[0].gce")
	if err != nil || c.templatePath() != "projects/p/regions/r/instanceTemplates/t" {
		t.Errorf("a full template path: %v, %q; want it passed through", err, c.templatePath())
	}
}

func TestBackend_ListFailsWhenAZoneIsUnreachable(t *testing.T) {
	t.Parallel()
	b, fake := newBackend(t, `{"project": "my-project", "region": "us-central1", "instance_template": "t"}`)
	fake.Put(gcetest.Instance{Name: "gha-arm64-1", Zone: "us-central1-b", Status: "RUNNING", Labels: map[string]string{LabelOwner: "gha"}})
	fake.Unreachable("us-central1-b", true)
	if rs, err := b.List(context.Background()); err == nil || !strings.Contains(err.Error(), "us-central1-b") {
		t.Errorf("List() = %v, %v; want an error naming the unreachable zone, never a partial list", rs, err)
	}
}
