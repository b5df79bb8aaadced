package reconcile

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// Shared is a small record that the processes using one store update in turn: the
// minute's GitHub points, which overlapping --once processes (a timer's pass and one
// from a terminal) spend together. The notes are saved once, at the end of a pass;
// this is read and written while passes run.
type Shared interface {
	// Update calls f with the record as stored (nil: none yet) and stores what f
	// returns, with no other process's update in between. f may be called again (a
	// store that detects a concurrent update tries anew): only its last call counts.
	Update(ctx context.Context, f func(old []byte) []byte) error
}

// Shared returns the record of that name kept beside the notes; without a store, one
// in this process.
func (n *Notes) Shared(name string) Shared {
	if n.store == nil {
		return &LocalShared{}
	}
	return n.store.Shared(name)
}

// LocalShared is a Shared record in this process only.
type LocalShared struct {
	mu   sync.Mutex
	data []byte
}

// Update implements Shared.
func (l *LocalShared) Update(_ context.Context, f func([]byte) []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.data = f(l.data)
	return nil
}

// Shared implements Store: a file beside the cache, NAME.SUFFIX, updated under an
// exclusive flock(2), which the kernel releases when a process dies holding it.
func (f FileStore) Shared(name string) Shared { return fileShared(string(f) + "." + name) }

type fileShared string

// Update implements Shared.
func (s fileShared) Update(ctx context.Context, f func([]byte) []byte) error {
	file, err := os.OpenFile(string(s), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer file.Close()
	if err := lockFile(ctx, file); err != nil {
		return fmt.Errorf("locking %s: %w", s, err)
	}
	defer syscall.Flock(int(file.Fd()), syscall.LOCK_UN) //nolint:errcheck // Close releases it too
	old, err := io.ReadAll(io.LimitReader(file, 1<<20))
	if err != nil {
		return err
	}
	data := f(old)
	if bytes.Equal(data, old) {
		return nil // a read: nothing to write
	}
	if err := file.Truncate(0); err != nil {
		return err
	}
	if _, err := file.WriteAt(data, 0); err != nil {
		return err
	}
	return nil
}

// lockFile takes the file's exclusive lock, trying without blocking so that ctx can
// end the wait: the holder keeps it for a read and a write of a few hundred bytes.
func lockFile(ctx context.Context, file *os.File) error {
	for {
		err := syscall.Flock(int(file.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EWOULDBLOCK {
			return err
		}
		if err := sleepCtx(ctx, lockRetry); err != nil {
			return err
		}
	}
}

const lockRetry = 2 * time.Millisecond

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
