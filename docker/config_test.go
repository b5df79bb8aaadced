package docker_test

import (
	"strings"
	"testing"

	"github.com/reconcile-dev/reconcile/docker"
)

func TestParseConfig_Defaults(t *testing.T) {
	c, err := docker.ParseConfig(yamlJSON(t, `{}`), "pools[0].docker")
	if err != nil {
		t.Fatal(err)
	}
	if c.Image != docker.DefaultImage || c.Pull != docker.PullMissing || c.DockerInDocker != docker.DindNone ||
		strings.Join(c.Command, " ") != "/home/runner/run.sh" || c.Host != "" || c.HostDockerSocket {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestParseConfig_RefusesWhatWouldBreakOrExposeTheHost(t *testing.T) {
	tests := []struct{ section, want string }{
		{`{imgae: x}`, "pools[0].docker.imgae: unknown key"},
		{`{host: "ssh://me@build-1"}`, "pools[0].docker.host: \"ssh://me@build-1\": only unix:// and tcp://"},
		{`{host: "tcp://build-1:2375"}`, "pools[0].docker.tls: a tcp:// host needs ca, cert and key"},
		{`{host: "tcp://build-1:2376", tls: {ca: /ca.pem, cert: /cert.pem}}`, "pools[0].docker.tls: a tcp:// host needs ca, cert and key"},
		{`{host: "unix://"}`, "unix:///absolute/path"},
		{`{tls: {ca: a, cert: b, key: c}}`, "pools[0].docker.tls needs a tcp:// host"},
		{`{pull: sometimes}`, `pools[0].docker.pull: "sometimes" is not one of always, missing, never`},
		{`{cpus: -1}`, "pools[0].docker.cpus"},
		{`{memory: 1k}`, "pools[0].docker.memory: \"1k\" is not a size of at least 6m"},
		{`{memory: lots}`, "pools[0].docker.memory"},
		{`{network: host}`, "pools[0].docker.network: \"host\" would share a namespace"},
		{`{network: "container:db"}`, "would share a namespace"},
		{`{env: {"1X": "y"}}`, `pools[0].docker.env: "1X" is not a variable name`},
		{`{env: {ACTIONS_RUNNER_INPUT_JITCONFIG: x}}`, "pools[0].docker.env.ACTIONS_RUNNER_INPUT_JITCONFIG is set by reconcile itself"},
		{`{volumes: ["/cache"]}`, "pools[0].docker.volumes[0]: \"/cache\": not source:target"},
		{`{volumes: ["/cache:/cache:rx"]}`, "the mode is ro or rw"},
		{`{volumes: ["/a:relative"]}`, "the target is an absolute, clean path"},
		{`{volumes: ["/a:/c", "/b:/c"]}`, "pools[0].docker.volumes[1]: /c is mounted twice"},
		{`{volumes: ["/var/run/docker.sock:/var/run/docker.sock"]}`, "host_docker_socket: true, not a volume"},
		{`{docker_in_docker: dind}`, `pools[0].docker.docker_in_docker: "dind" is not one of none, sidecar`},
		{`{docker_in_docker: sidecar, host_docker_socket: true}`, "are exclusive"},
		{`{dind_image: "docker:27-dind"}`, "dind_image is only for docker_in_docker: sidecar"},
		{`{docker_in_docker: sidecar, volumes: ["/srv/work:/home/runner/_work:rw"]}`, "is where the sidecar's volumes go"},
		{`{log_options: {max-size: 1m}}`, "log_options need a log_driver"},
	}
	for _, tt := range tests {
		t.Run(tt.section, func(t *testing.T) {
			_, err := docker.ParseConfig(yamlJSON(t, tt.section), "pools[0].docker")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseConfig_AcceptsEveryDocumentedKey(t *testing.T) {
	c, err := docker.ParseConfig(yamlJSON(t, `{host: "tcp://build-1:2376", tls: {ca: /etc/reconcile/ca.pem, cert: /etc/reconcile/cert.pem, key: /etc/reconcile/key.pem},
		image: "ghcr.io/actions/actions-runner:2.330.0", command: [/home/runner/run.sh], pull: always, cpus: 4, memory: 8g,
		network: ci, env: {RUNNER_TOOL_CACHE: /opt/hostedtoolcache}, volumes: ["/srv/cache:/cache", "toolcache:/opt/hostedtoolcache:rw"],
		docker_in_docker: sidecar, dind_image: "docker:27-dind", log_driver: journald, log_options: {tag: reconcile}}`), "pools[0].docker")
	if err != nil {
		t.Fatal(err)
	}
	if c.DindImage != "docker:27-dind" || c.CPUs != 4 || c.Pull != docker.PullAlways {
		t.Fatalf("parsed %+v", c)
	}
	other, _ := docker.ParseConfig(yamlJSON(t, `{host: "tcp://build-1:2376", tls: {ca: /etc/reconcile/ca.pem, cert: /etc/reconcile/cert.pem, key: /etc/reconcile/key.pem}}`), "p")
	if c.Account() != other.Account() {
		t.Error("two pools on one engine have different accounts: the engine would be listed twice a pass")
	}
}
