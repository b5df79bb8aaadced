package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A platform has bad days: Spot capacity runs out in a region for hours, a quota is
// reached, a template is deleted, a role lacks a permission, an engine hangs. The
// backends say which with a typed error (karpenter's pkg/cloudprovider does the same
// with InsufficientCapacityError); the pass decides by the type, never by the text.

// PlatformError is a backend's error of a known class.
type PlatformError struct {
	Class FailureClass
	// Permission is, for FailPermission, the permission the platform named ("Required
	// 'compute.globalOperations.list' permission"); empty if it named none.
	Permission string
	Err        error
}

func (e *PlatformError) Error() string { return e.Err.Error() }
func (e *PlatformError) Unwrap() error { return e.Err }

// Classify wraps err as a PlatformError of the class; nil stays nil.
func Classify(class FailureClass, err error) error {
	if err == nil {
		return nil
	}
	return &PlatformError{Class: class, Err: err}
}

// DeniedPermission wraps err as a FailPermission error that names the permission.
func DeniedPermission(permission string, err error) error {
	return &PlatformError{Class: FailPermission, Permission: permission, Err: err}
}

// ClassOf returns the class of a platform error, or "" for any other error.
func ClassOf(err error) FailureClass {
	var pe *PlatformError
	if errors.As(err, &pe) {
		return pe.Class
	}
	return ""
}

// PermissionOf returns the permission a FailPermission error names, or "".
func PermissionOf(err error) string {
	var pe *PlatformError
	if errors.As(err, &pe) {
		return pe.Permission
	}
	return ""
}

// Degraded is what a backend's List returns beside a complete list of runners when a
// read that only refines it failed (GCE's listing of preemptions): the runners are
// all there, a refinement is missing and its decision takes its safe default
// (preemption unknown: no re-run; the finished runner is deleted as finished).
type Degraded struct{ Err error }

func (e *Degraded) Error() string { return e.Err.Error() }
func (e *Degraded) Unwrap() error { return e.Err }

// BackendError is an error of a backend's call, with where the backend runs and what
// to check. Whoever explains errors to a person gives its hint, never GitHub's.
type BackendError struct {
	Where string
	Check string
	Err   error
}

func (e *BackendError) Error() string { return e.Where + ": " + e.Err.Error() }
func (e *BackendError) Unwrap() error { return e.Err }

// Hint is what to check: the backend's own word, and the permission to grant when the
// platform named one.
func (e *BackendError) Hint() string {
	if p := PermissionOf(e.Err); p != "" {
		return "grant " + p + " to the credentials the backend uses; " + e.Check
	}
	return e.Check
}

// backendTimeout is BackendTimeout, or its default.
func (rc *Reconciler) backendTimeout() time.Duration {
	if rc.BackendTimeout <= 0 {
		return DefaultBackendTimeout
	}
	return rc.BackendTimeout
}

// backendError wraps an error of b's call with where b runs; nil stays nil.
func backendError(b Backend, err error) error {
	if err == nil {
		return nil
	}
	var be *BackendError
	if errors.As(err, &be) {
		return err
	}
	where, check := b.Describe()
	if where == "" {
		return err
	}
	return &BackendError{Where: where, Check: check, Err: err}
}

// DefaultBackendTimeout bounds one backend's listing, or deletion of a runner, within a
// pass: a platform that does not answer in that time leaves only its own pools blind
// for the pass, and holds no other pool's actions. (A create, which waits for the
// platform's operation, has the pass's in-flight bound instead.)
const DefaultBackendTimeout = 20 * time.Second

// listWithin lists b's runners within the pass's bound for a backend call
// (BackendTimeout), and says so when b did not answer in time.
func (rc *Reconciler) listWithin(ctx context.Context, b Backend) ([]Runner, error) {
	var rs []Runner
	err := rc.within(ctx, b, func(ctx context.Context) (err error) {
		rs, err = b.List(ctx)
		return err
	})
	return rs, err
}

// within runs one call of b's within BackendTimeout, so that a platform that does not
// answer holds the pass (and the other pools' actions) no longer than that; the error
// says so, and where b runs.
func (rc *Reconciler) within(ctx context.Context, b Backend, call func(context.Context) error) error {
	d := rc.backendTimeout()
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	err := call(cctx)
	if err != nil && ctx.Err() == nil && cctx.Err() != nil {
		err = fmt.Errorf("no answer within %v: %w", d, err)
	}
	return backendError(b, err)
}
