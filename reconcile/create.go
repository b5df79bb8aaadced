package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile/plan"
	"github.com/rs/zerolog"
)

// A create is two calls to two services: GitHub registers the runner (a paced write,
// a GitHub request slot for a moment) and the backend starts it (an operation of
// seconds to a minute, in a backend slot of its own). Creates go in batches of
// createBatch (BackendConcurrency if fewer):
//
//  1. room is claimed for the batch from one fresh count of the pools (max_runners;
//     this pass's creates under way count), before anything is registered, so that a
//     create the pool has no room for costs nothing;
//  2. the batch is registered at GitHub, as fast as the write pace allows;
//  3. the pools are counted again, once: a pass that overlapped this one (cron, a
//     terminal and a timer at once) has its runners listed by now, and any of the
//     batch that no longer fits is deregistered instead of started;
//  4. the batch's runners are started in the background, BackendConcurrency at once,
//     while the next batch registers. That count serves as the next batch's step 1.
//
// Once the pass is told to stop, no further runner is registered; one that was is
// started, or its registration removed, within InFlight: nothing is left half-made.

// createBatch is how many creates share one count of the pools: a recount costs a
// listing (GCE's aggregated list), and a batch's first runner starts only once the
// whole batch is registered, 8 s at the default write pace.
const createBatch = 10

// jitted is a create whose runner GitHub has registered, with its JIT configuration.
type jitted struct {
	Create
	reg Registration
	jit Secret
}

// createAll carries out the creates in plan order (the oldest jobs first) and returns
// how many runners it started and how many creates it began (a create refused for
// room counts: it was dealt with); those it did not begin were left by a stop or a rate
// limit, and the next pass plans them again.
//
// The creates of a pool in backoff wait (waiting); when its probe, among the first,
// works, they are made in this pass too, after it.
func (p *pass) createAll(ctx context.Context, creates []Create, waiting []Waiting) (created, begun, total int) {
	bt := &batches{p: p, ctx: ctx, creates: creates, slots: make(chan struct{}, p.rc.backendConcurrency())}
	bt.room, bt.listed = p.countPools(ctx, creates)
	size := min(createBatch, p.rc.backendConcurrency())
	runAll := func(creates []Create) {
		for i := 0; i < len(creates) && ctx.Err() == nil && !p.writesHeld(); i += size {
			bt.run(creates[i:min(i+size, len(creates))])
		}
	}
	// The pools that made runners lately go at full speed; a quiet pool's first create
	// goes ahead of its others, which wait for it (and not the other pools).
	first, later, now := p.firstAlone(creates)
	total = len(creates)
	probed := func() {}
	if len(first) > 0 && ctx.Err() == nil && !p.writesHeld() {
		probed = bt.run(first)
	}
	runAll(now)
	probed()
	for _, wt := range waiting {
		if c := wt.Create; !p.held(c.Pool) {
			later = append(later, c) // its pool's probe worked
			p.mu.Lock()
			p.released[c.Name] = true
			p.mu.Unlock()
			total++
		}
	}
	runAll(later)
	bt.wg.Wait()
	return int(bt.created.Load()), int(bt.begun.Load()), total
}

// batches carries out a pass's creates batch by batch.
type batches struct {
	p              *pass
	ctx            context.Context
	creates        []Create // all of the pass's, for the recounts
	slots          chan struct{}
	room           *plan.Room
	listed         map[string]bool
	wg             sync.WaitGroup // the batches' starts under way
	created, begun atomic.Int64
}

// run registers a batch and starts its runners in the background while the next batch
// registers; it returns what waits for those starts.
func (bt *batches) run(batch []Create) (wait func()) {
	p := bt.p
	claimed := p.claim(bt.room, bt.listed, batch)
	bt.begun.Add(int64(len(batch) - len(claimed))) // refused (no room, no count of the pool): said, and done with
	regs := p.registerAll(bt.ctx, claimed, &bt.begun)
	if len(regs) == 0 {
		return func() {}
	}
	work, cancel := context.WithTimeout(context.WithoutCancel(bt.ctx), p.rc.inFlight())
	bt.room, bt.listed = p.countPools(work, bt.creates)
	fits := p.fit(work, bt.room, bt.listed, regs)
	start := func(r jitted) {
		bt.slots <- struct{}{}
		defer func() { <-bt.slots }()
		if p.start(work, r) {
			bt.created.Add(1)
		}
	}
	if p.rc.inOrder {
		for _, r := range fits {
			start(r)
		}
		cancel()
		return func() {}
	}
	var starts sync.WaitGroup
	for _, r := range fits {
		starts.Go(func() { start(r) })
	}
	bt.wg.Go(func() {
		defer cancel()
		starts.Wait()
	})
	return starts.Wait
}

