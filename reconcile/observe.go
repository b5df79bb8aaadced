package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile/plan"
)

// observe is the first stage of a pass, and it only reads: the repositories, our
// runners, the queued and running jobs of the repositories this pass polls, the
// registrations where the planner needs them, what GitHub says of the jobs preempted
// runners ran, and what earlier passes noted (unservable jobs, the pools' backoff).
// What it could not see is recorded in Blind.
func (p *pass) observe(ctx context.Context) Observed {
	p.rc.loadHealth()
	obs := Observed{Blind: Blind{Jobs: map[Scope]bool{}, Regs: map[Scope]bool{}, Pools: map[string]bool{}}}
	repos, unlisted := p.listRepos(ctx)
	p.repos = len(repos)
	obs.Runners, obs.Blind.Pools = p.listRunners(ctx)
	poll, swept := p.choose(repos, obs.Runners)
	obs.Jobs, obs.Running, obs.Blind.Jobs = p.listJobs(ctx, poll)
	if ctx.Err() != nil {
		// A cancelled pass saw only part of the world; plan nothing from it.
		for _, pool := range p.rc.Config.Pools {
			obs.Blind.Pools[pool.Name] = true
		}
		p.fail(StageObserve, fmt.Errorf("observing: %w", ctx.Err()))
	}
	scopes := p.registrationScopes(obs, swept)
	for _, s := range scopes {
		if unlisted(s) && (s.IsOrg() || !slices.Contains(repos, s)) {
			obs.Blind.Jobs[s] = true // its org could not be listed, so neither could its jobs
		}
	}
	obs.Regs, obs.Blind.Regs = p.listRegistrations(ctx, scopes)
	obs.Regs = append(obs.Regs, busyRegistrations(obs.Runners, obs.Running, scopes)...)
	p.checkReachable(poll, len(repos))
	obs.Unservable = p.recallUnservable()
	obs.Preempted = p.lookUpPreempted(ctx, obs.Runners)
	obs.Held = p.holds()
	p.noteMade(obs.Runners)
	return obs
}

// checkReachable fails the pass when it polled every repository and GitHub answered
// 404 or 403 for each: one repository gone is a configuration to fix; all of them is a
// token that sees nothing, or the wrong GitHub. (A pass that polled only some, on a
// budget, cannot tell.)
func (p *pass) checkReachable(poll []Scope, repos int) {
	if len(poll) == 0 || len(poll) != repos || slices.ContainsFunc(poll, func(r Scope) bool { return p.gone[r] == nil }) {
		return
	}
	names := make([]string, 0, 3)
	for _, r := range poll[:min(len(poll), 3)] {
		names = append(names, r.String())
	}
	if len(poll) > 3 {
		names = append(names, fmt.Sprintf("and %d more", len(poll)-3))
	}
	p.fail(StageListJobs, fmt.Errorf("every polled repository is unreachable (GitHub answered 404 or 403 for %s): check the names, "+
		"that the token or App installation can see them, and github.api_url", strings.Join(names, ", ")))
}

// recallUnservable returns the jobs an earlier pass (of this process, or of another
// through the Memo) found GitHub would not give to our runners, less than
// UnservableRetry ago; the others are tried again.
func (p *pass) recallUnservable() map[int64]bool {
	out := map[int64]bool{}
	for id, at := range p.rc.unservable() {
		if p.now.Sub(at) < UnservableRetry {
			out[id] = true
		}
	}
	return out
}

// lookUpPreempted asks GitHub what the jobs of the preempted runners were, for the
// planner's verdict (JudgePreempted). It asks nothing in a pass without a preempted
// runner, or of a pool that does not re-run. A failed lookup only refines what happens
// to a finished runner: it is kept as evidence and looked up again next pass, with one
// warning; the pass does not fail for it.
func (p *pass) lookUpPreempted(ctx context.Context, runners []Runner) map[string]Lookup {
	out := map[string]Lookup{}
	for _, r := range runners {
		if r.PreemptedAt.IsZero() || r.Phase != PhaseFinished || ctx.Err() != nil {
			continue
		}
		if pool := p.rc.Config.Pool(r.Pool); pool == nil || pool.Reruns() == 0 {
			continue
		}
		job, found, err := p.rc.GitHub.JobRunBy(ctx, r.Repo, r.Name, r.JobID, r.CreatedAt.Truncate(time.Second)) // GitHub's times are whole seconds
		if err != nil {
			p.softFail(fmt.Errorf("looking up the job preempted runner %s ran (the runner is kept, and looked up again next pass): %w", r.Name, err))
			out[r.Name] = Lookup{Failed: true}
			continue
		}
		out[r.Name] = Lookup{Job: job, Found: found}
	}
	return out
}

