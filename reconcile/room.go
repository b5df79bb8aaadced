package reconcile

// room answers "may this pool grow by one now": max_runners less the pool's active
// runners, counted the same way wherever it is asked. The planner builds it from what
// it observed (planned deletions free their slots); the pass builds it again before
// its creates (a deletion that failed frees nothing) and from a fresh listing before
// each create (another pass's runners count too).
type room struct {
	max    map[string]int
	active map[string]map[string]bool // pool → names of its active runners
}

// newRoom counts the runners that hold a slot: those not finished, of which gone
// reports the ones that no longer count (planned, or done, deletions).
func newRoom(cfg Config, runners []Runner, gone func(Runner) bool) *room {
	r := &room{max: map[string]int{}, active: map[string]map[string]bool{}}
	for _, p := range cfg.Pools {
		r.max[p.Name] = p.MaxRunners
	}
	for _, rn := range runners {
		if rn.Phase != PhaseFinished && !gone(rn) {
			r.hold(rn.Pool, rn.Name)
		}
	}
	return r
}

func (r *room) hold(pool, name string) {
	if r.active[pool] == nil {
		r.active[pool] = map[string]bool{}
	}
	r.active[pool][name] = true
}

// release gives back the slot a runner of that name holds.
func (r *room) release(pool, name string) {
	delete(r.active[pool], name)
}

// free returns how many more runners the pool may have.
func (r *room) free(pool string) int {
	m, ok := r.max[pool]
	if !ok {
		return 0 // a pool no longer configured gets no new runner
	}
	return max(m-len(r.active[pool]), 0)
}

// claim takes a slot of the pool for a runner of that name and reports whether it
// could: a runner already counted holds its slot already.
func (r *room) claim(pool, name string) bool {
	if r.active[pool][name] {
		return true
	}
	if r.free(pool) == 0 {
		return false
	}
	r.hold(pool, name)
	return true
}
