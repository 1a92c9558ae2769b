import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createAccount, createOperator, createUser, encodeAccount, encodeOperator, encodeUser, fmtCreds } from '@nats-io/jwt';

/**
 * Key material for tests against secured nats-servers, made fresh in a
 * directory: a CA with a server and a client certificate (openssl), an NKey
 * user, and an operator/account/user JWT chain with its credentials file.
 */
export function makeTlsFiles(dir: string) {
  const f = (name: string) => path.join(dir, name);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=sentinel-test-ca');
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(f('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=${who}`);
    ssl('x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.pem`), '-days', '2', '-extfile', f(`${who}.ext`));
  }
  return { ca: f('ca.pem'), serverCert: f('server.pem'), serverKey: f('server.key'), clientCert: f('client.pem'), clientKey: f('client.key') };
}

export function makeNkeyUser(dir: string, file = 'user.nk') {
  const user = createUser();
  const seedFile = path.join(dir, file);
  writeFileSync(seedFile, `${new TextDecoder().decode(user.getSeed())}\n`);
  return { publicKey: user.getPublicKey(), seed: new TextDecoder().decode(user.getSeed()), seedFile };
}

/** An operator-mode server configuration and a user's credentials file. */
export async function makeJwtChain(dir: string) {
  const operator = createOperator();
  const account = createAccount();
  const user = createUser();
  const operatorJwt = await encodeOperator('test-operator', operator);
  // No limits: the library's defaults allow no connection at all.
  const unlimited = { conn: -1, subs: -1, data: -1, payload: -1, leaf: -1, imports: -1, exports: -1, wildcards: true };
  const accountJwt = await encodeAccount('test-account', account, { limits: unlimited }, { signer: operator });
  const userJwt = await encodeUser('sentinel', user, account);
  const credsFile = path.join(dir, 'user.creds');
  writeFileSync(credsFile, fmtCreds(userJwt, user));
  const serverConfig = `operator: ${operatorJwt}\nresolver: MEMORY\nresolver_preload: {\n  ${account.getPublicKey()}: ${accountJwt}\n}\n`;
  return { credsFile, serverConfig, userJwt, userSeed: new TextDecoder().decode(user.getSeed()) };
}
