{{- /*
  Federation client certificates. Identity comes only from the SIGNED claims of the
  one-time token the gateway mints (.Token), never from the CSR or unsigned request data.
  Subject CN = grant id, no SANs, clientAuth only, and the two Mosaic OIDs
  (1.3.6.1.4.1.99999 is a placeholder enterprise number).
*/ -}}
{{- if not .Token.grant_id }}{{ fail "federation: the token carries no grant_id claim" }}{{ end -}}
{{- if not .Token.subject_user_id }}{{ fail "federation: the token carries no subject_user_id claim" }}{{ end -}}
{
	"subject": {"commonName": {{ toJson .Token.grant_id }}},
	"keyUsage": ["digitalSignature"],
	"extKeyUsage": ["clientAuth"],
	"extensions": [
		{"id": "1.3.6.1.4.1.99999.1", "value": {{ asn1Enc (printf "utf8:%s" .Token.grant_id) | toJson }}},
		{"id": "1.3.6.1.4.1.99999.2", "value": {{ asn1Enc (printf "utf8:%s" .Token.subject_user_id) | toJson }}}
	]
}
