package reconcile

import "strconv"

// Ownership is what marks a runner as this installation's, and what it was made for:
// the owner (the name prefix), its pool, its name, the job it was made for, where it
// registers and that job's repository. Every backend stores it on what it makes, in
// its platform's syntax (OwnershipKeys), each field once, and reads it back.
type Ownership struct {
	Owner, Pool, Runner string
	JobID               int64
	Scope, Repo         Scope
}

// OwnershipOf is the ownership of the runner spec describes, for owner.
func OwnershipOf(owner string, spec RunnerSpec) Ownership {
	return Ownership{Owner: owner, Pool: spec.Pool, Runner: spec.Name, JobID: spec.JobID, Scope: spec.Scope, Repo: spec.Repo}
}

// OwnershipKeys are a platform's keys for an Ownership's fields. The owner, pool,
// runner and job id go in labels, which a listing can select on and whose values they
// fit on every platform; the scope and the repository, whose "/" no GCE or Kubernetes
// label value allows, go in notes (GCE metadata, Kubernetes annotations; Docker's
// labels take any value, and it keeps both in its labels). An empty key is a field the
// platform keeps otherwise (the object's own name is the runner's).
type OwnershipKeys struct {
	Owner, Pool, Runner, JobID string // label keys
	Scope, Repo                string // note keys
}

// Encode returns the labels and the notes that carry o.
func (k OwnershipKeys) Encode(o Ownership) (labels, notes map[string]string) {
	labels = map[string]string{k.Owner: o.Owner, k.Pool: o.Pool, k.JobID: strconv.FormatInt(o.JobID, 10)}
	if k.Runner != "" {
		labels[k.Runner] = o.Runner
	}
	return labels, map[string]string{k.Scope: o.Scope.String(), k.Repo: o.Repo.String()}
}

// Decode reads an ownership back from the labels and notes Encode made; a field
// missing (made by hand, or by an older version) reads as its zero value.
func (k OwnershipKeys) Decode(labels, notes map[string]string) Ownership {
	o := Ownership{Owner: labels[k.Owner], Pool: labels[k.Pool], Scope: ParseScope(notes[k.Scope]), Repo: ParseScope(notes[k.Repo])}
	if k.Runner != "" {
		o.Runner = labels[k.Runner]
	}
	o.JobID, _ = strconv.ParseInt(labels[k.JobID], 10, 64)
	return o
}
