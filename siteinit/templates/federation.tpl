{{- /*
  Federation client certificates. Identity comes only from the SIGNED claims of the
  one-time token the gateway mints (.Token), never from the CSR or unsigned request data.
  Subject CN = grant id, no SANs, clientAuth only, and the two Mosaic OIDs
  (1.3.6.1.4.1.99999 is a placeholder enterprise number).
*/ -}}
{{- $uuid := "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$" -}}
{{- $grant := .Token.grant_id -}}
{{- $subject := .Token.subject_user_id -}}
{{- if not $grant }}{{ fail "federation: the token carries no grant_id claim" }}{{ end -}}
{{- if not $subject }}{{ fail "federation: the token carries no subject_user_id claim" }}{{ end -}}
{{- if not (and (kindIs "string" $grant) (regexMatch $uuid $grant)) }}{{ fail "federation: the grant_id claim is not a canonical lowercase UUID" }}{{ end -}}
{{- if not (and (kindIs "string" $subject) (regexMatch $uuid $subject)) }}{{ fail "federation: the subject_user_id claim is not a canonical lowercase UUID" }}{{ end -}}
{
	"subject": {"commonName": {{ toJson $grant }}},
	"keyUsage": ["digitalSignature"],
	"extKeyUsage": ["clientAuth"],
	"extensions": [
		{"id": "1.3.6.1.4.1.99999.1", "value": {{ asn1Enc (printf "utf8:%s" $grant) | toJson }}},
		{"id": "1.3.6.1.4.1.99999.2", "value": {{ asn1Enc (printf "utf8:%s" $subject) | toJson }}}
	]
}
