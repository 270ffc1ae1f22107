/**
 * Certificates for TLS tests, made with openssl in a directory of the test's: CAs, and server
 * certificates signed by one of them for the names and validity a test needs (`days` = -1 for one
 * that has expired).
 */
import { execFileSync } from "node:child_process"
import { writeFileSync } from "node:fs"
import { join } from "node:path"

const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

const openssl = (dir: string, args: ReadonlyArray<string>) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" })

/** A self-signed CA: `dir/NAME.pem` and its key `dir/NAME.key`; returns the PEM's path. */
export const makeCa = (dir: string, name: string): string => {
  openssl(dir, [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-subj",
    `/CN=${name}`
  ])
  return join(dir, `${name}.pem`)
}

/** `dir/NAME.pem` (and `.key`) for `san` (e.g. `IP:127.0.0.1`), signed by the CA `ca` made in `dir`. */
export const makeServerCert = (dir: string, name: string, san: string, days = 2, ca = "ca"): string => {
  openssl(dir, ["req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`])
  writeFileSync(
    join(dir, `${name}.ext`),
    `subjectAltName = ${san}\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n`
  )
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.pem`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-out",
    `${name}.pem`,
    "-days",
    String(days),
    "-extfile",
    `${name}.ext`
  ])
  return join(dir, `${name}.pem`)
}
