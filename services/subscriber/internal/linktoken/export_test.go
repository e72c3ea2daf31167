package linktoken

import "encoding/base64"

// SignRawForTest MACs an arbitrary payload with k, as someone holding the key
// could, so tests can check that Parse survives payloads Sign never makes.
func SignRawForTest(k Key, payloadB64 string) string {
	signed := k.ID + "." + payloadB64
	return signed + "." + base64.RawURLEncoding.EncodeToString(newMacer(k.Secret).appendMAC(nil, []byte(signed)))
}
