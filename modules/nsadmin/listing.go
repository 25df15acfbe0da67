package nsadmin

import (
	"bufio"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// MaxLimit is the largest page GET /netns/listeners?limit=N gives.
const MaxLimit = 10000

// query is a parsed GET /netns/listeners request.
type query struct {
	kernel bool
	limit  int     // 0: everything
	after  *cursor // nil: from the start
	netns  string  // a path.Match glob of Namespace; "": every namespace
	set    string  // a set address; "": sockets in and outside sets
}

func parseQuery(v url.Values) (query, error) {
	var q query
	for k := range v {
		switch k {
		case "connections", "limit", "after", "netns", "set":
		default:
			return q, fmt.Errorf("unknown parameter %q: want connections, limit, after, netns or set", k)
		}
		if len(v[k]) > 1 {
			return q, fmt.Errorf("parameter %q given %d times", k, len(v[k]))
		}
	}
	switch c := v.Get("connections"); c {
	case "", "tracked":
	case "kernel":
		q.kernel = true
	default:
		return q, fmt.Errorf("connections=%q: want tracked (the default) or kernel", c)
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxLimit {
			return q, fmt.Errorf("limit=%q: want a whole number from 1 to %d", l, MaxLimit)
		}
		q.limit = n
	}
	if a := v.Get("after"); a != "" {
		c, err := decodeCursor(a)
		if err != nil {
			return q, fmt.Errorf("after=%q: not a next cursor of this endpoint: %w", a, err)
		}
		q.after = &c
	}
	if g := v.Get("netns"); g != "" {
		if _, err := path.Match(g, ""); err != nil {
			return q, fmt.Errorf("netns=%q: %w", g, err)
		}
		q.netns = g
	}
	q.set = v.Get("set")
	return q, nil
}

// cursor is the position of one entry in the listing order: every
// listener by (namespace, network, address, namespace device and inode),
// then every waiting namespace by (namespace, set). It goes over the wire
// as unpadded URL-safe base64 of its JSON.
type cursor struct {
	Waiting   bool   `json:"w,omitempty"`
	Namespace string `json:"n"`
	Network   string `json:"t,omitempty"`
	Address   string `json:"a,omitempty"`
	Dev       uint64 `json:"d,omitempty"`
	Ino       uint64 `json:"i,omitempty"`
	Set       string `json:"s,omitempty"`
}

func (c cursor) String() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, err
	}
	return c, nil
}

func listenerCursor(li *nsnetwork.ListenerInfo) cursor {
	return cursor{Namespace: li.Namespace, Network: li.Network, Address: li.Address,
		Dev: li.NamespaceID.Dev, Ino: li.NamespaceID.Ino}
}

func waitingCursor(w *nsnetwork.WaitingInfo) cursor {
	return cursor{Waiting: true, Namespace: w.Namespace, Set: w.Set}
}

// compareCursors orders entries as the listing does; each listener and
// each waiting namespace has its own position.
func compareCursors(a, b cursor) int {
	if a.Waiting != b.Waiting {
		if a.Waiting {
			return 1
		}
		return -1
	}
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Network, b.Network),
		cmp.Compare(a.Address, b.Address), cmp.Compare(a.Dev, b.Dev), cmp.Compare(a.Ino, b.Ino),
		cmp.Compare(a.Set, b.Set))
}

func (q *query) matchListener(li *nsnetwork.ListenerInfo) bool {
	if q.netns != "" {
		if ok, _ := path.Match(q.netns, li.Namespace); !ok {
			return false
		}
	}
	return q.set == "" || slices.Contains(li.Sets, q.set)
}

func (q *query) matchWaiting(w *nsnetwork.WaitingInfo) bool {
	if q.netns != "" {
		if ok, _ := path.Match(q.netns, w.Namespace); !ok {
			return false
		}
	}
	return q.set == "" || w.Set == q.set
}

