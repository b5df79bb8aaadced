package reconcile

import (
	"context"
	"encoding/json"
	"time"
)

// The pause. `reconcile down` pauses the installation in the record its passes share
// (Notes.Shared("pause"), beside --cache): while it is paused, every pass that shares
// the cache (the timer's, the CronJob's, the loop's) creates nothing and re-runs
// nothing, and goes on removing what is finished. `reconcile up` lifts it. Without a
// cache there is nothing to share, and only the down process itself creates nothing.

// PauseRecord is the name of the pause's shared record.
const PauseRecord = "pause"

// Pause says who paused the installation, since when.
type Pause struct {
	Since time.Time `json:"since"`
	By    string    `json:"by"`
}

// ReadPause returns the pause, if the installation is paused. A record that cannot be
// read is no pause: a pass then creates as it would.
func ReadPause(ctx context.Context, sh Shared) (Pause, bool, error) {
	return updatePause(ctx, sh, func(old []byte) []byte { return old })
}

// updatePause updates the record with f and returns the pause it held before.
func updatePause(ctx context.Context, sh Shared, f func([]byte) []byte) (Pause, bool, error) {
	var h Pause
	var held bool
	err := sh.Update(ctx, func(old []byte) []byte {
		held = len(old) > 0 && json.Unmarshal(old, &h) == nil && !h.Since.IsZero()
		return f(old)
	})
	return h, held && err == nil, err
}

// SetPause pauses the installation.
func SetPause(ctx context.Context, sh Shared, h Pause) error {
	data, _ := json.Marshal(h) // plain values: cannot fail
	return sh.Update(ctx, func([]byte) []byte { return data })
}

// LiftPause lifts the pause; it returns the pause lifted, if there was one.
func LiftPause(ctx context.Context, sh Shared) (Pause, bool, error) {
	return updatePause(ctx, sh, func([]byte) []byte { return nil })
}

// paused applies the pause to a pass's plan: while the installation is paused, the
// plan creates and re-runs nothing, with one warning a pass.
func (p *pass) paused(ctx context.Context, plan Plan) Plan {
	if p.rc.Pause == nil {
		return plan
	}
	// Bounded as a backend's call: a store that does not answer costs this read, not
	// the pass.
	rctx, cancel := context.WithTimeout(ctx, p.rc.backendTimeout())
	h, ok, err := ReadPause(rctx, p.rc.Pause)
	cancel()
	if err != nil {
		p.warn("pause-unread", "could not read the pause record; creating as if not paused", p.log.Warn().Err(err))
	}
	if !ok {
		return plan
	}
	if len(plan.Create)+len(plan.Waiting)+len(plan.Reruns()) > 0 {
		line := "the installation is paused by " + h.By + " since " + h.Since.UTC().Format(time.RFC3339) +
			": creating nothing; `reconcile up` with the same --cache lifts it"
		p.warn("pause", line, p.log.Warn().Int("creates_paused", len(plan.Create)))
	}
	plan.Create, plan.Waiting, plan.Preempted = nil, nil, nil
	for i := range plan.Pools {
		plan.Pools[i].Create = 0
	}
	return plan
}
