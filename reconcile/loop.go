package reconcile

import (
	"context"
	"fmt"
	"time"
)

// RunWithin runs one pass with timeout as its deadline; a pass cut short says so, with
// the timeout as the cause.
func (rc *Reconciler) RunWithin(ctx context.Context, timeout time.Duration) (Summary, error) {
	pctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("--timeout %v", timeout))
	defer cancel()
	return rc.RunOnce(pctx)
}

// Run runs a pass at once and then one every interval until ctx ends, each within
// timeout, and after each calls after with its summary and error (metrics, the cache,
// the console table). A failed pass does not stop the loop. It returns the error of
// the last pass, which a signal may have cut short.
func (rc *Reconciler) Run(ctx context.Context, interval, timeout time.Duration, after func(Summary, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		sum, err := rc.RunWithin(ctx, timeout)
		after(sum, err)
		if ctx.Err() != nil {
			return err // a tick that is also ready must not start another pass
		}
		select {
		case <-ctx.Done():
			return err
		case <-t.C:
		}
	}
}
