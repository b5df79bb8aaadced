package reconcile

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// pass is the state of one pass.
type pass struct {
	rc    *Reconciler
	log   *zerolog.Logger
	now   time.Time
	repos int
	api   APIStats
	owner map[string]Backend // runner name → the backend that listed it

	mu        sync.Mutex
	errs      []error
	deleted   map[string]time.Time // runners this pass deleted: name → creation time, as names come back
	stageErrs map[Stage]int
	done      map[Action]int
	waits     []QueueWait
	creating  map[string]string // runner name → pool, for this pass's creates under way or done
	// writesStopped: why registrations stopped (GitHub rate-limited one, or the hour's
	// budget is spent); the creates left are the next pass's.
	writesStopped error
	gone          map[Scope]error // repositories GitHub answered 404 or 403 for
	warnings      []string
	warned        map[string]bool            // what a warning was given for already this pass
	probing       map[poolOption]bool        // options in backoff a create of this pass probes
	probes        map[poolOption]probeResult // what the probes said
	waiting       map[string]int             // pool → creates left waiting for capacity
	released      map[string]bool            // waiting creates made after their pool's probe worked
	made          map[poolOption]time.Time   // the newest runner listed of each pool's option
}

// warn logs a warning once a pass for each key, and keeps its line for the summary.
func (p *pass) warn(key, line string, ev *zerolog.Event) {
	p.mu.Lock()
	if p.warned[key] {
		p.mu.Unlock()
		return
	}
	p.warned[key] = true
	p.warnings = append(p.warnings, line)
	p.mu.Unlock()
	ev.Msg(line)
}

// unreachable records a repository GitHub answered 404 or 403 for, with one warning.
func (p *pass) unreachable(repo Scope, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.gone[repo]; dup {
		return
	}
	p.gone[repo] = err
	p.log.Warn().Str("repo", repo.String()).Err(err).
		Msg("repository unreachable: deleted, renamed, or not visible to these credentials; its jobs are not served (check github.repos, the token's or App installation's repository access)")
}

func (p *pass) unreachableRepos() []string {
	var out []string
	for r := range p.gone {
		out = append(out, r.String())
	}
	slices.Sort(out)
	return out
}

// fail records an error of a stage of the pass (list_repos, list_jobs, list_runners,
// list_registrations, observe, register, create, delete, deregister).
func (p *pass) fail(stage Stage, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, err)
	p.stageErrs[stage]++
}

// each runs fn for every item, at most n at once, and starts none once ctx is done.
func each[T any](ctx context.Context, n int, items []T, fn func(T)) {
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		if ctx.Err() != nil { // stopped while waiting for a turn
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(it)
		})
	}
	wg.Wait()
}

func (p *pass) count(a Action) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done[a]++
}

// wasDeleted reports whether this pass deleted that very runner (not a newer one of
// the same name that another pass has made since). Callers hold p.mu or run alone.
func (p *pass) wasDeleted(r Runner) bool {
	t, ok := p.deleted[r.Name]
	return ok && t.Equal(r.CreatedAt)
}
