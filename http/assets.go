package http

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/tidings/tidings"
)

//go:embed assets
var assetFS embed.FS

// asset is an embedded static file, ready to serve.
type asset struct {
	content     []byte
	contentType string
	etag        string
}

// loadAssets reads the embedded files once. Pages name them with a hash of
// their content in the URL (see assetURL), which may be cached for ever; the
// bare URL, which other applications load tidings.js from, is revalidated
// (no-cache) and the ETag makes that cheap.
func loadAssets() (map[string]asset, error) {
	assets := map[string]asset{}
	err := fs.WalkDir(assetFS, "assets", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assetFS.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		assets[name[len("assets/"):]] = asset{
			content:     b,
			contentType: ct,
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
		}
		return nil
	})
	return assets, err
}

// assetURL is the URL of a static file with its content's hash, for pages.
func (s *Server) assetURL(name string) string {
	a, ok := s.assets[name]
	if !ok {
		return "/static/" + name
	}
	return "/static/" + name + "?v=" + strings.Trim(a.etag, `"`)
}

// registerAssetRoutes serves the embedded static files, without
// authentication: another application's pages load tidings.js from here.
func (s *Server) registerAssetRoutes() {
	s.handle("GET /static/{name...}", public, func(w http.ResponseWriter, r *http.Request) error {
		a, ok := s.assets[r.PathValue("name")]
		if !ok {
			return tidings.Errorf(tidings.ENOTFOUND, "Nothing is at %s.", r.URL.Path)
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		if v := r.URL.Query().Get("v"); v != "" && v == strings.Trim(a.etag, `"`) {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		h.Set("ETag", a.etag)
		// Module scripts load in CORS mode: pages of any origin may use the
		// client, which carries no credentials and nothing secret.
		h.Set("Access-Control-Allow-Origin", "*")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.content))
		return nil
	})
}
