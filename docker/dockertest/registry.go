package dockertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

var (
	regOnce sync.Once
	regAddr string
	regCmd  *exec.Cmd
	regErr  error
)

// Registry returns the address (127.0.0.1:port) of an image registry for the test
// binary: Debian's docker-registry (the CNCF distribution registry), with its storage
// in a temporary directory. An engine pulls from a registry on the loopback over
// plain HTTP without being told to.
func Registry(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		msg := fmt.Sprintf("no image registry to test against (%v); `make test` installs it (tools/docker.sh)", err)
		if os.Getenv("RECONCILE_REQUIRE_DOCKER") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	regOnce.Do(func() { regErr = startRegistry(bin) })
	if regErr != nil {
		t.Fatalf("starting the registry: %v", regErr)
	}
	return regAddr
}

func startRegistry(bin string) error {
	dir, err := os.MkdirTemp("", "registry")
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	regAddr = l.Addr().String()
	_ = l.Close()
	conf := filepath.Join(dir, "config.yml")
	err = os.WriteFile(conf, []byte(fmt.Sprintf("version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %q}\n",
		filepath.Join(dir, "data"), regAddr)), 0o600)
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		return err
	}
	regCmd = exec.Command(bin, "serve", conf)
	regCmd.Stdout, regCmd.Stderr = logf, logf
	regCmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := regCmd.Start(); err != nil {
		return err
	}
	regDir = dir
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", regAddr); err == nil {
			_ = c.Close()
			return nil
		}
	}
	return fmt.Errorf("no answer on %s in 20 s: %s", regAddr, tail(filepath.Join(dir, "registry.log")))
}

var regDir string

// stopRegistry stops the registry, if one was started, and removes its storage.
func stopRegistry() {
	if regCmd != nil && regCmd.Process != nil {
		_ = regCmd.Process.Kill()
		_ = regCmd.Wait()
	}
	if regDir != "" {
		_ = os.RemoveAll(regDir)
	}
}

// Push puts RunnerImage into the registry at registry as name ("team/runner:1"),
// and leaves the engine without that reference, so that using it means pulling it.
// It returns the reference.
func Push(t testing.TB, cli *client.Client, registry, name string) string {
	t.Helper()
	Images(t)
	ctx := context.Background()
	ref := registry + "/" + name
	if _, err := cli.ImageTag(ctx, client.ImageTagOptions{Source: RunnerImage, Target: ref}); err != nil {
		t.Fatal(err)
	}
	res, err := cli.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: "e30="}) // "{}": no credentials
	if err == nil {
		err = res.Wait(ctx)
	}
	if err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	Forget(t, cli, ref)
	return ref
}

// Forget removes a reference from the engine (the image stays under its others).
func Forget(t testing.TB, cli *client.Client, ref string) {
	t.Helper()
	if _, err := cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		t.Fatalf("removing %s: %v", ref, err)
	}
}
