//go:build linux

package main

import (
	"bytes"
	"io"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/dockmove/dockmove/internal/cli"
	"github.com/dockmove/dockmove/internal/install"
)

// configKeysReserved are serve's flags a config file may not set.
var configKeysReserved = []string{"config", "version"}

// parseServe parses serve's command line into f, then the config file
// its --config names: a flag on the command line overrides the file's
// line for it.
func (a *agent) parseServe(f *serveFlags, args []string) error {
	fs := f.flagSet()
	var configFile string
	fs.StringVar(&configFile, "config", "", "read settings from this file: KEY = VALUE lines whose keys are these flags' names, as migrate-dst install writes it (the flags given here override it)")
	if err := a.parse(fs, "", args, 0); err != nil || configFile == "" {
		return err
	}
	settings, err := cli.ReadConfigFile(configFile)
	if err != nil {
		return err
	}
	return cli.ApplyConfig(fs, configFile, settings, configKeysReserved...)
}

// serveFlagsFrom returns serve's flags as a config file's text sets them
// (name names it in errors), with nothing from a command line.
func serveFlagsFrom(text []byte, name string) (*serveFlags, error) {
	f := newServeFlags()
	settings, err := cli.ParseConfig(bytes.NewReader(text), name)
	if err != nil {
		return nil, err
	}
	return f, cli.ApplyConfig(f.flagSet(), name, settings, configKeysReserved...)
}

// readServeConfig reads a config file install would leave as serve would
// read it, vetting its keys, its values and the credentials it names,
// and returns the restore runtime's state directory it sets.
func readServeConfig(text []byte, name string) (runtimeState string, err error) {
	f, err := serveFlagsFrom(text, name)
	if err != nil {
		return "", err
	}
	if !f.tf.Plaintext {
		if err := install.CheckCredentials(f.tf.Files()); err != nil {
			return "", err
		}
	}
	cfg, err := f.config(slog.New(slog.NewTextHandler(io.Discard, nil)))
	return cfg.RuntimeState, err
}

// settingsOf returns the flags of fs that the command line set and that
// serve takes, as config file settings: one per value of a repeatable
// flag.
func settingsOf(fs *pflag.FlagSet, serve map[string]bool) []cli.Setting {
	var out []cli.Setting
	fs.Visit(func(fl *pflag.Flag) {
		if !serve[fl.Name] {
			return
		}
		if list, ok := fl.Value.(pflag.SliceValue); ok {
			for _, v := range list.GetSlice() {
				out = append(out, cli.Setting{Key: fl.Name, Value: v})
			}
			return
		}
		out = append(out, cli.Setting{Key: fl.Name, Value: fl.Value.String()})
	})
	return out
}
