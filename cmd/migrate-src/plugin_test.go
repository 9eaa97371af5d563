package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPluginArgsTakesDockerGlobalOptions: the Docker CLI hands a plugin
// its whole command line; the global options before "migrate" are the
// CLI's, the rest migrate-src's.
func TestPluginArgsTakesDockerGlobalOptions(t *testing.T) {
	g, rest, err := pluginArgs([]string{"--context", "lab", "-D", "--config=/c", "-l", "info", "migrate", "web", "--to", "host2"})
	if err != nil || g.context != "lab" || g.config != "/c" || !slices.Equal(rest, []string{"web", "--to", "host2"}) {
		t.Fatalf("got %+v %q %v", g, rest, err)
	}
	g, _, err = pluginArgs([]string{"-H", "unix:///x.sock", "migrate", "check", "web"})
	if err != nil || g.host != "unix:///x.sock" {
		t.Fatalf("got %+v %v", g, err)
	}
	for _, bad := range [][]string{{"--context"}, {"--weird", "migrate"}, {"-D"}} {
		if _, _, err := pluginArgs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestDockerEndpointFollowsTheCLIWithFakeConfig: the daemon is the one
// the Docker CLI would use: -H, then --context, then DOCKER_HOST, then
// DOCKER_CONTEXT, then the configuration's current context.
func TestDockerEndpointFollowsTheCLIWithFakeConfig(t *testing.T) {
	dir := t.TempDir()
	context := func(name, host string) {
		sum := sha256.Sum256([]byte(name))
		meta := filepath.Join(dir, "contexts", "meta", hex.EncodeToString(sum[:]))
		if err := os.MkdirAll(meta, 0o755); err != nil {
			t.Fatal(err)
		}
		body := `{"Name":"` + name + `","Metadata":{},"Endpoints":{"docker":{"Host":"` + host + `","SkipTLSVerify":false}}}`
		if err := os.WriteFile(filepath.Join(meta, "meta.json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	context("cur", "unix:///cur.sock")
	context("env", "unix:///env.sock")
	context("flag", "unix:///flag.sock")
	context("remote", "ssh://me@far")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"currentContext":"cur"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("DOCKER_HOST", "")
	t.Setenv("DOCKER_CONTEXT", "")
	check := func(g dockerGlobals, want string) {
		t.Helper()
		got, err := dockerEndpoint(g)
		if err != nil || got != want {
			t.Fatalf("%+v: %q, %v; want %q", g, got, err, want)
		}
	}
	check(dockerGlobals{}, "unix:///cur.sock")
	t.Setenv("DOCKER_CONTEXT", "env")
	check(dockerGlobals{}, "unix:///env.sock")
	t.Setenv("DOCKER_HOST", "unix:///envhost.sock")
	check(dockerGlobals{}, "unix:///envhost.sock")
	check(dockerGlobals{context: "flag"}, "unix:///flag.sock")
	check(dockerGlobals{context: "default"}, "")
	check(dockerGlobals{host: "unix:///h.sock", context: "flag"}, "unix:///h.sock")
	if _, err := dockerEndpoint(dockerGlobals{context: "remote"}); err == nil || !strings.Contains(err.Error(), "needs its socket") {
		t.Fatalf("an ssh context: %v", err)
	}
	if _, err := dockerEndpoint(dockerGlobals{context: "missing"}); err == nil {
		t.Fatal("a missing context was accepted")
	}
}
