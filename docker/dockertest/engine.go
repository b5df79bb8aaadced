// Package dockertest starts one real Docker Engine per test binary: Debian's dockerd
// (tools/docker.sh installs it), rootful, with its data and exec roots in a temporary
// directory of its own, no bridge and no iptables rules, so that it leaves the
// machine as it found it. It also builds the runner image the tests use, since no
// registry can be reached: a static fake runner and busybox, imported as an image.
// Without dockerd or root the tests that need an engine are skipped, unless
// RECONCILE_REQUIRE_DOCKER=1 (as `make test` sets), which makes that a failure.
package dockertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

var (
	once    sync.Once
	host    string
	dir     string
	proc    *exec.Cmd
	exited  chan struct{}
	startEr error
)

// Host returns the address of the shared engine (unix://…), starting it on first use.
func Host(t testing.TB) string {
	t.Helper()
	dockerd, err := exec.LookPath("dockerd")
	if err == nil && os.Geteuid() != 0 {
		err = fmt.Errorf("dockerd runs rootful: the tests need root")
	}
	if err != nil {
		msg := fmt.Sprintf("no Docker Engine to test against (%v); `make test` installs it (tools/docker.sh)", err)
		if os.Getenv("RECONCILE_REQUIRE_DOCKER") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	once.Do(func() { startEr = start(dockerd) })
	if startEr != nil {
		t.Fatalf("starting dockerd: %v", startEr)
	}
	return host
}

// Client returns a client of the shared engine.
func Client(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.New(client.WithHost(Host(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func start(dockerd string) error {
	var err error
	// Short: a unix socket's path holds at most 108 bytes, and containerd's sockets
	// live under the exec root.
	if dir, err = os.MkdirTemp("", "rdk"); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		return err
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		return err
	}
	caps, err := goBuild("capsruntime", filepath.Join(dir, "capsruntime"))
	if err != nil {
		return err
	}
	sock := filepath.Join(dir, "docker.sock")
	ns := fmt.Sprintf("reconcile-test-%d", os.Getpid()) // test binaries run side by side
	host = "unix://" + sock
	proc = exec.Command(dockerd,
		"--host="+host,
		"--data-root="+filepath.Join(dir, "data"),
		"--exec-root="+filepath.Join(dir, "exec"),
		"--pidfile="+filepath.Join(dir, "dockerd.pid"),
		// A namespace of its own, should it use a containerd the machine runs.
		"--containerd-namespace="+ns, "--containerd-plugins-namespace="+ns+"-plugins",
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
		// runc behind capsruntime: the machine may lack capabilities that a privileged
		// container (the sidecar) is given.
		"--add-runtime=reconcile-test="+caps, "--default-runtime=reconcile-test",
		"--log-level=warn", "--shutdown-timeout=5")
	// Its own temporary directory, removed with the rest: containerd, asked for its
	// stacks (dockerd does that when it answers slowly, on a loaded machine), writes
	// them to containerd.<pid>.stacks.log there, not in the caller's.
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	proc.Env = append(os.Environ(), "CAPSRUNTIME_RUNC="+runc, "TMPDIR="+tmp)
	proc.Stdout, proc.Stderr = logf, logf
	proc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := proc.Start(); err != nil {
		return err
	}
	exited = make(chan struct{})
	go func() { _ = proc.Wait(); close(exited) }()
	cli, err := client.New(client.WithHost(host))
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
		select {
		case <-exited:
			return fmt.Errorf("dockerd exited: %s", tail(filepath.Join(dir, "dockerd.log")))
		default:
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer in 60 s: %v: %s", err, tail(filepath.Join(dir, "dockerd.log")))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}

// Stop stops the engine, if one was started (its containers with it), and the
// registry, and removes their directories; call it from TestMain.
func Stop() {
	stopRegistry()
	if proc == nil || proc.Process == nil {
		return
	}
	_ = proc.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-proc.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	// The engine unmounts what it mounted when it stops; anything left (it was killed)
	// is unmounted here, deepest first, so that the directory can go.
	if b, err := os.ReadFile("/proc/self/mounts"); err == nil {
		lines := strings.Split(string(b), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if f := strings.Fields(lines[i]); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
				_ = syscall.Unmount(f[1], syscall.MNT_DETACH)
			}
		}
	}
	_ = os.RemoveAll(dir)
}

// Logs is the engine's own log, for a failing test.
func Logs() string { return tail(filepath.Join(dir, "dockerd.log")) }