// listRepos returns the repositories to poll: the configured ones and those of the
// configured orgs and App installation, sorted; and which scopes' owners could not be
// listed whole.
func (p *pass) listRepos(ctx context.Context) ([]Scope, func(Scope) bool) {
	cfg := p.rc.Config
	var mu sync.Mutex
	repos := cfg.Repos()
	failedOrgs := map[string]bool{}
	installFailed := false
	var orgs []string
	for _, o := range cfg.GitHub.Orgs {
		orgs = append(orgs, strings.ToLower(o))
	}
	each(ctx, p.rc.concurrency(), orgs, func(org string) {
		rs, err := p.rc.GitHub.OrgRepos(ctx, org)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failedOrgs[org] = true
			p.fail(StageListRepos, fmt.Errorf("listing repositories of org %s: %w", org, err))
			return
		}
		repos = append(repos, rs...)
	})
	if cfg.GitHub.InstallationRepos {
		rs, err := p.rc.GitHub.InstallationRepos(ctx)
		if err != nil {
			installFailed = true // which repositories are missing is unknown
			p.fail(StageListRepos, fmt.Errorf("listing the installation's repositories: %w", err))
		}
		repos = append(repos, rs...)
	}
	slices.SortFunc(repos, func(a, b Scope) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(repos), func(s Scope) bool { return installFailed || failedOrgs[s.Owner] }
}

// listRunners returns our runners, from each distinct backend once, and the pools
// whose backend could not list them.
func (p *pass) listRunners(ctx context.Context) ([]Runner, map[string]bool) {
	var mu sync.Mutex
	var runners []Runner
	blind := map[string]bool{}
	var backends []Backend
	pools := map[Backend][]string{}
	for _, pool := range p.rc.Config.Pools {
		if b, ok := p.rc.Backends[pool.Name]; ok {
			if _, seen := pools[b]; !seen {
				backends = append(backends, b)
			}
			pools[b] = append(pools[b], pool.Name)
		}
	}
	each(ctx, p.rc.concurrency(), backends, func(b Backend) {
		rs, err := p.list(ctx, b)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			for _, name := range pools[b] {
				blind[name] = true
			}
			p.fail(StageListRunners, fmt.Errorf("listing runners of pools %s: %w", strings.Join(pools[b], ", "), err))
			return
		}
		for _, r := range rs {
			if _, dup := p.owner[r.Name]; dup {
				continue // two pools' backends that see the same runners
			}
			p.owner[r.Name] = b
			runners = append(runners, r)
		}
	})
	return runners, blind
}

// list returns b's runners within the pass's bound for a backend. A listing that is
// complete but lacks a refinement (Degraded) is taken, with one warning a pass that
// names the permission the platform named.
func (p *pass) list(ctx context.Context, b Backend) ([]Runner, error) {
	rs, err := p.rc.listWithin(ctx, b)
	var dg *Degraded
	if err != nil && errors.As(err, &dg) {
		p.softFail(err)
		return rs, nil
	}
	return rs, err
}

// softFail gives one warning a pass for a read that only refines a decision, which
// takes its safe default instead; the permission the platform named, if any, is named.
func (p *pass) softFail(err error) {
	ev := p.log.Warn().Err(err)
	line := oneLine(err.Error())
	if perm := PermissionOf(err); perm != "" {
		ev = ev.Str("permission", perm)
		line += " (missing permission " + perm + ")"
	}
	p.warn("soft:"+line, line, ev)
}

// choose returns the repositories whose jobs this pass polls and those whose
// registrations it lists for ghosts (ChooseRepos). Repositories with runners of ours
// are hot.
func (p *pass) choose(repos []Scope, runners []Runner) (poll, sweep []Scope) {
	hot := map[Scope]bool{}
	for _, r := range runners {
		hot[r.Repo], hot[r.Scope] = true, true
	}
	var facts PollFacts
	if p.rc.Budget.PointsPerMinute > 0 {
		facts = p.rc.GitHub.PollFacts(repos)
		facts.Overhead += runnerScopes(runners, facts.Busy)
	}
	ch := ChooseRepos(p.rc.Budget, p.now, repos, hot, facts)
	p.api.Polled, p.api.Skipped = len(ch.Poll), ch.Skipped
	return ch.Poll, ch.Sweep
}

// runnerScopes counts the scopes whose registrations the pass will list for its
// runners: every scope with one of ours, but those whose runners the last poll of
// their repositories saw busy (registrationScopes leaves those out when this pass sees
// them busy again).
func runnerScopes(runners []Runner, busy map[string]bool) int {
	running := map[string]Job{}
	for name := range busy {
		running[name] = Job{RunnerName: name}
	}
	scopes := map[Scope]bool{}
	for _, r := range runners {
		if !knownBusy(r, running) {
			scopes[r.Scope] = true
		}
	}
	return len(scopes)
}

// repoJobs is one repository's listing: its queued jobs and those in progress.
type repoJobs struct{ queued, running []Job }

