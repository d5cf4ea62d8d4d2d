package http

// registerAssetRoutes serves the embedded static files.
func (s *Server) registerAssetRoutes() {}
