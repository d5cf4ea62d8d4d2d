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

// loadAssets reads the embedded files once. Their URLs carry no version,
// so browsers revalidate them (no-cache) and the ETag makes that cheap.
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

// registerAssetRoutes serves the embedded static files, without
// authentication: another application's pages load tidings.js from here.
func (s *Server) registerAssetRoutes() {
	assets, err := loadAssets()
	if err != nil {
		panic("http: embedded assets: " + err.Error()) // a broken build
	}
	s.handle("GET /static/{name...}", public, func(w http.ResponseWriter, r *http.Request) error {
		a, ok := assets[r.PathValue("name")]
		if !ok {
			return tidings.Errorf(tidings.ENOTFOUND, "Nothing is at %s.", r.URL.Path)
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		// Module scripts load in CORS mode: pages of any origin may use the
		// client, which carries no credentials and nothing secret.
		h.Set("Access-Control-Allow-Origin", "*")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.content))
		return nil
	})
}
