// Walks quire's OpenID Connect login and logouts through a real OP (oidc-provider) the
// way a browser does: every redirect followed by hand, forms read from the HTML and
// submitted, one cookie jar keyed by host (as browsers scope cookies, ports ignored)
// with SameSite enforced. quire is addressed as http://localhost:<port> and the OP as
// http://127.0.0.1:<port>, so the two are different sites and the trip back from the
// OP is a cross-site navigation, as it is in production.
//
// Started by run.sh with QUIRE_BIN (the quire binary) and HARNESS_TIMEOUT (seconds, for
// start-up and checks together). Starts the OP (op.mjs) and `quire serve` on free
// loopback ports, prints one line per check, stops both and ends with "N passed, N failed".
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  INTEROP_DIR, HttpBrowser, check, csrfToken, describeHops, env, fieldsOf, forms, freePorts, gate,
  begin, end, scenario, snippet, startOp, startQuire, textOf, waitHealthy,
} from '../node-support/support.mjs';

const CLIENT_ID = 'quire-interop';
const DISPLAY_NAME = 'Interop OP';

// Set at start-up.
let QUIRE = ''; // quire's origin
let OP = ''; // the issuer
let quire = null; // the `quire serve` process

class Browser extends HttpBrowser {
  constructor() {
    super({ userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 quire-interop' });
  }
}

const q = (path) => `${QUIRE}${path}`;

async function opBackchannelCalls() {
  const res = await new Browser().request('GET', `${OP}/_interop/backchannel`);
  return JSON.parse(res.body);
}

// ---------------------------------------------------------------- steps

/**
 * From quire's /login/oidc through the OP's login and consent pages back into quire.
 * Returns the hops of the final redirect chain (ending on quire).
 */
async function loginThroughOp(browser, login, { expectLoginPage = true } = {}) {
  const start = await browser.request('GET', q('/login/oidc'));
  gate(start.status === 303 && start.location?.startsWith(`${OP}/auth?`),
    'GET /login/oidc answers 303 to the OP\'s authorization endpoint',
    `${start.status} ${start.location ?? ''}\n${snippet(textOf(start.body))}`);
  const auth = new URL(start.location);
  const p = auth.searchParams;
  check(p.get('response_type') === 'code' && p.get('client_id') === CLIENT_ID
    && p.get('redirect_uri') === q('/oidc/callback'),
  'authorization request: response_type=code, client_id, redirect_uri', auth.search);
  check(p.get('code_challenge_method') === 'S256' && /^[A-Za-z0-9_-]{43}$/.test(p.get('code_challenge') ?? ''),
    'authorization request: PKCE S256 challenge', auth.search);
  check((p.get('state') ?? '').length >= 16 && (p.get('nonce') ?? '').length >= 16,
    'authorization request: state and nonce', auth.search);
  check((p.get('scope') ?? '').split(' ').includes('openid'), 'authorization request: scope includes openid', p.get('scope'));
  const pending = browser.jar.find('localhost', 'quire_oidc');
  check(pending && pending.sameSite === 'lax', 'pre-login cookie quire_oidc is SameSite=Lax',
    JSON.stringify(pending));

  // The browser follows to the OP: a cross-site navigation started on quire.
  let hops = await browser.navigate('GET', start.location, { from: q('/login') });
  let page = hops.at(-1);
  if (expectLoginPage) {
    gate(page.status === 200 && page.url.startsWith(`${OP}/interaction/`),
      'the OP shows its interaction page', describeHops(hops));
    const loginForm = forms(page.body).find((f) => f.inputs.some((i) => i.name === 'login'));
    gate(loginForm && loginForm.inputs.some((i) => i.name === 'password'),
      'the OP\'s login page has a login + password form', snippet(page.body));
    const fields = fieldsOf(loginForm);
    fields.login = login;
    fields.password = 'correct horse battery staple';
    hops = await browser.navigate('POST', new URL(loginForm.action, page.url).href, { form: fields, from: page.url });
    page = hops.at(-1);
    // Consent (first time this account authorizes the client).
    const consent = page.status === 200 && forms(page.body).find((f) => f.inputs.some((i) => i.name === 'prompt' && i.value === 'consent'));
    gate(consent, 'after login the OP asks for consent', describeHops(hops) + '\n' + snippet(textOf(page.body)));
    const consentFields = fieldsOf(consent);
    hops = await browser.navigate('POST', new URL(consent.action, page.url).href, { form: consentFields, from: page.url });
  }
  const callback = hops.find((h) => h.url.startsWith(q('/oidc/callback')));
  gate(callback, 'the OP redirects the browser to quire\'s /oidc/callback', describeHops(hops));
  const cb = new URL(callback.url).searchParams;
  check(cb.get('state') === p.get('state'), 'the callback carries the state quire sent', callback.url);
  return { hops, callback };
}

function expectLoggedIn(hops, callback, name) {
  gate(callback.status === 303 && callback.location?.startsWith(QUIRE),
    'quire\'s callback accepts the login: 303 on-site',
    `${callback.status} ${callback.location ?? ''}\n${snippet(textOf(callback.body), 1200)}`);
  const last = hops.at(-1);
  gate(last.status === 200 && last.url === q('/dashboard'),
    'the login lands on /dashboard (200)', describeHops(hops));
  check(last.body.includes(`Welcome, ${name}`), `the page the login lands on greets "Welcome, ${name}"`,
    `${snippet(textOf(last.body))}\n${flashDiagnosis(hops)}`);
}

/** Why a flash message set on a redirect back from the OP may not have been shown. */
function flashDiagnosis(hops) {
  const set = hops.flatMap((h) => (h.headers['set-cookie'] ?? []).filter((c) => c.startsWith('_flash=')).map((c) => `${h.method} ${new URL(h.url).pathname}: Set-Cookie: ${c}`));
  if (!set.length) return 'no _flash cookie was set on the way';
  return `${set.join('\n')}\n(a SameSite=Strict cookie is not sent on a navigation that started on another site, here the OP)`;
}

async function logoutAtOpPage(browser, page, what) {
  const form = forms(page.body).find((f) => f.inputs.some((i) => i.name === 'xsrf'));
  gate(page.status === 200 && form, `${what}: the OP shows its logout confirmation form`,
    `${page.status} ${page.url}\n${snippet(textOf(page.body))}`);
  const yes = (form.buttons ?? []).find((b) => b.name === 'logout');
  check(yes && yes.value === 'yes', `${what}: the confirmation has a "sign me out" button`, JSON.stringify(form));
  const fields = fieldsOf(form);
  fields.logout = yes?.value ?? 'yes';
  return browser.navigate('POST', new URL(form.action, page.url).href, { form: fields, from: page.url });
}

// ---------------------------------------------------------------- the test

const decodeJwt = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));

