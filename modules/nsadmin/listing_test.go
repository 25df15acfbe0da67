package nsadmin

import (
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
	"github.com/caddy-netns/caddy-netns/modules/nsnetwork"
)

// Pages over listeners and waiting namespaces, with and without filters,
// list each matching entry exactly once and in order, whatever the limit.
func TestPaginate(t *testing.T) {
	var lis []nsnetwork.ListenerInfo
	var waits []nsnetwork.WaitingInfo
	for i := range 30 {
		ns := fmt.Sprintf("t%02d", i)
		for _, network := range []string{"tcp", "udp"} {
			li := nsnetwork.ListenerInfo{Socket: nsnetwork.Socket{Namespace: ns,
				NamespaceID: nsenter.ID{Dev: 4, Ino: uint64(1000 + i)}, Network: network, Address: ":8000"}}
			if i%3 != 0 {
				li.Sets = []string{"netns/t*/" + network + "/:8000"}
			}
			lis = append(lis, li)
		}
		if i%4 == 0 {
			waits = append(waits, nsnetwork.WaitingInfo{Set: "netns/t*/tcp/:8000", Namespace: ns + "w"})
		}
	}
	// The same name in a namespace re-created under it: two identities.
	lis = append(lis, nsnetwork.ListenerInfo{Socket: nsnetwork.Socket{Namespace: "t05",
		NamespaceID: nsenter.ID{Dev: 4, Ino: 1}, Network: "tcp", Address: ":8000"}})
	slices.SortFunc(lis, func(a, b nsnetwork.ListenerInfo) int {
		return compareCursors(listenerCursor(&a), listenerCursor(&b))
	})

	for _, filter := range []string{"", "netns=t1*", "set=netns/t*/tcp/:8000", "netns=t0*&set=netns/t*/udp/:8000", "netns=none"} {
		v, _ := url.ParseQuery(filter)
		q, err := parseQuery(v)
		if err != nil {
			t.Fatal(err)
		}
		whole := paginate(&q, lis, waits)
		if whole.next != "" {
			t.Fatalf("%s: no limit, next %q", filter, whole.next)
		}
		for limit := 1; limit <= len(lis)+len(waits)+1; limit++ {
			var gotL, gotW []int
			pages := 0
			for after := ""; ; pages++ {
				v, _ := url.ParseQuery(filter)
				v.Set("limit", fmt.Sprint(limit))
				if after != "" {
					v.Set("after", after)
				}
				q, err := parseQuery(v)
				if err != nil {
					t.Fatalf("%s limit %d: %v", filter, limit, err)
				}
				p := paginate(&q, lis, waits)
				if n := len(p.listeners) + len(p.waiting); n > limit || (p.next != "" && n != limit) {
					t.Fatalf("%s limit %d page %d: %d entries, next %q", filter, limit, pages, n, p.next)
				}
				gotL = append(gotL, p.listeners...)
				gotW = append(gotW, p.waiting...)
				if after = p.next; after == "" {
					break
				}
				if pages > len(lis)+len(waits) {
					t.Fatalf("%s limit %d: endless pages", filter, limit)
				}
			}
			if !slices.Equal(gotL, whole.listeners) || !slices.Equal(gotW, whole.waiting) {
				t.Fatalf("%s limit %d: paged listeners %v waiting %v, want %v %v",
					filter, limit, gotL, gotW, whole.listeners, whole.waiting)
			}
		}
	}
	// A cursor is a position: entries before it that go away do not
	// shift the next page.
	v, _ := url.ParseQuery("limit=10")
	q, _ := parseQuery(v)
	p := paginate(&q, lis, waits)
	after, _ := decodeCursor(p.next)
	q.after = &after
	want := paginate(&q, lis, waits)
	fewer := slices.Delete(slices.Clone(lis), 0, 5)
	got := paginate(&q, fewer, waits)
	if lis[want.listeners[0]].NamespaceID != fewer[got.listeners[0]].NamespaceID ||
		lis[want.listeners[0]].Network != fewer[got.listeners[0]].Network {
		t.Errorf("after entries before the cursor went away, the page starts at %+v, want %+v",
			fewer[got.listeners[0]].Socket, lis[want.listeners[0]].Socket)
	}
}
