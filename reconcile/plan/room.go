package plan

// Room answers "may this pool grow by one now": max_runners less the pool's active
// runners, counted the same way wherever it is asked. The planner builds it from what
// it observed (planned deletions free their slots); the pass builds it again before
// its creates (a deletion that failed frees nothing) and from a fresh listing before
// each create (another pass's runners count too).
type Room struct {
	max    map[string]int
	active map[string]map[string]bool // pool → names of its active runners
}

// NewRoom counts the runners that hold a slot: those not finished, of which gone
// reports the ones that no longer count (planned, or done, deletions).
func NewRoom(cfg Config, runners []Runner, gone func(Runner) bool) *Room {
	r := &Room{max: map[string]int{}, active: map[string]map[string]bool{}}
	for _, p := range cfg.Pools {
		r.max[p.Name] = p.MaxRunners
	}
	for _, rn := range runners {
		if rn.Phase != PhaseFinished && !gone(rn) {
			r.Hold(rn.Pool, rn.Name)
		}
	}
	return r
}

// Hold counts a runner of that name as holding a slot of the pool.
func (r *Room) Hold(pool, name string) {
	if r.active[pool] == nil {
		r.active[pool] = map[string]bool{}
	}
	r.active[pool][name] = true
}

// Release gives back the slot a runner of that name holds.
func (r *Room) Release(pool, name string) {
	delete(r.active[pool], name)
}

// Free returns how many more runners the pool may have.
func (r *Room) Free(pool string) int {
	m, ok := r.max[pool]
	if !ok {
		return 0 // a pool no longer configured gets no new runner
	}
	return max(m-len(r.active[pool]), 0)
}

// Claim takes a slot of the pool for a runner of that name and reports whether it
// could: a runner already counted holds its slot already.
func (r *Room) Claim(pool, name string) bool {
	if r.active[pool][name] {
		return true
	}
	if r.Free(pool) == 0 {
		return false
	}
	r.Hold(pool, name)
	return true
}
