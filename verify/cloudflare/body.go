package cloudflare

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/cloudflare/cloudflare-go/v7/option"
)

// MaxBodyBytes caps what verify reads of one answer of the API (one page of
// zones or DNS records, one setting, one error). A page of 1000 DNS records
// is a few hundred kilobytes; a larger answer is refused with one error
// instead of filling memory.
const MaxBodyBytes = 16 << 20

// errBodyTooLarge is what reading past MaxBodyBytes returns.
var errBodyTooLarge = errors.New("answer too large")

// limitBody is a middleware that makes reading more than MaxBodyBytes of
// any answer an error.
func limitBody(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	res, err := next(req)
	if res != nil && res.Body != nil {
		res.Body = capBody(res.Body)
	}
	return res, err
}

// capBody wraps rc so that reading more than MaxBodyBytes fails with
// errBodyTooLarge (exactly MaxBodyBytes is still fine).
func capBody(rc io.ReadCloser) io.ReadCloser {
	if lb, ok := rc.(*limitedBody); ok {
		return lb
	}
	return &limitedBody{rc: rc, left: MaxBodyBytes}
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte means too large; EOF means it fit exactly.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, errBodyTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// tooLarge is the *Error for an answer past MaxBodyBytes.
func tooLarge(what string) *Error {
	return &Error{Kind: KindAPI, What: what,
		APIMessage: fmt.Sprintf("more than %d MiB in one answer, far more than any real page: stopped reading (check --api-url)", MaxBodyBytes>>20)}
}

// rawBody is a middleware that keeps an answer's body for verify to decode
// and hands the SDK the same answer with an empty result (empty: "{}" or
// "[]"): the SDK still makes the request, authenticates, retries and reads
// the error envelope, and its generated types never see the result. An
// answer that is not a JSON object is kept in err, and the SDK gets an
// empty success so that it does not retry it. It runs inside limitBody, so
// it caps the body itself.
type rawBody struct {
	empty string
	body  []byte
	err   error
}

func (rb *rawBody) take(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	res, err := next(req)
	if err != nil || res.StatusCode != http.StatusOK {
		return res, err
	}
	body, err := io.ReadAll(capBody(res.Body))
	res.Body.Close()
	if errors.Is(err, errBodyTooLarge) {
		// With the response, so that the SDK does not retry.
		res.Body = http.NoBody
		return res, err
	}
	if err != nil {
		return nil, err
	}
	rb.body = body
	var rest map[string]json.RawMessage
	if rb.err = json.Unmarshal(body, &rest); rb.err == nil {
		rest["result"] = json.RawMessage(rb.empty)
		body, _ = json.Marshal(rest)
	} else {
		body = []byte(`{"success":true,"errors":[],"messages":[],"result":` + rb.empty + `}`)
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	res.ContentLength = int64(len(body))
	return res, nil
}
