package reconcile

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
	// Holding names the finished runners kept as evidence of a preemption until GitHub
	// ends the job they ran (see JudgePreempted).
	Holding map[string]bool
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
func (p Plan) Empty() bool { return len(p.Create)+len(p.Delete)+len(p.Deregister) == 0 }

// state is what a runner is, by what GitHub and its backend say.
type state int

const (
	stateBooting  state = iota // registered, offline, younger than boot_timeout
	stateIdle                  // online, not busy
	stateBusy                  // running a job
	stateStarting              // no registration yet, younger than GoneGrace
	stateUnknown               // its registrations could not be listed
	stateDoomed                // planned for deletion
)

type regKey struct {
	scope Scope
	name  string
}

type poolScope struct {
	pool  string
	scope Scope
}

// RunnerName returns the name of the runner made for a job: "<prefix>-<pool>-<job id>",
// or with "-r<n>" appended for the n-th retry when that name is still in use.
func RunnerName(prefix, pool string, jobID int64, retry int) string {
	name := prefix + "-" + pool + "-" + strconv.FormatInt(jobID, 10)
	if retry > 0 {
		name += "-r" + strconv.Itoa(retry)
	}
	return name
}

var nameTail = regexp.MustCompile(`^[a-z0-9-]*[a-z0-9]-([0-9]{1,19})(?:-r[1-9])?$`)

// retryName matches the name of a retry (RunnerName with retry > 0).
var retryName = regexp.MustCompile(`-[0-9]{1,19}-r[1-9]$`)

// ParseRunnerName reports whether name is one this tool gives under prefix, and the
// job id in it (0 for a warm runner, which has none).
func ParseRunnerName(prefix, name string) (jobID int64, ok bool) {
	if IsWarmName(prefix, name) {
		return 0, true
	}
	rest, ok := strings.CutPrefix(name, prefix+"-")
	if !ok {
		return 0, false
	}
	m := nameTail.FindStringSubmatch(rest)
	if m == nil {
		return 0, false
	}
	id, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return id, true
}

// MatchPool returns the first pool, in configuration order, whose labels include
// every label of the job, compared case-insensitively; nil if none can serve it.
func MatchPool(pools []Pool, jobLabels []string) *Pool {
	if len(jobLabels) == 0 {
		return nil
	}
	for i := range pools {
		if pools[i].CatchAll && coversLabels(jobLabels, pools[i].Labels) || coversLabels(pools[i].Labels, jobLabels) {
			return &pools[i]
		}
	}
	return nil
}

func coversLabels(have, want []string) bool {
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, w) }) {
			return false
		}
	}
	return true
}

// Compute returns the actions that move obs toward the desired state: per pool and
// scope, as many booting or idle runners as queued jobs, within max_runners, and
// nothing left behind. It does no I/O.
func Compute(obs Observed, cfg Config, now time.Time) Plan {
	pl := planner{cfg: cfg, obs: obs, now: now,
		regs:    map[regKey]Registration{},
		states:  map[string]state{},
		taken:   map[string]bool{},
		owned:   map[string]bool{},
		pending: map[Scope]map[int64]bool{},
		supply:  map[poolScope][]Runner{},
		demand:  map[poolScope][]Job{},
		queued:  map[int64]bool{},
		status:  map[string]*PoolStatus{},
		runners: slices.Clone(obs.Runners),
	}
	return pl.compute()
}

type planner struct {
	cfg     Config
	obs     Observed
	now     time.Time
	runners []Runner
	regs    map[regKey]Registration
	states  map[string]state
	taken   map[string]bool          // names of runners of any state, of registrations, and of planned creates
	owned   map[string]bool          // names of runners, of any state
	pending map[Scope]map[int64]bool // jobs with a fresh registration of ours and no runner yet
	supply  map[poolScope][]Runner
	demand  map[poolScope][]Job
	queued  map[int64]bool
	status  map[string]*PoolStatus
	plan    Plan
}

func (pl *planner) poolStatus(name string) *PoolStatus {
	s, ok := pl.status[name]
	if !ok {
		s = &PoolStatus{Pool: name}
		pl.status[name] = s
	}
	return s
}

