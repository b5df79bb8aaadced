// Package plan is the pure middle of a pass: the domain types, the configuration, and
// the planner that turns what a pass observed into the actions that apply it
// (Compute), with the rules it uses (warm pools, room, the repositories a pass polls,
// what a preempted runner's job deserves).
//
// It does no I/O and reads no clock: every input, the time included, is an argument,
// so that equal worlds give equal plans. A test holds its imports to that.
package plan

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Scope is where a runner registers and where the jobs it may take come from: a
// repository (Owner and Repo), or an organisation (Owner alone).
type Scope struct {
	Owner string
	Repo  string // empty for an organisation
}

// IsOrg reports whether s names an organisation rather than a repository.
func (s Scope) IsOrg() bool { return s.Repo == "" }

// String returns "owner/repo" for a repository and "owner" for an organisation.
func (s Scope) String() string {
	if s.Repo == "" {
		return s.Owner
	}
	return s.Owner + "/" + s.Repo
}

// ownerPattern is GitHub's rule for user and organisation logins.
var ownerPattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9]){0,38}$`)

// repoPattern is GitHub's rule for repository names ("." and ".." are refused apart).
var repoPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// ParseRepo parses "owner/name" into a repository scope.
func ParseRepo(s string) (Scope, error) {
	owner, name, ok := strings.Cut(s, "/")
	if !ok || strings.Contains(name, "/") {
		return Scope{}, fmt.Errorf("%q is not OWNER/NAME", s)
	}
	if !ownerPattern.MatchString(owner) {
		return Scope{}, fmt.Errorf("%q: %q is not a valid GitHub owner", s, owner)
	}
	if !repoPattern.MatchString(name) || name == "." || name == ".." {
		return Scope{}, fmt.Errorf("%q: %q is not a valid repository name", s, name)
	}
	// GitHub compares names case-insensitively; so do we, by keeping them lowercase.
	return Scope{Owner: strings.ToLower(owner), Repo: strings.ToLower(name)}, nil
}

// ParseOrg parses an organisation login into an organisation scope.
func ParseOrg(s string) (Scope, error) {
	if !ownerPattern.MatchString(s) {
		return Scope{}, fmt.Errorf("%q is not a valid GitHub organisation name", s)
	}
	return Scope{Owner: strings.ToLower(s)}, nil
}

// ParseScope parses what Scope.String returns, as backends store it: "owner/repo" or
// "owner". It returns the zero Scope for anything else.
func ParseScope(s string) Scope {
	if r, err := ParseRepo(s); err == nil {
		return r
	}
	if o, err := ParseOrg(s); err == nil {
		return o
	}
	return Scope{}
}

// HTTPURL parses s as an absolute http or https URL with a host; false if it is not one.
func HTTPURL(s string) (*url.URL, bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, false
	}
	return u, true
}

// Job is a workflow job that waits for a runner.
type Job struct {
	ID        int64
	RunID     int64
	Repo      Scope // the repository whose workflow it belongs to
	Name      string
	Labels    []string // the job's runs-on labels
	CreatedAt time.Time
	Public    bool // its repository is public
	FromFork  bool // its run is a pull request from a fork
	// RunnerName is, for a job in progress (GitHub.RunningJobs), the runner running it.
	RunnerName string
}

// Phase is what a backend says of a runner's machine.
type Phase int

const (
	// PhaseActive is a runner whose machine is starting or running.
	PhaseActive Phase = iota
	// PhaseFinished is a runner whose machine stopped and will never run a job again
	// (a completed or failed Kubernetes Job, a stopped or preempted instance).
	PhaseFinished
)

func (p Phase) String() string {
	if p == PhaseFinished {
		return "finished"
	}
	return "active"
}

// Runner is one runner this tool owns, as its backend reports it.
type Runner struct {
	Name      string
	Pool      string
	Scope     Scope // where its registration lives
	Repo      Scope // the repository of the job it was made for
	JobID     int64 // the job it was made for; GitHub may give it any other job it can serve
	CreatedAt time.Time
	Phase     Phase
	// Location is where the backend keeps the runner (a GCE zone); the planner
	// ignores it and hands it back to the backend's Delete.
	Location string
	// PreemptedAt is when the platform took the runner's machine away (a Spot VM's
	// preemption, a pod's disruption); zero if it did not.
	PreemptedAt time.Time
	// Option is the way its pool made it (a GCE template), for a backend with
	// several (Backend.Options); empty otherwise.
	Option string
}

// Registration is GitHub's record of a self-hosted runner.
type Registration struct {
	ID     int64
	Name   string
	Scope  Scope
	Online bool
	Busy   bool
	Labels []string
}

// registeredLabel starts the label that records when this tool registered a runner.
// GitHub's runner object has no creation time, and a pass must tell a registration
// another pass made a moment ago (its machine is being created) from one a dead pass
// left behind; GitHub keeps the labels of a JIT registration as given.
const registeredLabel = "reconcile-registered-"

// RegisteredLabel is the label a registration made at t carries.
func RegisteredLabel(t time.Time) string {
	return registeredLabel + strconv.FormatInt(t.Unix(), 10)
}

// Registered returns when this tool made the registration, from its label; false for
// one made without it (by an older version, or by hand).
func (r Registration) Registered() (time.Time, bool) {
	for _, l := range r.Labels {
		if v, ok := strings.CutPrefix(strings.ToLower(l), registeredLabel); ok {
			if sec, err := strconv.ParseInt(v, 10, 64); err == nil && sec > 0 {
				return time.Unix(sec, 0), true
			}
		}
	}
	return time.Time{}, false
}

// RunnerSpec is what a backend needs to start one runner.
type RunnerSpec struct {
	Name      string
	Pool      string
	Scope     Scope
	Repo      Scope
	JobID     int64
	RunID     int64 // the workflow run of the job (0 for a warm runner), for billing labels
	Labels    []string
	JITConfig Secret
	// MaxLifetime bounds how long the runner may live; backends that can enforce a
	// deadline themselves (Kubernetes activeDeadlineSeconds) use it.
	MaxLifetime time.Duration
	// Option is the way to make it, one of the backend's Options for the pool
	// (Backend.Options); empty for the first, or for a backend without options.
	Option string
}

// Secret is a credential, such as an encoded JIT runner configuration. Every way of
// printing it prints "[redacted]"; Reveal returns the value for the one place that
// needs it.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer, so %#v redacts too.
func (s Secret) GoString() string { return redacted }

// MarshalText implements encoding.TextMarshaler, so JSON and loggers redact too.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