// firstAlone splits the creates by pool: a pool that has made no runner lately, or that
// probes an option in backoff (health.go), sends its first create alone (first) and
// registers its others only once that one has started (later), so that a platform with
// no capacity costs one registration, not a batch; the other pools' go now.
func (p *pass) firstAlone(creates []Create) (first, later, now []Create) {
	alone := map[string]bool{}
	for _, c := range creates {
		if _, seen := alone[c.Pool]; !seen {
			alone[c.Pool] = c.Probe || !p.trusted(c.Pool)
			if alone[c.Pool] {
				first = append(first, c)
				continue
			}
		}
		if alone[c.Pool] {
			later = append(later, c)
		} else {
			now = append(now, c)
		}
	}
	return first, later, now
}

// countPools lists the backends of the creates' pools, once each, and returns their
// room: runners this pass deleted no longer count; its creates under way do. listed
// holds the pools that could be counted.
func (p *pass) countPools(ctx context.Context, creates []Create) (*plan.Room, map[string]bool) {
	var runners []Runner
	listed := map[string]bool{}
	seen := map[Backend]error{}
	for _, c := range creates {
		b, ok := p.rc.Backends[c.Pool]
		if !ok || listed[c.Pool] {
			continue
		}
		err, done := seen[b]
		if !done {
			var rs []Runner
			rs, err = p.list(ctx, b)
			seen[b] = err
			runners = append(runners, rs...)
			if err != nil {
				p.fail(StageCreate, fmt.Errorf("counting pool %s's runners before creating: %w", c.Pool, err))
			}
		}
		listed[c.Pool] = err == nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	room := plan.NewRoom(*p.rc.Config, runners, p.wasDeleted)
	for name, pool := range p.creating {
		room.Hold(pool, name)
	}
	return room, listed
}

// claim returns the creates the pools have room for, and holds their slots.
func (p *pass) claim(room *plan.Room, listed map[string]bool, creates []Create) []Create {
	var out []Create
	for _, c := range creates {
		if !listed[c.Pool] {
			continue // its pool could not be counted: said already
		}
		if !room.Claim(c.Pool, c.Name) {
			p.createEvent(zerolog.WarnLevel, c).Msg("not created: the pool is at max_runners (a deletion failed, or another pass made runners)")
			continue
		}
		p.mu.Lock()
		p.creating[c.Name] = c.Pool
		p.mu.Unlock()
		out = append(out, c)
	}
	return out
}

// fit returns the registered creates that still fit the pools as counted after their
// registration, and removes the registrations of the others: another pass filled the
// pool meanwhile.
func (p *pass) fit(ctx context.Context, room *plan.Room, listed map[string]bool, regs []jitted) []jitted {
	var out []jitted
	// This batch's own slots are claimed afresh, in plan order.
	for _, r := range regs {
		room.Release(r.Pool, r.Name)
	}
	for _, r := range regs {
		if listed[r.Pool] && room.Claim(r.Pool, r.Name) {
			out = append(out, r)
			continue
		}
		p.createEvent(zerolog.WarnLevel, r.Create).Msg("not created: another pass filled the pool meanwhile; removing its registration")
		p.mu.Lock()
		delete(p.creating, r.Name)
		p.mu.Unlock()
		p.undoRegistration(ctx, r.Create, r.reg)
	}
	return out
}

// registerAll registers the creates' runners, --concurrency at once, counting in begun
// those it tries, and returns those GitHub registered, in plan order. A create that is
// not registered gives its slot back.
func (p *pass) registerAll(ctx context.Context, creates []Create, begun *atomic.Int64) []jitted {
	var mu sync.Mutex
	var out []jitted
	order := map[string]int{}
	for i, c := range creates {
		order[c.Name] = i
	}
	each(ctx, p.rc.concurrency(), creates, func(c Create) {
		if p.writesHeld() {
			p.mu.Lock()
			delete(p.creating, c.Name)
			p.mu.Unlock()
			return
		}
		if !c.Probe && p.held(c.Pool) {
			// A create of this pass put the pool in backoff: the job waits for capacity.
			begun.Add(1)
			p.mu.Lock()
			delete(p.creating, c.Name)
			p.waiting[c.Pool]++
			p.mu.Unlock()
			return
		}
		reg, jit, err := p.register(ctx, c)
		if !errors.Is(err, errNotSent) && !errors.Is(err, ErrRateLimited) && !errors.Is(err, ErrWriteBudget) {
			begun.Add(1) // not done, and left for the next pass: not begun
		}
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			out = append(out, jitted{c, reg, jit})
			return
		}
		p.mu.Lock()
		delete(p.creating, c.Name)
		p.mu.Unlock()
	})
	// Plan order: the oldest jobs keep their room if the recount takes some back.
	slices.SortFunc(out, func(a, b jitted) int { return order[a.Name] - order[b.Name] })
	return out
}

