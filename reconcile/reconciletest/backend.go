// Package reconciletest provides an in-memory reconcile.Backend for tests of the pass
// and of anything built on it. It records every call and can fail the next one.
package reconciletest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
)

// Backend keeps runners in memory. The zero value is not usable; call NewBackend.
type Backend struct {
	now func() time.Time

	mu       sync.Mutex
	runners  map[string]reconcile.Runner
	specs    map[string]reconcile.RunnerSpec
	calls    []string
	failNext map[string]error
	// refuse holds, by option, the error every create with that option gets (a
	// stockout that lasts); options holds each pool's options (Backend.Options).
	refuse  map[string]error
	options map[string][]string
	// served counts the answers of each injected fault ("next list", "refuse spot").
	served map[string]int
}

var (
	_ reconcile.Backend = (*Backend)(nil)
)

// Refuse makes every create with the option ("" for a pool without options) fail with
// err, until Refuse(option, nil).
func (b *Backend) Refuse(option string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.refuse == nil {
		b.refuse = map[string]error{}
	}
	b.refuse[option] = err
	b.inject("refuse "+option, err != nil)
}

// inject tracks a fault from now on (on), or forgets it; the caller holds b.mu.
func (b *Backend) inject(key string, on bool) {
	if b.served == nil {
		b.served = map[string]int{}
	}
	if !on {
		delete(b.served, key)
	} else if _, ok := b.served[key]; !ok {
		b.served[key] = 0
	}
}

// hit counts an answer of a tracked fault; the caller holds b.mu.
func (b *Backend) hit(key string) {
	if _, ok := b.served[key]; ok {
		b.served[key]++
	}
}

// Unserved returns the faults injected (FailNext, Refuse) that never answered a call:
// their tests test nothing.
func (b *Backend) Unserved() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return never(b.served)
}

// SetOptions gives the pool ways of making a runner, the preferred first (a GCE
// pool's instance_templates).
func (b *Backend) SetOptions(pool string, options ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.options == nil {
		b.options = map[string][]string{}
	}
	b.options[pool] = options
}

// Describe implements reconcile.Backend: the in-memory backend's errors stand as they
// are.
func (b *Backend) Describe() (string, string) { return "", "" }

// Options implements reconcile.Backend.
func (b *Backend) Options(pool string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.options[pool])
}

// NewBackend returns an empty backend whose runners are stamped with now().
func NewBackend(now func() time.Time) *Backend {
	return &Backend{now: now, runners: map[string]reconcile.Runner{}, specs: map[string]reconcile.RunnerSpec{}, failNext: map[string]error{}}
}

// FailNext makes the next call of op ("list", "create" or "delete") return err.
func (b *Backend) FailNext(op string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failNext[op] = err
	b.inject("next "+op, true)
}

func (b *Backend) record(op, name string) error {
	b.calls = append(b.calls, strings.TrimSpace(op+" "+name))
	if err, ok := b.failNext[op]; ok {
		delete(b.failNext, op)
		b.hit("next " + op)
		return err
	}
	return nil
}

// List implements reconcile.Backend.
func (b *Backend) List(_ context.Context) ([]reconcile.Runner, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record("list", ""); err != nil {
		return nil, err
	}
	return b.sorted(), nil
}

// Create implements reconcile.Backend: nil if a runner of that name exists.
func (b *Backend) Create(_ context.Context, spec reconcile.RunnerSpec) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record("create", spec.Name); err != nil {
		return err
	}
	if err := b.refuse[spec.Option]; err != nil {
		b.hit("refuse " + spec.Option)
		return err
	}
	if spec.JITConfig == "" {
		return fmt.Errorf("creating %s: no JIT config", spec.Name)
	}
	if _, ok := b.runners[spec.Name]; ok {
		return nil
	}
	b.runners[spec.Name] = reconcile.Runner{Name: spec.Name, Pool: spec.Pool, Scope: spec.Scope, Repo: spec.Repo,
		JobID: spec.JobID, CreatedAt: b.now(), Phase: reconcile.PhaseActive, Option: spec.Option}
	b.specs[spec.Name] = spec
	return nil
}

// Delete implements reconcile.Backend: nil if the runner is already gone.
func (b *Backend) Delete(_ context.Context, r reconcile.Runner) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record("delete", r.Name); err != nil {
		return err
	}
	delete(b.runners, r.Name)
	return nil
}

// Put adds or replaces a runner, as if it had been created earlier.
func (b *Backend) Put(r reconcile.Runner) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.runners[r.Name] = r
}

// SetPhase changes what the backend says of a runner's machine; false if no such runner.
func (b *Backend) SetPhase(name string, ph reconcile.Phase) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.runners[name]
	if ok {
		r.Phase = ph
		b.runners[name] = r
	}
	return ok
}

// Runners returns the runners, sorted by name.
func (b *Backend) Runners() []reconcile.Runner {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sorted()
}

// Spec returns the spec a runner was created with.
func (b *Backend) Spec(name string) (reconcile.RunnerSpec, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.specs[name]
	return s, ok
}

// Calls returns the calls made so far ("list", "create NAME", "delete NAME"), in order.
func (b *Backend) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

// Mutations returns the calls that changed something (creates and deletes).
func (b *Backend) Mutations() []string {
	var out []string
	for _, c := range b.Calls() {
		if c != "list" {
			out = append(out, c)
		}
	}
	return out
}

func (b *Backend) sorted() []reconcile.Runner {
	out := make([]reconcile.Runner, 0, len(b.runners))
	for _, r := range b.runners {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b reconcile.Runner) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Names returns the runners' names, in order.
func Names(rs []reconcile.Runner) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

// Kind is the in-memory backend as a platform of the command's table: a pool's
// "memory" section (empty: {}) runs its runners on b. Tests add it to the table to run
// the whole command without a platform.
func Kind(b *Backend) reconcile.BackendKind {
	return reconcile.BackendKind{
		Key: "memory",
		Parse: func(raw json.RawMessage, path string) (any, error) {
			var none struct{}
			return none, reconcile.DecodeStrict(raw, &none, path)
		},
		Build: func(_ context.Context, _ reconcile.BackendEnv, pools []reconcile.PoolSection) (map[string]reconcile.Backend, error) {
			out := map[string]reconcile.Backend{}
			for _, p := range pools {
				out[p.Pool] = b
			}
			return out, nil
		},
	}
}
