package vocab_test

import (
	"testing"

	"lotterycentral.example/lottery/logfmt/logfmttest"
)

// Each action, and each key, is declared once, and every action and key the
// agency logs, or its tests wait for, comes from this vocabulary;
// docs/operations.md explains every name.
func TestVocabulary(t *testing.T) {
	logfmttest.CheckVocabulary(t, logfmttest.Module{
		Path:         "lotterycentral.example/client",
		Dir:          "../..", // this package is internal/vocab
		Vocab:        "lotterycentral.example/client/internal/vocab",
		MinConstants: 10,
		MinUses:      50,
		Glossary:     "../../../docs/operations.md", // every name explained to an operator
	})
}
