// Package envconfig reads a binary's configuration from environment
// variables and words its errors for the person who set them: every error
// names the variable, the value it held and what is accepted,
//
//	SERVER_PORT: "abc" is not a whole number; CLI_LOG_LEVEL: "LOUD" must be one of DEBUG, INFO, WARN, ERROR
//
// never a Go field or type. The central and the agencies share it, and Fail
// reports a bad configuration the same way for both.
//
// A configuration is a flat struct whose fields carry the tags of
// github.com/caarlos0/env (`env:"NAME"`, `env:"NAME,required"`, `envDefault`)
// and a `help` tag that says what the variable means; Usage lists them, and
// UnknownVars finds the variables that look like them and are none (typos).
package envconfig

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/sirupsen/logrus"

	"lotterycentral.example/lottery/logfmt"
)

// ExitCode is the exit status of a binary whose configuration or command
// line is wrong.
const ExitCode = 2

// The kinds of configuration error, for errors.Is.
var (
	// ErrRequired: the variable is unset (or empty) and has no default.
	ErrRequired = errors.New("required")
	// ErrSyntax: the value cannot be read as its type (a word for a number).
	ErrSyntax = errors.New("unreadable value")
	// ErrInvalid: the value reads but is not accepted (out of range, a
	// missing directory, a partial set of TLS files).
	ErrInvalid = errors.New("value not accepted")
)

// VarError is what is wrong with one variable.
type VarError struct {
	Var    string // the environment variable, e.g. SERVER_PORT
	Value  string // what it held; "" when it was unset
	Reason string // what is wrong and what is accepted, e.g. "is not a whole number"
	Kind   error  // ErrRequired, ErrSyntax or ErrInvalid
}

// Error is `VAR: "value" reason`, or `VAR: reason` for an unset variable.
func (e *VarError) Error() string {
	if e.Value == "" {
		return e.Var + ": " + e.Reason
	}
	return fmt.Sprintf("%s: %q %s", e.Var, e.Value, e.Reason)
}

// Unwrap returns the error's kind.
func (e *VarError) Unwrap() error { return e.Kind }

// Invalid reports that variable name holds value (printed with %v), which is
// not accepted: reason says what is, e.g. "must be between 0 and 65535".
func Invalid(name string, value any, reason string) *VarError {
	return &VarError{Var: name, Value: fmt.Sprint(value), Reason: reason, Kind: ErrInvalid}
}

// Required reports that variable name must be set; what says what it holds.
func Required(name, what string) *VarError {
	return &VarError{Var: name, Reason: "required, " + what, Kind: ErrRequired}
}

// Errors is every problem of one configuration, printed on one line.
type Errors []error

// Error joins the problems with "; ".
func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap lets errors.Is and errors.As see every problem.
func (es Errors) Unwrap() []error { return es }

// Join gathers errors (nil, single errors or Errors) into one Errors, at most
// one per variable: a variable that could not be read is not also reported
// out of range. It returns nil when there is nothing to report.
func Join(errs ...error) error {
	var out Errors
	seen := make(map[string]bool)
	var add func(err error)
	add = func(err error) {
		switch e := err.(type) {
		case nil:
		case Errors:
			for _, x := range e {
				add(x)
			}
		case *VarError:
			if !seen[e.Var] {
				seen[e.Var] = true
				out = append(out, e)
			}
		default:
			out = append(out, err)
		}
	}
	for _, err := range errs {
		add(err)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Getenv reads one variable, the way os.Getenv does. An empty value counts
// as unset: the default applies.
type Getenv func(name string) string

// field is one configuration variable.
type field struct {
	name     string // the Go field, as env's errors name it
	key      string // the variable
	def      string
	hasDef   bool
	required bool
	help     string
	typ      reflect.Type
}

func fields[T any]() []field {
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("envconfig: %s is not a struct", t))
	}
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, ok := sf.Tag.Lookup("env")
		if !ok || tag == "" || tag == "-" {
			continue
		}
		key, opts, _ := strings.Cut(tag, ",")
		def, hasDef := sf.Tag.Lookup("envDefault")
		fs = append(fs, field{name: sf.Name, key: key, def: def, hasDef: hasDef,
			required: strings.Contains(","+opts+",", ",required,"), help: sf.Tag.Get("help"), typ: sf.Type})
	}
	return fs
}

// Parse fills a T from the variables its fields name. On error it returns
// what it could read together with an Errors naming each variable it could
// not: callers validate the rest and Join both, so one message lists every
// mistake.
func Parse[T any](getenv Getenv) (T, error) {
	fs := fields[T]()
	environ := make(map[string]string, len(fs))
	for _, f := range fs {
		if v := getenv(f.key); v != "" {
			environ[f.key] = v
		}
	}
	cfg, err := env.ParseAsWithOptions[T](env.Options{Environment: environ})
	if err == nil {
		return cfg, nil
	}
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return cfg, Join(err)
	}
	out := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		out = append(out, explain(fs, environ, e))
	}
	return cfg, Join(out...)
}

