package central

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"lotterycentral.example/protocol/identity"
	"lotterycentral.example/server/internal/config"
	"lotterycentral.example/server/internal/metrics"
)

// connections are the central's sessions: the Server's mu guards them (and
// each session's leaf), but for wg, which counts their goroutines.
type connections struct {
	sessions map[*session]struct{}
	owners   map[int]*session // the one live session of each identified agency
	// Connections that have not completed HELLO, in total and by source IP:
	// a flood of silent sockets must not keep identified agencies out.
	unidentified int
	bySource     map[string]int
	// barred are the agencies an exclusion is under way for: no session may
	// claim them until it is journaled or failed (exclude.go).
	barred map[int]bool
	wg     sync.WaitGroup
}

func newConnections() *connections {
	return &connections{sessions: make(map[*session]struct{}), owners: make(map[int]*session), bySource: make(map[string]int),
		barred: make(map[int]bool)}
}

// Why claim refused an agency; both are worth a retry.
var (
	errAgencyBusy = errors.New("is already connected")
	errExcluding  = errors.New("is being excluded by the operator")
)

// full says which cap a new connection from source would pass, and the
// metrics reason; "" when it may be served.
func (c *connections) full(cfg config.Config, source string) (limit, reason string) {
	switch {
	case len(c.sessions) >= cfg.MaxConnections:
		return fmt.Sprintf("the central serves at most %d connections", cfg.MaxConnections), metrics.RefusedMaxConnections
	case c.unidentified >= cfg.MaxUnidentified:
		return fmt.Sprintf("at most %d connections may be waiting to identify", cfg.MaxUnidentified), metrics.RefusedMaxUnidentified
	case c.bySource[source] >= cfg.MaxUnidentifiedPerSource:
		return fmt.Sprintf("at most %d connections from one address may be waiting to identify", cfg.MaxUnidentifiedPerSource),
			metrics.RefusedMaxPerSource
	}
	return "", ""
}

// add counts a new session, unidentified, and its goroutine.
func (c *connections) add(sess *session) {
	c.sessions[sess] = struct{}{}
	c.unidentified++
	c.bySource[sess.source]++
	c.wg.Add(1)
}

// identified takes sess out of the unidentified counts, once.
func (c *connections) identified(sess *session) {
	if !sess.unidentified {
		return
	}
	sess.unidentified = false
	c.unidentified--
	if c.bySource[sess.source]--; c.bySource[sess.source] <= 0 {
		delete(c.bySource, sess.source)
	}
}

// claim binds agency to sess; see Server.claim.
func (c *connections) claim(agency int, sess *session, takeOver bool) (old *session, err error) {
	if c.barred[agency] {
		return nil, errExcluding
	}
	old = c.owners[agency]
	if old != nil && !takeOver {
		return nil, errAgencyBusy
	}
	c.owners[agency] = sess
	return old, nil
}

// bar keeps new sessions from claiming agency and returns its live session,
// if any; ok is false when an exclusion of it is under way already.
func (c *connections) bar(agency int) (owner *session, ok bool) {
	if c.barred[agency] {
		return nil, false
	}
	c.barred[agency] = true
	return c.owners[agency], true
}

// unbar lets sessions claim agency again.
func (c *connections) unbar(agency int) { delete(c.barred, agency) }

// remove forgets a session that ended.
func (c *connections) remove(sess *session) {
	c.identified(sess)
	delete(c.sessions, sess)
	if c.owners[sess.agency] == sess {
		delete(c.owners, sess.agency)
	}
}

// revokedBy returns the sessions whose verified certificate is on list, and
// the agencies those certificates name, ascending.
func (c *connections) revokedBy(list *identity.Revocations) (cut []*session, agencies []int) {
	for sess := range c.sessions {
		if !list.Revoked(sess.leaf) {
			continue
		}
		cut = append(cut, sess)
		if n, err := identity.AgencyOf(sess.leaf); err == nil && !slices.Contains(agencies, n) {
			agencies = append(agencies, n)
		}
	}
	slices.Sort(agencies)
	return cut, agencies
}

// list returns every session.
func (c *connections) list() []*session {
	out := make([]*session, 0, len(c.sessions))
	for sess := range c.sessions {
		out = append(out, sess)
	}
	return out
}
