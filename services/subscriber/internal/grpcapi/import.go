package grpcapi

import (
	"errors"
	"io"

	subscriberv1 "github.com/paperroute/paperroute/api/gen/paperroute/subscriber/v1"
	"github.com/paperroute/paperroute/platform/validation"
	"github.com/paperroute/paperroute/services/subscriber/internal/subscription"
)

// maxImportChunk bounds one ImportSubscribersRequest's data.
const maxImportChunk = 1 << 20

// ImportSubscribers implements subscriberv1.SubscriberServiceServer: the
// streamed chunks are piped into subscription.Service.Import as they come.
func (s *Server) ImportSubscribers(stream subscriberv1.SubscriberService_ImportSubscribersServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return toStatus(validation.Field("data", "is empty: send the file"))
	}
	if err != nil {
		return err
	}
	req := subscription.ImportRequest{
		Source:                    first.GetSource(),
		DefaultConsentTextVersion: first.GetDefaultConsentTextVersion(),
		DryRun:                    first.GetDryRun(),
	}
	switch first.GetFormat() {
	case subscriberv1.ImportFormat_IMPORT_FORMAT_CSV:
		req.Format = subscription.ImportCSV
	case subscriberv1.ImportFormat_IMPORT_FORMAT_JSON_LINES:
		req.Format = subscription.ImportJSONLines
	}
	// Import reads the rows in its own goroutine; this one alone receives
	// from the stream, so nothing touches the stream after we return.
	pr, pw := io.Pipe()
	type result struct {
		rep subscription.ImportReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := s.svc.Import(ctx, pr, req)
		_ = pr.CloseWithError(io.ErrClosedPipe) // the receiver below stops writing
		done <- result{rep, err}
	}()
	msg := first
	for {
		if len(msg.GetData()) > maxImportChunk {
			_ = pw.CloseWithError(validation.Field("data", "must be at most 1 MiB per message"))
			break
		}
		if _, err := pw.Write(msg.GetData()); err != nil {
			break // Import stopped reading
		}
		var err error
		msg, err = stream.Recv()
		if errors.Is(err, io.EOF) {
			_ = pw.Close()
			break
		}
		if err != nil {
			_ = pw.CloseWithError(err)
			break
		}
	}
	res := <-done
	rep, err := res.rep, res.err
	if err != nil {
		return toStatus(err)
	}
	out := &subscriberv1.ImportSubscribersResponse{
		Rows: rep.Rows, ImportedActive: rep.ImportedActive, Invited: rep.Invited, Existing: rep.Existing, Rejected: rep.Rejected,
	}
	for _, e := range rep.Errors {
		out.Errors = append(out.Errors, &subscriberv1.ImportRowError{Line: e.Line, Field: e.Field, Reason: e.Reason})
	}
	return stream.SendAndClose(out)
}