// timeouts returns the pool's timeouts; runners of a pool no longer configured get
// the defaults, so they are still cleaned up.
func (pl *planner) timeouts(pool string) (boot, idle, life time.Duration) {
	if p := pl.cfg.Pool(pool); p != nil {
		return time.Duration(p.BootTimeout), time.Duration(p.IdleTimeout), time.Duration(p.MaxLifetime)
	}
	return DefaultBootTimeout, DefaultIdleTimeout, DefaultMaxLifetime
}

func (pl *planner) compute() Plan {
	for _, p := range pl.cfg.Pools {
		pl.poolStatus(p.Name)
	}
	for _, r := range pl.obs.Regs {
		if _, ours := ParseRunnerName(pl.cfg.NamePrefix, r.Name); ours {
			pl.regs[regKey{r.Scope, r.Name}] = r
			// A registration holds its name until it is gone: a new runner of that
			// name could not register (GitHub answers 409).
			pl.taken[r.Name] = true
		}
	}
	slices.SortFunc(pl.runners, func(a, b Runner) int { return strings.Compare(a.Name, b.Name) })
	for _, r := range pl.runners {
		pl.taken[r.Name] = true
		pl.owned[r.Name] = true
		pl.classify(r)
	}
	pl.collectPending()
	pl.collectDemand()
	keys := make([]poolScope, 0, len(pl.demand)+len(pl.supply))
	for k := range pl.demand {
		keys = append(keys, k)
	}
	for k := range pl.supply {
		if _, dup := pl.demand[k]; !dup {
			keys = append(keys, k)
		}
	}
	for _, p := range pl.cfg.Pools {
		if n := p.MinIdleAt(pl.now); n > 0 {
			pl.poolStatus(p.Name).WarmTarget = n
			for _, sc := range pl.cfg.WarmScopes(p) {
				k := poolScope{p.Name, sc}
				_, d := pl.demand[k]
				if _, sp := pl.supply[k]; !d && !sp {
					keys = append(keys, k)
				}
			}
		}
	}
	slices.SortFunc(keys, func(a, b poolScope) int {
		return cmp.Or(strings.Compare(a.pool, b.pool), strings.Compare(a.scope.String(), b.scope.String()))
	})
	wanted := map[string][]Create{}
	for _, k := range keys {
		wanted[k.pool] = append(wanted[k.pool], pl.balance(k)...)
	}
	for _, p := range pl.cfg.Pools {
		pl.capCreates(p, wanted[p.Name])
	}
	pl.sweepGhosts()
	return pl.finish()
}

// classify decides what one runner is and plans its deletion when a lifecycle rule says so.
func (pl *planner) classify(r Runner) {
	boot, _, life := pl.timeouts(r.Pool)
	age := pl.now.Sub(r.CreatedAt)
	reg, hasReg := pl.regs[regKey{r.Scope, r.Name}]
	var regp *Registration
	if hasReg && !reg.Busy {
		regp = &reg
	}
	st := pl.poolStatus(r.Pool)
	switch {
	case r.Phase == PhaseFinished && pl.obs.Holding[r.Name]:
		// Kept until GitHub ends its job: the preemption's evidence.
	case r.Phase == PhaseFinished:
		pl.doom(r, regp, ReasonFinished)
	case age >= life:
		pl.doom(r, regp, ReasonExpired)
	case pl.obs.Blind.Regs[r.Scope]:
		// Without its registration we cannot tell booting from busy: keep it, and
		// count it as supply so that no duplicate is made meanwhile.
		pl.states[r.Name] = stateUnknown
		pl.addSupply(r)
		pl.tally(st, r, &st.Booting, 1)
	case !hasReg && age < GoneGrace:
		pl.states[r.Name] = stateStarting
		pl.tally(st, r, &st.Booting, 1)
	case !hasReg:
		pl.doom(r, nil, ReasonGone)
	case reg.Busy:
		pl.states[r.Name] = stateBusy
		pl.tally(st, r, &st.Busy, 1)
	case reg.Online && pl.recycles(r, age):
		pl.doom(r, regp, ReasonRecycled)
	case reg.Online:
		pl.states[r.Name] = stateIdle
		pl.addSupply(r)
		pl.tally(st, r, pl.count(st, r, &st.Idle), 1)
	case age < boot:
		pl.states[r.Name] = stateBooting
		pl.addSupply(r)
		pl.tally(st, r, pl.count(st, r, &st.Booting), 1)
	default:
		pl.doom(r, regp, ReasonBootTimeout)
	}
}

