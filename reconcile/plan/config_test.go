package plan

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoad_FillsDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Load([]byte(`
github:
  repos: [Octo-Org/App]
pools:
  - name: arm64
    labels: [self-hosted, ARM64]
    max_runners: 4
    idle_timeout: 90s
`))
	if err != nil {
		t.Fatalf("Load() = %v, want nil", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
	want := &Config{
		GitHub:     GitHubConfig{APIURL: DefaultAPIURL, Repos: []string{"Octo-Org/App"}, RunnerScope: "repo", RunnerGroupID: 1},
		NamePrefix: "gha",
		Pools: []Pool{{Name: "arm64", Labels: []string{"self-hosted", "ARM64"}, MaxRunners: 4,
			BootTimeout: Duration(10 * time.Minute), IdleTimeout: Duration(90 * time.Second), MaxLifetime: Duration(24 * time.Hour)}},
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("Load() mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Scope{{Owner: "octo-org", Repo: "app"}}, cfg.Repos()); diff != "" {
		t.Errorf("Repos() mismatch (-want +got):\n%s", diff)
	}
}

func TestLoad_KeepsBackendSectionsForTheirBackend(t *testing.T) {
	t.Parallel()
	cfg, err := Load([]byte("github: {repos: [o/r]}\npools:\n  - name: a\n    labels: [x]\n    max_runners: 1\n    gce: {project: p, zones: [us-central1-a]}\n"))
	if err != nil {
		t.Fatalf("Load() = %v, want nil", err)
	}
	if key, got := cfg.Pools[0].Backend(); key != "gce" || string(got) != `{"project":"p","zones":["us-central1-a"]}` {
		t.Errorf("Pools[0].Backend() = %s, %s, want gce and the section as JSON", key, got)
	}
}

func TestLoad_Rejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, want string
	}{
		{"not a mapping", "- a\n- b\n", "config: want a mapping"},
		{"unknown top-level key", "pool: []\n", "pool: unknown key"},
		{"list where a string belongs", "name_prefix: [a]\n", "name_prefix: want a string"},
		{"labels not a list", "pools:\n  - name: a\n    labels: x\n", "pools[0].labels: want a list"},
		{"fractional max_runners", "pools:\n  - name: a\n    labels: [x]\n    max_runners: 1.5\n", "pools[0].max_runners: want a whole number"},
		{"duration without unit", "pools:\n  - name: a\n    labels: [x]\n    max_runners: 1\n    idle_timeout: 300\n", "pools[0].idle_timeout"},
		{"duplicate key", "name_prefix: a\nname_prefix: b\n", "not valid YAML"},
		{"too large", "name_prefix: " + strings.Repeat("a", MaxConfigSize) + "\n", "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestValidate_Rejects(t *testing.T) {
	t.Parallel()
	base := func() Config {
		c := testConfig()
		c.GitHub = GitHubConfig{APIURL: DefaultAPIURL, Repos: []string{"octo-org/app"}}
		return c
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"api_url not a URL", func(c *Config) { c.GitHub.APIURL = "api.github.com" }, "github.api_url"},
		{"nothing to poll", func(c *Config) { c.GitHub.Repos = nil }, "github.repos"},
		{"repo without owner", func(c *Config) { c.GitHub.Repos = []string{"app"} }, "github.repos[0]"},
		{"repo with a path", func(c *Config) { c.GitHub.Repos = []string{"o/r/x"} }, "github.repos[0]"},
		{"repo named ..", func(c *Config) { c.GitHub.Repos = []string{"o/.."} }, "github.repos[0]"},
		{"org with a slash", func(c *Config) { c.GitHub.Orgs = []string{"o/r"} }, "github.orgs[0]"},
		{"unknown runner scope", func(c *Config) { c.GitHub.RunnerScope = "enterprise" }, "github.runner_scope"},
		{"negative runner group", func(c *Config) { c.GitHub.RunnerGroupID = -1 }, "github.runner_group_id"},
		{"uppercase prefix", func(c *Config) { c.NamePrefix = "GHA" }, "name_prefix"},
		{"prefix ending in -", func(c *Config) { c.NamePrefix = "gha-" }, "name_prefix"},
		{"no pools", func(c *Config) { c.Pools = nil }, "pools"},
		{"pool name missing", func(c *Config) { c.Pools[0].Name = "" }, "pools[0].name is missing"},
		{"pool name with a dot", func(c *Config) { c.Pools[1].Name = "x.64" }, "pools[1].name"},
		{"200-character pool name", func(c *Config) { c.Pools[0].Name = strings.Repeat("a", 200) }, "pools[0].name"},
		{"empty label", func(c *Config) { c.Pools[0].Labels = []string{"self-hosted", " "} }, "pools[0].labels[1]"},
		{"the tool's own registration label", func(c *Config) { c.Pools[0].Labels = []string{"self-hosted", "Reconcile-Registered-1"} }, "pools[0].labels[1]"},
		{"rerun_preempted past 10", func(c *Config) { n := 11; c.Pools[0].RerunPreempted = &n }, "pools[0].rerun_preempted"},
		{"negative rerun_preempted", func(c *Config) { n := -1; c.Pools[1].RerunPreempted = &n }, "pools[1].rerun_preempted"},
		{"100 labels, with the tool's own 101", func(c *Config) {
			c.Pools[0].Labels = nil
			for i := range 100 {
				c.Pools[0].Labels = append(c.Pools[0].Labels, fmt.Sprintf("l%d", i))
			}
		}, "pools[0].labels: 100 labels, at most 99"},
		{"negative boot_timeout", func(c *Config) { c.Pools[0].BootTimeout = Duration(-time.Second) }, "pools[0].boot_timeout must be positive"},
		{"lifetime shorter than boot", func(c *Config) { c.Pools[0].MaxLifetime = Duration(time.Minute) }, "pools[0].max_lifetime"},
		{"weight of nothing", func(c *Config) { c.Weights = map[string]int{"o/r/x": 2} }, "weights.o/r/x: not a repository"},
		{"weight of zero", func(c *Config) { c.Weights = map[string]int{"octo-org/app": 0} }, "weights.octo-org/app: 0 is not between 1 and 100"},
		{"weight past 100", func(c *Config) { c.Weights = map[string]int{"octo-org": 101} }, "weights.octo-org: 101 is not between 1 and 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := base()
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate() of the base config = %v", err)
			}
			tt.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}
