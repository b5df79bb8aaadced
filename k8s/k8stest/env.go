// Package k8stest starts one real kube-apiserver and etcd per test binary, through
// controller-runtime's envtest, from the binaries tools/envtest.sh builds
// (KUBEBUILDER_ASSETS). Without them the tests that need a cluster are skipped, unless
// RECONCILE_REQUIRE_ENVTEST=1 (as `make test` sets), which makes that a failure.
package k8stest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

var (
	once   sync.Once
	env    *envtest.Environment
	cfg    *rest.Config
	envErr error
)

// Config returns an administrator's connection to the shared apiserver, starting it
// on first use.
func Config(t testing.TB) *rest.Config {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if !present(assets) {
		msg := "no kube-apiserver and etcd in KUBEBUILDER_ASSETS; `make test` builds them (tools/envtest.sh)"
		if os.Getenv("RECONCILE_REQUIRE_ENVTEST") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	once.Do(func() {
		env = &envtest.Environment{BinaryAssetsDirectory: assets, ControlPlaneStartTimeout: 2 * time.Minute, ControlPlaneStopTimeout: time.Minute}
		cfg, envErr = env.Start()
	})
	if envErr != nil {
		t.Fatalf("starting kube-apiserver: %v", envErr)
	}
	return rest.CopyConfig(cfg)
}

var nsSeq atomic.Int64

// Namespace creates a namespace of its own for one test: prefix and a number.
func Namespace(t testing.TB, cs kubernetes.Interface, prefix string) string {
	t.Helper()
	ns := fmt.Sprintf("%s-%d", prefix, nsSeq.Add(1))
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", ns, err)
	}
	return ns
}

// Stop stops the apiserver, if one was started; call it from TestMain.
func Stop() {
	if env != nil && envErr == nil {
		_ = env.Stop()
	}
}

func present(dir string) bool {
	if dir == "" {
		return false
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if st, err := os.Stat(filepath.Join(dir, b)); err != nil || st.IsDir() {
			return false
		}
	}
	return true
}