// recycles reports whether an idle runner of a warm pool has been up past its
// max_idle_age: a long-idle machine carries stale images and tokens.
func (pl *planner) recycles(r Runner, age time.Duration) bool {
	p := pl.cfg.Pool(r.Pool)
	return p != nil && p.maxIdleAge() > 0 && age >= p.maxIdleAge()
}

// count is where a booting or idle runner is counted: Warm for a warm runner, else
// the given counter.
func (pl *planner) count(st *PoolStatus, r Runner, other *int) *int {
	if IsWarmName(pl.cfg.NamePrefix, r.Name) {
		return &st.Warm
	}
	return other
}

// tally adds d to the pool's count n of a state (one of its Booting, Idle, Busy and
// Warm) and to the same count of the runner's option.
func (pl *planner) tally(st *PoolStatus, r Runner, n *int, d int) {
	*n += d
	var state string
	switch n {
	case &st.Booting:
		state = StateBooting
	case &st.Idle:
		state = StateIdle
	case &st.Busy:
		state = StateBusy
	case &st.Warm:
		state = "warm"
	}
	if st.ByOption == nil {
		st.ByOption = map[string]map[string]int{}
	}
	if st.ByOption[r.Option] == nil {
		st.ByOption[r.Option] = map[string]int{}
	}
	st.ByOption[r.Option][state] += d
}

func (pl *planner) addSupply(r Runner) {
	k := poolScope{r.Pool, r.Scope}
	pl.supply[k] = append(pl.supply[k], r)
}

func (pl *planner) doom(r Runner, reg *Registration, why Reason) {
	pl.states[r.Name] = stateDoomed
	pl.plan.Delete = append(pl.plan.Delete, Delete{Runner: r, Reg: reg, Reason: why})
	pl.poolStatus(r.Pool).Delete++
}

// collectPending finds the registrations of ours that have no runner, offline and idle,
// made less than RegistrationGrace ago: another pass is creating their machines.
func (pl *planner) collectPending() {
	for _, r := range pl.obs.Regs {
		jobID, ours := ParseRunnerName(pl.cfg.NamePrefix, r.Name)
		at, known := r.Registered()
		if !ours || pl.owned[r.Name] || r.Online || r.Busy || !known || pl.now.Sub(at) >= RegistrationGrace {
			continue
		}
		if pl.pending[r.Scope] == nil {
			pl.pending[r.Scope] = map[int64]bool{}
		}
		pl.pending[r.Scope][jobID] = true
	}
}