// errNotSent: the pass was stopped before a registration was asked for.
var errNotSent = errors.New("not sent: the pass was stopped")

// register asks GitHub for a runner's JIT configuration. A name registered already is
// either another pass's create under way (left alone) or a dead pass's leftover
// (removed, and registered again). Stopping the pass calls off a registration still
// waiting for its turn (errNotSent), not one sent: the GitHub client sees that through.
// Any other failure is logged and reported here.
func (p *pass) register(ctx context.Context, c Create) (Registration, Secret, error) {
	b, ok := p.rc.Backends[c.Pool]
	if !ok {
		err := fmt.Errorf("creating runner %s: pool %s has no backend", c.Name, c.Pool)
		p.fail(StageCreate, err)
		return Registration{}, "", err
	}
	reg, jit, err := p.generate(ctx, c)
	if errors.Is(err, ErrNameTaken) {
		var retry bool
		retry, err = p.resolveConflict(ctx, b, c)
		if err == nil && !retry {
			p.createEvent(zerolog.InfoLevel, c).Msg("another pass created this runner; skipped")
			return Registration{}, "", errSkipped
		}
		if err == nil {
			reg, jit, err = p.generate(ctx, c)
		}
	}
	switch {
	case err == nil:
		return reg, jit, nil
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		return Registration{}, "", errNotSent
	case errors.Is(err, ErrRateLimited), errors.Is(err, ErrWriteBudget):
		p.holdWrites(c, err)
	default:
		p.createEvent(zerolog.ErrorLevel, c).Err(err).Msg("registering runner failed")
		p.fail(StageRegister, fmt.Errorf("registering runner %s: %w", c.Name, err))
	}
	return Registration{}, "", err
}

// generate asks GitHub for the runner's JIT configuration. When GitHub's secondary
// limit answers (this registration, or another that held it back unsent) and the
// pass's deadline leaves time after the wait GitHub asked for, the wait is waited out
// and the registration asked again, at the fallback pace the client keeps for the
// hour; else the error stands, and the creates left are deferred.
func (p *pass) generate(ctx context.Context, c Create) (Registration, Secret, error) {
	for {
		reg, jit, err := p.rc.GitHub.GenerateJITConfig(ctx, c.Scope, c.Name, p.jitLabels(c))
		var limited *RateLimitError
		if !errors.As(err, &limited) || !limited.Secondary || !waitOut(ctx, limited.Until) {
			return reg, jit, err
		}
	}
}

// minAfterWait is how much of the pass a wait for GitHub must leave to be waited out.
const minAfterWait = 10 * time.Second

// waitOut waits until then, when the pass's deadline leaves minAfterWait after it; it
// reports whether it did.
func waitOut(ctx context.Context, until time.Time) bool {
	if dl, ok := ctx.Deadline(); !ok || dl.Sub(until) < minAfterWait {
		return false
	}
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// errSkipped: another pass is creating that very runner.
var errSkipped = errors.New("another pass is creating this runner")

// holdWrites stops this pass's registrations once GitHub rate-limits one, or the
// hour's budget of them is spent: the creates left are the next pass's (which waits as
// GitHub said).
func (p *pass) holdWrites(c Create, err error) {
	p.mu.Lock()
	first := p.writesStopped == nil
	if first {
		p.writesStopped = err
	}
	p.mu.Unlock()
	if first {
		level := zerolog.WarnLevel
		if deferrable(err) {
			level = zerolog.InfoLevel // the deferral's warning says it, once
		}
		p.createEvent(level, c).Err(err).Msg("registrations stopped for this pass; the creates left are the next pass's")
	}
}

func (p *pass) writesHeld() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writesStopped != nil
}