await begin('interop', async (work) => {
  const bin = env('QUIRE_BIN');
  const version = JSON.parse(readFileSync(join(INTEROP_DIR, 'node_modules/oidc-provider/package.json'), 'utf8')).version;
  console.log(`interop: oidc-provider ${version}, node ${process.version}, ${bin}`);
  const [opPort, quirePort] = await freePorts(2);
  QUIRE = `http://localhost:${quirePort}`;
  const clientSecret = randomBytes(24).toString('base64url');
  const op = startOp(work, {
    port: opPort,
    rpOrigin: QUIRE,
    // Server to server: straight to the address quire listens on.
    backchannelOrigin: `http://127.0.0.1:${quirePort}`,
    clientId: CLIENT_ID,
    clientSecret,
  });
  OP = op.issuer;
  quire = startQuire(work, {
    name: 'interop',
    bin,
    port: quirePort,
    auth: `{providers=["local","oidc"],argon2={memory_kib=64,iterations=1},oidc={issuer="${OP}",client_id="${CLIENT_ID}",client_secret="${clientSecret}",redirect_url="${QUIRE}/oidc/callback",display_name="${DISPLAY_NAME}",scopes=["openid","email","profile","groups"],allowed_groups=["writers"]}}`,
  });
  await waitHealthy([op, quire]);
}, { timeoutSeconds: Number(process.env.HARNESS_TIMEOUT || 120) });

