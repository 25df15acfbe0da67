package sctpapp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	caddy.RegisterModule(Admin{})
}

// Admin is the admin API module admin.api.sctp. It is not configured:
// Caddy mounts every admin.api module on its admin endpoint.
//
//	GET /sctp/associations                    the live associations, oldest first, at most 100
//	GET /sctp/associations?limit=N&after=ID   at most N (up to 1000) with an id above ID
//
// The answer is {"total": <live associations>, "associations": [...],
// "next_after": <id>}, next_after set when more follow. It also registers
// the caddy_sctp_* metrics (see collector) with the config's metrics
// registry, which the admin /metrics endpoint serves.
type Admin struct{}

// CaddyModule returns the Caddy module information.
func (Admin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.sctp",
		New: func() caddy.Module { return new(Admin) },
	}
}

// Provision registers the metrics.
func (a *Admin) Provision(ctx caddy.Context) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil
	}
	if err := reg.Register(collector{}); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return err
		}
	}
	return nil
}

// Routes returns the /sctp/associations route.
func (a *Admin) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/sctp/associations", Handler: caddy.AdminHandlerFunc(a.associations)}}
}

// Listing limits of GET /sctp/associations.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// AssociationList is the answer of GET /sctp/associations.
type AssociationList struct {
	Total        int               `json:"total"`
	Associations []AssociationInfo `json:"associations"`
	NextAfter    uint64            `json:"next_after,omitempty"`
}

func (a *Admin) associations(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed", r.Method)}
	}
	limit, after := DefaultListLimit, uint64(0)
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("limit %q: want a number from 1 to %d", v, MaxListLimit)}
		}
		limit = n
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("after %q: want an association id", v)}
		}
		after = n
	}
	list, total := Associations(after, limit+1)
	out := AssociationList{Total: total, Associations: list}
	if len(list) > limit {
		out.Associations = list[:limit]
		out.NextAfter = list[limit-1].ID
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(out)
}

var (
	_ caddy.AdminRouter = (*Admin)(nil)
	_ caddy.Provisioner = (*Admin)(nil)
)
