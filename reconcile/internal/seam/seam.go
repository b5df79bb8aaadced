// Package seam lets the lifecycle simulation (reconcile/sim) run passes with a broken
// planner, to show that its invariants catch each kind of mistake. Being internal, it
// is out of reach of everything outside reconcile/: a Reconciler has no such knob.
package seam

// SetPlanner, set by package reconcile, makes a *reconcile.Reconciler plan with a
// func(reconcile.Observed, reconcile.Config, time.Time) reconcile.Plan instead of
// reconcile.Compute. (It takes any because reconcile imports this package.)
var SetPlanner func(rc, planner any)

// InOrder, set by package reconcile, makes a *reconcile.Reconciler start each batch's
// runners one by one, before it registers the next batch's, so that a seeded
// simulation, whose world is not safe for concurrent use, replays call for call.
var InOrder func(rc any)
