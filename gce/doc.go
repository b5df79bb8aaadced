// Package gce will run runners as Compute Engine instances made from a region instance
// template (cloud.google.com/go/compute), implementing reconcile.Backend. It must not
// import ghpoll or k8s.
package gce
