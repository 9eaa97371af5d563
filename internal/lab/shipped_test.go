package lab_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/lab/labtest"
)

// No binary we ship links the testing package (test helpers live in
// packages only tests import, such as labtest).
func TestShippedBinariesDoNotLinkTesting(t *testing.T) {
	labtest.RequireBinary(t, "go")
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-f", `{{if eq .ImportPath "testing"}}{{.ImportPath}}{{end}}`, "./cmd/...")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if strings.TrimSpace(string(out)) != "" {
		t.Fatal("a binary under cmd/ links the testing package (see: go list -deps ./cmd/...)")
	}
}
