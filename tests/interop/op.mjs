// A real, certified OpenID Provider (node `oidc-provider`) for quire's interop test.
// Loopback only, plain http. Configured entirely from the environment:
//   OP_PORT               port to listen on (127.0.0.1); the issuer is http://127.0.0.1:<OP_PORT>
//   RP_ORIGIN             quire's public origin, e.g. http://localhost:8123
//   RP_BACKCHANNEL_ORIGIN where the OP reaches quire server to server (default RP_ORIGIN)
//   CLIENT_ID, CLIENT_SECRET
// Besides the provider's own routes it serves GET /_interop/backchannel: the outcome of
// every back-channel logout call it made (so the driver can see quire's answer).
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') {
    console.error(`op: ${name} must be set`);
    process.exit(2);
  }
  return v;
};

const port = Number(env('OP_PORT'));
const issuer = `http://127.0.0.1:${port}`;
const rp = env('RP_ORIGIN');
const rpBack = env('RP_BACKCHANNEL_ORIGIN', rp);
const clientId = env('CLIENT_ID');
const clientSecret = env('CLIENT_SECRET');

// RS256 signing key, fresh for every run.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: `interop-${randomBytes(6).toString('hex')}`,
  alg: 'RS256',
  use: 'sig',
};

// The account store. devInteractions accepts any password and uses the typed login as
// the account id, so an unknown login simply finds no account.
const ACCOUNTS = {
  alice: {
    email: 'alice@example.org',
    email_verified: true,
    name: 'Alice Interop',
    groups: ['writers', 'staff'],
  },
  bob: {
    email: 'bob@example.org',
    email_verified: true,
    name: 'Bob Outsider',
    groups: ['readers'],
  },
};

const configuration = {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      client_name: 'quire (interop)',
      application_type: 'web',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      id_token_signed_response_alg: 'RS256',
      redirect_uris: [`${rp}/oidc/callback`],
      post_logout_redirect_uris: [`${rp}/`],
      backchannel_logout_uri: `${rpBack}/oidc/backchannel-logout`,
      backchannel_logout_session_required: true,
    },
  ],
  jwks: { keys: [signingKey] },
  cookies: {
    keys: [randomBytes(32).toString('base64url')],
    // No `secure`: plain http on loopback. SameSite=Lax is the library's default.
    long: { httpOnly: true, sameSite: 'lax' },
    short: { httpOnly: true, sameSite: 'lax' },
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
    claimsParameter: { enabled: false },
  },
  // PKCE for every client, confidential ones included (only S256 exists in this version).
  pkce: { required: () => true },
  // The library refuses to call special-use addresses (loopback included) as SSRF
  // protection; quire lives on loopback here, so its back-channel URI, and only that
  // origin, is fetched without the guard.
  fetch(url, options) {
    if (new URL(url).origin === new URL(rpBack).origin) {
      const { dispatcher: _guarded, ...plain } = options;
      return globalThis.fetch(url, plain);
    }
    return globalThis.fetch(url, options);
  },
  async findAccount(_ctx, id) {
    const account = Object.hasOwn(ACCOUNTS, id) ? ACCOUNTS[id] : undefined;
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, ...account };
      },
    };
  },
};

const provider = new Provider(issuer, configuration);
provider.proxy = false;

const backchannel = [];
provider.on('backchannel.success', (_ctx, client, accountId, sid) => {
  backchannel.push({ ok: true, client: client.clientId, accountId, sid });
  console.error(`op: back-channel logout of ${accountId} (sid ${sid}) accepted by ${client.clientId}`);
});
provider.on('backchannel.error', (_ctx, err, client, accountId, sid) => {
  backchannel.push({ ok: false, client: client.clientId, accountId, sid, error: String(err?.message ?? err) });
  console.error(`op: back-channel logout of ${accountId} (sid ${sid}) FAILED at ${client.clientId}: ${err?.message ?? err}`);
});
for (const event of ['server_error', 'authorization.error', 'grant.error', 'end_session.error', 'userinfo.error']) {
  provider.on(event, (_ctx, err) => console.error(`op: ${event}: ${err?.message ?? err} ${err?.error_description ?? ''}`));
}

const handler = provider.callback();
const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/_interop/backchannel') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(backchannel));
    return;
  }
  handler(req, res);
});
server.listen(port, '127.0.0.1', () => {
  console.error(`op: oidc-provider listening, issuer ${issuer}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
