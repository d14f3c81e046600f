// Package siteinit writes the files a federated site needs before its first serve: its
// secrets (provisioner password, sealing and audit keys, the database URL) and its
// step-ca's files — root and intermediate, the federation provisioner with the OID
// template, the listener provisioner, the CRL settings — in the layout `step ca init`
// makes, so any step-ca (the official image, a static build, the host's) only serves
// them. The gateway's `secrets init` and `ca init` one-shots (docker-compose) and the
// harness's backends both call it: one CA recipe for every world.
//
// Every writer is idempotent: what exists is kept, so a re-run on a used volume changes
// nothing.
package siteinit
