package reconcile_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/reconciletest"
)

// kinds are two platforms of a table: the in-memory one, and one that records what it
// was asked to build.
func kinds(t *testing.T) ([]reconcile.BackendKind, *[]reconcile.PoolSection) {
	t.Helper()
	built := &[]reconcile.PoolSection{}
	other := reconcile.BackendKind{
		Key: "other",
		Parse: func(raw json.RawMessage, path string) (any, error) {
			var c struct {
				Zone string `json:"zone"`
			}
			return c, reconcile.DecodeStrict(raw, &c, path)
		},
		Build: func(_ context.Context, _ reconcile.BackendEnv, pools []reconcile.PoolSection) (map[string]reconcile.Backend, error) {
			*built = append(*built, pools...)
			b := reconciletest.NewBackend(time.Now)
			out := map[string]reconcile.Backend{}
			for _, p := range pools {
				out[p.Pool] = b // one account, one backend
			}
			return out, nil
		},
	}
	return []reconcile.BackendKind{reconciletest.Kind(reconciletest.NewBackend(time.Now)), other}, built
}

func load(t *testing.T, pools string) *reconcile.Config {
	t.Helper()
	cfg, err := reconcile.Load([]byte("github: {repos: [o/r]}\npools:\n" + pools))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Each pool's section goes to its platform's parser, and each platform builds the
// backends of its pools only, once.
func TestRegistry_EachSectionToItsPlatform(t *testing.T) {
	t.Parallel()
	ks, built := kinds(t)
	cfg := load(t, `  - {name: a, labels: [lx], max_runners: 1, other: {zone: z1}}
  - {name: b, labels: [ly], max_runners: 1, other: {zone: z2}}
  - {name: c, labels: [lz], max_runners: 1, memory: {}}
`)
	sections, err := reconcile.ParseSections(cfg, ks, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(sections["other"]) != 2 || sections["other"][1].Path != "pools[1].other" || len(sections["memory"]) != 1 {
		t.Fatalf("sections %+v, want two of other (the second at pools[1].other) and one of memory", sections)
	}
	backends, err := reconcile.BuildBackends(context.Background(), ks, sections, reconcile.BackendEnv{Owner: "gha"})
	if err != nil {
		t.Fatal(err)
	}
	if len(backends) != 3 || backends["a"] != backends["b"] || backends["a"] == backends["c"] || len(*built) != 2 {
		t.Errorf("backends %v after %d builds of other; want a and b sharing one, c its own", backends, len(*built))
	}
}

// A pool's section is checked by its platform, by its path; a pool without one, or
// with a section no platform has, is refused by name; a dry run may have none.
func TestRegistry_RefusesWhatNoPlatformTakes(t *testing.T) {
	t.Parallel()
	ks, _ := kinds(t)
	for _, tt := range []struct{ pools, want string }{
		{"  - {name: a, labels: [lx], max_runners: 1}\n", "pools[0]: no backend: add a memory or other section"},
		{"  - {name: a, labels: [lx], max_runners: 1, gcee: {}}\n", "pools[0].gcee: unknown key"},
		{"  - {name: a, labels: [lx], max_runners: 1, other: {zome: z}}\n", "pools[0].other.zome: unknown key (did you mean zone?)"},
	} {
		_, err := reconcile.ParseSections(load(t, tt.pools), ks, false)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseSections(%q) = %v, want %q", strings.TrimSpace(tt.pools), err, tt.want)
		}
	}
	if s, err := reconcile.ParseSections(load(t, "  - {name: a, labels: [lx], max_runners: 1}\n"), ks, true); err != nil || len(s) != 0 {
		t.Errorf("a dry run's pool without a section: %v, %v; want nothing to build", s, err)
	}
	if _, err := reconcile.Load([]byte("pools:\n  - {name: a, labels: [lx], max_runners: 1, memory: {}, other: {}}\n")); err == nil ||
		!strings.Contains(err.Error(), "pools[0]: memory and other are exclusive") {
		t.Errorf("a pool with two sections: %v, want them named as exclusive", err)
	}
}

// A platform that cannot be reached says so, and nothing is built after it.
func TestRegistry_ABuildThatFails(t *testing.T) {
	t.Parallel()
	broken := reconcile.BackendKind{Key: "broken",
		Parse: func(json.RawMessage, string) (any, error) { return nil, nil },
		Build: func(context.Context, reconcile.BackendEnv, []reconcile.PoolSection) (map[string]reconcile.Backend, error) {
			return nil, errors.New("pools[0].broken: no credentials")
		}}
	cfg := load(t, "  - {name: a, labels: [lx], max_runners: 1, broken: {}}\n")
	sections, err := reconcile.ParseSections(cfg, []reconcile.BackendKind{broken}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reconcile.BuildBackends(context.Background(), []reconcile.BackendKind{broken}, sections, reconcile.BackendEnv{}); err == nil {
		t.Error("BuildBackends() = nil, want the platform's error")
	}
}
