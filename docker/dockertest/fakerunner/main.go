// Command fakerunner stands in for the actions runner (as /home/runner/run.sh) and
// for dockerd (as /usr/local/bin/dockerd) in the image dockertest builds, since no
// registry can be reached from the test machines. As the runner it reports what a
// runner would depend on (its JIT configuration, by digest only; the file it came in;
// its user; a ping of the daemon DOCKER_HOST names), "runs a job" for FAKE_JOB_SECONDS and exits with
// FAKE_EXIT_CODE. As dockerd it listens on the --host socket, as the docker group's,
// answers pings, and reports what it sees of the volumes it shares with the runner.
package main

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if filepath.Base(os.Args[0]) == "dockerd" {
		daemon(os.Args[1:])
		return
	}
	runner()
}

func runner() {
	jit := os.Getenv("ACTIONS_RUNNER_INPUT_JITCONFIG")
	if jit == "" {
		fmt.Println("fake-runner: no JIT configuration in ACTIONS_RUNNER_INPUT_JITCONFIG")
		os.Exit(3)
	}
	_, err := os.Stat("/.reconcile/jitconfig")
	fmt.Printf("fake-runner: jitconfig-sha256=%x file-left=%v uid=%d gid=%d\n",
		sha256.Sum256([]byte(jit)), err == nil, os.Getuid(), os.Getgid())
	fmt.Printf("fake-runner: cgroup memory=%s cpu=%s\n", cgroupMemory(), cgroupCPU())
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		c, err := net.Dial("unix", strings.TrimPrefix(h, "unix://"))
		if err != nil {
			fmt.Printf("fake-runner: docker: %v\n", err)
			os.Exit(4)
		}
		_, _ = c.Write([]byte("GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"))
		status, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Printf("fake-runner: docker: ping %s\n", strings.TrimSpace(status))
	}
	secs, _ := strconv.ParseFloat(os.Getenv("FAKE_JOB_SECONDS"), 64)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-time.After(time.Duration(secs * float64(time.Second))):
	case <-stop:
		fmt.Println("fake-runner: stopped")
		os.Exit(143)
	}
	code, _ := strconv.Atoi(os.Getenv("FAKE_EXIT_CODE"))
	fmt.Println("fake-runner: job done")
	os.Exit(code)
}

// cgroupMemory is the memory limit the kernel holds the container to, in bytes
// (cgroup v2's memory.max, or v1's memory.limit_in_bytes).
func cgroupMemory() string {
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(f); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return "unknown"
}

// cgroupCPU is the CPU quota the kernel holds the container to, as "quota/period"
// in microseconds (cgroup v2's cpu.max, or v1's cfs files).
func cgroupCPU() string {
	if b, err := os.ReadFile("/sys/fs/cgroup/cpu.max"); err == nil {
		return strings.Replace(strings.TrimSpace(string(b)), " ", "/", 1)
	}
	q, err1 := os.ReadFile("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
	p, err2 := os.ReadFile("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
	if err1 != nil || err2 != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(q)) + "/" + strings.TrimSpace(string(p))
}

func daemon(args []string) {
	sock, group := "", -1
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--host=unix://"); ok {
			sock = v
		}
		if v, ok := strings.CutPrefix(a, "--group="); ok {
			group, _ = strconv.Atoi(v)
		}
	}
	marker, err := os.ReadFile("/home/runner/externals/marker")
	fmt.Printf("fake-dockerd: externals=%q err=%v\n", strings.TrimSpace(string(marker)), err)
	if st, err := os.Stat("/home/runner/_work"); err == nil {
		fmt.Printf("fake-dockerd: work-mode=%v\n", st.Mode().Perm())
	}
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Println("fake-dockerd:", err)
		os.Exit(1)
	}
	_ = os.Chown(sock, 0, group)
	_ = os.Chmod(sock, 0o660)
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(1)
		}
		go func() { // enough of the Engine API for a ping
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil || line == "\r\n" {
					break
				}
			}
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK"))
		}()
	}
}
