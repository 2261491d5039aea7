package cfapitest

import "net/http"

// ipsState is what GET /ips answers. (Filled in by the cfranges work.)
type ipsState struct{}

func defaultIPs() ipsState { return ipsState{} }

func (s *Server) routeIPs(mux *http.ServeMux) {}
