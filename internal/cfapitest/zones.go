package cfapitest

import "net/http"

// zonesState holds tokens, zones, settings and DNS records. (Filled in by the verify work.)
type zonesState struct{}

func (s *Server) routeZones(mux *http.ServeMux) {}
