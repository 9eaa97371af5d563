package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/pflag"
)

// A config file gives a command's flags one a line, as KEY = VALUE: KEY
// is the flag's name without its dashes, VALUE what would follow it on
// the command line (in double quotes, Go's escapes allowed, to keep
// spaces at its ends). A repeatable flag takes one line per value. Blank
// lines and lines starting with # are ignored; a # later in a line is part
// of the value. The command line overrides the file, flag by flag.

var (
	// ErrConfigSyntax is a config file line that is not KEY = VALUE.
	ErrConfigSyntax = errors.New("want KEY = VALUE")
	// ErrUnknownKey is a config file key that names no flag the file may
	// set.
	ErrUnknownKey = errors.New("unknown key")
	// ErrConfigRepeated is a second line for a flag that takes one value.
	ErrConfigRepeated = errors.New("set again")
	// ErrConfigWritable is a config file that others than its owner may
	// write: they could configure a daemon that runs as root.
	ErrConfigWritable = errors.New("writable by other users than its owner")
)

// Setting is one KEY = VALUE line of a config file.
type Setting struct {
	Key, Value string
	// Line is the line's number in the file, from 1.
	Line int
}

// ConfigError is a config file line that cannot be read or applied.
type ConfigError struct {
	File string
	Line int
	// Key is the line's key; "" for a line that has none.
	Key string
	Err error
}

func (e *ConfigError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: %s: %v", e.File, e.Line, e.Key, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// ParseConfig reads a config file's settings in their order; file names
// it in errors.
func ParseConfig(r io.Reader, file string) ([]Setting, error) {
	var out []Setting
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok || key == "" || strings.IndexFunc(key, unicode.IsSpace) >= 0 {
			return nil, &ConfigError{File: file, Line: n, Err: ErrConfigSyntax}
		}
		if strings.HasPrefix(value, `"`) {
			unquoted, err := strconv.Unquote(value)
			if err != nil {
				return nil, &ConfigError{File: file, Line: n, Key: key, Err: fmt.Errorf("%w: bad quoted value %s", ErrConfigSyntax, value)}
			}
			value = unquoted
		}
		out = append(out, Setting{Key: key, Value: value, Line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return out, nil
}

// FormatSetting renders one line that ParseConfig reads back as key and
// value.
func FormatSetting(key, value string) string {
	if value != strings.TrimSpace(value) || strings.HasPrefix(value, `"`) ||
		strings.IndexFunc(value, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
		value = strconv.Quote(value)
	}
	return key + " = " + value
}

// ApplyConfig sets fs's flags from settings, read from file, leaving
// alone every flag that the command line already set (so it overrides
// the file). A key that names no flag of fs, or one of reserved (the
// flags that make no sense in a file), is an error naming it and its line.
func ApplyConfig(fs *pflag.FlagSet, file string, settings []Setting, reserved ...string) error {
	fromArgs := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { fromArgs[f.Name] = true })
	firstLine := map[string]int{}
	for _, s := range settings {
		f := fs.Lookup(s.Key)
		if f == nil || slices.Contains(reserved, s.Key) {
			return &ConfigError{File: file, Line: s.Line, Key: s.Key, Err: ErrUnknownKey}
		}
		_, repeatable := f.Value.(pflag.SliceValue)
		if first, seen := firstLine[s.Key]; seen && !repeatable {
			return &ConfigError{File: file, Line: s.Line, Key: s.Key, Err: fmt.Errorf("%w (first on line %d)", ErrConfigRepeated, first)}
		} else if !seen {
			firstLine[s.Key] = s.Line
		}
		if fromArgs[s.Key] {
			continue
		}
		if err := f.Value.Set(s.Value); err != nil {
			return &ConfigError{File: file, Line: s.Line, Key: s.Key, Err: err}
		}
		f.Changed = true
	}
	return nil
}

// ReadConfigFile reads the settings of the config file at path, which
// only its owner may write.
func ReadConfigFile(path string) ([]Setting, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("%s: %w (mode %04o; chmod go-w it)", path, ErrConfigWritable, st.Mode().Perm())
	}
	return ParseConfig(f, path)
}
