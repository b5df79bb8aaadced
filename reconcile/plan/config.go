package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Config is the tool's configuration file. Credentials never live in it.
type Config struct {
	GitHub GitHubConfig `json:"github"`
	// NamePrefix starts every runner, instance and Job name, and is the value of the
	// owner label that marks what this tool manages.
	NamePrefix string `json:"name_prefix,omitempty"`
	Pools      []Pool `json:"pools,omitempty"`
	// Weights share a full pool between repositories (fair share, fair.go): a
	// repository ("owner/name") or organisation ("owner") → its weight, 1 by default.
	Weights map[string]int `json:"weights,omitempty"`
}

// MaxWeight bounds a weight: a share of a pool, not a priority that starves others.
const MaxWeight = 100

// WeightOf is a repository's weight: its own, else its organisation's, else 1.
func (c *Config) WeightOf(repo Scope) int {
	for k, w := range c.Weights {
		if strings.EqualFold(k, repo.String()) {
			return w
		}
	}
	for k, w := range c.Weights {
		if strings.EqualFold(k, repo.Owner) {
			return w
		}
	}
	return 1
}

// GitHubConfig says which GitHub to talk to and what to poll.
type GitHubConfig struct {
	APIURL string   `json:"api_url,omitempty"`
	Repos  []string `json:"repos,omitempty"`
	Orgs   []string `json:"orgs,omitempty"`
	// InstallationRepos polls every repository the GitHub App installation can see.
	InstallationRepos bool `json:"installation_repos,omitempty"`
	// RunnerScope is where runners register: "repo" (default; a runner serves the
	// repository of the job it was made for) or "org" (it serves any repository of
	// the organisation that its runner group allows).
	RunnerScope RunnerScope `json:"runner_scope,omitempty"`
	// RunnerGroupID is the runner group of org runners (default 1, the default group).
	RunnerGroupID int64 `json:"runner_group_id,omitempty"`
	// AllowPublicRepos serves jobs of public repositories: their workflows run code
	// that anyone can propose. Off by default.
	AllowPublicRepos bool `json:"allow_public_repos,omitempty"`
	// AllowForkPullRequests serves jobs of pull requests from forks. Off by default.
	AllowForkPullRequests bool `json:"allow_fork_pull_requests,omitempty"`
}

// RunnerScope is where a pool's runners register: a repository's, or an organisation's.
type RunnerScope string

// Runner scopes.
const (
	RunnerScopeRepo RunnerScope = "repo"
	RunnerScopeOrg  RunnerScope = "org"
)

// RunnerScopeOf returns where a runner for a job of repo registers.
func (c *Config) RunnerScopeOf(repo Scope) Scope {
	if c.GitHub.RunnerScope == RunnerScopeOrg {
		return Scope{Owner: repo.Owner}
	}
	return repo
}

// Pool is a set of interchangeable runners: same labels, same backend.
type Pool struct {
	Name        string   `json:"name"`
	Labels      []string `json:"labels"`
	MaxRunners  int      `json:"max_runners"`
	BootTimeout Duration `json:"boot_timeout,omitempty"`
	IdleTimeout Duration `json:"idle_timeout,omitempty"`
	MaxLifetime Duration `json:"max_lifetime,omitempty"`
	// RerunPreempted is how many times a job that a preemption of its runner killed is
	// re-run (unset: DefaultRerunPreempted; 0: never).
	RerunPreempted *int `json:"rerun_preempted,omitempty"`
	// MinIdle runners are kept warm (idle, online) beside demand, where warm runners
	// can serve (see warm.go); MinIdleSchedule changes it by weekday and time of day.
	MinIdle         int           `json:"min_idle,omitempty"`
	MinIdleSchedule *WarmSchedule `json:"min_idle_schedule,omitempty"`
	// WarmRepos are the repositories a repository-scoped pool keeps runners warm in.
	WarmRepos []string `json:"warm_repos,omitempty"`
	// MaxIdleAge: a warm runner idle longer is replaced (stale images, tokens).
	MaxIdleAge Duration `json:"max_idle_age,omitempty"`
	// Sections are the pool's backend sections by key ("gce": {...}): a key that is
	// no pool field, with a mapping for its value. A pool has one; the platform that
	// owns it decodes and validates it (reconcile.BackendKind).
	Sections map[string]json.RawMessage `json:"-"`
	// CatchAll turns matching around: the pool serves every job that carries all of
	// the pool's labels, whatever else it asks for. Only the dry-run default pool,
	// which shows a newcomer every job that wants a self-hosted runner, sets it.
	CatchAll bool `json:"-"`
}

