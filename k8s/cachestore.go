package k8s

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
)

// cacheKey is the ConfigMap key that holds the GitHub request cache.
const cacheKey = "cache.json.gz"

// ConfigMapStore keeps the GitHub request cache in a ConfigMap, so that a CronJob's
// passes share their ETags. It implements ghpoll.Store.
type ConfigMapStore struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string
}

// ConfigMapRef reads NAMESPACE/NAME, the ConfigMap --cache configmap:NAMESPACE/NAME
// names; it calls nothing.
func ConfigMapRef(ref string) (namespace, name string, ok bool) {
	namespace, name, ok = strings.Cut(ref, "/")
	return namespace, name, ok && len(validation.IsDNS1123Label(namespace)) == 0 && len(validation.IsDNS1123Subdomain(name)) == 0
}

// MaxCacheSize is the most the cache may take in its ConfigMap. Kubernetes refuses a
// ConfigMap whose data and binaryData hold more than 1 MiB (1,048,576 bytes); the rest
// is left for the object's metadata.
const MaxCacheSize = 1000 * 1000

// Limit implements ghpoll.Bounded.
func (s ConfigMapStore) Limit() int { return MaxCacheSize }

// Load returns the stored cache; nil, nil if there is none yet.
func (s ConfigMapStore) Load(ctx context.Context) ([]byte, error) {
	cm, err := s.Client.CoreV1().ConfigMaps(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading configmap %s/%s: %w", s.Namespace, s.Name, err)
	}
	return cm.BinaryData[cacheKey], nil
}

// Save stores the cache, creating the ConfigMap if need be.
func (s ConfigMapStore) Save(ctx context.Context, data []byte) error {
	cms := s.Client.CoreV1().ConfigMaps(s.Namespace)
	cm, err := cms.Get(ctx, s.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "reconcile"}},
			BinaryData: map[string][]byte{cacheKey: data}}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
	} else if err == nil {
		cm.BinaryData = map[string][]byte{cacheKey: data}
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("writing configmap %s/%s: %w", s.Namespace, s.Name, err)
	}
	return nil
}
