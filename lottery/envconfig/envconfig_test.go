package envconfig

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery/logfmt"
)

type sample struct {
	ID      int           `env:"T_ID,required" help:"the agency number (1 or more)"`
	Port    int           `env:"T_PORT" envDefault:"12345" help:"port to listen on"`
	Small   uint8         `env:"T_SMALL" envDefault:"1"`
	Timeout time.Duration `env:"T_TIMEOUT" envDefault:"30s" help:"how long to wait"`
	Verbose bool          `env:"T_VERBOSE"`
	Name    string        `env:"T_NAME" envDefault:"central"`
	Ignored string
}

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		want     sample
		wantErr  string  // the whole message, exactly
		wantKind []error // errors.Is each
		wantVars []string
	}{
		{"defaults", map[string]string{"T_ID": "3"},
			sample{ID: 3, Port: 12345, Small: 1, Timeout: 30 * time.Second, Name: "central"}, "", nil, nil},
		{"everything set", map[string]string{"T_ID": "7", "T_PORT": "1", "T_SMALL": "9", "T_TIMEOUT": "2m",
			"T_VERBOSE": "true", "T_NAME": "x"},
			sample{ID: 7, Port: 1, Small: 9, Timeout: 2 * time.Minute, Verbose: true, Name: "x"}, "", nil, nil},
		{"empty counts as unset", map[string]string{"T_ID": "3", "T_PORT": "", "T_NAME": ""},
			sample{ID: 3, Port: 12345, Small: 1, Timeout: 30 * time.Second, Name: "central"}, "", nil, nil},
		{"required and unset", map[string]string{},
			sample{}, "T_ID: required, the agency number (1 or more)", []error{ErrRequired}, []string{"T_ID"}},
		{"required and empty", map[string]string{"T_ID": ""},
			sample{}, "T_ID: required, the agency number (1 or more)", []error{ErrRequired}, []string{"T_ID"}},
		{"not a whole number", map[string]string{"T_ID": "1", "T_PORT": "abc"},
			sample{}, `T_PORT: "abc" is not a whole number`, []error{ErrSyntax}, []string{"T_PORT"}},
		{"a fraction is not a whole number", map[string]string{"T_ID": "1.5"},
			sample{}, `T_ID: "1.5" is not a whole number`, []error{ErrSyntax}, []string{"T_ID"}},
		{"too large for its type", map[string]string{"T_ID": "1", "T_SMALL": "300"},
			sample{}, `T_SMALL: "300" is out of range`, []error{ErrSyntax}, []string{"T_SMALL"}},
		{"not a duration", map[string]string{"T_ID": "1", "T_TIMEOUT": "soon"},
			sample{}, `T_TIMEOUT: "soon" is not a duration (e.g. 30s, 2m)`, []error{ErrSyntax}, []string{"T_TIMEOUT"}},
		{"a duration needs its unit", map[string]string{"T_ID": "1", "T_TIMEOUT": "30"},
			sample{}, `T_TIMEOUT: "30" is not a duration (e.g. 30s, 2m)`, []error{ErrSyntax}, []string{"T_TIMEOUT"}},
		{"not a bool", map[string]string{"T_ID": "1", "T_VERBOSE": "yes please"},
			sample{}, `T_VERBOSE: "yes please" is not true or false`, []error{ErrSyntax}, []string{"T_VERBOSE"}},
		{"every mistake on one line", map[string]string{"T_PORT": "abc", "T_TIMEOUT": "soon"},
			sample{}, `T_ID: required, the agency number (1 or more); T_PORT: "abc" is not a whole number; ` +
				`T_TIMEOUT: "soon" is not a duration (e.g. 30s, 2m)`,
			[]error{ErrRequired, ErrSyntax}, []string{"T_ID", "T_PORT", "T_TIMEOUT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse[sample](fromMap(tt.env))
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			require.EqualError(t, err, tt.wantErr)
			for _, k := range tt.wantKind {
				assert.ErrorIs(t, err, k)
			}
			assert.Equal(t, tt.wantVars, Vars(err))
			assert.NotContains(t, err.Error(), "of type", "a Go type leaked into the message")
		})
	}
}

func TestParseKeepsWhatItRead(t *testing.T) {
	got, err := Parse[sample](fromMap(map[string]string{"T_ID": "4", "T_PORT": "abc"}))
	require.ErrorIs(t, err, ErrSyntax)
	assert.Equal(t, 4, got.ID, "the fields that read are kept for validation")
}

func TestJoin(t *testing.T) {
	portSyntax := &VarError{Var: "P", Value: "abc", Reason: "is not a whole number", Kind: ErrSyntax}
	other := errors.New("something else")
	tests := []struct {
		name string
		errs []error
		want string
	}{
		{"nothing", []error{nil, nil}, ""},
		{"one", []error{Invalid("A", 0, "must be 1 or more")}, `A: "0" must be 1 or more`},
		{"one per variable, the first kept", []error{Errors{portSyntax}, Invalid("P", 0, "must be between 1 and 65535")},
			`P: "abc" is not a whole number`},
		{"flattened, in order", []error{Errors{Required("A", "the id"), other}, Invalid("B", "x", "is bad")},
			`A: required, the id; something else; B: "x" is bad`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Join(tt.errs...)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
		})
	}
	assert.ErrorIs(t, Join(Errors{portSyntax}, other), other)
}