// explain rewords one of env's errors, which name Go fields and types, in
// terms of the variable.
func explain(fs []field, environ map[string]string, err error) error {
	var (
		parse  env.ParseError
		notSet env.VarIsNotSetError
		empty  env.EmptyVarError
	)
	switch {
	case errors.As(err, &parse):
		for _, f := range fs {
			if f.name == parse.Name {
				return &VarError{Var: f.key, Value: environ[f.key], Reason: syntaxReason(f.typ, parse.Err), Kind: ErrSyntax}
			}
		}
	case errors.As(err, &notSet):
		return Required(notSet.Key, helpOf(fs, notSet.Key))
	case errors.As(err, &empty):
		return Required(empty.Key, helpOf(fs, empty.Key))
	}
	return err
}

func helpOf(fs []field, key string) string {
	for _, f := range fs {
		if f.key == key && f.help != "" {
			return f.help
		}
	}
	return "no default"
}

var durationType = reflect.TypeFor[time.Duration]()

// syntaxReason says what a value of type t looks like.
func syntaxReason(t reflect.Type, err error) string {
	if t == durationType {
		return "is not a duration (e.g. 30s, 2m)"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if errors.Is(err, strconv.ErrRange) {
			return "is out of range"
		}
		return "is not a whole number"
	case reflect.Bool:
		return "is not true or false"
	case reflect.Float32, reflect.Float64:
		return "is not a number"
	}
	return err.Error()
}

// Usage lists the variables T reads: name, default and meaning, one per line.
func Usage[T any]() string {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	for _, f := range fields[T]() {
		def := f.def
		switch {
		case f.required:
			def = "(required)"
		case !f.hasDef || def == "":
			def = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.key, def, f.help)
	}
	_ = tw.Flush()
	return sb.String()
}

// Fail writes msg, the program's line saying why its configuration cannot be
// used, at ERROR on w in the project's format,
//
//	2024-05-01 10:00:00 ERROR    action: config | result: fail | error: SERVER_PORT: "abc" is not a whole number
//
// and returns ExitCode for the binary to exit with.
func Fail(w io.Writer, msg string) int {
	log := logrus.New()
	log.SetFormatter(logfmt.Formatter{})
	log.SetOutput(w)
	log.Error(msg)
	return ExitCode
}

// AllOrNone checks a group of variables that only work together (a
// certificate, its key and a CA), given as name, value pairs: if one is set,
// all must be. Each one missing is an error naming the first one set and the
// whole group.
func AllOrNone(pairs ...string) error {
	if len(pairs)%2 != 0 {
		panic("envconfig: AllOrNone wants name, value pairs")
	}
	first := ""
	var names []string
	for i := 0; i < len(pairs); i += 2 {
		names = append(names, pairs[i])
		if first == "" && pairs[i+1] != "" {
			first = pairs[i]
		}
	}
	if first == "" {
		return nil
	}
	reason := fmt.Sprintf("required when %s is set (set all of %s, or none)", first, strings.Join(names, ", "))
	var errs []error
	for i := 0; i < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			errs = append(errs, &VarError{Var: pairs[i], Reason: reason, Kind: ErrRequired})
		}
	}
	return Join(errs...)
}

// Readable checks that the file variable name points at can be opened for
// reading now, without reading it.
func Readable(name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return Invalid(name, path, "cannot be read ("+cause(err)+")")
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Invalid(name, path, "cannot be read ("+cause(err)+")")
	}
	if fi.IsDir() {
		return Invalid(name, path, "is a directory, not a file")
	}
	return nil
}

// cause is an *os.PathError's reason without the path, which the message
// already shows.
func cause(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Writable checks that a file can be created or appended at path, the value
// of variable name, without creating it: its directory exists and accepts a
// new file (one is made and removed), and the file, if it exists, opens for
// writing.
func Writable(name, path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Invalid(name, path, fmt.Sprintf("is in a directory that does not exist (%s)", dir))
	case err != nil:
		return Invalid(name, path, fmt.Sprintf("is in a directory that cannot be used (%s: %s)", dir, cause(err)))
	case !fi.IsDir():
		return Invalid(name, path, fmt.Sprintf("is in %s, which is not a directory", dir))
	}
	probe, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return Invalid(name, path, fmt.Sprintf("is in a directory that is not writable (%s: %s)", dir, cause(err)))
	}
	probe.Close()
	if err := os.Remove(probe.Name()); err != nil {
		return Invalid(name, path, fmt.Sprintf("is in a directory that is not writable (%s: %s)", dir, cause(err)))
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // created on start
	case err != nil:
		return Invalid(name, path, "cannot be written ("+cause(err)+")")
	}
	f.Close()
	return nil
}
