package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors the adapters return and the pass branches on.
var (
	// ErrNameTaken: GitHub already has a runner registration of that name.
	ErrNameTaken = errors.New("a runner of that name is already registered")
	// ErrRunnerBusy: GitHub refused to remove a registration because its runner is running a job.
	ErrRunnerBusy = errors.New("runner is running a job")
	// ErrRateLimited: GitHub's primary or secondary rate limit was hit; no more calls
	// are made until it resets.
	ErrRateLimited = errors.New("github rate limit exceeded")
	// ErrSecondaryLimited: the rate limit was GitHub's secondary one (errors.Is holds
	// ErrRateLimited too). On a registration it defers the pass's other creates to the
	// next pass, which registers at the fallback pace; it does not fail the pass.
	ErrSecondaryLimited = errors.New("github secondary rate limit exceeded")
	// ErrWriteBudget: the GitHub client's own budget of registrations for the hour is
	// spent (GitHub documents at most 500 content-creating requests an hour); GitHub
	// was not called.
	ErrWriteBudget = errors.New("the hour's budget of runner registrations is spent")
	// ErrUnreachable: GitHub answers 404 or 403 (not a rate limit) for a repository:
	// it was deleted, renamed, or is not visible to these credentials.
	ErrUnreachable = errors.New("repository not found or not accessible with these credentials")
)

// RateLimitError is a GitHub client's error for a call made, or refused, while GitHub's
// primary or secondary rate limit is exhausted: errors.Is holds ErrRateLimited, and
// ErrSecondaryLimited for a secondary limit.
type RateLimitError struct {
	Until time.Time // when GitHub takes calls again
	Msg   string
	// Secondary: GitHub's secondary limit (points, concurrency, content creation),
	// not the primary one (requests an hour).
	Secondary bool
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v until %s: %s", ErrRateLimited, e.Until.UTC().Format(time.RFC3339), e.Msg)
}

// Is makes errors.Is(err, ErrRateLimited) hold, and ErrSecondaryLimited for a
// secondary limit.
func (e *RateLimitError) Is(target error) bool {
	return target == ErrRateLimited || e.Secondary && target == ErrSecondaryLimited
}

// UndoCreate is how a backend's Create ends when it fails part-way: it removes what
// the create made (remove, given up to 30 s of its own, since the pass's context may
// be what failed) and returns the cause, with the removal's error if that failed too.
func UndoCreate(ctx context.Context, cause error, remove func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := remove(ctx); err != nil {
		return errors.Join(cause, fmt.Errorf("removing the half-made runner: %w", err))
	}
	return cause
}
