package cli

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// testFlags are flags of every kind a config file sets: a string, a bool,
// a number, a duration, a comma-separated list and a repeatable one.
type testFlags struct {
	listen   string
	plain    bool
	level    int
	idle     time.Duration
	networks []string
	options  []string
}

func (f *testFlags) flagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.StringVar(&f.listen, "listen", ":7070", "")
	fs.BoolVar(&f.plain, "plain", false, "")
	fs.IntVar(&f.level, "level", 1, "")
	fs.DurationVar(&f.idle, "idle", time.Minute, "")
	fs.StringSliceVar(&f.networks, "networks", nil, "")
	fs.StringArrayVar(&f.options, "option", nil, "")
	fs.Bool("version", false, "")
	return fs
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		want []Setting
		err  error // nil: parses
		line int
	}{
		{"empty", "", nil, nil, 0},
		{"comments and blanks", "# a comment\n\n   # indented\n", nil, nil, 0},
		{"spaced", "listen = :7071\n", []Setting{{"listen", ":7071", 1}}, nil, 0},
		{"tight", "listen=:7071", []Setting{{"listen", ":7071", 1}}, nil, 0},
		{"crlf", "level = 3\r\nplain = true\r\n", []Setting{{"level", "3", 1}, {"plain", "true", 2}}, nil, 0},
		{"hash in value", "option = --x=#1", []Setting{{"option", "--x=#1", 1}}, nil, 0},
		{"equals in value", "option = a=b", []Setting{{"option", "a=b", 1}}, nil, 0},
		{"empty value", "listen =", []Setting{{"listen", "", 1}}, nil, 0},
		{"quoted", `option = "  spaced \"x\"  "`, []Setting{{"option", `  spaced "x"  `, 1}}, nil, 0},
		{"line numbers", "# header\n\nlisten = a\n# c\nlevel = 2\n", []Setting{{"listen", "a", 3}, {"level", "2", 5}}, nil, 0},
		{"no equals", "listen :7071\n", nil, ErrConfigSyntax, 1},
		{"flag syntax", "# x\n--listen :7071", nil, ErrConfigSyntax, 2},
		{"no key", "= x", nil, ErrConfigSyntax, 1},
		{"space in key", "allow source = host1", nil, ErrConfigSyntax, 1},
		{"bad quote", `listen = "open`, nil, ErrConfigSyntax, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig(strings.NewReader(tc.text), "test.conf")
			if tc.err != nil {
				var ce *ConfigError
				if !errors.Is(err, tc.err) || !errors.As(err, &ce) || ce.Line != tc.line || ce.File != "test.conf" {
					t.Fatalf("error %v, want %v on line %d", err, tc.err, tc.line)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestApplyConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		text string
		want testFlags
		err  error // nil: applies
		msg  string
	}{
		{"defaults without a file", nil, "", testFlags{listen: ":7070", level: 1, idle: time.Minute}, nil, ""},
		{"every kind", nil, "listen = 10.0.0.2:7070\nplain = true\nlevel = 5\nidle = 90s\nnetworks = a,b\nnetworks = c\noption = --x\noption = --y,z\n",
			testFlags{listen: "10.0.0.2:7070", plain: true, level: 5, idle: 90 * time.Second, networks: []string{"a", "b", "c"}, options: []string{"--x", "--y,z"}}, nil, ""},
		{"command line overrides", []string{"--listen", ":1", "--option", "--cli"}, "listen = :2\noption = --file\nlevel = 3\n",
			testFlags{listen: ":1", level: 3, idle: time.Minute, options: []string{"--cli"}}, nil, ""},
		{"bool off", []string{}, "plain = false", testFlags{listen: ":7070", level: 1, idle: time.Minute}, nil, ""},
		{"unknown key", nil, "listen = :1\n\nlisten-addr = :2\n", testFlags{}, ErrUnknownKey, `test.conf:3: listen-addr: unknown key`},
		{"reserved key", nil, "version = true", testFlags{}, ErrUnknownKey, `test.conf:1: version: unknown key`},
		{"unknown even when overridden", []string{"--listen", ":1"}, "nope = 1", testFlags{}, ErrUnknownKey, "test.conf:1: nope"},
		{"bad value", nil, "level = high", testFlags{}, nil, `test.conf:1: level: `},
		{"bad bool", nil, "plain = yes please", testFlags{}, nil, `test.conf:1: plain: `},
		{"single value twice", nil, "listen = :1\nlisten = :2", testFlags{}, ErrConfigRepeated, "test.conf:2: listen: set again (first on line 1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got testFlags
			fs := got.flagSet()
			if err := ParseFlags(fs, "", tc.args); err != nil {
				t.Fatal(err)
			}
			settings, err := ParseConfig(strings.NewReader(tc.text), "test.conf")
			if err != nil {
				t.Fatal(err)
			}
			err = ApplyConfig(fs, "test.conf", settings, "version")
			if tc.msg != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.msg) || (tc.err != nil && !errors.Is(err, tc.err)) {
					t.Fatalf("error %v, want %q (%v)", err, tc.msg, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestFormatSettingRoundTrips(t *testing.T) {
	for _, v := range []string{"", ":7070", " lead", "trail ", `"quoted"`, "a # b", "tab\there", "new\nline", "ünï", "\x00", `back\slash`} {
		line := FormatSetting("k", v)
		got, err := ParseConfig(strings.NewReader(line+"\n"), "x")
		if err != nil || len(got) != 1 || got[0].Key != "k" || got[0].Value != v {
			t.Errorf("%q as %q reads back %+v, %v", v, line, got, err)
		}
	}
}

func TestReadConfigFileRefusesWritableByOthers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.conf")
	if err := os.WriteFile(path, []byte("listen = :1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := ReadConfigFile(path); err != nil || len(s) != 1 {
		t.Fatalf("0644: %v, %v", s, err)
	}
	if err := os.Chmod(path, 0o664); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadConfigFile(path); !errors.Is(err, ErrConfigWritable) {
		t.Fatalf("0664: %v, want %v", err, ErrConfigWritable)
	}
	if _, err := ReadConfigFile(filepath.Join(dir, "none.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}

// FuzzParseConfig: any file either parses or fails with a ConfigError,
// and every setting it yields reads back the same from FormatSetting.
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{"listen = :7070\n", "# c\n\nk=v\r\n", `k = "a\"b"`, "k = \"\\x00\"", "=", "a b = c", "k = v # not a comment"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		settings, err := ParseConfig(strings.NewReader(text), "f")
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) && !strings.HasPrefix(err.Error(), "f: ") {
				t.Fatalf("error of no known kind: %v", err)
			}
			return
		}
		for _, s := range settings {
			back, err := ParseConfig(strings.NewReader(FormatSetting(s.Key, s.Value)), "f")
			if err != nil || len(back) != 1 || back[0].Key != s.Key || back[0].Value != s.Value {
				t.Fatalf("%+v reads back as %+v, %v", s, back, err)
			}
		}
	})
}
