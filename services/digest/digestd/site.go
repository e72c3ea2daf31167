package digestd

import (
	"github.com/paperroute/paperroute/platform/service"
	"github.com/paperroute/paperroute/services/digest/internal/archive"
	"github.com/paperroute/paperroute/services/digest/internal/config"
	"github.com/paperroute/paperroute/services/digest/internal/digest"
	"github.com/paperroute/paperroute/services/digest/internal/redisstore"
	"github.com/paperroute/paperroute/services/digest/internal/site"
)

// setupSite serves the public web pages (front page, archive, feed) on the
// HTTP port and records the editions of the public trending digest in the
// background.
func setupSite(s *service.Server, cfg config.Config, svc *digest.Service) error {
	editions := redisstore.NewEditionStore(s.Redis)
	rec := &archive.Recorder{
		Trending: svc, Store: editions, WeeklyWindow: cfg.WeeklyWindow,
		Interval: cfg.ArchiveInterval, Logger: s.Logger,
	}
	s.Go("archive recorder", rec.Run)
	pages, err := site.New(site.Config{
		Trending: svc, Archive: editions, PublicURL: cfg.PublicURL,
		SubscriberURL: cfg.SubscriberURL, Logger: s.Logger,
	})
	if err != nil {
		return err
	}
	pages.Register(s.Mux)
	return nil
}
