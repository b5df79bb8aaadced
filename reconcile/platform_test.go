package reconcile_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/reconcile"
	"github.com/reconcile-dev/reconcile/reconcile/reconciletest"
)

// described is a backend that says where it runs, and whose listing can be degraded.
type described struct {
	*reconciletest.Backend
	degraded error
}

func (d described) Describe() (string, string) {
	return "engine at unix:///run/engine.sock", "check the daemon and the socket's permissions"
}

func (d described) List(ctx context.Context) ([]reconcile.Runner, error) {
	rs, err := d.Backend.List(ctx)
	if err == nil && d.degraded != nil {
		err = &reconcile.Degraded{Err: d.degraded}
	}
	return rs, err
}

// A listing that is complete but lacks a refinement is taken, with one warning that
// names the permission the platform named; the pass does not fail for it.
func TestPlatform_ADegradedListingWarnsOnceAndServes(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	denied := reconcile.DeniedPermission("compute.globalOperations.list", errors.New("listing preemptions: 403 Forbidden"))
	w.rc.Backends["arm64"] = described{Backend: w.backend, degraded: denied}
	w.queue(time.Minute, arm64...)
	sum, err := w.pass(t)
	if err != nil || sum.Created != 1 {
		t.Fatalf("pass = %v, created %d; want it served despite the degraded listing", err, sum.Created)
	}
	if len(sum.Warnings) != 1 || !strings.Contains(sum.Warnings[0], "missing permission compute.globalOperations.list") {
		t.Errorf("warnings %q, want one naming the permission", sum.Warnings)
	}
	if reconcile.PermissionOf(denied) != "compute.globalOperations.list" || reconcile.ClassOf(denied) != reconcile.FailPermission {
		t.Errorf("PermissionOf, ClassOf = %q, %q", reconcile.PermissionOf(denied), reconcile.ClassOf(denied))
	}
}

// A backend's failure names where it runs and what to check there, and the permission
// to grant when the platform named one: never GitHub's settings.
func TestPlatform_ABackendsErrorSaysWhereAndWhatToCheck(t *testing.T) {
	t.Parallel()
	w := newPassWorld(t)
	w.rc.Backends["arm64"] = described{Backend: w.backend}
	w.backend.Refuse("", reconcile.DeniedPermission("engine.containers.create", errors.New("403: not allowed")))
	w.queue(time.Minute, arm64...)
	_, err := w.pass(t)
	var be *reconcile.BackendError
	if !errors.As(err, &be) {
		t.Fatalf("pass = %v, want a BackendError", err)
	}
	if !strings.Contains(be.Error(), "engine at unix:///run/engine.sock") ||
		be.Hint() != "grant engine.containers.create to the credentials the backend uses; check the daemon and the socket's permissions" {
		t.Errorf("error %q, hint %q; want where it runs, and the permission before what to check", be.Error(), be.Hint())
	}
	if errors.Unwrap(be) == nil || reconcile.ClassOf(err) != reconcile.FailPermission {
		t.Errorf("the BackendError hides its cause: %v", err)
	}
}