await scenario('quire doctor against the OP', async () => {
  const res = spawnSync(quire.bin, ['doctor'], { encoding: 'utf8', timeout: 30_000, cwd: quire.dir, env: quire.env });
  const out = `${res.stdout ?? ''}${res.stderr ?? ''}`;
  check(res.status === 0, '`quire doctor` exits 0', `exit ${res.status} ${res.error ?? ''}\n${out}`);
  check(/client_secret_basic/.test(res.stdout ?? ''), '`quire doctor` prints client_secret_basic', out);
  check((res.stdout ?? '').includes(`${QUIRE}/oidc/backchannel-logout`), '`quire doctor` prints the back-channel logout URI', out);
});

const alice = new Browser();
let firstSid;

await scenario('login through the OP\'s own login and consent pages', async () => {
  const login = await alice.get(q('/login'));
  check(login.status === 200 && textOf(login.body).includes(`Log in with ${DISPLAY_NAME}`),
    `GET /login shows "Log in with ${DISPLAY_NAME}"`, `${login.status}\n${snippet(textOf(login.body))}`);
  const anon = await alice.request('GET', q('/dashboard'));
  check(anon.status === 303 && anon.location?.startsWith(q('/login')), 'anonymous GET /dashboard is 303 to /login', `${anon.status} ${anon.location}`);

  const { hops, callback } = await loginThroughOp(alice, 'alice');
  expectLoggedIn(hops, callback, 'Alice Interop');
  check(!alice.jar.find('localhost', 'quire_oidc'), 'the pre-login cookie is spent after the callback',
    JSON.stringify(alice.jar.on('localhost')));
  const account = await alice.get(q('/account'));
  check(account.status === 200 && textOf(account.body).includes('Logged in as Alice Interop (alice@example.org)'),
    'GET /account: name and email from the OP\'s claims', `${account.status}\n${snippet(textOf(account.body))}`);
});

await scenario('write a post while logged in through the OP', async () => {
  const dash = await alice.get(q('/dashboard'));
  const token = csrfToken(dash.body);
  gate(dash.status === 200 && token, 'the dashboard has a csrf_token', `${dash.status}`);
  const title = `Interop post ${Date.now()}`;
  const hops = await alice.navigate('POST', q('/posts'), {
    form: { csrf_token: token, title, body: 'Written after logging in through **oidc-provider**.', publish: 'true' },
    from: q('/dashboard'),
  });
  check(hops[0].status === 303 && hops[0].location?.startsWith(q('/posts/')), 'POST /posts answers 303 to the new post', describeHops(hops));
  check(hops.at(-1).status === 200 && hops.at(-1).body.includes(title), 'the new post\'s page shows it', describeHops(hops));
  const home = await alice.get(q('/'));
  check(home.status === 200 && home.body.includes(title), 'the home page lists the new post', snippet(textOf(home.body)));
});

