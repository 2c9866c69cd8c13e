package vocab_test

import (
	"testing"

	"lotterycentral.example/lottery/logfmt/logfmttest"
)

// Each action, and each key, is declared once, and every action and key the
// central and its commands log, or their tests wait for, comes from this
// vocabulary: the tests' own files (build-tagged ones too) are checked as well;
// docs/operations.md explains every name.
func TestVocabulary(t *testing.T) {
	logfmttest.CheckVocabulary(t, logfmttest.Module{
		Path:         "lotterycentral.example/server",
		Dir:          "../..", // this package is internal/vocab
		Vocab:        "lotterycentral.example/server/internal/vocab",
		MinConstants: 60,
		MinUses:      300,
		Glossary:     "../../../docs/operations.md", // every name explained to an operator
	})
}
