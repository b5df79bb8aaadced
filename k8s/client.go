package k8s

import (
	"errors"
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// NewClientset connects to the cluster the tool runs in, else to the one that
// KUBECONFIG (or ~/.kube/config) names, with its current context.
func NewClientset() (kubernetes.Interface, error) {
	cfg, err := rest.InClusterConfig()
	if errors.Is(err, rest.ErrNotInCluster) {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("not in a cluster, and no usable kubeconfig (KUBECONFIG or ~/.kube/config): %w", err)
		}
	}
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "reconcile"
	return kubernetes.NewForConfig(cfg)
}
