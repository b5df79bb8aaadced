package reconcile

import "time"

// BackoffWait exposes Backoff.wait to the tests.
func BackoffWait(b Backoff, fails int) time.Duration { return b.wait(fails) }
