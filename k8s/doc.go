// Package k8s will run runners as Kubernetes Jobs (k8s.io/client-go), implementing
// reconcile.Backend. It must not import ghpoll or gce.
package k8s