// listJobs returns the queued jobs of the repositories, the jobs in progress by the
// name of the runner running each, and the scopes whose jobs are not all known. A
// repository GitHub does not know (any more) is reported, not failed.
func (p *pass) listJobs(ctx context.Context, repos []Scope) ([]Job, map[string]Job, map[Scope]bool) {
	listed, unlisted := listEach(ctx, p, repos, StageListJobs, "queued jobs", func(ctx context.Context, repo Scope) ([]repoJobs, error) {
		queued, running, err := p.rc.GitHub.QueuedJobs(ctx, repo)
		return []repoJobs{{queued, running}}, err
	})
	var queued []Job
	running := map[string]Job{}
	for _, l := range listed {
		queued = append(queued, l.queued...)
		for _, j := range l.running {
			running[j.RunnerName] = j
		}
	}
	blind := maps.Clone(unlisted)
	for r := range unlisted {
		blind[p.rc.Config.RunnerScopeOf(r)] = true
	}
	return queued, running, blind
}

// registrationScopes returns where registrations are listed: where we have runners or
// servable demand, where runners are kept warm, and where the repositories chosen for
// a sweep register runners, since ghosts are left exactly where demand has gone.
func (p *pass) registrationScopes(obs Observed, swept []Scope) []Scope {
	cfg := p.rc.Config
	want := map[Scope]bool{}
	for _, r := range obs.Runners {
		if !knownBusy(r, obs.Running) {
			want[r.Scope] = true
		}
	}
	for _, j := range obs.Jobs {
		if MatchPool(cfg.Pools, j.Labels) != nil && Refusal(cfg.GitHub, j) == "" {
			want[cfg.RunnerScopeOf(j.Repo)] = true
		}
	}
	for _, r := range swept {
		want[cfg.RunnerScopeOf(r)] = true
	}
	for _, pool := range cfg.Pools { // where runners are kept warm: their creates under way, their names
		if pool.MinIdleAt(p.now) > 0 {
			for _, s := range cfg.WarmScopes(pool) {
				want[s] = true
			}
		}
	}
	scopes := make([]Scope, 0, len(want))
	for s := range want {
		scopes = append(scopes, s)
	}
	slices.SortFunc(scopes, func(a, b Scope) int { return strings.Compare(a.String(), b.String()) })
	return scopes
}

// knownBusy reports whether the pass's job listings show the runner running a job: a
// job in progress names it as its runner_name, which GitHub sets when the runner takes
// the job and which only a registered runner can. Its registration needs no listing:
// the job listing is as fresh as a registration listing would be. A retry's runner
// is not: a registration of the name it could not take (a leftover) may still be
// there, and is a ghost once the job is taken.
func knownBusy(r Runner, running map[string]Job) bool {
	_, ok := running[r.Name]
	return ok && r.Phase != PhaseFinished && !plan.IsRetryName(r.Name)
}

// busyRegistrations stands for the registrations of the runners known busy in scopes
// the pass did not list (registrationScopes leaves out a scope whose runners are all
// known busy): online and busy, as a listing would show them.
func busyRegistrations(runners []Runner, running map[string]Job, listed []Scope) []Registration {
	var out []Registration
	for _, r := range runners {
		if knownBusy(r, running) && !slices.Contains(listed, r.Scope) {
			out = append(out, Registration{Name: r.Name, Scope: r.Scope, Online: true, Busy: true})
		}
	}
	return out
}

// listRegistrations returns our registrations in the scopes, and the scopes that could
// not be listed.
func (p *pass) listRegistrations(ctx context.Context, scopes []Scope) ([]Registration, map[Scope]bool) {
	all, blind := listEach(ctx, p, scopes, StageListRegistrations, "runner registrations", p.rc.GitHub.Registrations)
	regs := slices.DeleteFunc(all, func(r Registration) bool {
		_, ours := ParseRunnerName(p.rc.Config.NamePrefix, r.Name)
		return !ours
	})
	return regs, blind
}

// listEach lists every scope at once (within the pass's concurrency) and returns what
// was listed and the scopes that could not be. A scope GitHub does not know (any more)
// is reported as unreachable; any other error fails the stage.
func listEach[T any](ctx context.Context, p *pass, scopes []Scope, stage Stage, what string, list func(context.Context, Scope) ([]T, error)) ([]T, map[Scope]bool) {
	var mu sync.Mutex
	var out []T
	blind := map[Scope]bool{}
	each(ctx, p.rc.concurrency(), scopes, func(s Scope) {
		got, err := list(ctx, s)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			out = append(out, got...)
		case errors.Is(err, ErrUnreachable):
			blind[s] = true
			p.unreachable(s, err)
		default:
			blind[s] = true
			p.fail(stage, fmt.Errorf("listing %s of %s: %w", what, s, err))
		}
	})
	return out, blind
}
