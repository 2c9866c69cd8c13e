package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestReportPath(t *testing.T) {
	repo := filepath.Join("some", "repo")
	tests := []struct {
		name  string
		quick bool
		out   string
		want  string
	}{
		{"full run writes BENCHMARKS.md", false, "", filepath.Join(repo, "BENCHMARKS.md")},
		{"quick run writes nothing", true, "", "-"},
		{"quick run with -out writes there", true, "quick.md", "quick.md"},
		{"full run with -out -", false, "-", "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, reportPath(options{quick: tt.quick, out: tt.out}, repo))
		})
	}
}
