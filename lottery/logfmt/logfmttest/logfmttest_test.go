package logfmttest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"lotterycentral.example/lottery/logfmt"
)

// sampleVocab is the vocabulary of the sample modules below.
const sampleVocab = `package vocab

import "lotterycentral.example/lottery/logfmt"

const (
	Conectar logfmt.Action = "conectar"
	Servidor logfmt.Key    = "servidor"
	Error    logfmt.Key    = "error"
)
`

// sampleModule writes a module example.com/m, its vocabulary at vocab/ and
// files (path: source) beside it, and returns how to check it.
func sampleModule(t *testing.T, vocab string, files map[string]string) Module {
	t.Helper()
	dir := t.TempDir()
	files["go.mod"] = "module example.com/m\n\ngo 1.26\n"
	files["vocab/vocab.go"] = vocab
	for name, src := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(src), 0o644))
	}
	return Module{Path: "example.com/m", Dir: dir, Vocab: "example.com/m/vocab"}
}

// The checks catch what they are for, and only that.
func TestCheckerCatches(t *testing.T) {
	const header = "import (\n\t\"lotterycentral.example/lottery/logfmt\"\n\t\"example.com/m/vocab\"\n)\n\n" +
		"var _ = vocab.Conectar\n\nvar _ *logfmt.Logger\n\n"
	tests := []struct {
		name string
		src  string
		want bool // a violation is reported
	}{
		{"conversion to Action", `var _ = logfmt.Action("conectar")`, true},
		{"conversion to Key", `var _ = logfmt.Key("servidor").Int(1)`, true},
		{"a literal passed as the action", `func f(l *logfmt.Logger) { l.Info("conectar", logfmt.Success) }`, true},
		{"a literal passed as a key's receiver", `var _ = logfmt.Key.Str("servidor", "x")`, true},
		{"a typed constant", `const a logfmt.Action = "conectar"`, true},
		{"an untyped constant passed as the action", `const c = "conectar"
func f(l *logfmt.Logger) { l.Info(c, logfmt.Success) }`, true},
		{"a table's field", `var _ = []struct{ a logfmt.Action }{{"conectar"}}`, true},
		{"a map's key", `var _ = map[logfmt.Key]int{"servidor": 1}`, true},
		{"a returned literal", `func g() logfmt.Action { return "conectar" }`, true},
		{"an action built from the vocabulary", `var _ = vocab.Conectar + "_x"`, true},
		{"the vocabulary's own", `func f(l *logfmt.Logger) { l.Info(vocab.Conectar, logfmt.Success, vocab.Servidor.Str("x:1")) }`, false},
		{"a line's text", `var _ = vocab.Conectar.Line(logfmt.Fail, vocab.Error.Str("boom"))`, false},
		{"a variable of the vocabulary's", `var a = vocab.Conectar
var _ = a.Line("")`, false},
		{"a line's text as a string", `var _ = "action: conectar | result: success"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, file := range []struct{ name, pkg string }{
				{"x/x.go", "x"},
				{"x/x_test.go", "x"},        // a test in the package
				{"x/ext_test.go", "x_test"}, // an external test
				{"x.go", "m"},               // the module's root package
				{"cmd/y/main.go", "main"},   // a command
				{"x/tagged.go", "x"},        // a file behind a build tag
			} {
				src := "package " + file.pkg + "\n\n" + header + tt.src + "\n"
				if file.name == "x/tagged.go" {
					src = "//go:build docker\n\n" + src
				}
				m := sampleModule(t, sampleVocab, map[string]string{file.name: src})
				r, err := check(m)
				require.NoError(t, err)
				assert.Equal(t, tt.want, len(r.violations) > 0, "%s: %v", file.name, r.violations)
				if tt.want && len(r.violations) > 0 {
					assert.Contains(t, r.violations[0], file.name+":", "names the file")
				}
				assert.GreaterOrEqual(t, r.uses, 1, "%s: the vocabulary's use in the header", file.name)
			}
		})
	}
}

func TestCheckCounts(t *testing.T) {
	m := sampleModule(t, sampleVocab, map[string]string{
		"a/a.go": `package a

import (
	"lotterycentral.example/lottery/logfmt"
	"example.com/m/vocab"
)

func f(l *logfmt.Logger) { l.Info(vocab.Conectar, logfmt.Success, vocab.Servidor.Str("x"), vocab.Error.Any(nil)) }
`,
		// Skipped, as the go command skips them.
		"testdata/t.go":  `package t; import "lotterycentral.example/lottery/logfmt"; var _ = logfmt.Action("x")`,
		"_old/o.go":      `package o; import "lotterycentral.example/lottery/logfmt"; var _ = logfmt.Action("x")`,
		"nested/go.mod":  "module example.com/nested\n",
		"nested/n/n.go":  `package n; import "lotterycentral.example/lottery/logfmt"; var _ = logfmt.Action("x")`,
		"vocab/extra.go": `package vocab; const Extra logfmt.Key = "extra"`, // missing import: a type error, ignored
	})
	r, err := check(m)
	require.NoError(t, err)
	assert.Empty(t, r.violations)
	assert.Empty(t, r.duplicates)
	assert.Equal(t, 3, r.constants)
	assert.Equal(t, 3, r.uses)
}

func TestCheckDuplicates(t *testing.T) {
	m := sampleModule(t, sampleVocab+"\nconst Otro logfmt.Action = \"conectar\"\n", map[string]string{"a/a.go": "package a\n"})
	r, err := check(m)
	require.NoError(t, err)
	assert.Equal(t, []string{`Action "conectar": Conectar, Otro`}, r.duplicates)
}

func TestCheckRefusesAWrongModule(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Module)
		want string
	}{
		{"another module's path", func(m *Module) { m.Path = "example.com/other"; m.Vocab = "example.com/other/vocab" },
			"declares the module example.com/m"},
		{"no go.mod", func(m *Module) { m.Dir = filepath.Join(m.Dir, "vocab") }, "go.mod"},
		{"a vocabulary outside the module", func(m *Module) { m.Vocab = "example.com/vocab" }, "not a package of the module"},
		{"no vocabulary there", func(m *Module) { m.Vocab = "example.com/m/nothing" }, "no Go files"},
		{"nothing set", func(m *Module) { *m = Module{} }, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sampleModule(t, sampleVocab, map[string]string{"a/a.go": "package a\n"})
			tt.edit(&m)
			_, err := check(m)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestDuplicatesCatches(t *testing.T) {
	tests := []struct {
		name  string
		decls string
		want  []string
	}{
		{"all distinct", `A Action = "a"; B Action = "b"; K Key = "k"`, nil},
		{"two actions", `A Action = "a"; B Action = "a"`, []string{`Action "a": A, B`}},
		{"two keys", `K Key = "k"; L Key = "k"; M Key = "m"`, []string{`Key "k": K, L`}},
		{"an action and a key", `A Action = "tls"; K Key = "tls"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fset := token.NewFileSet()
			src := "package v\n\ntype Action string\n\ntype Key string\n\nconst (\n" +
				strings.ReplaceAll(tt.decls, "; ", "\n") + "\n)\n"
			f, err := parser.ParseFile(fset, "v.go", src, 0)
			require.NoError(t, err)
			pkg, err := (&types.Config{}).Check("v", fset, []*ast.File{f}, nil)
			require.NoError(t, err)
			assert.Equal(t, tt.want, duplicatesOf(pkg, pkg.Path()))
		})
	}
}

