{{- /*
  TEST ONLY: a broken federation template that drops the Mosaic OIDs. Acceptance
  specs point a gateway at the provisioner using it to prove enrollment fails loudly.
*/ -}}
{
	"subject": {"commonName": {{ toJson .Token.grant_id }}},
	"keyUsage": ["digitalSignature"],
	"extKeyUsage": ["clientAuth"]
}
