//go:build linux

package main

import "github.com/dockmove/dockmove/internal/cli"

// helpFor returns migrate-src's help as program: "migrate-src", or
// "docker migrate" for the Docker CLI plugin. Its commands are the words
// run recognises.
func helpFor(program string) cli.Help {
	return cli.Help{
		Program: program,
		About:   "Move a running Docker container, or a plain process tree, live to another host running migrate-dst.",
		Commands: []cli.Command{{
			Usage:   []string{"--to HOST[:PORT] [flags] CONTAINER", "--to HOST[:PORT] [flags] --pid PID"},
			Summary: "move CONTAINER, or the process tree rooted at PID, to HOST",
			Examples: []string{
				"--to host2 web",
				"--to host2 --strategy precopy --max-freeze 300ms --json web",
				"check --to host2 web",
				"drain --to host2 --label tier=web",
				"status --resolve",
			},
		}, {
			Name:     "check",
			Usage:    []string{"check --to HOST[:PORT] [flags] CONTAINER...", "check --to HOST[:PORT] [flags] --pid PID"},
			Summary:  "would it move, and how? (nothing frozen, nothing made on HOST; several containers: as drain check of those)",
			Examples: []string{"check --to host2 web", "check --to host2 --strategy lazy --json web", "check --to host2 web db cache"},
		}, {
			Name:     "drain",
			Usage:    []string{"drain [check] --to HOST[:PORT] [--label KEY[=VALUE]] [--name NAME|PATTERN] [flags]"},
			Summary:  "move every running container, one after the other or --parallel N at once, to one or several destinations (drain check: would they?)",
			Examples: []string{"drain check --to host2", "drain --to host2 --label tier=web --json", "drain --to host2,host3 --name 'web-*' --parallel 2"},
		}, {
			Name:     "status",
			Usage:    []string{"status [--resolve] [--json]"},
			Summary:  "unresolved migrations and what guards did; --resolve delivers the commits",
			Examples: []string{"status", "status --resolve"},
		}, {
			Name:     "reservations",
			Usage:    []string{"reservations [--prune] [--json]"},
			Summary:  "the addresses this host keeps for containers that moved away, and who answers for them now; --prune frees those nobody answers for",
			Examples: []string{"reservations", "reservations --prune"},
		}, {
			Name:     "install-plugin",
			Usage:    []string{"install-plugin [--docker-config DIR]"},
			Summary:  "install as the Docker CLI plugin: docker migrate CONTAINER --to HOST",
			Examples: []string{"install-plugin", "install-plugin --docker-config /etc/docker-cli"},
		}, {
			Name:     "generate",
			Usage:    []string{"generate man|bash-completion"},
			Summary:  "print " + program + "'s man page or bash completion",
			Examples: []string{"generate man > migrate-src.1", "generate bash-completion > /etc/bash_completion.d/migrate-src"},
		}, {
			Name:     "help",
			Usage:    []string{"help [COMMAND]"},
			Summary:  "print the help of " + program + " or of one command (as COMMAND --help does)",
			Examples: []string{"help drain"},
		}},
	}
}
