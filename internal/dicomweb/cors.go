package dicomweb

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Written here rather than using echo's middleware.CORSWithConfig:
// importing echo/v4/middleware pulls golang.org/x/time, which this module
// does not otherwise depend on.

var (
	corsMethods = "GET, HEAD, POST, DELETE, OPTIONS"
	corsHeaders = "Accept, Authorization, Content-Type, Range, If-None-Match, If-Modified-Since, If-Match, If-Range, Cache-Control, X-Requested-With"
	corsExpose  = "ETag, Content-Type, Content-Length, Content-Encoding, Content-Range, Content-Location, Last-Modified, Accept-Ranges, Warning, Location"
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
