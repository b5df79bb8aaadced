package k8s

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/reconcile-dev/reconcile/reconcile"
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

// Shared implements reconcile.Store: the record NAME.SUFFIX in a ConfigMap of its own
// beside the cache's (the cache's is rewritten whole, up to 1 MiB, at each save; this
// one is a few hundred bytes, updated while passes run).
func (s ConfigMapStore) Shared(name string) reconcile.Shared {
	return configMapShared{s: s, name: s.Name + "." + name}
}

type configMapShared struct {
	s    ConfigMapStore
	name string
}

// sharedKey is the key that holds a shared record.
const sharedKey = "record"

// sharedRetry is how often, and after what waits, an update that met another is tried
// anew: up to 10 times within about 10 s, with jitter so that two passes do not meet
// again.
var sharedRetry = wait.Backoff{Steps: 10, Duration: 10 * time.Millisecond, Factor: 2, Jitter: 0.5, Cap: 2 * time.Second}

// Update implements reconcile.Shared: a read, then an update that names the version
// read, again when another process updated it in between (409 Conflict, or
// AlreadyExists when two created it at once).
func (c configMapShared) Update(ctx context.Context, f func([]byte) []byte) error {
	cms := c.s.Client.CoreV1().ConfigMaps(c.s.Namespace)
	err := retry.OnError(sharedRetry, func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }, func() error {
		cm, err := cms.Get(ctx, c.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			data := f(nil)
			if data == nil {
				return nil // nothing to keep: a read of a record never made
			}
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: c.name, Namespace: c.s.Namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "reconcile"}},
				BinaryData: map[string][]byte{sharedKey: data}}
			_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		old := cm.BinaryData[sharedKey]
		data := f(old)
		if bytes.Equal(data, old) {
			return nil // a read: nothing to write
		}
		cm.BinaryData = map[string][]byte{sharedKey: data}
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{}) // cm.ResourceVersion: refused if changed since
		return err
	})
	if err != nil {
		return fmt.Errorf("updating configmap %s/%s: %w", c.s.Namespace, c.name, err)
	}
	return nil
}