// collectDemand matches every queued job to its pool, oldest job first.
func (pl *planner) collectDemand() {
	jobs := slices.Clone(pl.obs.Jobs)
	slices.SortFunc(jobs, func(a, b Job) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	for _, j := range jobs {
		if pl.queued[j.ID] {
			continue // listed twice: its run changed status between two lists
		}
		pl.queued[j.ID] = true
		p := MatchPool(pl.cfg.Pools, j.Labels)
		if p == nil {
			if slices.ContainsFunc(j.Labels, func(l string) bool { return strings.EqualFold(l, "self-hosted") }) {
				pl.plan.NoPool = append(pl.plan.NoPool, j)
			}
			continue // not ours to serve: GitHub-hosted, or labels no pool has
		}
		if why := Refusal(pl.cfg.GitHub, j); why != "" {
			pl.plan.Refused = append(pl.plan.Refused, Refused{Job: j, Pool: p.Name, Reason: why})
			continue
		}
		if pl.obs.Unservable[j.ID] {
			pl.poolStatus(p.Name).Unservable++
			continue
		}
		k := poolScope{p.Name, pl.scopeOf(j)}
		pl.demand[k] = append(pl.demand[k], j)
		st := pl.poolStatus(p.Name)
		if st.Queued == 0 { // the jobs come oldest first
			st.OldestQueued = max(pl.now.Sub(j.CreatedAt), 0)
		}
		st.Queued++
	}
}

// scopeOf is where a runner for the job registers.
func (pl *planner) scopeOf(j Job) Scope { return pl.cfg.RunnerScopeOf(j.Repo) }

// balance compares demand with supply for one pool in one scope. It returns the creates
// the demand wants (capped later, per pool) and plans the surplus deletions.
func (pl *planner) balance(k poolScope) []Create {
	if pl.obs.Blind.Pools[k.pool] {
		return nil // its runners are unknown: creating could duplicate, deleting could kill
	}
	jobs, supply := pl.servable(k), pl.supply[k]
	if pl.obs.Blind.Regs[k.scope] {
		// Its registrations are unknown: one may be another pass's create under way.
		return nil
	}
	pending := 0
	for _, j := range jobs {
		if pl.pending[k.scope][j.ID] {
			pending++
		}
	}
	pl.poolStatus(k.pool).Booting += pending
	warm := pl.warmTarget(k)
	var warming map[string]bool
	if warm > 0 {
		warming = pl.pendingWarm(k)
		pl.poolStatus(k.pool).Warm += len(warming)
		pending += len(warming)
	}
	have := len(supply) + pending
	switch {
	case len(jobs)+warm > have:
		// Jobs first: runners named after the jobs no runner was made for; the rest
		// of the shortfall is warm runners.
		short := len(jobs) + warm - have
		out := pl.want(k, jobs, supply, short)
		return append(out, pl.wantWarm(k, short-len(out), warming)...)
	case have > len(jobs)+warm && !pl.obs.Blind.Jobs[k.scope]:
		pl.trim(k, supply, min(have-len(jobs)-warm, len(supply)))
	}
	return nil
}

// pendingWarm returns the fresh warm registrations of the pool in the scope that have
// no runner: another pass is creating them.
func (pl *planner) pendingWarm(k poolScope) map[string]bool {
	out := map[string]bool{}
	for _, r := range pl.obs.Regs {
		at, known := r.Registered()
		if r.Scope == k.scope && !pl.owned[r.Name] && !r.Online && !r.Busy && known && pl.now.Sub(at) < RegistrationGrace &&
			IsWarmName(pl.cfg.NamePrefix, r.Name) && strings.HasPrefix(r.Name, pl.cfg.NamePrefix+"-"+k.pool+"-w") {
			out[r.Name] = true
		}
	}
	return out
}

// warmTarget is how many runners the pool keeps warm in the scope now.
func (pl *planner) warmTarget(k poolScope) int {
	p := pl.cfg.Pool(k.pool)
	if p == nil || !slices.Contains(pl.cfg.WarmScopes(*p), k.scope) {
		return 0
	}
	return p.MinIdleAt(pl.now)
}

// wantWarm names n warm runners for the scope, in the lowest slots that no live
// runner, and no create under way (pending: pendingWarm), holds (a slot whose runner is being deleted gets a
// retry name).
func (pl *planner) wantWarm(k poolScope, n int, pending map[string]bool) []Create {
	p := pl.cfg.Pool(k.pool)
	var out []Create
	for slot := 1; len(out) < n && slot <= p.MaxRunners; slot++ {
		held := false
		name := ""
		for retry := 0; retry <= maxNameRetries; retry++ {
			nm := WarmRunnerName(pl.cfg.NamePrefix, k.pool, k.scope, slot, retry)
			if pl.owned[nm] && pl.states[nm] != stateDoomed || pending[nm] {
				held = true
				break
			}
			if name == "" && !pl.taken[nm] {
				name = nm
			}
		}
		if held || name == "" {
			continue
		}
		pl.taken[name] = true
		out = append(out, Create{RunnerSpec: RunnerSpec{Name: name, Pool: k.pool, Scope: k.scope, Repo: k.scope,
			Labels: slices.Clone(p.Labels), MaxLifetime: time.Duration(p.MaxLifetime)}, Reason: ReasonWarm})
	}
	return out
}

// servable returns the pool's queued jobs in a scope, less those GitHub will not give
// to our runners. The evidence is an idle runner of the pool and scope, older than
// idle_timeout, beside a job that has been queued for idle_timeout while that runner
// existed: GitHub gives a queued job to an idle runner whose labels cover it in
// seconds, so it is not giving that job to us (runs-on names a runner group, or an org
// runner group does not allow the repository or the workflow). Such a job no longer
// holds the runner; any runner of the pool can still take it if GitHub allows.
func (pl *planner) servable(k poolScope) []Job {
	jobs := pl.demand[k]
	_, idle, _ := pl.timeouts(k.pool)
	var witness *Runner
	for i, r := range pl.supply[k] {
		if pl.states[r.Name] == stateIdle && pl.now.Sub(r.CreatedAt) >= idle &&
			(witness == nil || r.CreatedAt.Before(witness.CreatedAt)) {
			witness = &pl.supply[k][i]
		}
	}
	if witness == nil {
		return jobs
	}
	var out []Job
	st := pl.poolStatus(k.pool)
	for _, j := range jobs {
		since := j.CreatedAt
		if witness.CreatedAt.After(since) {
			since = witness.CreatedAt
		}
		if pl.now.Sub(since) < idle {
			out = append(out, j)
			continue
		}
		pl.plan.Unservable = append(pl.plan.Unservable, Unservable{Job: j, Pool: k.pool, Runner: witness.Name})
		st.Queued--
		st.Unservable++
	}
	return out
}

// want names n new runners after the oldest queued jobs that no booting or idle
// runner was made for.
func (pl *planner) want(k poolScope, jobs []Job, supply []Runner, n int) []Create {
	served := map[int64]bool{}
	for _, r := range supply {
		served[r.JobID] = true
	}
	for id := range pl.pending[k.scope] {
		served[id] = true // its runner is being created by another pass
	}
	p := pl.cfg.Pool(k.pool)
	var out []Create
	for _, j := range jobs {
		if len(out) == n {
			break
		}
		if served[j.ID] {
			continue
		}
		name, ok := pl.freeName(k.pool, j.ID)
		if !ok {
			continue
		}
		pl.taken[name] = true
		out = append(out, Create{RunnerSpec: RunnerSpec{Name: name, Pool: k.pool, Scope: k.scope, Repo: j.Repo, JobID: j.ID,
			Labels: slices.Clone(p.Labels), MaxLifetime: time.Duration(p.MaxLifetime)}, Reason: ReasonDemand, QueuedAt: j.CreatedAt})
	}
	return out
}

// freeName returns the first name for the job that no runner or registration holds:
// the plain one, or a retry when a runner made for the job took another one, is being
// deleted, or left a registration that GitHub has not let go of yet.
func (pl *planner) freeName(pool string, jobID int64) (string, bool) {
	for retry := 0; retry <= maxNameRetries; retry++ {
		if name := RunnerName(pl.cfg.NamePrefix, pool, jobID, retry); !pl.taken[name] {
			return name, true
		}
	}
	return "", false
}

// trim deletes n surplus runners older than idle_timeout: idle ones before booting
// ones, oldest first.
func (pl *planner) trim(k poolScope, supply []Runner, n int) {
	_, idle, _ := pl.timeouts(k.pool)
	cands := slices.Clone(supply)
	slices.SortFunc(cands, func(a, b Runner) int {
		return cmp.Or(
			cmp.Compare(b2i(pl.states[b.Name] == stateIdle), b2i(pl.states[a.Name] == stateIdle)),
			a.CreatedAt.Compare(b.CreatedAt),
			strings.Compare(a.Name, b.Name))
	})
	for _, r := range cands {
		if n == 0 {
			return
		}
		if pl.states[r.Name] == stateUnknown || pl.now.Sub(r.CreatedAt) < idle {
			continue
		}
		var regp *Registration
		if reg, ok := pl.regs[regKey{r.Scope, r.Name}]; ok {
			regp = &reg
		}
		st := pl.poolStatus(r.Pool)
		if pl.states[r.Name] == stateIdle {
			pl.tally(st, r, pl.count(st, r, &st.Idle), -1)
		} else {
			pl.tally(st, r, pl.count(st, r, &st.Booting), -1)
		}
		pl.doom(r, regp, ReasonSurplus)
		n--
	}
}

// capCreates keeps, across the pool's scopes, the creates for the oldest jobs that fit
// under max_runners: runners planned for deletion free their slots.
func (pl *planner) capCreates(p Pool, wanted []Create) {
	room := newRoom(pl.cfg, pl.runners, func(r Runner) bool { return pl.states[r.Name] == stateDoomed }).free(p.Name)
	if room == 0 || len(wanted) == 0 {
		return
	}
	created := map[int64]time.Time{}
	for _, js := range pl.demand {
		for _, j := range js {
			created[j.ID] = j.CreatedAt
		}
	}
	slices.SortStableFunc(wanted, func(a, b Create) int { // jobs first, the oldest first; then warm runners
		return cmp.Or(cmp.Compare(b2i(a.Reason == ReasonWarm), b2i(b.Reason == ReasonWarm)),
			created[a.JobID].Compare(created[b.JobID]), cmp.Compare(a.JobID, b.JobID))
	})
	if len(wanted) > room {
		wanted = wanted[:room]
	}
	if h, held := pl.obs.Held[p.Name]; held {
		// In backoff: the oldest job's create probes when a probe is due; the others
		// wait for capacity, and cost no registration.
		keep := 0
		if h.Probe {
			keep = 1
		}
		for _, c := range wanted[keep:] {
			pl.plan.Waiting = append(pl.plan.Waiting, Waiting{Create: c, Class: h.Class})
		}
		pl.poolStatus(p.Name).Waiting += len(wanted) - keep
		wanted = wanted[:keep]
		for i := range wanted {
			wanted[i].Probe = true
		}
	}
	pl.plan.Create = append(pl.plan.Create, wanted...)
	pl.poolStatus(p.Name).Create += len(wanted)
}

// sweepGhosts removes registrations of ours that have no runner, are offline and idle,
// and whose job no longer waits: what is left when a pass died between registering a
// runner and creating it, and another runner took the job.
func (pl *planner) sweepGhosts() {
	if len(pl.obs.Blind.Pools) > 0 {
		return // a runner we cannot see may own any of them
	}
	for _, r := range pl.obs.Regs {
		jobID, ours := ParseRunnerName(pl.cfg.NamePrefix, r.Name)
		if !ours || pl.owned[r.Name] || r.Online || r.Busy || pl.queued[jobID] || pl.obs.Blind.Jobs[r.Scope] {
			continue
		}
		if at, known := r.Registered(); IsWarmName(pl.cfg.NamePrefix, r.Name) && known && pl.now.Sub(at) < RegistrationGrace {
			continue // another pass is creating this warm runner's machine
		}
		pl.plan.Deregister = append(pl.plan.Deregister, Deregister{Reg: r, Reason: ReasonGhost})
	}
}

func (pl *planner) finish() Plan {
	p := pl.plan
	slices.SortFunc(p.Create, func(a, b Create) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(p.Delete, func(a, b Delete) int { return strings.Compare(a.Runner.Name, b.Runner.Name) })
	slices.SortFunc(p.Unservable, func(a, b Unservable) int { return cmp.Compare(a.Job.ID, b.Job.ID) })
	slices.SortFunc(p.Refused, func(a, b Refused) int { return cmp.Compare(a.Job.ID, b.Job.ID) })
	slices.SortFunc(p.Waiting, func(a, b Waiting) int { return strings.Compare(a.Create.Name, b.Create.Name) })
	slices.SortFunc(p.Deregister, func(a, b Deregister) int {
		return cmp.Or(strings.Compare(a.Reg.Scope.String(), b.Reg.Scope.String()), strings.Compare(a.Reg.Name, b.Reg.Name))
	})
	for _, s := range pl.status {
		p.Pools = append(p.Pools, *s)
	}
	order := map[string]int{}
	for i, cp := range pl.cfg.Pools {
		order[cp.Name] = i
	}
	slices.SortFunc(p.Pools, func(a, b PoolStatus) int {
		ai, aok := order[a.Pool]
		bi, bok := order[b.Pool]
		return cmp.Or(cmp.Compare(b2i(!aok), b2i(!bok)), cmp.Compare(ai, bi), strings.Compare(a.Pool, b.Pool))
	})
	return p
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