// start starts a registered runner, with the pool's options in turn (tryOrder): one
// that has no capacity or quota hands the same registration to the next. A
// registration whose runner could not be started is removed at once, so that nothing
// is left waiting for it. No capacity or quota is weather, said with a warning; the
// job waits for the pool's probe.
func (p *pass) start(ctx context.Context, r jitted) bool {
	spec := r.RunnerSpec
	spec.JITConfig = r.jit
	b := p.rc.Backends[r.Pool]
	var errs []error
	for _, opt := range p.tryOrder(r.Pool) {
		spec.Option = opt
		err := backendError(b, b.Create(ctx, spec))
		p.noteCreate(r.Pool, opt, err)
		if err == nil {
			ev := p.createEvent(zerolog.InfoLevel, r.Create)
			if opt != "" {
				ev = ev.Str("option", opt)
			}
			ev.Msg("created runner")
			p.count(Action{ActionCreate, r.Pool, r.Reason})
			if !r.QueuedAt.IsZero() {
				p.mu.Lock()
				p.waits = append(p.waits, QueueWait{Pool: r.Pool, Wait: max(p.rc.now().Sub(r.QueuedAt), 0)})
				p.mu.Unlock()
			}
			return true
		}
		errs = append(errs, err)
		if !ClassOf(err).Weather() {
			break
		}
		// One warning a pass says the pool is in backoff (warnHeld); each create's own
		// line is an action's.
		ev := p.createEvent(zerolog.InfoLevel, r.Create).Err(err).Str("failure_class", string(ClassOf(err)))
		if opt != "" {
			ev = ev.Str("option", opt)
		}
		ev.Msg("the platform cannot start the runner now")
	}
	err := errors.Join(errs...)
	switch class := ClassOf(err); {
	case len(errs) == 0:
		// Every option went into backoff since the runner was registered.
		p.createEvent(zerolog.InfoLevel, r.Create).Msg("not created: its pool is in backoff; removing its registration")
		p.mu.Lock()
		p.waiting[r.Pool]++
		p.mu.Unlock()
	case class.Weather() && !slices.ContainsFunc(errs, func(e error) bool { return !ClassOf(e).Weather() }):
		p.createEvent(zerolog.InfoLevel, r.Create).Str("failure_class", string(class)).Msg("not created: no capacity or quota; removing its registration, the job waits for the pool's probe")
		p.mu.Lock()
		p.waiting[r.Pool]++
		p.mu.Unlock()
	default:
		p.createEvent(zerolog.ErrorLevel, r.Create).Err(err).Msg("creating runner failed; removing its registration")
		p.fail(StageCreate, fmt.Errorf("creating runner %s: %w", r.Name, err))
	}
	p.undoRegistration(ctx, r.Create, r.reg)
	return false
}

// jitLabels are the labels a runner registers with: its pool's, and the time of its
// registration, which tells another pass that its machine is being created.
func (p *pass) jitLabels(c Create) []string {
	return append(slices.Clone(c.Labels), RegisteredLabel(p.rc.now()))
}

// undoRegistration removes the registration of a runner that was not created, so
// that nothing is left waiting for it. The pass's context may be what failed.
func (p *pass) undoRegistration(ctx context.Context, c Create, reg Registration) {
	undo, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := p.rc.GitHub.RemoveRegistration(undo, c.Scope, reg.ID); err != nil {
		p.fail(StageDeregister, fmt.Errorf("removing registration of runner %s that was not created: %w", c.Name, err))
	}
}

// resolveConflict decides what to do when GitHub already has a registration of the
// name a create wants. Either another pass is creating that very runner (leave it
// alone), or a pass died between registering and creating it (remove the stale
// registration and register again). It reports whether to register again.
func (p *pass) resolveConflict(ctx context.Context, b Backend, c Create) (bool, error) {
	if p.rc.ConflictWait > 0 {
		t := time.NewTimer(p.rc.ConflictWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-t.C:
		}
	}
	runners, err := p.list(ctx, b)
	if err != nil {
		return false, fmt.Errorf("looking for runner %s after a name conflict: %w", c.Name, err)
	}
	if slices.ContainsFunc(runners, func(r Runner) bool { return r.Name == c.Name }) {
		return false, nil
	}
	reg, found, err := p.rc.GitHub.FindRegistration(ctx, c.Scope, c.Name)
	if err != nil {
		return false, fmt.Errorf("looking up registration %s after a name conflict: %w", c.Name, err)
	}
	if !found {
		return true, nil
	}
	if reg.Online || reg.Busy {
		return false, fmt.Errorf("registration %s is live but no runner of ours has that name", c.Name)
	}
	if at, ok := reg.Registered(); ok && p.rc.now().Sub(at) < RegistrationGrace {
		return false, nil // another pass registered it a moment ago and is creating its machine
	}
	p.createEvent(zerolog.InfoLevel, c).Msg("removing stale registration of the same name")
	if err := p.rc.GitHub.RemoveRegistration(ctx, c.Scope, reg.ID); err != nil {
		return false, fmt.Errorf("removing stale registration %s: %w", c.Name, err)
	}
	return true, nil
}
