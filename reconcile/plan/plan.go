package plan

import (
	"time"
)

// Reason says why the planner chose an action.
type Reason string

// The reasons an action can have.
const (
	ReasonDemand      Reason = "demand"       // a queued job no runner serves
	ReasonFinished    Reason = "finished"     // the machine stopped: job done, preempted or crashed
	ReasonSurplus     Reason = "surplus"      // more idle or booting runners than queued jobs
	ReasonBootTimeout Reason = "boot_timeout" // never came online
	ReasonGone        Reason = "gone"         // GitHub removed its registration: it ran its job
	ReasonExpired     Reason = "expired"      // older than max_lifetime
	ReasonGhost       Reason = "ghost"        // a registration of ours with no runner and no job waiting for it
	ReasonPreempted   Reason = "preempted"    // the platform took the runner's machine away mid-job
	ReasonWarm        Reason = "warm"         // min_idle: a runner kept idle, ready for the next job
	ReasonRecycled    Reason = "recycled"     // idle past max_idle_age: replaced by a fresh one
	ReasonDown        Reason = "down"         // reconcile down: the installation is taken down
	// Why a job a pool matches gets no runner.
	ReasonPublicRepo      Reason = "public_repo"       // its repository is public: anyone can propose the code it runs
	ReasonForkPullRequest Reason = "fork_pull_request" // a pull request from another repository
	// Why a queued job gets no runner otherwise.
	ReasonUnservable Reason = "unservable" // GitHub does not give it to our idle runner (a runner group excludes it)
	ReasonNoPool     Reason = "no_pool"    // it asks for a self-hosted runner whose labels no pool has
)

// Refusal says why a job must not get a self-hosted runner, or "". Self-hosted runners
// on a public repository, or for a pull request from a fork, run code that anyone can
// propose; the configuration may allow either.
func Refusal(gh GitHubConfig, j Job) Reason {
	switch {
	case j.Public && !gh.AllowPublicRepos:
		return ReasonPublicRepo
	case j.FromFork && !gh.AllowForkPullRequests:
		return ReasonForkPullRequest
	}
	return ""
}

// GoneGrace is how long a runner may go without a registration before it counts as
// gone. It covers a pass that lists registrations just before another pass registers
// and creates a runner.
const GoneGrace = 2 * time.Minute

// RegistrationGrace is how long a registration of ours may go without a runner while
// its job still waits, counted as that job's booting runner. Between its JIT call and
// its backend create, a pass holds a registration with no machine; a pass that
// overlaps it sees exactly that. A create under way finishes, or undoes itself, within
// the pass's in-flight bound (90 s), so two minutes covers it; an older one was left by
// a pass that died, and the job gets a runner of another name.
const RegistrationGrace = 2 * time.Minute

// UnservableRetry is how long a job that GitHub would not give to an idle runner of
// ours stops counting as demand before it is tried again (a runner group fixed, a
// label added). A runner made for other demand can still take it meanwhile.
const UnservableRetry = 30 * time.Minute

// maxNameRetries is how many "-rN" names a job may get when runners of its plain name
// still exist (one made for it that took another job, one being deleted).
const maxNameRetries = 9

// Observed is everything one pass saw before planning.
type Observed struct {
	Jobs    []Job          // queued, from every polled repository
	Runners []Runner       // ours, from the backends
	Regs    []Registration // GitHub's registrations in the scopes the pass listed
	// Blind says what could not be listed completely this pass. The planner never
	// deletes or deregisters on evidence it does not have.
	Blind Blind
	// Unservable holds the queued jobs an earlier pass found GitHub would not give to
	// our runners; they do not count as demand.
	Unservable map[int64]bool
	// Preempted holds, for each preempted runner of a pool that re-runs, what GitHub
	// said of the job it ran (see JudgePreempted).
	Preempted map[string]Lookup
	// Running maps a runner's name to the job in progress it runs, in the repositories
	// polled this pass. The planner does not read it; reconcile status shows it.
	Running map[string]Job
	// Held holds the pools every option of which is in backoff (health.go): their
	// creates wait, but for one probe when it is due.
	Held map[string]Hold
}

// Blind records the parts of the world a pass failed to list.
type Blind struct {
	Jobs  map[Scope]bool  // runner scopes whose queued jobs are not all known
	Regs  map[Scope]bool  // scopes whose registrations are not known
	Pools map[string]bool // pools whose backend failed to list its runners
}

