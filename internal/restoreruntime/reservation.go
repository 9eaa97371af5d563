package restoreruntime

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/dockmove/dockmove/internal/reserve"
)

// Reservation containers (package reserve) run under this runtime where it
// is installed, for one thing: they must never take a packet. Docker 27
// and later advertise an endpoint's address (unsolicited ARP) as they wire
// it, which draws the moved container's clients to the reservation until
// the container's own host announces again; a reservation that delivered
// their packets locally would reset their connections. So right after
// runc creates a reservation, before Docker 26 and later wire its network,
// the runtime removes its namespace's local routing rules: the address is
// then the kernel's for no packet (dropped, never answered, not even by
// ARP), and the holder puts the interfaces down once it runs.

// isReservation reports whether the bundle runs a reservation's holder.
func isReservation(bundle string) bool {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return false
	}
	var spec struct {
		Process struct {
			Args []string `json:"args"`
		} `json:"process"`
	}
	return json.Unmarshal(data, &spec) == nil && slices.Equal(spec.Process.Args, []string{reserve.HolderPath, reserve.HoldArg})
}

// createReservation runs runc's create, then cuts the new namespace off
// from local delivery; the container goes if that fails.
func createReservation(inv Invocation, c createArgs, log *slog.Logger) int {
	create := append(append([]string(nil), inv.Global...), append([]string{"create"}, inv.Args...)...)
	if err := runRunc(create); err != nil {
		return exitCode(err)
	}
	pid, err := readPID(c.pidFile)
	if err == nil {
		err = dropLocalDelivery(pid)
	}
	if err != nil {
		log.Error("reservation: cut off local delivery", "id", c.id, "err", err)
		fmt.Fprintln(os.Stderr, "dockmove runtime: reservation:", err)
		runRunc(append(append([]string(nil), inv.Global...), "delete", "--force", c.id))
		return 1
	}
	log.Info("reservation created, its namespace delivers nothing locally", "id", c.id)
	return 0
}