// Defaults for what a pool leaves unset.
const (
	DefaultAPIURL      = "https://api.github.com/"
	DefaultNamePrefix  = "gha"
	DefaultBootTimeout = 10 * time.Minute
	DefaultIdleTimeout = 5 * time.Minute
	DefaultMaxLifetime = 24 * time.Hour
	// DefaultRerunPreempted: a job a preemption killed is re-run once.
	DefaultRerunPreempted = 1
	// MaxConfigSize bounds the configuration file; real ones are a few KiB.
	MaxConfigSize = 1 << 20
	// maxNameBase is how long name_prefix and a pool name may be together, so that
	// "<prefix>-<pool>-<job id>-r9" stays within the 63 characters of a DNS label.
	maxNameBase = 63 - 2 - 19 - 3
)

// DefaultPool is the pool a dry run uses when no configuration file is given: it
// serves every job that asks for a self-hosted runner.
func DefaultPool() Pool {
	return Pool{
		Name:        "default",
		Labels:      []string{"self-hosted"},
		MaxRunners:  20,
		BootTimeout: Duration(DefaultBootTimeout),
		IdleTimeout: Duration(DefaultIdleTimeout),
		MaxLifetime: Duration(DefaultMaxLifetime),
		CatchAll:    true,
	}
}

// Duration is a time.Duration written as a Go duration string ("90s", "10m").
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("want a duration such as \"10m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"10m\"", s)
	}
	*d = Duration(v)
	return nil
}

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Load parses a YAML configuration, fills in defaults and validates the parts that do
// not depend on how the tool runs. Every error names the key at fault. Unknown keys
// are reported together (*UnknownKeysError) with the configuration decoded without
// them, so that the caller can look for more in the backends' sections.
func Load(data []byte) (*Config, error) {
	if len(data) > MaxConfigSize {
		return nil, fmt.Errorf("config is %d bytes, more than the %d a configuration may have", len(data), MaxConfigSize)
	}
	j, err := yaml.YAMLToJSONStrict(data) // strict: a key given twice is an error
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
		msg = strings.TrimPrefix(msg, "yaml: ")
		return nil, fmt.Errorf("config is not valid YAML: %s", strings.Join(strings.Fields(msg), " "))
	}
	if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
		j = []byte("{}") // an empty file
	}
	j, sections, err := splitSections(j)
	if err != nil {
		return nil, err
	}
	cfg := &Config{}
	err = DecodeStrict(j, cfg, "")
	if unknown := (*UnknownKeysError)(nil); err != nil && !errors.As(err, &unknown) {
		return nil, err
	}
	for i, ss := range sections {
		if i < len(cfg.Pools) {
			cfg.Pools[i].Sections = ss
		}
	}
	cfg.applyDefaults()
	return cfg, err // with unknown keys, the configuration without them, for more checks
}