// Create starts a runner for demand in a pool: the spec its backend gets, all but the
// JIT configuration, which the pass asks GitHub for when it creates the runner.
type Create struct {
	RunnerSpec
	Reason Reason
	// QueuedAt is when the job the runner is named for was queued (its created_at);
	// zero for a warm runner.
	QueuedAt time.Time
	// Probe: the pool is in backoff and this create tries whether it can create again.
	Probe bool
	// Turn is its place in its pool's fair share (fair.go): creates are made in the
	// order of their turns, so that what the write pace or the hour's registrations
	// leave for a later pass is the last in the share.
	Turn int
}

// RoomWait is a job its pool has no room for in this pass (max_runners), and how many
// of the pool's waiting jobs take their turn before it.
type RoomWait struct {
	Create Create
	Ahead  int
}

// Waiting is a create a pool in backoff does not make this pass: its job waits for
// capacity.
type Waiting struct {
	Create Create
	Class  FailureClass
}

// Delete removes a runner. When Reg is set, the registration is removed first so that
// an idle runner cannot take a job while it is being deleted.
type Delete struct {
	Runner Runner
	Reg    *Registration
	Reason Reason
}

// Deregister removes a registration that has no runner.
type Deregister struct {
	Reg    Registration
	Reason Reason
}

// PoolStatus is what one pass saw and decided for a pool.
type PoolStatus struct {
	Pool       string
	Queued     int // queued jobs it serves
	Unservable int // queued jobs it matches that GitHub will not give to its runners
	Booting    int
	Idle       int
	Busy       int
	// Warm counts the warm runners booting or idle (not in Booting and Idle);
	// WarmTarget is the min_idle they are kept at now, in each warm scope.
	Warm, WarmTarget int
	Create           int
	Delete           int
	// Waiting counts the creates left for capacity: the pool is in backoff.
	Waiting int
	// WaitingForRoom counts the jobs it has no room for (max_runners).
	WaitingForRoom int
	// ByOption counts the booting, idle, warm and busy runners by the option that
	// made them (a GCE template; "" for a backend without options): option → state →
	// count.
	ByOption map[string]map[string]int
	// OldestQueued is how long the oldest of the queued jobs it serves has waited;
	// zero when none waits.
	OldestQueued time.Duration
}

// Plan is the outcome of Compute: sorted, so that equal worlds give equal plans.
type Plan struct {
	// States is the lifecycle verdict on each runner observed, by name.
	States     map[string]State
	Create     []Create
	Delete     []Delete
	Deregister []Deregister
	Pools      []PoolStatus
	// Unservable lists the jobs found this pass that GitHub will not give to our
	// runners: each matched a pool and waited while an idle runner of that pool and
	// scope stood by for idle_timeout. They no longer count as demand.
	Unservable []Unservable
	// Refused lists the jobs a pool matches that get no runner by policy (Refusal).
	Refused []Refused
	// NoPool lists the queued jobs that ask for a self-hosted runner (their labels
	// include self-hosted) and that no pool matches. Jobs for GitHub's hosted runners
	// are not listed.
	NoPool []Job
	// Waiting lists the creates of pools in backoff that wait for capacity.
	Waiting []Waiting
	// WaitingForRoom are the jobs their pools have no room for, in fair-share order.
	WaitingForRoom []RoomWait
	// Preempted is the verdict on each preempted runner's job: the re-runs to make
	// (before the deletions: a runner whose job's re-run failed is kept as evidence),
	// the runners kept, the jobs left alone.
	Preempted []Judged
}

// Refused is a queued job a pool matches that gets no runner, and why.
type Refused struct {
	Job    Job
	Pool   string
	Reason Reason
}

// Unservable is a queued job GitHub does not assign to our idle runner.
type Unservable struct {
	Job    Job
	Pool   string
	Runner string // the idle runner it was not given to
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool { return len(p.Create)+len(p.Delete)+len(p.Deregister)+len(p.Reruns()) == 0 }

// Reruns returns the re-runs the plan makes.
func (p Plan) Reruns() []Judged {
	var out []Judged
	for _, j := range p.Preempted {
		if j.Verdict == VerdictRerun {
			out = append(out, j)
		}
	}
	return out
}
