package dicomweb

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Written here rather than with echo's middleware.CORSWithConfig because
// of what it does differently: it acts only on the DICOMweb and WADO-URI
// paths (the viewer and the health routes are same-origin); it runs
// before routing (Register installs it with e.Pre), so the preflight of
// any route is answered, even where the router would say 404 or 405; a
// preflight from an origin not allowed gets a bare 204 (the browser then
// refuses the request); and a preflight's requested headers are allowed
// as asked.

var (
	corsMethods = "GET, HEAD, POST, DELETE, OPTIONS"
	corsHeaders = "Accept, Authorization, Content-Type, Range, If-None-Match, If-Modified-Since, If-Match, If-Range, Cache-Control, X-Requested-With"
	corsExpose  = "ETag, Content-Type, Content-Length, Content-Encoding, Content-Range, Content-Location, Last-Modified, Accept-Ranges, Warning, Location, X-Request-ID"
)

// cors answers preflight requests and adds CORS headers for the allowed
// origins ("*": any) on the DICOMweb and WADO-URI paths.
func cors(origins []string) echo.MiddlewareFunc {
	any := false
	for _, o := range origins {
		if o == "*" {
			any = true
		}
	}
	allowed := func(origin string) bool {
		if any {
			return true
		}
		for _, o := range origins {
			if strings.EqualFold(strings.TrimRight(o, "/"), origin) {
				return true
			}
		}
		return false
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			p := req.URL.Path
			if !strings.HasPrefix(p, Root+"/") && p != Root && p != "/wado" {
				return next(c)
			}
			h := c.Response().Header()
			h.Add("Vary", "Origin")
			origin := req.Header.Get("Origin")
			preflight := req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != ""
			if origin == "" || !allowed(origin) {
				if preflight {
					return c.NoContent(http.StatusNoContent)
				}
				return next(c)
			}
			if any {
				h.Set("Access-Control-Allow-Origin", "*")
			} else {
				h.Set("Access-Control-Allow-Origin", origin)
			}
			if !preflight {
				h.Set("Access-Control-Expose-Headers", corsExpose)
				return next(c)
			}
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", corsMethods)
			if rh := req.Header.Get("Access-Control-Request-Headers"); rh != "" {
				h.Set("Access-Control-Allow-Headers", rh)
			} else {
				h.Set("Access-Control-Allow-Headers", corsHeaders)
			}
			h.Set("Access-Control-Max-Age", "600")
			return c.NoContent(http.StatusNoContent)
		}
	}
}
