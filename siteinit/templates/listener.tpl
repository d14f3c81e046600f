{{- /* The gateway's own federation-listener certificate: serverAuth, no Mosaic OIDs. */ -}}
{
	"subject": {{ toJson .Subject }},
	"sans": {{ toJson .SANs }},
	"keyUsage": ["digitalSignature"],
	"extKeyUsage": ["serverAuth"]
}