// splitSections takes each pool's backend sections out of the document (JSON), for
// Pool.Sections: the keys that are no pool field and hold a mapping. A pool with more
// than one is an error.
func splitSections(j []byte) ([]byte, []map[string]json.RawMessage, error) {
	var doc map[string]json.RawMessage
	if json.Unmarshal(j, &doc) != nil || doc["pools"] == nil {
		return j, nil, nil // DecodeStrict names what is wrong
	}
	var pools []map[string]json.RawMessage
	if json.Unmarshal(doc["pools"], &pools) != nil {
		return j, nil, nil
	}
	fields := map[string]reflect.Type{}
	collectFields(reflect.TypeFor[Pool](), fields)
	out := make([]map[string]json.RawMessage, len(pools))
	for i, p := range pools {
		var keys []string
		for k, v := range p {
			if _, field := fields[k]; !field && bytes.HasPrefix(bytes.TrimSpace(v), []byte("{")) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		if len(keys) > 1 {
			return nil, nil, fmt.Errorf("pools[%d]: %s are exclusive: a pool has one backend", i, strings.Join(keys, " and "))
		}
		for _, k := range keys {
			out[i] = map[string]json.RawMessage{k: p[k]}
			delete(p, k)
		}
	}
	raw, err := json.Marshal(pools)
	if err != nil {
		return nil, nil, err
	}
	doc["pools"] = raw
	j, err = json.Marshal(doc)
	return j, out, err
}

// Backend returns the key of the pool's backend section and the section; "" if it
// has none.
func (p Pool) Backend() (string, json.RawMessage) {
	for k, v := range p.Sections {
		return k, v
	}
	return "", nil
}

// MarshalJSON implements json.Marshaler: the pool's fields, and its backend section.
func (p Pool) MarshalJSON() ([]byte, error) {
	type fields Pool // without this method
	raw, err := json.Marshal(fields(p))
	if err != nil || len(p.Sections) == 0 {
		return raw, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	for k, v := range p.Sections {
		m[k] = v
	}
	return json.Marshal(m)
}

func (c *Config) applyDefaults() {
	if c.GitHub.APIURL == "" {
		c.GitHub.APIURL = DefaultAPIURL
	}
	if c.NamePrefix == "" {
		c.NamePrefix = DefaultNamePrefix
	}
	if c.GitHub.RunnerScope == "" {
		c.GitHub.RunnerScope = RunnerScopeRepo
	}
	if c.GitHub.RunnerGroupID == 0 {
		c.GitHub.RunnerGroupID = 1
	}
	for i := range c.Pools {
		p := &c.Pools[i]
		if p.BootTimeout == 0 {
			p.BootTimeout = Duration(DefaultBootTimeout)
		}
		if p.IdleTimeout == 0 {
			p.IdleTimeout = Duration(DefaultIdleTimeout)
		}
		if p.MaxLifetime == 0 {
			p.MaxLifetime = Duration(DefaultMaxLifetime)
		}
	}
}

// Reruns is how many times the pool re-runs a job a preemption killed.
func (p Pool) Reruns() int {
	if p.RerunPreempted == nil {
		return DefaultRerunPreempted
	}
	return *p.RerunPreempted
}

// dnsLabel is the rule for instance names, Job names and label values alike.
var dnsLabel = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// Validate checks a loaded configuration, with the command line's additions merged in.
// Its first error names the key at fault.
func (c *Config) Validate() error {
	u, ok := HTTPURL(c.GitHub.APIURL)
	if !ok {
		return fmt.Errorf("github.api_url: %q is not an http(s) URL", c.GitHub.APIURL)
	}
	if u.User != nil {
		// Never echo it: it holds a credential.
		return errors.New("github.api_url: holds credentials; put the token in GITHUB_TOKEN")
	}
	if len(c.GitHub.Repos) == 0 && len(c.GitHub.Orgs) == 0 && !c.GitHub.InstallationRepos {
		return errors.New("github.repos: nothing to poll: set github.repos, github.orgs or github.installation_repos (or --repo, --org)")
	}
	if s := c.GitHub.RunnerScope; s != "" && s != RunnerScopeRepo && s != RunnerScopeOrg {
		return fmt.Errorf("github.runner_scope: %q is not repo or org", s)
	}
	if c.GitHub.RunnerGroupID < 0 {
		return fmt.Errorf("github.runner_group_id must be positive")
	}
	for i, r := range c.GitHub.Repos {
		if _, err := ParseRepo(r); err != nil {
			return fmt.Errorf("github.repos[%d]: %v", i, err)
		}
	}
	for i, o := range c.GitHub.Orgs {
		if _, err := ParseOrg(o); err != nil {
			return fmt.Errorf("github.orgs[%d]: %v", i, err)
		}
	}
	if !dnsLabel.MatchString(c.NamePrefix) {
		return fmt.Errorf("name_prefix: %q must be lowercase letters, digits and '-', start with a letter and not end with '-'", c.NamePrefix)
	}
	if len(c.Pools) == 0 {
		return errors.New("pools: no pool is configured")
	}
	seen := map[string]int{}
	for i, p := range c.Pools {
		key := fmt.Sprintf("pools[%d]", i)
		if j, dup := seen[p.Name]; dup && p.Name != "" {
			return fmt.Errorf("%s.name: %q is also the name of pools[%d]", key, p.Name, j)
		}
		seen[p.Name] = i
		if err := c.validatePool(p, key); err != nil {
			return err
		}
	}
	return c.validateWeights()
}

// validateWeights checks weights: keys that name a repository or an organisation, and
// whole numbers from 1 to MaxWeight.
func (c *Config) validateWeights() error {
	keys := slices.Sorted(maps.Keys(c.Weights))
	for _, k := range keys {
		_, repoErr := ParseRepo(k)
		_, orgErr := ParseOrg(k)
		if repoErr != nil && orgErr != nil {
			return fmt.Errorf("weights.%s: not a repository (owner/name) or an organisation", k)
		}
		if w := c.Weights[k]; w < 1 || w > MaxWeight {
			return fmt.Errorf("weights.%s: %d is not between 1 and %d", k, w, MaxWeight)
		}
	}
	return nil
}

// validatePool checks one pool; key names it in errors ("pools[1]").
func (c *Config) validatePool(p Pool, key string) error {
	if p.Name == "" {
		return fmt.Errorf("%s.name is missing", key)
	}
	if !dnsLabel.MatchString(p.Name) {
		return fmt.Errorf("%s.name: %q must be lowercase letters, digits and '-', start with a letter and not end with '-'", key, p.Name)
	}
	if len(c.NamePrefix)+len(p.Name) > maxNameBase {
		return fmt.Errorf("%s.name: %q with name_prefix %q makes runner names longer than 63 characters: the two may have %d characters together", key, p.Name, c.NamePrefix, maxNameBase)
	}
	if len(p.Labels) == 0 {
		return fmt.Errorf("%s.labels: a pool needs at least one label", key)
	}
	if len(p.Labels) > 99 {
		// GitHub accepts 100 labels; the tool adds one, the registration time.
		return fmt.Errorf("%s.labels: %d labels, at most 99 (GitHub accepts 100 and the tool adds %s<time>)", key, len(p.Labels), registeredLabel)
	}
	for j, l := range p.Labels {
		if strings.TrimSpace(l) == "" || len(l) > 256 {
			return fmt.Errorf("%s.labels[%d]: %q is not a label", key, j, l)
		}
		if strings.HasPrefix(strings.ToLower(l), registeredLabel) {
			return fmt.Errorf("%s.labels[%d]: %q: labels starting %q are the tool's own", key, j, l, registeredLabel)
		}
	}
	if p.MaxRunners <= 0 {
		if p.MaxRunners == 0 {
			return fmt.Errorf("%s.max_runners is required and must be positive: the most runners of the pool at once", key)
		}
		return fmt.Errorf("%s.max_runners must be positive", key)
	}
	if n := p.Reruns(); n < 0 || n > 10 {
		return fmt.Errorf("%s.rerun_preempted: %d is not between 0 and 10", key, n)
	}
	if err := validateWarm(&p, key, c.GitHub.RunnerScope); err != nil { // the schedule, a pointer, is prepared in place
		return err
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"boot_timeout", p.BootTimeout}, {"idle_timeout", p.IdleTimeout}, {"max_lifetime", p.MaxLifetime}} {
		if d.v <= 0 {
			return fmt.Errorf("%s.%s must be positive", key, d.name)
		}
	}
	if p.MaxLifetime <= p.BootTimeout {
		return fmt.Errorf("%s.max_lifetime (%v) must be longer than boot_timeout (%v)", key, time.Duration(p.MaxLifetime), time.Duration(p.BootTimeout))
	}
	return nil
}

// Repos returns the configured repositories, parsed. Validate has checked them.
func (c *Config) Repos() []Scope {
	out := make([]Scope, 0, len(c.GitHub.Repos))
	for _, r := range c.GitHub.Repos {
		if s, err := ParseRepo(r); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// Pool returns the pool of that name, or nil.
func (c *Config) Pool(name string) *Pool {
	for i := range c.Pools {
		if c.Pools[i].Name == name {
			return &c.Pools[i]
		}
	}
	return nil
}

// String renders the configuration as YAML for debugging. It holds no credential.
func (c *Config) String() string {
	j, err := json.Marshal(c)
	if err != nil {
		return fmt.Sprintf("config: %v", err)
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return string(j)
	}
	return string(bytes.TrimSpace(y))
}