func TestPackageName(t *testing.T) {
	for path, want := range map[string]string{
		"math/rand/v2": "rand", "github.com/sirupsen/logrus": "logrus", "v2": "v2", "example.com/m": "m",
	} {
		assert.Equal(t, want, packageName(path), path)
	}
}

// The matchers are the line's own text, built by logfmt.
func TestMatchers(t *testing.T) {
	a := logfmt.Action("sorteo")
	line := a.Line(logfmt.Fail, logfmt.Key("k").Int(1), logfmt.Key("j").Str("x"))
	assert.True(t, strings.HasPrefix(line, AnyLine(a)), "%q does not start with %q", line, AnyLine(a))
	assert.Equal(t, "action: sorteo |", AnyLine(a))
	assert.Contains(t, line, AnyFail)
	assert.NotContains(t, a.Line(logfmt.Success), AnyFail)
	assert.Contains(t, line, Fields(logfmt.Key("k").Int(1), logfmt.Key("j").Str("x")))
}

// A glossary must show each name in backquotes, not merely contain its letters.
func TestMissingFromGlossary(t *testing.T) {
	doc := "| `sorteo` | the draw |\nthe agencia key, unquoted"
	assert.Equal(t, []string{"agencia"}, missingFrom(doc, []string{"agencia", "sorteo"}))
	assert.Empty(t, missingFrom(doc, []string{"sorteo"}))
}
