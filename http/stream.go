package http

// registerStreamRoutes registers server-sent events and WebSocket.
func (s *Server) registerStreamRoutes() {}
