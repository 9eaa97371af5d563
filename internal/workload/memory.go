// Package workload is the synthetic application the tests and benchmarks
// migrate: it holds memory in a known pattern, dirties it at a set rate,
// verifies it, and streams a heartbeat over TCP so a client outside the
// container can see pauses and sequence breaks.
package workload

import (
	"encoding/binary"
	"sync"
)

// PageSize is the unit the pattern is written and verified in. It matches the
// kernel's page size on the machines we target, so one dirtied pattern page is
// one dirty page for CRIU.
const PageSize = 4096

const wordsPerPage = PageSize / 8

// Memory is a region whose every page holds a pattern derived from the page's
// index and its generation. Dirtying a page bumps its generation and rewrites
// it; verifying recomputes every page from (index, generation). Corruption of
// either the page or the generation table shows up as a mismatch.
type Memory struct {
	mu   sync.Mutex
	buf  []byte
	gens []uint32
}

// NewMemory fills buf (a multiple of PageSize) with generation-zero patterns.
func NewMemory(buf []byte) *Memory {
	m := &Memory{buf: buf, gens: make([]uint32, len(buf)/PageSize)}
	for i := range m.gens {
		fillPage(m.page(i), uint64(i), 0)
	}
	return m
}

// Pages returns the number of pattern pages.
func (m *Memory) Pages() int { return len(m.gens) }

func (m *Memory) page(i int) []byte { return m.buf[i*PageSize : (i+1)*PageSize] }

// Dirty rewrites page i with its next generation.
func (m *Memory) Dirty(i int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gens[i]++
	fillPage(m.page(i), uint64(i), m.gens[i])
}

// VerifyRange checks pages [from, to) and returns how many do not match.
func (m *Memory) VerifyRange(from, to int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	bad := 0
	for i := from; i < to; i++ {
		if !pageOK(m.page(i), uint64(i), m.gens[i]) {
			bad++
		}
	}
	return bad
}

// Verify checks every page, a chunk at a time so that dirtying goes on while a
// large region is verified, and returns the number of bad pages.
func (m *Memory) Verify() int {
	const chunk = 1024
	bad := 0
	for from := 0; from < m.Pages(); from += chunk {
		bad += m.VerifyRange(from, min(from+chunk, m.Pages()))
	}
	return bad
}

// seed mixes a page index and generation into the first word of a page
// (splitmix64), so that neighbouring pages and generations differ everywhere.
func seed(index uint64, gen uint32) uint64 {
	z := index<<32 | uint64(gen)
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func fillPage(p []byte, index uint64, gen uint32) {
	w := seed(index, gen)
	for j := 0; j < wordsPerPage; j++ {
		binary.LittleEndian.PutUint64(p[j*8:], w)
		w += 0x9e3779b97f4a7c15
	}
}

func pageOK(p []byte, index uint64, gen uint32) bool {
	w := seed(index, gen)
	for j := 0; j < wordsPerPage; j++ {
		if binary.LittleEndian.Uint64(p[j*8:]) != w {
			return false
		}
		w += 0x9e3779b97f4a7c15
	}
	return true
}
