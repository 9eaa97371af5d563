package workload

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Command is the single line a client sends after connecting to the
// heartbeat port.
type Command string

const (
	// CmdStatus answers one Beat line and closes.
	CmdStatus Command = "status"
	// CmdVerify verifies all memory now, then answers like CmdStatus.
	CmdVerify Command = "verify"
	// CmdStream sends one Beat line per tick, with Seq counting from 1,
	// until the client goes away.
	CmdStream Command = "stream"
	// CmdStalls answers one Stalls line (how long page writes waited since
	// the previous CmdStalls) and closes.
	CmdStalls Command = "stalls"
)

// Beat is one heartbeat line: "seq=N counter=N rounds=N bad=N pages=N dirtied=N run=N".
type Beat struct {
	Seq     uint64 // line number within a stream; 0 outside streams
	Counter uint64 // ticks since the process started; never resets on migration
	Rounds  uint64 // completed verification rounds
	Bad     uint64 // bad pages found, summed over all rounds
	Pages   uint64 // pattern pages held
	Dirtied uint64 // pages rewritten since start
	Run     uint64 // drawn at random when the process started: kept by a migration, new on a fresh start
}

// Continues reports whether b comes from the same run of the workload as
// before, later: a migrated process continues; one started afresh (by a
// restart policy, say) does not, whatever its counter.
func (b Beat) Continues(before Beat) bool { return b.Run == before.Run && b.Counter >= before.Counter }

// String formats the beat as its wire line (without the newline).
func (b Beat) String() string {
	return fmt.Sprintf("seq=%d counter=%d rounds=%d bad=%d pages=%d dirtied=%d run=%d",
		b.Seq, b.Counter, b.Rounds, b.Bad, b.Pages, b.Dirtied, b.Run)
}

var errBadBeat = errors.New("workload: malformed heartbeat line")

// ParseBeat parses a line produced by Beat.String.
func ParseBeat(line string) (Beat, error) {
	var b Beat
	fields := map[string]*uint64{
		"seq": &b.Seq, "counter": &b.Counter, "rounds": &b.Rounds,
		"bad": &b.Bad, "pages": &b.Pages, "dirtied": &b.Dirtied, "run": &b.Run,
	}
	parts := strings.Fields(line)
	if len(parts) != len(fields) {
		return Beat{}, fmt.Errorf("%w: %q", errBadBeat, line)
	}
	for _, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		dst := fields[k]
		if !ok || dst == nil {
			return Beat{}, fmt.Errorf("%w: %q", errBadBeat, line)
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return Beat{}, fmt.Errorf("%w: %q", errBadBeat, line)
		}
		*dst = n
	}
	return b, nil
}