await scenario('RP-initiated logout (quire -> OP end_session -> back to quire) with back-channel call', async () => {
  const before = (await opBackchannelCalls()).length;
  const home = await alice.get(q('/'));
  const token = csrfToken(home.body);
  gate(token, 'the home page carries the logout form\'s csrf_token', snippet(home.body));
  const out = await alice.request('POST', q('/logout'), { form: { csrf_token: token } });
  gate(out.status === 303 && out.location?.startsWith(`${OP}/session/end?`),
    'POST /logout answers 303 to the OP\'s end_session endpoint', `${out.status} ${out.location ?? ''}`);
  const p = new URL(out.location).searchParams;
  const hint = p.get('id_token_hint') ?? '';
  let claims = {};
  try { claims = decodeJwt(hint); } catch { /* checked below */ }
  firstSid = claims.sid;
  check(claims.sub === 'alice' && claims.aud === CLIENT_ID && claims.iss === OP,
    'end_session: id_token_hint is the ID token quire received', JSON.stringify(claims));
  check(p.get('client_id') === CLIENT_ID, 'end_session: client_id', out.location);
  check(p.get('post_logout_redirect_uri') === q('/'), 'end_session: post_logout_redirect_uri is quire\'s home', out.location);
  check((p.get('state') ?? '').length >= 16, 'end_session: state', out.location);
  const gone = await alice.request('GET', q('/dashboard'));
  check(gone.status === 303, 'quire\'s own session already ended before the OP is visited', `${gone.status}`);

  const toOp = await alice.navigate('GET', out.location, { from: q('/') });
  const hops = await logoutAtOpPage(alice, toOp.at(-1), 'RP-initiated logout');
  const back = hops[0];
  gate(back.status === 303 && back.location?.startsWith(q('/')),
    'the OP sends the browser back to post_logout_redirect_uri', describeHops(hops));
  check(new URL(back.location).searchParams.get('state') === p.get('state'), 'the OP returns the state quire sent', back.location);
  const landing = hops.at(-1);
  check(landing.status === 200 && new URL(landing.url).pathname === '/', 'the browser ends on quire\'s home (200), not bounced into a login', describeHops(hops));
  check(!/action="\/logout"/.test(landing.body), 'quire\'s home shows the visitor logged out (no logout form)', snippet(textOf(landing.body)));
  check(textOf(landing.body).includes('You are logged out.'), 'quire\'s home says "You are logged out."',
    `${snippet(textOf(landing.body))}\n${flashDiagnosis([out, ...hops])}`);

  const calls = (await opBackchannelCalls()).slice(before);
  check(calls.length === 1 && calls[0].ok && calls[0].accountId === 'alice',
    'the OP made a back-channel logout call and quire answered 200', JSON.stringify(calls));
  const dash = await alice.request('GET', q('/dashboard'));
  check(dash.status === 303 && dash.location?.startsWith(q('/login')), 'GET /dashboard after logout: 303 to /login', `${dash.status} ${dash.location}`);
});

await scenario('second login, then logout at the OP alone: back-channel ends the quire session', async () => {
  // The OP session ended above, so the OP asks for the login again.
  const { hops, callback } = await loginThroughOp(alice, 'alice');
  expectLoggedIn(hops, callback, 'Alice Interop');
  const dash = await alice.request('GET', q('/dashboard'));
  gate(dash.status === 200, 'logged in again: GET /dashboard is 200', `${dash.status} ${dash.location ?? ''}`);

  const before = (await opBackchannelCalls()).length;
  // The person logs out at the OP itself (another tab, the IdP's dashboard): no hint.
  const endPage = await alice.navigate('GET', `${OP}/session/end`);
  const out = await logoutAtOpPage(alice, endPage.at(-1), 'logout at the OP');
  const done = out.at(-1);
  check(done.status === 200 && /Sign-out Success/i.test(done.body), 'the OP confirms the sign-out', describeHops(out));
  const calls = (await opBackchannelCalls()).slice(before);
  check(calls.length === 1 && calls[0].ok && calls[0].accountId === 'alice' && calls[0].sid && calls[0].sid !== firstSid,
    'the OP made a back-channel logout call (new sid) and quire answered 200', JSON.stringify(calls));
  const after = await alice.request('GET', q('/dashboard'));
  check(after.status === 303 && after.location?.startsWith(q('/login')),
    'the same browser, untouched by quire, is logged out: GET /dashboard is 303 to /login', `${after.status} ${after.location ?? ''}`);
  check(alice.jar.find('localhost', 'quire_session'), '(the quire session cookie is still in the browser: only the back-channel ended it)',
    JSON.stringify(alice.jar.on('localhost').map((c) => c.name)));
});

await scenario('a person outside auth.oidc.allowed_groups (groups from the OP) is refused', async () => {
  const bob = new Browser();
  const { callback } = await loginThroughOp(bob, 'bob');
  check(callback.status === 403 && /not in a group that is allowed/i.test(textOf(callback.body)),
    'quire refuses bob with a page saying why (403)', `${callback.status} ${callback.location ?? ''}\n${snippet(textOf(callback.body))}`);
  const dash = await bob.request('GET', q('/dashboard'));
  check(dash.status === 303, 'bob has no quire session', `${dash.status}`);
});

await end();
