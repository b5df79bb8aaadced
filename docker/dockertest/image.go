package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// The images Images builds.
const (
	// RunnerImage runs the fake runner as /home/runner/run.sh, as user runner (uid
	// 1001, group docker 123), like ghcr.io/actions/actions-runner.
	RunnerImage = "reconcile-test/runner:1"
	// DindImage runs the fake dockerd as root behind dockerd-entrypoint.sh, like
	// docker:dind.
	DindImage = "reconcile-test/dind:1"
	// ExternalsMarker is the content of /home/runner/externals/marker in RunnerImage.
	ExternalsMarker = "externals of the test runner image"
)

var (
	imageOnce sync.Once
	imageErr  error
)

// Images imports RunnerImage and DindImage into the shared engine, once per test
// binary.
func Images(t testing.TB) {
	t.Helper()
	cli := Client(t)
	imageOnce.Do(func() { imageErr = importImages(cli) })
	if imageErr != nil {
		t.Fatalf("building the test images: %v", imageErr)
	}
}

func importImages(cli *client.Client) error {
	busybox, err := exec.LookPath("busybox")
	if err == nil {
		err = static(busybox)
	}
	if err != nil {
		return fmt.Errorf("a static busybox (Debian's busybox-static; tools/docker.sh installs it): %w", err)
	}
	fake, err := buildFake()
	if err != nil {
		return err
	}
	rootfs, err := rootfs(busybox, fake)
	if err != nil {
		return err
	}
	for ref, changes := range map[string][]string{
		RunnerImage: {"USER runner", "WORKDIR /home/runner"},
		DindImage:   {`ENTRYPOINT ["dockerd-entrypoint.sh"]`},
	} {
		res, err := cli.ImageImport(context.Background(), client.ImageImportSource{Source: bytes.NewReader(rootfs), SourceName: "-"}, ref, client.ImageImportOptions{Changes: changes})
		if err != nil {
			return fmt.Errorf("importing %s: %w", ref, err)
		}
		_, err = readAll(res)
		if err != nil {
			return fmt.Errorf("importing %s: %w", ref, err)
		}
	}
	return nil
}

// static fails for a program that needs a dynamic loader, which an image of its own
// does not have.
func static(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", path)
		}
	}
	return nil
}

// buildFake builds the fake runner, static, into a temporary directory.
func buildFake() (string, error) {
	out, err := os.MkdirTemp("", "fakerunner")
	if err != nil {
		return "", err
	}
	return goBuild("fakerunner", filepath.Join(out, "fakerunner"))
}

// goBuild builds the command in dockertest's directory dir, static, as bin.
func goBuild(dir, bin string) (string, error) {
	_, here, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(filepath.Dir(here), dir)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v: %s", dir, err, b)
	}
	return bin, nil
}

// rootfs is the images' file system: busybox for the start scripts, the fake runner
// in the places of the runner and of dockerd, and the runner's user.
func rootfs(busybox, fake string) ([]byte, error) {
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return nil, err
	}
	fr, err := os.ReadFile(fake)
	_ = os.RemoveAll(filepath.Dir(fake))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64, uid, gid int) {
		_ = tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: mode, Uid: uid, Gid: gid})
	}
	file := func(name string, mode int64, uid, gid int, data []byte) {
		_ = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Uid: uid, Gid: gid, Size: int64(len(data))})
		_, _ = tw.Write(data)
	}
	link := func(name, target string) {
		_ = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777})
	}
	for _, d := range []string{"bin", "etc", "usr", "usr/local", "usr/local/bin", "home", "var"} {
		dir(d, 0o755, 0, 0)
	}
	dir("tmp", 0o1777, 0, 0)
	file("bin/busybox", 0o755, 0, 0, bb)
	for _, applet := range []string{"sh", "cat", "rm", "sleep", "chmod", "ls", "id"} {
		link("bin/"+applet, "busybox")
	}
	file("etc/passwd", 0o644, 0, 0, []byte("root:x:0:0:root:/root:/bin/sh\nrunner:x:1001:123:runner:/home/runner:/bin/sh\n"))
	file("etc/group", 0o644, 0, 0, []byte("root:x:0:\ndocker:x:123:runner\n"))
	dir("home/runner", 0o755, 1001, 123)
	dir("home/runner/externals", 0o755, 1001, 123)
	file("home/runner/externals/marker", 0o644, 1001, 123, []byte(ExternalsMarker+"\n"))
	file("home/runner/run.sh", 0o755, 1001, 123, fr)
	file("usr/local/bin/dockerd", 0o755, 0, 0, fr)
	file("usr/local/bin/dockerd-entrypoint.sh", 0o755, 0, 0, []byte("#!/bin/sh\nexec \"$@\"\n"))
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readAll reads a JSON message stream of the engine (an import's progress) to its
// end, and returns the error a message reports, if any.
func readAll(r io.ReadCloser) ([]jsonstream.Message, error) {
	defer r.Close()
	var msgs []jsonstream.Message
	dec := json.NewDecoder(r)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err == io.EOF {
			return msgs, nil
		} else if err != nil {
			return msgs, err
		}
		if m.Error != nil {
			return msgs, m.Error
		}
		msgs = append(msgs, m)
	}
}

// ContainerLogs returns what a container wrote to stdout and stderr.
func ContainerLogs(t testing.TB, cli *client.Client, name string) string {
	t.Helper()
	r, err := cli.ContainerLogs(context.Background(), name, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("logs of %s: %v", name, err)
	}
	defer r.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, r); err != nil {
		t.Fatalf("logs of %s: %v", name, err)
	}
	return out.String()
}