func TestAllOrNone(t *testing.T) {
	tests := []struct {
		name     string
		pairs    []string
		want     string
		wantVars []string
	}{
		{"none set", []string{"C", "", "K", "", "CA", ""}, "", nil},
		{"all set", []string{"C", "c.pem", "K", "k.pem", "CA", "ca.pem"}, "", nil},
		{"one missing", []string{"C", "c.pem", "K", "", "CA", "ca.pem"},
			"K: required when C is set (set all of C, K, CA, or none)", []string{"K"}},
		{"only the last set", []string{"C", "", "K", "", "CA", "ca.pem"},
			"C: required when CA is set (set all of C, K, CA, or none); K: required when CA is set (set all of C, K, CA, or none)",
			[]string{"C", "K"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := AllOrNone(tt.pairs...)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
			require.ErrorIs(t, err, ErrRequired)
			assert.Equal(t, tt.wantVars, Vars(err))
		})
	}
}

func TestReadable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o600))
	locked := filepath.Join(dir, "locked.pem")
	require.NoError(t, os.WriteFile(locked, []byte("x"), 0o000))
	tests := []struct {
		name string
		path string
		want string // "" for no error
	}{
		{"a readable file", file, ""},
		{"missing", filepath.Join(dir, "nope.pem"), `V: "` + filepath.Join(dir, "nope.pem") + `" cannot be read (no such file or directory)`},
		{"a directory", dir, `V: "` + dir + `" is a directory, not a file`},
		{"no permission", locked, `V: "` + locked + `" cannot be read (permission denied)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.path == locked && os.Geteuid() == 0 {
				t.Skip("root reads any file")
			}
			err := Readable("V", tt.path)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func TestWritable(t *testing.T) {
	dir := t.TempDir()
	readOnly := filepath.Join(dir, "ro")
	require.NoError(t, os.Mkdir(readOnly, 0o500))
	t.Cleanup(func() { os.Chmod(readOnly, 0o700) })
	aFile := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(aFile, nil, 0o600))
	lockedFile := filepath.Join(dir, "locked.csv")
	require.NoError(t, os.WriteFile(lockedFile, nil, 0o400))
	tests := []struct {
		name     string
		path     string
		want     string // "" for no error
		needUser bool   // root writes anywhere
	}{
		{"a new file in a writable directory", filepath.Join(dir, "bets.csv"), "", false},
		{"an existing writable file", aFile, "", false},
		{"missing directory", filepath.Join(dir, "nope", "bets.csv"),
			`V: "` + filepath.Join(dir, "nope", "bets.csv") + `" is in a directory that does not exist (` + filepath.Join(dir, "nope") + `)`, false},
		{"a file where the directory should be", filepath.Join(aFile, "bets.csv"),
			`V: "` + filepath.Join(aFile, "bets.csv") + `" is in ` + aFile + `, which is not a directory`, false},
		{"read-only directory", filepath.Join(readOnly, "bets.csv"),
			`V: "` + filepath.Join(readOnly, "bets.csv") + `" is in a directory that is not writable (` + readOnly + `: permission denied)`, true},
		{"read-only file", lockedFile, `V: "` + lockedFile + `" cannot be written (permission denied)`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needUser && os.Geteuid() == 0 {
				t.Skip("root writes anywhere")
			}
			before, err := os.ReadDir(filepath.Dir(tt.path))
			if err != nil {
				before = nil
			}
			err = Writable("V", tt.path)
			if tt.want == "" {
				require.NoError(t, err)
			} else {
				require.EqualError(t, err, tt.want)
				require.ErrorIs(t, err, ErrInvalid)
			}
			after, _ := os.ReadDir(filepath.Dir(tt.path))
			assert.Equal(t, len(before), len(after), "the check left a file behind")
		})
	}
}

func TestFail(t *testing.T) {
	var buf bytes.Buffer
	err := Join(Invalid("SERVER_PORT", "abc", "is not a whole number"), Required("CLI_ID", "the agency number"))
	code := Fail(&buf, logfmt.Action("config").Line(logfmt.Fail, logfmt.Key("error").Any(err)))
	assert.Equal(t, ExitCode, code)
	assert.Regexp(t, `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ERROR    action: config \| result: fail \| `+
		`error: SERVER_PORT: "abc" is not a whole number; CLI_ID: required, the agency number\n$`, buf.String())
}

func TestUsage(t *testing.T) {
	got := Usage[sample]()
	assert.Equal(t, ""+
		"  T_ID       (required)  the agency number (1 or more)\n"+
		"  T_PORT     12345       port to listen on\n"+
		"  T_SMALL    1           \n"+
		"  T_TIMEOUT  30s         how long to wait\n"+
		"  T_VERBOSE  -           \n"+
		"  T_NAME     central     \n", got)
}

// Vars lists the variables err names, in order.
func Vars(err error) []string {
	var vars []string
	var walk func(err error)
	walk = func(err error) {
		var ve *VarError
		switch e := err.(type) {
		case Errors:
			for _, x := range e {
				walk(x)
			}
		default:
			if errors.As(err, &ve) {
				vars = append(vars, ve.Var)
			}
		}
	}
	walk(err)
	return vars
}

// fromMap reads variables from m.
func fromMap(m map[string]string) Getenv {
	return func(name string) string { return m[name] }
}
