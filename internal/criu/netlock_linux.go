package criu

import (
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// UnlockNetwork removes what CRIU does to a dumped tree's network to
// freeze its TCP traffic: the "CRIU" chain in its network namespace and
// repair mode on its TCP sockets (ReleaseRepairedSockets). CRIU 4.2.1
// undoes both when a dump fails, except when a lazy dump's page transfer
// fails: the resumed container then stays cut off, its connections mute.
// Calling it where there is no lock is harmless.
func UnlockNetwork(pid int) error {
	err := unlockChain(pid)
	if _, rerr := ReleaseRepairedSockets(pid); rerr != nil {
		err = errors.Join(err, fmt.Errorf("criu: take the tree's TCP sockets out of repair mode: %w", rerr))
	}
	return err
}

func unlockChain(pid int) error {
	ns := "--net=/proc/" + strconv.Itoa(pid) + "/ns/net"
	for _, bin := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(bin); err != nil {
			continue
		}
		if exec.Command("nsenter", ns, bin, "-w", "-S", "CRIU").Run() != nil {
			continue // no lock in this family
		}
		for _, args := range [][]string{{"-D", "INPUT", "-j", "CRIU"}, {"-D", "OUTPUT", "-j", "CRIU"}, {"-F", "CRIU"}, {"-X", "CRIU"}} {
			out, err := exec.Command("nsenter", append([]string{ns, bin, "-w"}, args...)...).CombinedOutput()
			if err != nil && args[0] != "-D" {
				return fmt.Errorf("criu: remove network lock (%s %s): %v: %s", bin, strings.Join(args, " "), err, out)
			}
		}
	}
	return nil
}