// page is what one response holds: indexes into the listing's sorted
// listeners and waiting namespaces, and the cursor of the next page.
type page struct {
	listeners, waiting []int
	next               string
}

// paginate picks the entries after q.after that match q's filters, at
// most q.limit of them (all without a limit), in listing order.
func paginate(q *query, lis []nsnetwork.ListenerInfo, waits []nsnetwork.WaitingInfo) page {
	var p page
	i, j := 0, 0
	if q.after != nil {
		i, _ = slices.BinarySearchFunc(lis, *q.after, func(li nsnetwork.ListenerInfo, c cursor) int {
			if compareCursors(listenerCursor(&li), c) <= 0 {
				return -1
			}
			return 1
		})
		j, _ = slices.BinarySearchFunc(waits, *q.after, func(w nsnetwork.WaitingInfo, c cursor) int {
			if compareCursors(waitingCursor(&w), c) <= 0 {
				return -1
			}
			return 1
		})
	}
	n := 0
	full := func() bool { return q.limit > 0 && n == q.limit }
	var last cursor
	for ; i < len(lis); i++ {
		if !q.matchListener(&lis[i]) {
			continue
		}
		if full() {
			p.next = last.String()
			return p
		}
		p.listeners = append(p.listeners, i)
		last = listenerCursor(&lis[i])
		n++
	}
	for ; j < len(waits); j++ {
		if !q.matchWaiting(&waits[j]) {
			continue
		}
		if full() {
			p.next = last.String()
			return p
		}
		p.waiting = append(p.waiting, j)
		last = waitingCursor(&waits[j])
		n++
	}
	return p
}

func (a *Admin) listeners(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed")}
	}
	q, err := parseQuery(r.URL.Query())
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	lis, waits := nsnetwork.Listeners()
	// The cursor order: Listeners sorts by all of it but the device.
	slices.SortStableFunc(lis, func(a, b nsnetwork.ListenerInfo) int {
		return compareCursors(listenerCursor(&a), listenerCursor(&b))
	})
	slices.SortStableFunc(waits, func(a, b nsnetwork.WaitingInfo) int {
		return compareCursors(waitingCursor(&a), waitingCursor(&b))
	})
	p := paginate(&q, lis, waits)

	// Stream the body entry by entry: it has the shape of Response, but
	// no encoded copy of the whole listing is ever held.
	w.Header().Set("Content-Type", "application/json")
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	bw.WriteString(`{"listeners":[`)
	for k, i := range p.listeners {
		if k > 0 {
			bw.WriteByte(',')
		}
		li := &lis[i]
		if q.kernel {
			if n, ok := nsnetwork.KernelOpenConns(li.Socket); ok {
				li.OpenConns = n
			}
		}
		enc.Encode(listenerEntry(li))
	}
	bw.WriteString(`],"waiting":[`)
	for k, j := range p.waiting {
		if k > 0 {
			bw.WriteByte(',')
		}
		enc.Encode(Waiting(waits[j]))
	}
	bw.WriteByte(']')
	if p.next != "" {
		bw.WriteString(`,"next":`)
		enc.Encode(p.next)
	}
	bw.WriteString("}\n")
	// A write error means the client went away: there is no one to
	// tell, and the status line has been sent.
	_ = bw.Flush()
	return nil
}

func listenerEntry(li *nsnetwork.ListenerInfo) Listener {
	l := Listener{
		Namespace: li.Namespace, Inode: li.NamespaceID.Ino, ID: li.NamespaceID.String(),
		Network: li.Network, Address: li.Address, Since: li.Since, Handles: li.Handles,
		Sets: li.Sets, Accepted: li.Accepted, Errors: li.Errors,
		PacketsIn: li.PacketsIn, PacketsOut: li.PacketsOut, BytesIn: li.BytesIn, BytesOut: li.BytesOut,
	}
	if li.OpenConns >= 0 {
		n := li.OpenConns
		l.OpenConnections = &n
	}
	return l
}
