package central

import (
	"lotterycentral.example/server/internal/admin"
	"lotterycentral.example/server/internal/draw"
	"lotterycentral.example/server/internal/ledger"
	"lotterycentral.example/server/internal/metrics"
)

// maxRows is how many agencies the status page lists; past it, the page
// lists the agencies with bets or a connection, up to maxRows, and says how
// many it left out.
const maxRows = 1000

// snapshot is the central's state at one moment for the operator's eyes
// (the status page, /metrics), read once from each owner: the round from
// the ledger, the draw from the barrier, the connections from the server.
// None of them queues behind the bets file.
type snapshot struct {
	round       ledger.Round // no agencies until recovery opened the ledger
	agencies    int
	draw        draw.Snapshot
	connected   map[int]*session // each agency's live session: its fields read are set before it is claimed
	connections int
	closing     bool
}

func (s *Server) snapshot() snapshot {
	sn := snapshot{agencies: s.cfg.Agencies, draw: s.barrier.Snapshot()}
	if l := s.recovery.opened(); l != nil {
		sn.round = l.Round()
	} else {
		sn.round.Agencies = make([]ledger.Agency, s.cfg.Agencies)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sn.closing = s.stopping()
	sn.connections = len(s.conns.sessions)
	sn.connected = make(map[int]*session, len(s.conns.owners))
	for a, sess := range s.conns.owners {
		sn.connected[a] = sess
	}
	return sn
}

// Status is the central's state for the status page.
func (s *Server) Status() admin.Status { return s.snapshot().status() }

func (sn snapshot) status() admin.Status {
	pending, excluded := sn.round.Pending(), sn.round.ExcludedAgencies()
	st := admin.Status{Agencies: sn.agencies, Pending: pending, PendingText: draw.FormatAgencies(pending, pendingListed),
		Excluded: excluded, ExcludedText: draw.FormatAgencies(excluded, pendingListed),
		Parked: len(sn.draw.Parked), Drawn: sn.draw.Drawn,
		Closing: sn.draw.Closing || sn.closing, Connections: sn.connections, DrawAt: sn.draw.At, DrawTook: sn.draw.Took}
	if sn.round.Complete() {
		st.Digest = sn.round.Digest.String()
	}
	parked := make(map[int]bool, len(sn.draw.Parked))
	for _, a := range sn.draw.Parked {
		parked[a] = true
	}
	for i, a := range sn.round.Agencies {
		id := i + 1
		sess := sn.connected[id]
		if sn.agencies > maxRows && a.Stored == 0 && !a.Finished && a.Excluded == nil && sess == nil {
			continue
		}
		if len(st.Rows) == maxRows {
			break
		}
		row := admin.Agency{ID: id, Stored: a.Stored, Connected: sess != nil, Finished: a.Finished,
			Parked: parked[id], Answered: sn.draw.Answered[id], Winners: -1}
		if a.Finished {
			row.Digest = a.Digest.String()
		}
		if sess != nil {
			row.ConnectedAt, row.StoredAtConnect = sess.helloAt, sess.helloStored
		}
		if e := a.Excluded; e != nil {
			row.Excluded = &admin.Exclusion{At: e.At, Operator: e.Operator, Reason: e.Reason}
		} else if sn.draw.Drawn {
			row.Winners = a.Winners // an excluded agency's are not drawn
		}
		st.Rows = append(st.Rows, row)
	}
	st.Unlisted = sn.agencies - len(st.Rows)
	return st
}

func (sn snapshot) metrics() metrics.Round {
	m := metrics.Round{Agencies: make([]metrics.Agency, len(sn.round.Agencies)), Finished: sn.round.Finished,
		Excluded: sn.round.Excluded, Parked: len(sn.draw.Parked), Drawn: sn.draw.Drawn, DrawAt: sn.draw.At,
		DrawTook: sn.draw.Took}
	for i, a := range sn.round.Agencies {
		m.Agencies[i] = metrics.Agency{Stored: a.Stored, Batches: a.Batches, Winners: a.Winners, Excluded: a.Excluded != nil}
	}
	return m
}
