//go:build docker || swarm

package main

// Commands for the tests that drive real containers (docker_test.go) and a
// real swarm (swarm_test.go): run one and record its output, line by line,
// through logtest.

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"lotterycentral.example/server/internal/logtest"
)

// dockerBound is how long any one command or wait may take before the test
// fails: it only turns a hang into a failure.
const dockerBound = 3 * time.Minute

// recorded is a command whose output (stdout and stderr, in the order written)
// is recorded line by line as it comes.
type recorded struct {
	out  *logtest.Recorder
	done chan struct{} // closed once the command exited and its output is read
	err  error         // the command's exit error, once done is closed
}

// startRecorded starts args[0] with args[1:] in dir (env nil: this process's).
// Cancelling ctx kills it.
func startRecorded(ctx context.Context, dir string, env []string, args ...string) (*recorded, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir, cmd.Env = dir, env
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	r := &recorded{out: logtest.New(), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		_ = r.out.ReadAll(pr)
	}()
	go func() {
		defer close(r.done)
		r.err = cmd.Wait()
		pw.Close()
		<-read
	}()
	return r, nil
}

// runRecorded runs args to completion within dockerBound and returns its output
// and its exit error.
func runRecorded(t *testing.T, dir string, env []string, args ...string) (*logtest.Recorder, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), dockerBound)
	defer cancel()
	r, err := startRecorded(ctx, dir, env, args...)
	if err != nil {
		return logtest.New(), err
	}
	<-r.done
	if r.err != nil {
		return r.out, fmt.Errorf("%s: %w", strings.Join(args, " "), r.err)
	}
	return r.out, nil
}

// must runs args and fails t, with their output, when they fail.
func must(t *testing.T, args ...string) *logtest.Recorder {
	t.Helper()
	out, err := runRecorded(t, "", nil, args...)
	require.NoError(t, err, "%s", out)
	return out
}

// follow records the output of args (docker logs -f, docker events) from
// now until it ends by itself or the test ends.
func follow(t *testing.T, args ...string) *logtest.Recorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := startRecorded(ctx, "", nil, args...)
	require.NoError(t, err)
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r.out
}

// dockerCmd runs docker and returns its standard output, trimmed.
func dockerCmd(args ...string) (string, error) {
	cmd := exec.Command("docker", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("docker %s: %w: %s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// docker is dockerCmd that fails the test.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := dockerCmd(args...)
	require.NoError(t, err)
	return out
}

// fields splits docker's one-per-line output.
func fields(out string) []string { return strings.Fields(out) }
