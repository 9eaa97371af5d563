package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dockmove/dockmove/migrate"
)

// The Docker CLI plugin: migrate-src installed as docker-migrate in a
// cli-plugins directory runs as `docker migrate CONTAINER --to HOST`. The
// CLI hands a plugin its own arguments, global options included, and asks
// it for its metadata first.

// pluginName is the executable's name as a Docker CLI plugin.
const pluginName = "docker-migrate"

// pluginMetadata answers the CLI's docker-cli-plugin-metadata call.
func pluginMetadata(w io.Writer) {
	json.NewEncoder(w).Encode(map[string]string{
		"SchemaVersion":    "0.1.0",
		"Vendor":           "dockmove",
		"Version":          migrate.Version,
		"ShortDescription": "Move a running container to another host, live (dockmove)",
	})
}

// pluginCommandLine turns the command line the Docker CLI hands the plugin
// into migrate-src's: the CLI's global options off, the daemon they choose
// passed on as --docker-host.
func pluginCommandLine(args []string) ([]string, error) {
	g, rest, err := pluginArgs(args)
	if err != nil {
		return nil, err
	}
	host, err := dockerEndpoint(g)
	if host != "" {
		rest = append([]string{"--docker-host", host}, rest...)
	}
	return rest, err
}

// dockerGlobals are the Docker CLI's global options as a plugin sees them.
type dockerGlobals struct {
	host, context, config string
}

// pluginArgs takes the Docker CLI's global options off args (the CLI's
// own arguments, from after "docker"), then the plugin's command name, and
// returns the options and what follows for migrate-src.
func pluginArgs(args []string) (dockerGlobals, []string, error) {
	var g dockerGlobals
	withValue := map[string]*string{"-H": &g.host, "--host": &g.host, "-c": &g.context, "--context": &g.context, "--config": &g.config,
		"-l": new(string), "--log-level": new(string), "--tlscacert": new(string), "--tlscert": new(string), "--tlskey": new(string)}
	flagOnly := map[string]bool{"-D": true, "--debug": true, "--tls": true, "--tlsverify": true}
	for len(args) > 0 {
		a := args[0]
		if a == "migrate" {
			return g, args[1:], nil
		}
		name, value, inline := strings.Cut(a, "=")
		switch {
		case withValue[name] != nil && inline:
			*withValue[name] = value
			args = args[1:]
		case withValue[name] != nil:
			if len(args) < 2 {
				return g, nil, fmt.Errorf("docker option %s needs a value", a)
			}
			*withValue[name] = args[1]
			args = args[2:]
		case flagOnly[name]:
			args = args[1:]
		default:
			return g, nil, fmt.Errorf("unexpected %q before the command (run as: docker migrate CONTAINER --to HOST)", a)
		}
	}
	return g, nil, errors.New("no command: run as docker migrate CONTAINER --to HOST")
}

// dockerEndpoint resolves the daemon the Docker CLI would talk to: -H,
// then --context, then DOCKER_HOST, then DOCKER_CONTEXT, then the current
// context of the CLI's configuration; "" is the default socket.
func dockerEndpoint(g dockerGlobals) (string, error) {
	if g.host != "" {
		return g.host, nil
	}
	name := g.context
	if name == "" {
		if h := os.Getenv("DOCKER_HOST"); h != "" {
			return h, nil
		}
		name = os.Getenv("DOCKER_CONTEXT")
	}
	dir := g.config
	if dir == "" {
		dir = os.Getenv("DOCKER_CONFIG")
	}
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(home, ".docker")
	}
	if name == "" {
		var cfg struct{ CurrentContext string }
		if data, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
			if err := json.Unmarshal(data, &cfg); err != nil {
				return "", fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
			}
		}
		name = cfg.CurrentContext
	}
	if name == "" || name == "default" {
		return "", nil
	}
	sum := sha256.Sum256([]byte(name))
	id := hex.EncodeToString(sum[:])
	meta := filepath.Join(dir, "contexts", "meta", id, "meta.json")
	data, err := os.ReadFile(meta)
	if err != nil {
		return "", fmt.Errorf("docker context %q: %w", name, err)
	}
	var m struct {
		Endpoints struct {
			Docker struct{ Host string }
		}
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return "", fmt.Errorf("docker context %q: %s: %w", name, meta, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "contexts", "tls", id)); err == nil {
		return "", fmt.Errorf("docker context %q uses TLS to reach its daemon, which docker migrate does not: run it on the daemon's host (its socket)", name)
	}
	if h := m.Endpoints.Docker.Host; !strings.HasPrefix(h, "unix://") && !strings.HasPrefix(h, "tcp://") {
		return "", fmt.Errorf("docker context %q reaches its daemon at %q; docker migrate runs on the daemon's host and needs its socket (unix://)", name, h)
	}
	return m.Endpoints.Docker.Host, nil
}

// installPlugin puts this executable into the Docker CLI's plugin
// directory (DOCKER_CONFIG's or ~/.docker's cli-plugins) as docker-migrate.
func installPlugin(configDir string) (string, error) {
	if configDir == "" {
		configDir = os.Getenv("DOCKER_CONFIG")
	}
	if configDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		configDir = filepath.Join(home, ".docker")
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(self)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(configDir, "cli-plugins")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".docker-migrate-")
	if err != nil {
		return "", err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	tmp.Close()
	path := filepath.Join(dir, pluginName)
	return path, os.Rename(tmp.Name(), path)
}
